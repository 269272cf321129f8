//! The network: links between clients and nodes, their pipes in both
//! directions, and what arrives at each end.

use std::time::Duration;

use bytes::Bytes;
use natrix_core::server::CloseReason;

use crate::model::{LinkId, ModelOp};
use crate::net::{Dir, LinkState, Pipe};

use super::{Ev, World};

impl World {
    pub(super) fn pipe(&mut self, link: LinkId, dir: Dir) -> &mut Pipe {
        let l = &mut self.links[link];
        match dir {
            Dir::Up => &mut l.up,
            Dir::Down => &mut l.down,
        }
    }

    /// Makes sure a pump will move `dir`'s queued bytes.
    pub(super) fn kick(&mut self, link: LinkId, dir: Dir) {
        let p = self.pipe(link, dir);
        if p.pump_scheduled || p.queued.is_empty() || p.in_flight >= p.window {
            return;
        }
        p.pump_scheduled = true;
        self.schedule(Duration::ZERO, Ev::Pump { link, dir });
    }

    pub(super) fn blocked(&self, link: LinkId, dir: Dir) -> bool {
        let l = &self.links[link];
        self.partitions.iter().flatten().any(|p| {
            p.node == l.node
                && p.clients.contains(&l.client)
                && if dir == Dir::Up { p.up } else { p.down }
        })
    }

    pub(super) fn pump(&mut self, link: LinkId, dir: Dir) {
        if self.links[link].state == LinkState::Closed {
            return;
        }
        let latency = self.links[link].latency + self.links[link].slow_extra;
        let jitter = self.net_rng.duration(Duration::ZERO, latency / 4);
        let l = &mut self.links[link];
        let ns_per_byte = l.ns_per_byte;
        let p = match dir {
            Dir::Up => &mut l.up,
            Dir::Down => &mut l.down,
        };
        p.pump_scheduled = false;
        let room = p.window.saturating_sub(p.in_flight).min(p.queued.len());
        if room == 0 {
            return;
        }
        let n = self.net_rng.chunk_size(room);
        let chunk = p.queued.split_to(n).freeze();
        p.in_flight += n;
        let due = (self.now + latency + jitter).max(p.last_due);
        p.last_due = due;
        p.net.push_back((due, chunk));
        let more = !p.queued.is_empty() && p.in_flight < p.window;
        if more {
            p.pump_scheduled = true;
        }
        self.schedule_at(due, Ev::Deliver { link, dir });
        if more {
            self.schedule(
                Duration::from_nanos(n as u64 * ns_per_byte),
                Ev::Pump { link, dir },
            );
        }
        if dir == Dir::Down {
            self.written(link, n);
        }
    }

    /// The server's bytes entered the network: report them written.
    pub(super) fn written(&mut self, link: LinkId, n: usize) {
        let l = &mut self.links[link];
        l.server_pending = l.server_pending.saturating_sub(n as u64);
        l.progress_at = self.now;
        let (node, inc, conn, state) = (l.node, l.node_inc, l.conn, l.state);
        if state != LinkState::Open && state != LinkState::ClientFin {
            return;
        }
        let now = self.now;
        let nd = &mut self.nodes[node];
        if nd.incarnation != inc {
            return;
        }
        if let Some(server) = nd.server.as_mut() {
            server.handle_written(now, conn, n);
            self.drain_node(node);
        }
    }

    pub(super) fn deliver(&mut self, link: LinkId, dir: Dir) {
        loop {
            if self.links[link].state == LinkState::Closed
                || self.blocked(link, dir)
                || self.failure.is_some()
            {
                return;
            }
            let now = self.now;
            if dir == Dir::Up && self.links[link].read_paused_until > now {
                return;
            }
            let p = self.pipe(link, dir);
            if p.net.front().is_none_or(|(due, _)| *due > now) {
                return;
            }
            let (_, chunk) = p.net.pop_front().expect("checked");
            self.hash.u64(chunk.len() as u64);
            match dir {
                Dir::Up => self.arrive_at_server(link, chunk),
                Dir::Down => self.arrive_at_client(link, chunk),
            }
        }
    }

