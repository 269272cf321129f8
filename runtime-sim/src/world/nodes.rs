//! The nodes: starting, crashing and restarting them, their timers and
//! disks, and carrying out what their servers output.

use std::time::Duration;

use bytes::Bytes;
use natrix_core::server::{CloseReason, DRAIN_GRACE};
use natrix_core::storage::Storage;
use natrix_core::{ConnId, Output, Server};

use crate::model::{LinkId, Violation};
use crate::net::{Dir, LinkState};

use super::{Ev, World, FLUSH_DEADLINE};

/// The process figures a simulated node reports (STATSZ, VARZ, the memory
/// limit): fixed, so a seed replays the same.
const SIM_PROCESS: natrix_core::monitor::ProcessStats =
    natrix_core::monitor::ProcessStats { rss_bytes: 64 << 20, cpu_percent: 0.0, cores: 1 };

impl World {
    pub(super) fn start_node(&mut self, node: usize) {
        let now = self.now;
        let n = &mut self.nodes[node];
        if n.server.is_some() {
            return;
        }
        n.incarnation += 1;
        n.timer_at = None;
        n.conns.clear();
        let wall = n.wall.read(now);
        let seed = n.rng.seed32();
        // JetStream on, on the node's disk: what the last incarnation left
        // there is recovered now.
        let disk: Box<dyn Storage + Send> = Box::new(n.disk.clone());
        let mut server = Server::with_storages(self.options.clone(), seed, now, wall, None, Some(disk));
        // What only a real process can measure comes in as fixed figures.
        server.handle_process_stats(now, SIM_PROCESS);
        n.server = Some(server);
        self.recorder.push(
            now,
            format!("node {node} started (incarnation {})", n.incarnation),
        );
        self.drain_node(node);
    }

    pub(super) fn crash_node(&mut self, node: usize) {
        if self.nodes[node].server.take().is_none() {
            return;
        }
        let links: Vec<LinkId> = self.nodes[node].conns.values().copied().collect();
        self.nodes[node].conns.clear();
        for link in links {
            self.close_link(link, None);
        }
        self.nodes[node].disk.lock().crash();
        self.model.node_reset(node);
        let after = self
            .fault_rng
            .duration(Duration::from_millis(200), Duration::from_secs(2));
        self.schedule(after, Ev::NodeRestart { node });
    }

    pub(super) fn node_timer(&mut self, node: usize) {
        let now = self.now;
        let n = &mut self.nodes[node];
        if n.timer_at.is_some_and(|t| t <= now) {
            n.timer_at = None;
        }
        let Some(server) = n.server.as_mut() else {
            return;
        };
        if server.poll_timeout().is_some_and(|t| t <= now) {
            server.handle_timeout(now);
            self.drain_node(node);
        }
    }

    pub(super) fn disk_sync(&mut self, node: usize) {
        let now = self.now;
        let done = self.nodes[node].disk.lock().complete_due(now);
        for token in &done {
            self.hash.u64(token.0);
        }
        if let (false, Some(server)) = (done.is_empty(), self.nodes[node].server.as_mut()) {
            server.handle_jetstream_synced(now, &done);
            self.drain_node(node);
        } else {
            self.rearm_disk(node);
        }
    }

    /// Carries out everything the node's server asked for, then rearms its timer.
    pub(super) fn drain_node(&mut self, node: usize) {
        loop {
            let Some(server) = self.nodes[node].server.as_mut() else {
                return;
            };
            let Some(out) = server.poll_output() else {
                break;
            };
            match out {
                Output::Transmit { conn, bytes } => self.transmit(node, conn, bytes),
                Output::Close { conn, reason } => self.server_close(node, conn, reason),
                Output::Log(line) => {
                    let text = format!("node {node} log {line}");
                    self.recorder.push(self.now, text);
                }
            }
        }
        self.rearm_timer(node);
        self.rearm_disk(node);
    }

    pub(super) fn rearm_timer(&mut self, node: usize) {
        let now = self.now;
        let n = &mut self.nodes[node];
        let Some(t) = n.server.as_ref().and_then(Server::poll_timeout) else {
            return;
        };
        let t = t.max(now);
        if n.timer_at.is_none_or(|at| t < at) {
            n.timer_at = Some(t);
            self.schedule_at(t, Ev::NodeTimer { node });
        }
    }

    pub(super) fn rearm_disk(&mut self, node: usize) {
        let due = self.nodes[node].disk.lock().next_sync_due();
        if let Some(due) = due {
            self.schedule_at(due.max(self.now), Ev::DiskSync { node });
        }
    }

    pub(super) fn link_of(&mut self, node: usize, conn: ConnId, what: &str) -> Option<LinkId> {
        let link = self.nodes[node].conns.get(&conn).copied();
        if link.is_none() {
            let d = format!("node {node} sent {what} for {conn}, which is closed or unknown");
            self.fail(Violation {
                invariant: "no-output-after-close",
                detail: d,
            });
        }
        link
    }

