//! `natrix`: a NATS server, durable by default. This binary is the tokio
//! runtime around the pure core: it owns the sockets, files, clocks and
//! signals, and carries out what the core decides.


use natrix::{clock, conn, driver, http, mqtt, process, reload, resources, signals, storage, tls, ws};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use natrix_core::config::{self, CliCommand, ConfigError, ServerOptions};
use natrix_core::log::Level;
use natrix_core::server::{NATRIX_VERSION, VERSION};
use natrix_core::server::Control;
use rand_core::{OsRng, TryRngCore};
use tokio::net::TcpListener;

use natrix::driver::Shared;
use natrix::logger::Logger;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let loaded = match config::load(&args, &reload::FsSource, &natrix_core::auth::verify_operators) {
        Ok(loaded) => loaded,
        Err(ConfigError::Cli(e)) => {
            eprintln!("{e}");
            if e.shows_usage() {
                eprintln!("{}", config::USAGE);
            }
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1));
        }
        Err(e) => {
            eprintln!("natrix: {e}");
            return ExitCode::from(1);
        }
    };
    match loaded.command {
        CliCommand::ShowVersion => {
            println!("natrix: v{NATRIX_VERSION} (nats-server v{VERSION})");
            ExitCode::SUCCESS
        }
        CliCommand::ShowHelp | CliCommand::ShowTlsHelp => {
            println!("{}", config::USAGE);
            ExitCode::SUCCESS
        }
        CliCommand::TestConfig { config_file, .. } => {
            for w in &loaded.warnings {
                eprintln!("natrix: {w}");
            }
            println!("natrix: configuration file {} is valid", config_file.unwrap_or_default());
            ExitCode::SUCCESS
        }
        CliCommand::Mappings { src, dest, subject } => mappings(&src, &dest, &subject),
        CliCommand::Signal { command, pid } => signals::send(command, pid.as_deref()),
        CliCommand::Run { .. } => run(args, loaded.options, &loaded.warnings),
    }
}