    pub(super) fn arrive_at_server(&mut self, link: LinkId, chunk: Bytes) {
        let l = &mut self.links[link];
        l.up.in_flight -= chunk.len();
        l.up_delivered += chunk.len() as u64;
        let (node, inc, conn, state, client) = (l.node, l.node_inc, l.conn, l.state, l.client);
        if matches!(state, LinkState::Open | LinkState::ClientFin)
            && self.nodes[node].incarnation == inc
        {
            let now = self.now;
            if let Some(server) = self.nodes[node].server.as_mut() {
                let mut rest = chunk;
                if let Some(pause) = server.handle_received_paced(now, conn, &mut rest) {
                    // Backpressure: the server reads nothing more from this
                    // client for a while; the rest of the chunk and what
                    // follows it wait in the network.
                    let l = &mut self.links[link];
                    l.read_paused_until = now + pause;
                    if !rest.is_empty() {
                        l.up.in_flight += rest.len();
                        l.up_delivered -= rest.len() as u64;
                        l.up.net.push_front((now, rest));
                    }
                    self.schedule(pause, Ev::Deliver { link, dir: Dir::Up });
                }
                // Outputs first: if the server closed this very connection
                // while processing the chunk, the chunk's operations may or
                // may not have taken effect.
                // Outputs first, holding back what server-side closes mean
                // for the model: they may have happened before or after any
                // operation of the chunk. Ops are applied with every
                // connection still live (deliveries a closed one misses are
                // excused when it closes), then the closes.
                self.deferred_ends = Some(Vec::new());
                self.drain_node(node);
                let closed_mid_batch = self.links[link].state != state;
                self.model.set_uncertain(closed_mid_batch);
                self.apply_ops(node, link, client);
                self.model.set_uncertain(false);
                for (n, l) in self.deferred_ends.take().unwrap_or_default() {
                    self.model.link_ended(n, l);
                }
            }
        }
        self.kick(link, Dir::Up);
        self.maybe_finish(link);
    }

    /// The server has processed everything up to `up_delivered`: so does the model.
    pub(super) fn apply_ops(&mut self, node: usize, link: LinkId, client: usize) {
        loop {
            let l = &mut self.links[link];
            if l.ops.front().is_none_or(|(end, _)| *end > l.up_delivered) {
                return;
            }
            let (_, op) = l.ops.pop_front().expect("checked");
            if !matches!(op, ModelOp::Pub { .. }) {
                self.recorder
                    .push(self.now, format!("node {node} link {link} applied {op:?}"));
            }
            self.model.apply(node, link, client, op);
        }
    }

    pub(super) fn arrive_at_client(&mut self, link: LinkId, chunk: Bytes) {
        let client = self.links[link].client;
        let slot = &mut self.clients[client];
        if slot.link != Some(link) {
            // The client already let go of this connection.
            self.links[link].down.in_flight -= chunk.len();
            self.maybe_finish(link);
            return;
        }
        slot.rx.push(chunk);
        if slot.reading {
            self.client_read(client);
        }
    }

    /// Closes a connection now. `tell_server`: the reason to report to the
    /// server, if it still knows the connection.
    pub(super) fn close_link(&mut self, link: LinkId, tell_server: Option<CloseReason>) {
        let l = &mut self.links[link];
        if l.state == LinkState::Closed {
            return;
        }
        l.state = LinkState::Closed;
        self.recorder.push(
            self.now,
            format!("link {link} closed (server told: {tell_server:?})"),
        );
        let l = &mut self.links[link];
        l.up = Pipe::new(0);
        l.down = Pipe::new(0);
        l.ops.clear();
        let (node, inc, conn, client, latency) = (l.node, l.node_inc, l.conn, l.client, l.latency);
        let now = self.now;
        let nd = &mut self.nodes[node];
        let known = nd.incarnation == inc && nd.conns.remove(&conn).is_some();
        if let (true, Some(reason), Some(server)) = (known, tell_server, nd.server.as_mut()) {
            server.handle_closed(now, conn, reason);
            self.drain_node(node);
        }
        self.model.link_closed(node, link);
        if self.clients[client].link == Some(link) {
            // The socket is gone: bytes the client had not read yet go with
            // it. (The model forgot what this link was owed; a message read
            // from here later would look like one it never was.)
            self.clients[client].rx.clear();
            self.schedule(latency, Ev::ClientLost { client, link });
        }
    }

    /// A flushing or half-closed connection whose bytes are all through closes.
    pub(super) fn maybe_finish(&mut self, link: LinkId) {
        let l = &self.links[link];
        match l.state {
            LinkState::Flushing if l.down.is_idle() => self.close_link(link, None),
            LinkState::ClientFin if l.up.is_idle() => {
                self.close_link(link, Some(CloseReason::ClientClosed))
            }
            _ => {}
        }
    }
}
