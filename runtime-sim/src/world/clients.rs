//! The clients: connecting, their ticks and reads, what they send, and
//! the mutations the checker self-tests inject.

use std::net::SocketAddr;
use std::time::Duration;

use crate::client::{Observed, Outbox, TickAction};
use crate::config::Mutation;
use crate::model::{LinkId, Violation};
use crate::net::{Dir, Link, LinkState, Pipe};
use crate::wire::{ServerOp, ServerParser};

use super::{Ev, World};

impl World {
    pub(super) fn connect(&mut self, client: usize) {
        let slot = &self.clients[client];
        if slot.link.is_some() {
            return;
        }
        let node = slot.client.home;
        let now = self.now;
        let wall = self.nodes[node].wall.read(now);
        let Some(server) = self.nodes[node].server.as_mut() else {
            // Connection refused: try again later.
            let after = self.clients[client].client.reconnect_delay();
            self.schedule(after, Ev::ClientConnect { client });
            return;
        };
        let slot = &mut self.clients[client];
        slot.generation += 1;
        let port = 20_000 + (slot.generation % 40_000) as u16;
        let peer = SocketAddr::from((
            [10, 0, (client / 250) as u8, (client % 250) as u8 + 1],
            port,
        ));
        let conn = server.handle_connected(now, wall, peer);
        let link = self.links.len();
        self.recorder.push(
            now,
            format!("client {client} connects to node {node}: link {link}, {conn}"),
        );
        let latency = self
            .net_rng
            .duration(Duration::from_micros(20), Duration::from_millis(2));
        let window = self.net_rng.range(64 * 1024, 512 * 1024) as usize;
        let n = &self.nodes[node];
        self.links.push(Link {
            node,
            node_inc: n.incarnation,
            conn,
            client,
            up: Pipe::new(1 << 20),
            down: Pipe::new(window),
            state: LinkState::Open,
            latency,
            ns_per_byte: 1,
            slow_extra: Duration::ZERO,
            faulted: false,
            server_pending: 0,
            progress_at: now,
            read_paused_until: now,
            up_sent: 0,
            up_delivered: 0,
            ops: Default::default(),
        });
        if self.nodes[node].conns.insert(conn, link).is_some() {
            let d = format!("node {node} reused {conn} for a new connection");
            self.fail(Violation {
                invariant: "unique-conn-id",
                detail: d,
            });
        }
        self.links[link].faulted = self.blocked(link, Dir::Up) || self.blocked(link, Dir::Down);
        let slot = &mut self.clients[client];
        slot.link = Some(link);
        slot.reading = true;
        slot.parser = ServerParser::new();
        slot.rx.clear();
        slot.client.reset_session();
        self.drain_node(node);
    }

    pub(super) fn client_lost(&mut self, client: usize, link: LinkId) {
        let slot = &mut self.clients[client];
        if slot.link != Some(link) {
            return;
        }
        slot.link = None;
        slot.rx.clear();
        let after = slot.client.reconnect_delay();
        self.schedule(after, Ev::ClientConnect { client });
    }

    pub(super) fn client_tick(&mut self, client: usize, generation: u64) {
        let slot = &mut self.clients[client];
        if slot.generation != generation || slot.link.is_none() {
            return;
        }
        let mut out = Outbox::default();
        match slot.client.tick(&mut out, self.draining) {
            TickAction::Again(after) => self.schedule(after, Ev::ClientTick { client, generation }),
            TickAction::Idle => {}
            TickAction::Disconnect => return self.disconnect(client),
        }
        self.client_send(client, out);
    }

    /// The client closes its connection gracefully and reconnects later.
    pub(super) fn disconnect(&mut self, client: usize) {
        let slot = &mut self.clients[client];
        let Some(link) = slot.link.take() else { return };
        slot.rx.clear();
        let after = slot.client.reconnect_delay();
        self.schedule(after, Ev::ClientConnect { client });
        let l = &mut self.links[link];
        if l.state == LinkState::Open {
            l.state = LinkState::ClientFin;
        }
        // Unread bytes are discarded with the socket.
        l.down.in_flight = l.down.net.iter().map(|(_, c)| c.len()).sum();
        self.maybe_finish(link);
    }

