//! MQTT clients: the `mqtt {}` listener (TLS first when it has `tls {}`),
//! then one task per connection that moves bytes between the device, the
//! core's pure MQTT session (`natrix_core::mqtt`) and the core connection
//! it speaks NATS on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use natrix_core::log::Level;
use natrix_core::mqtt::{MqttSession, Setup};
use natrix_core::server::{CloseReason, Transport};
use rand_core::{OsRng, TryRngCore};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::clock;
use crate::driver::{Locked, Shared};
use crate::tls::TlsSetup;
use crate::ws::MqttFrames;

/// What every MQTT connection of the listener shares.
pub struct MqttSetup {
    /// The sessions' setup.
    pub session: Setup,
    /// `tls {}` of the block.
    pub tls: Option<Arc<TlsSetup>>,
}

/// Accepts MQTT clients for as long as the process lives.
pub async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, setup: Arc<MqttSetup>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                tokio::spawn(serve(shared.clone(), setup.clone(), stream, peer));
            }
            Err(e) => {
                shared.logger.at(Level::Error, format!("Temporary MQTT accept error ({e}), sleeping 10ms"));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Serves one accepted connection on the MQTT listener.
pub async fn serve(shared: Arc<Shared>, setup: Arc<MqttSetup>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    match setup.tls.clone() {
        None => run(shared, &setup, stream, peer, None).await,
        Some(tls) => match tokio::time::timeout(tls.timeout, tls.acceptor.accept(stream)).await {
            Ok(Ok(tls_stream)) => run(shared, &setup, tls_stream, peer, None).await,
            Ok(Err(e)) => shared.logger.at(Level::Error, format!("{peer} - mqtt TLS handshake error: {e}")),
            Err(_) => shared.logger.at(Level::Error, format!("{peer} - mqtt TLS handshake timeout")),
        },
    }
}

/// Runs a connection until the device, the session or the core ends it;
/// `frames` wraps the MQTT bytes both ways for MQTT over WebSocket.
pub(crate) async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    shared: Arc<Shared>,
    setup: &MqttSetup,
    mut stream: S,
    peer: SocketAddr,
    mut frames: Option<MqttFrames>,
) {
    let (mut session, signal) = shared.connect_via(peer, Transport::Mqtt);
    let (conn, outbox) = (session.cid(), Arc::clone(session.outbox()));
    let mut seed = [0u8; 8];
    let _ = OsRng.try_fill_bytes(&mut seed);
    let mut mqtt = MqttSession::new(setup.session.clone(), u64::from_le_bytes(seed));
    let mut buf = vec![0u8; 16 * 1024];
    let mut core_closed = false;
    loop {
        let deadline = mqtt.poll_timeout().map(clock::to_tokio);
        tokio::select! {
            read = stream.read(&mut buf) => match (read, frames.as_mut()) {
                (Ok(0) | Err(_), _) => mqtt.handle_lost(),
                (Ok(n), None) => mqtt.handle_received(clock::now(), &buf[..n]),
                (Ok(n), Some(f)) => match f.decode(&buf[..n]) {
                    Ok(data) => data.iter().for_each(|d| mqtt.handle_received(clock::now(), d)),
                    Err(_) => mqtt.handle_lost(),
                },
            },
            () = signal.ready.notified() => {
                let taken = outbox.take(clock::now());
                if let Some(bytes) = taken.bytes {
                    outbox.written(clock::now(), bytes.len());
                    mqtt.handle_nats(clock::now(), &bytes);
                }
                core_closed = taken.closed.is_some();
            }
            () = signal.kill.notified() => return,
            () = async { if let Some(at) = deadline { tokio::time::sleep_until(at).await } }, if deadline.is_some() => {
                mqtt.handle_timeout(clock::now());
            }
        }
        // What the session owes the core goes first (the will included).
        while let Some(nats) = mqtt.take_to_server() {
            if core_closed {
                break;
            }
            let _ = session.handle_received_all(clock::now(), nats, &mut Locked(&shared));
        }
        let batch = match frames.as_mut() {
            None => mqtt.take_to_client().into_iter().collect(),
            Some(f) => f.encode(mqtt.take_to_client()),
        };
        if !batch.is_empty() {
            let write = tokio::time::timeout(shared.write_deadline, write_batch(&mut stream, &batch));
            if !matches!(write.await, Ok(Ok(()))) {
                mqtt.handle_lost();
                while let Some(nats) = mqtt.take_to_server() {
                    let _ = session.handle_received_all(clock::now(), nats, &mut Locked(&shared));
                }
                return shared.closed(conn, CloseReason::WriteError);
            }
        }
        if core_closed || mqtt.closed().is_some() {
            let _ = tokio::time::timeout(Duration::from_secs(2), stream.shutdown()).await;
            return shared.closed(conn, mqtt.closed().unwrap_or(CloseReason::ServerShutdown));
        }
    }
}

async fn write_batch<S: AsyncWrite + Unpin>(stream: &mut S, batch: &[bytes::Bytes]) -> std::io::Result<()> {
    for bytes in batch {
        stream.write_all(bytes).await?;
    }
    Ok(())
}

/// Binds the `mqtt {}` listener, if configured, and records its port.
pub async fn listener(opts: &mut natrix_core::config::ServerOptions) -> Result<Option<(TcpListener, MqttSetup)>, String> {
    if !opts.mqtt.enabled() {
        return Ok(None);
    }
    if let Some(problem) = natrix_core::config::mqtt::first_problem(opts) {
        return Err(problem);
    }
    let tls = match &opts.mqtt.tls {
        Some(t) => Some(Arc::new(crate::tls::setup(t).map_err(|e| format!("mqtt: {e}"))?)),
        None => None,
    };
    if opts.mqtt.host.is_empty() {
        opts.mqtt.host = "0.0.0.0".to_owned();
    }
    let port = match opts.mqtt.port {
        -1 => 0,
        p => u16::try_from(p).unwrap_or(0),
    };
    let addr = if opts.mqtt.host.contains(':') && !opts.mqtt.host.starts_with('[') {
        format!("[{}]:{port}", opts.mqtt.host)
    } else {
        format!("{}:{port}", opts.mqtt.host)
    };
    let listener = TcpListener::bind(&addr).await.map_err(|e| format!("Unable to listen for MQTT connections: {e}"))?;
    opts.mqtt.port = i32::from(listener.local_addr().map_err(|e| e.to_string())?.port());
    // The server name is the core's (the id when none is set): filled in at start.
    let session = Setup::from_options(opts, opts.server_name.as_deref().unwrap_or(""));
    Ok(Some((listener, MqttSetup { session, tls })))
}