/// `natrix mappings SRC DEST SUBJECT`: prints the mapped subject.
fn mappings(src: &str, dest: &str, subject: &str) -> ExitCode {
    use natrix_core::subject::transform::{map_subject, SplitMix};
    let seed = OsRng.try_next_u64().unwrap_or(0);
    match map_subject(src, dest, subject, &mut SplitMix(seed)) {
        Ok(mapped) => {
            println!("{mapped}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("natrix: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(args: Vec<String>, mut opts: ServerOptions, warnings: &[String]) -> ExitCode {
    if let Err(e) = memory_limit_from_env(&mut opts) {
        eprintln!("natrix: {e}");
        return ExitCode::from(1);
    }
    let logger = match Logger::new(opts.debug, opts.trace, opts.logtime, opts.log_file.as_deref()) {
        Ok(l) => Arc::new(l),
        Err(e) => {
            eprintln!("natrix: cannot open log file: {e}");
            return ExitCode::from(1);
        }
    };
    for w in warnings {
        logger.at(Level::Warn, w.clone());
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            logger.at(Level::Fatal, format!("cannot start the runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(args, opts, logger.clone())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            logger.at(Level::Fatal, e);
            ExitCode::from(1)
        }
    }
}

/// Without `memory_limit` in the config, the limit comes from
/// `NATRIX_MEMORY_LIMIT`, else from `GOMEMLIMIT` (what nats-server obeys),
/// in Go's syntax (`512MiB`, `2GiB`, bytes, `off`).
fn memory_limit_from_env(opts: &mut ServerOptions) -> Result<(), String> {
    if opts.memory_limit_bytes.is_some() {
        return Ok(());
    }
    for name in ["NATRIX_MEMORY_LIMIT", "GOMEMLIMIT"] {
        if let Ok(text) = std::env::var(name) {
            opts.memory_limit_bytes =
                natrix_core::server::memory::parse_memory_limit(&text).map_err(|e| format!("{name}: {e}"))?;
            return Ok(());
        }
    }
    Ok(())
}

/// `host:port` with nats-server's port conventions: -1 is random, 0 the default.
fn listen_addr(host: &str, port: i32, default: u16) -> String {
    let port = match port {
        -1 => 0,
        0 => default,
        p => u16::try_from(p).unwrap_or(default),
    };
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn serve(args: Vec<String>, mut opts: ServerOptions, logger: Arc<Logger>) -> Result<(), String> {
    let configured = opts.clone();
    let tls = match &opts.tls {
        Some(t) => Some(Arc::new(tls::setup(t).map_err(|e| e.to_string())?)),
        None => None,
    };
    let addr = listen_addr(&opts.host, opts.port, 4222);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("Error listening on port: {addr}, \"{e}\""))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    opts.port = i32::from(bound.port());
    let http = match opts.http_port {
        0 => None,
        port => {
            let host = opts.http_host.clone().unwrap_or_else(|| opts.host.clone());
            let addr = listen_addr(&host, port, 8222);
            let l = TcpListener::bind(&addr).await.map_err(|e| format!("can't listen to the monitor port: {e}"))?;
            opts.http_port = i32::from(l.local_addr().map_err(|e| e.to_string())?.port());
            Some(l)
        }
    };
    let websocket = websocket_listener(&mut opts).await?;
    let mqtt_listener = mqtt::listener(&mut opts).await?;
    let mut seed = [0u8; 32];
    OsRng.try_fill_bytes(&mut seed).map_err(|e| format!("no OS randomness: {e}"))?;
    let base_path = opts.http_base_path.clone();
    let files = signals::ProcessFiles::write(&opts, bound, http.as_ref().and_then(|l| l.local_addr().ok()))?;
    // Both storages' syncer threads wake the task that hands their
    // completions to the core.
    let synced_woken = Arc::new(tokio::sync::Notify::new());
    let (resolver, synced) = match resolver_dir(&opts) {
        Some(dir) => {
            let wake = Arc::clone(&synced_woken);
            let storage = storage::FileStorage::open(&dir, Arc::new(move || wake.notify_one()), fatal(&logger))
                .map_err(|e| format!("resolver dir {dir}: {e}"))?;
            let synced = storage.completions();
            (Some(Box::new(storage) as Box<dyn natrix_core::storage::Storage + Send>), Some(synced))
        }
        None => (None, None),
    };
    let (js_storage, js_synced) = match opts.jetstream {
        true => {
            if opts.store_dir.as_deref().is_none_or(str::is_empty) {
                // nats-server's default, made explicit so that monitoring shows it.
                opts.store_dir = Some(std::env::temp_dir().join("nats").to_string_lossy().into_owned());
            }
            let dir = jetstream_dir(&opts);
            let wake = Arc::clone(&synced_woken);
            let files = storage::FileStorage::open(&dir, Arc::new(move || wake.notify_one()), fatal(&logger))
                .map_err(|e| format!("could not create storage directory {}: {e}", dir.display()))?;
            let synced = files.completions();
            let memory = *opts.jetstream_max_memory_bytes.get_or_insert_with(resources::memory_budget);
            let storage = *opts.jetstream_max_store_bytes.get_or_insert_with(|| resources::storage_budget(&dir));
            logger.at(Level::Info, format!("  Max Memory:      {}", resources::friendly_bytes(memory)));
            logger.at(Level::Info, format!("  Max Storage:     {}", resources::friendly_bytes(storage)));
            logger.at(Level::Info, format!("  Store Directory: \"{}\"", dir.display()));
            (Some(Box::new(files) as Box<dyn natrix_core::storage::Storage + Send>), Some(synced))
        }
        false => (None, None),
    };
    if let Some(limit) = opts.memory_limit_bytes {
        logger.at(Level::Info, format!("  Memory limit:    {}", resources::friendly_bytes(i64::try_from(limit).unwrap_or(i64::MAX))));
    }
    let server = Control::with_storages(opts.clone(), seed, clock::now(), clock::wall(), resolver, js_storage);
    let shared = Shared::new(server, logger.clone(), synced, js_synced);
    tokio::spawn(driver::run_syncs(shared.clone(), synced_woken));
    // Print the start-up lines the core logged while it was built.
    shared.with_control(|_| ());
    if let Some(l) = http {
        let at = l.local_addr().map_err(|e| e.to_string())?;
        logger.at(Level::Info, format!("Starting http monitor on {at}"));
        tokio::spawn(http::serve(shared.clone(), l, base_path));
    }
    logger.at(Level::Info, format!("Listening for client connections on {}", display_addr(&opts.host, bound)));
    if tls.is_some() {
        logger.at(Level::Info, "TLS required for client connections");
    }
    let tls: reload::ClientTls = Arc::new(std::sync::RwLock::new(tls));
    let mut reloader = reload::Reloader::new(args, configured, Arc::clone(&tls));
    let mut accepting = Vec::new();
    let mut mqtt_for_ws = None;
    if let Some((listener, mut setup)) = mqtt_listener {
        setup.session.server_name = shared.with_control(|c| c.server_name().to_owned());
        let setup = Arc::new(setup);
        let scheme = if opts.mqtt.tls.is_some() { "tls" } else { "mqtt" };
        logger.at(Level::Info, format!("Listening for MQTT clients on {scheme}://{}:{}", opts.mqtt.host, opts.mqtt.port));
        mqtt_for_ws = Some(Arc::clone(&setup));
        accepting.push(tokio::spawn(mqtt::accept_loop(shared.clone(), listener, setup)));
    }
    if let Some((listener, mut setup)) = websocket {
        setup.set_mqtt(mqtt_for_ws);
        let scheme = if opts.websocket.tls.is_some() { "wss" } else { "ws" };
        let at = format!("{scheme}://{}:{}", opts.websocket.host, opts.websocket.port);
        logger.at(Level::Info, format!("Listening for websocket clients on {at}"));
        if scheme == "ws" {
            logger.at(Level::Warn, "Websocket not configured with TLS. DO NOT USE IN PRODUCTION!");
        }
        accepting.push(tokio::spawn(ws_accept_loop(shared.clone(), listener, Arc::new(setup))));
    }
    logger.at(Level::Info, "Server is ready");
    tokio::spawn(driver::run_timers(shared.clone()));
    tokio::spawn(process::report(shared.clone()));
    accepting.push(tokio::spawn(accept_loop(shared.clone(), listener, tls)));
    // Aborting an accept loop drops its listener: new connections are refused.
    signals::wait_for_shutdown(
        &shared,
        || accepting.iter().for_each(tokio::task::JoinHandle::abort),
        |shared| reloader.reload(shared),
    )
    .await;
    shared.with_control(|c| c.shutdown(clock::now()));
    files.remove();
    logger.at(Level::Info, "Server Exiting..");
    Ok(())
}

/// Where JetStream keeps its files: `<store_dir>/jetstream`, with
/// nats-server's default store directory (`<tmp>/nats`) when none is set.
fn jetstream_dir(opts: &ServerOptions) -> std::path::PathBuf {
    let base = match &opts.store_dir {
        Some(dir) if !dir.is_empty() => std::path::PathBuf::from(dir),
        _ => std::env::temp_dir().join("nats"),
    };
    base.join("jetstream")
}

/// What a storage's failed fsync does: log it and stop (see
/// [`storage::SyncFailed`]).
fn fatal(logger: &Arc<Logger>) -> storage::SyncFailed {
    let logger = Arc::clone(logger);
    Arc::new(move |why| {
        logger.at(Level::Fatal, format!("{why}; stopping, since no later acknowledgement could be trusted"));
        std::process::exit(1);
    })
}

/// The NATS resolver's `dir` in operator mode, where account JWTs are kept.
fn resolver_dir(opts: &ServerOptions) -> Option<String> {
    match &opts.resolver {
        Some(config::Resolver::Nats { dir: Some(dir), .. }) if !opts.operators.is_empty() => Some(dir.clone()),
        _ => None,
    }
}

fn display_addr(host: &str, bound: SocketAddr) -> String {
    listen_addr(host, i32::from(bound.port()), bound.port())
}

/// Binds the `websocket {}` listener, if configured, and records its port.
async fn websocket_listener(opts: &mut ServerOptions) -> Result<Option<(TcpListener, ws::WsSetup)>, String> {
    if !opts.websocket.enabled() {
        return Ok(None);
    }
    let tls = match &opts.websocket.tls {
        Some(t) => Some(Arc::new(tls::setup(t).map_err(|e| format!("websocket: {e}"))?)),
        None => None,
    };
    let addr = listen_addr(&opts.websocket.host, opts.websocket.port, 0);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("Unable to listen for websocket connections: {e}"))?;
    opts.websocket.port = i32::from(listener.local_addr().map_err(|e| e.to_string())?.port());
    let max_payload = usize::try_from(opts.max_payload_bytes).unwrap_or(usize::MAX);
    Ok(Some((listener, ws::WsSetup::new(&opts.websocket, tls, max_payload))))
}

async fn ws_accept_loop(shared: Arc<Shared>, listener: TcpListener, setup: Arc<ws::WsSetup>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(ws::serve(shared.clone(), setup.clone(), stream, peer));
            }
            Err(e) => {
                shared.logger.at(Level::Error, format!("Temporary websocket accept error ({e}), sleeping 10ms"));
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, tls: reload::ClientTls) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                // The certificates in force now: a reload may have changed them.
                let tls = tls.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                tokio::spawn(conn::serve(shared.clone(), tls, stream, peer));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                shared.logger.at(Level::Error, format!("Temporary client accept error ({e}), sleeping 10ms"));
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}