    pub(super) fn transmit(&mut self, node: usize, conn: ConnId, bytes: Bytes) {
        let Some(link) = self.link_of(node, conn, "Transmit") else {
            return;
        };
        // The server's output, byte for byte: replays must agree on content.
        self.hash.data(&bytes);
        // A receiver that drains may run past `max_pending` while its
        // producers pause, up to twice it; one that does not is cut past it.
        let max_pending = self.options.max_pending_bytes;
        let l = &mut self.links[link];
        if l.server_pending > 2 * max_pending {
            let d = format!(
                "{conn} had {} bytes pending (twice max_pending {max_pending}) and got {} more",
                l.server_pending,
                bytes.len()
            );
            self.fail(Violation {
                invariant: "max-pending",
                detail: d,
            });
            return;
        }
        if l.server_pending == 0 {
            l.progress_at = self.now;
        }
        l.server_pending += bytes.len() as u64;
        l.down.queued.extend_from_slice(&bytes);
        self.kick(link, Dir::Down);
        self.check_memory(node);
    }

    pub(super) fn check_memory(&mut self, node: usize) {
        let per_conn =
            2 * self.options.max_pending_bytes + u64::from(self.options.max_payload_bytes) + 4096;
        let conns = self.nodes[node].conns.len() as u64;
        let total: u64 = self.nodes[node]
            .conns
            .values()
            .map(|&l| self.links[l].server_pending)
            .sum();
        if total > conns * per_conn {
            let d = format!("node {node} holds {total} outbound bytes for {conns} connections");
            self.fail(Violation {
                invariant: "memory-bounded",
                detail: d,
            });
        }
    }

    pub(super) fn server_close(&mut self, node: usize, conn: ConnId, reason: CloseReason) {
        let Some(link) = self.link_of(node, conn, "Close") else {
            return;
        };
        self.nodes[node].conns.remove(&conn);
        if let Err(why) = self.close_justified(link, reason) {
            let d = format!("node {node} closed {conn} ({reason}) but {why}");
            self.fail(Violation {
                invariant: "no-unexplained-close",
                detail: d,
            });
            return;
        }
        *self.server_closes.entry(reason.as_str()).or_default() += 1;
        self.links[link].state = LinkState::Flushing;
        self.recorder.push(
            self.now,
            format!("node {node} closes link {link} ({reason})"),
        );
        match &mut self.deferred_ends {
            Some(later) => later.push((node, link)),
            None => self.model.link_ended(node, link),
        }
        self.schedule(FLUSH_DEADLINE, Ev::FlushDeadline { link });
        self.maybe_finish(link);
    }

    /// Checks a server-initiated close against what the simulator saw: slow
    /// consumers must really be over `max_pending` and not draining (no
    /// write progress for [`DRAIN_GRACE`]; a healthy receiver is never cut
    /// while its producers can be paused), or over twice `max_pending`, or
    /// stalled past `write_deadline`; a stale connection or an auth timeout
    /// needs a fault.
    pub(super) fn close_justified(&self, link: LinkId, reason: CloseReason) -> Result<(), String> {
        let l = &self.links[link];
        let (pending, max) = (l.server_pending, self.options.max_pending_bytes);
        match reason {
            CloseReason::SlowConsumerPendingBytes => pending_bytes_cut_justified(pending, max, self.now - l.progress_at),
            CloseReason::SlowConsumerWriteDeadline => {
                let stalled = self.now - l.progress_at;
                if pending > 0 && stalled >= self.options.write_deadline {
                    Ok(())
                } else {
                    Err(format!(
                        "{pending} bytes pending, last write progress {stalled:?} ago"
                    ))
                }
            }
            CloseReason::StaleConnection | CloseReason::AuthenticationTimeout if l.faulted => {
                Ok(())
            }
            _ => Err(format!(
                "no fault explains it (link faulted: {})",
                l.faulted
            )),
        }
    }
}

/// A cut for pending bytes is justified when the receiver is past
/// `max_pending` and has not drained (written anything) for
/// [`DRAIN_GRACE`], or is past twice `max_pending` whatever it does: a
/// receiver that drains is never cut while its producers can be paused.
fn pending_bytes_cut_justified(pending: u64, max: u64, idle: Duration) -> Result<(), String> {
    if pending > 2 * max || (pending > max && idle >= DRAIN_GRACE) {
        return Ok(());
    }
    if pending > max {
        return Err(format!(
            "{pending} bytes were pending (max_pending {max}) but the receiver wrote {idle:?} ago: it was draining"
        ));
    }
    Err(format!("only {pending} bytes were pending (max_pending {max})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draining_receiver_may_not_be_cut_for_pending_bytes() {
        let ms = Duration::from_millis;
        assert!(pending_bytes_cut_justified(1000, 1000, ms(500)).is_err(), "not past max_pending");
        assert!(pending_bytes_cut_justified(1001, 1000, DRAIN_GRACE).is_ok(), "past it, not draining");
        let draining = pending_bytes_cut_justified(1500, 1000, DRAIN_GRACE - ms(1));
        assert!(draining.unwrap_err().contains("draining"));
        assert!(pending_bytes_cut_justified(2001, 1000, ms(0)).is_ok(), "past twice max_pending");
    }
}
