//! `natrix-bench`: a load generator for any NATS server, in the spirit of
//! `nats bench`, that also checks every message it receives.
//!
//! It speaks the client protocol itself over `std::net` with one thread per
//! connection, so what it measures is the server, not a client library.
//! Run `natrix-bench --help` for the modes and options.

mod core_modes;
mod js;
mod js_push;
mod mem;
mod mqtt;
mod opts;
mod payload;
mod report;
mod tracker;
mod wire;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use core_modes::Ctx;
use opts::Mode;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{}", opts::USAGE);
        return;
    }
    let opts = match opts::parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("natrix-bench: {e}\n\n{}", opts::USAGE);
            std::process::exit(64);
        }
    };
    if let Err(e) = run(opts) {
        eprintln!("\nFAIL: {e}");
        std::process::exit(1);
    }
}

fn run(opts: opts::Opts) -> Result<(), String> {
    let progress = Arc::new(report::Progress::default());
    report::spawn_watchdog(opts.timeout, progress.clone());
    let ctx = Arc::new(Ctx {
        addr: wire::socket_addr(&opts.url),
        opts,
        progress: progress.clone(),
        drain: AtomicBool::new(false),
    });
    let o = &ctx.opts;
    if matches!(o.mode, Mode::Conns | Mode::Subs) {
        return mem::run(&ctx);
    }
    println!(
        "natrix-bench {} against {}: {} msgs of {} B, {} pubs, {} subs",
        o.mode.name(),
        ctx.addr,
        o.msgs,
        o.size,
        o.pubs,
        o.subs
    );
    let shown = report::spawn_progress(progress.clone(), o.msgs, o.quiet);
    let (pubs, subs) = (o.pubs, o.subs);
    let result = match o.mode {
        Mode::Pub | Mode::PubSub | Mode::Queue | Mode::MqttQos0 | Mode::MqttQos1 => core_modes::run_pubsub(ctx.clone()),
        Mode::ReqRep => core_modes::run_reqrep(ctx.clone()),
        Mode::JsPub => js::run_js_pub(ctx.clone()),
        Mode::JsPull => js::run_js_pull(ctx.clone()),
        Mode::JsPush => js_push::run_js_push(ctx.clone()),
        Mode::Conns | Mode::Subs => unreachable!("handled above"),
    };
    progress.done.store(true, Ordering::SeqCst);
    if let Some(h) = shown {
        let _ = h.join();
    }
    let subs = if matches!(o.mode, Mode::Pub | Mode::JsPub) {
        0
    } else {
        subs
    };
    result?.print(pubs, subs);
    Ok(())
}