    pub(super) fn client_send(&mut self, client: usize, out: Outbox) {
        let Some(link) = self.clients[client].link else {
            return;
        };
        if out.buf.is_empty() {
            return;
        }
        let l = &mut self.links[link];
        if l.state != LinkState::Open {
            return;
        }
        let base = l.up_sent;
        l.ops
            .extend(out.ops.into_iter().map(|(end, op)| (base + end as u64, op)));
        l.up_sent += out.buf.len() as u64;
        l.up.queued.extend_from_slice(&out.buf);
        self.kick(link, Dir::Up);
    }

    /// The client reads everything that arrived and acts on it.
    pub(super) fn client_read(&mut self, client: usize) {
        let Some(link) = self.clients[client].link else {
            return;
        };
        let chunks = std::mem::take(&mut self.clients[client].rx);
        let mut out = Outbox::default();
        for chunk in chunks {
            let pipe = &mut self.links[link].down;
            pipe.in_flight = pipe
                .in_flight
                .checked_sub(chunk.len())
                .expect("a chunk the client reads was counted in flight");
            self.clients[client].parser.push(&chunk);
            loop {
                let frame = self.clients[client].parser.next_frame();
                let op = match frame {
                    Ok(Some((op, _raw))) => op,
                    Ok(None) => break,
                    Err(e) => {
                        let d = format!("client {client} on link {link}: {}", e.0);
                        return self.fail(Violation {
                            invariant: "well-formed-output",
                            detail: d,
                        });
                    }
                };
                for (target, op) in self.mutate(client, link, op) {
                    if target == client {
                        self.client_op(target, op, &mut out);
                    } else {
                        let mut other = Outbox::default();
                        self.client_op(target, op, &mut other);
                        self.client_send(target, other);
                    }
                    if self.failure.is_some() {
                        return;
                    }
                }
            }
        }
        self.client_send(client, out);
        self.kick(link, Dir::Down);
        self.maybe_finish(link);
    }

    pub(super) fn client_op(&mut self, client: usize, op: ServerOp, out: &mut Outbox) {
        let Some(link) = self.clients[client].link else {
            return;
        };
        let was_started = self.clients[client].client.session_started;
        let observed = self.clients[client].client.receive(op, out);
        if !was_started && self.clients[client].client.session_started {
            let generation = self.clients[client].generation;
            let after = self.clients[client].client.first_tick();
            self.schedule(after, Ev::ClientTick { client, generation });
        }
        match observed {
            Err(v) => self.fail(v),
            Ok(None) => {}
            Ok(Some(Observed::Delivery { sid, key, reply_to })) => {
                self.delivered_msgs += 1;
                let r = self.model.delivered(link, sid, key);
                self.check(r);
                if let Some(req) = reply_to {
                    self.model.replied(req);
                }
            }
            Ok(Some(Observed::NoResponders(req))) => {
                let r = self.model.no_responders(req);
                self.check(r);
            }
            Ok(Some(Observed::ServerError(text))) => {
                if !self.links[link].faulted {
                    let d = format!("client {client} on healthy link {link} got -ERR {text}");
                    self.fail(Violation {
                        invariant: "no-unexplained-error",
                        detail: d,
                    });
                }
            }
        }
    }

    // ---- mutations (checker self-tests) ------------------------------------

    /// Applies the configured mutation to one delivered operation: returns
    /// the operations to hand to clients in its place.
    pub(super) fn mutate(
        &mut self,
        client: usize,
        link: LinkId,
        op: ServerOp,
    ) -> Vec<(usize, ServerOp)> {
        let ServerOp::Msg(d) = &op else {
            return vec![(client, op)];
        };
        let n = self.delivered_msgs;
        match self.cfg.mutation {
            Mutation::None => vec![(client, op)],
            Mutation::DropMessage { nth } if n == nth => {
                self.delivered_msgs += 1;
                Vec::new()
            }
            Mutation::DuplicateMessage { nth } if n == nth => {
                vec![(client, op.clone()), (client, op)]
            }
            Mutation::QueueDoubleDelivery { nth } if n >= nth => {
                match self.model.other_queue_member(link, d.sid) {
                    Some((other_link, other_sid))
                        if self.clients[self.links[other_link].client].link == Some(other_link) =>
                    {
                        self.cfg.mutation = Mutation::None;
                        let mut copy = d.clone();
                        copy.sid = other_sid;
                        vec![
                            (client, op),
                            (self.links[other_link].client, ServerOp::Msg(copy)),
                        ]
                    }
                    _ => vec![(client, op)],
                }
            }
            _ => vec![(client, op)],
        }
    }
}
