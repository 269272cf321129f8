//! Server memory per idle connection and per subscription: read the
//! server's resident set size (`VmRSS` in `/proc/<pid>/status`), open
//! `--count` connections or subscriptions, let the server settle, read it
//! again.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::core_modes::{connect, Ctx};
use crate::opts::Mode;
use crate::wire::Conn;

/// How long the server gets to settle before a reading.
const SETTLE: Duration = Duration::from_millis(500);

/// Reads `VmRSS` of `pid` in KiB.
pub fn rss_kib(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("{path}: no VmRSS line"))
}

/// Runs `conns` or `subs` and prints the JSON line.
pub fn run(ctx: &Ctx) -> Result<(), String> {
    let o = &ctx.opts;
    let pid = o
        .pid
        .ok_or("--pid is required to read the server's memory")?;
    // A first connection warms up whatever the server allocates once.
    let mut first = connect(ctx)?;
    thread::sleep(SETTLE);
    let before = rss_kib(pid)?;
    let started = Instant::now();
    let held: Vec<Conn> = match o.mode {
        Mode::Conns => open_conns(ctx)?,
        _ => {
            open_subs(&mut first, o.count)?;
            Vec::new()
        }
    };
    let open_seconds = started.elapsed().as_secs_f64();
    thread::sleep(SETTLE);
    let after = rss_kib(pid)?;
    let per = (after as f64 - before as f64) * 1024.0 / o.count as f64;
    let what = if o.mode == Mode::Conns {
        "connection"
    } else {
        "subscription"
    };
    println!(
        "{}: {} {what}s: server VmRSS {before} KiB -> {after} KiB, {per:.0} bytes per {what}, opened in {open_seconds:.1} s",
        o.mode.name(),
        o.count
    );
    let j = json!({
        "mode": o.mode.name(),
        "count": o.count,
        "subs_per_conn": o.per_conn,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "bytes_per_item": per.round(),
        "open_seconds": (open_seconds * 1000.0).round() / 1000.0,
    });
    println!("{j}");
    thread::sleep(o.hold);
    drop(held);
    first.close();
    Ok(())
}

/// Opens the connections, each with `--per-conn` subscriptions of its own
/// on distinct literal subjects.
fn open_conns(ctx: &Ctx) -> Result<Vec<Conn>, String> {
    let per_conn = ctx.opts.per_conn;
    (0..ctx.opts.count)
        .map(|c| {
            let mut conn = connect(ctx)?;
            if per_conn > 0 {
                for i in 0..per_conn {
                    conn.sub(&format!("natrix.bench.mem.{c}.{i}"), None, i + 1).map_err(|e| e.to_string())?;
                }
                conn.wait_pong().map_err(|e| e.to_string())?;
            }
            Ok(conn)
        })
        .collect()
}

/// Distinct literal subjects, like a service with many interests; one
/// PING/PONG every thousand keeps the socket buffers small.
fn open_subs(conn: &mut Conn, count: u64) -> Result<(), String> {
    for i in 0..count {
        conn.sub(&format!("natrix.bench.mem.{i}"), None, i + 1)
            .map_err(|e| e.to_string())?;
        if i % 1000 == 999 {
            conn.wait_pong().map_err(|e| e.to_string())?;
        }
    }
    conn.wait_pong().map_err(|e| e.to_string())
}
