//! The isolation world's reactions: node output, timers, what clients
//! receive (and the checker on every MSG), closes, faults, and the final
//! completeness check.

use bytes::{BufMut, Bytes};
use natrix_core::server::CloseReason;
use natrix_core::{ConnId, Output};

use super::model::Wrong;
use super::{Ev, IsolationMutation, IsolationWorld};
use crate::config::FaultMode;
use crate::wire::{encode, Delivery, ServerOp};

impl IsolationWorld {
    /// Takes everything the node wants done, then rearms its timer.
    pub(super) fn drain_node(&mut self, node: usize) {
        while let Some(out) = self.nodes[node].server.poll_output() {
            match out {
                Output::Transmit { conn, bytes } => self.transmit(node, conn, bytes),
                Output::Close { conn, reason } => self.server_closed(node, conn, reason),
                Output::Log(_) => {}
            }
        }
        self.rearm(node);
    }

    fn rearm(&mut self, node: usize) {
        let Some(at) = self.nodes[node].server.poll_timeout() else {
            return;
        };
        let at = at.max(self.now);
        if self.nodes[node].timer_at.is_some_and(|t| t <= at) {
            return;
        }
        self.nodes[node].timer_at = Some(at);
        self.seq += 1;
        self.queue
            .push(std::cmp::Reverse((at, self.seq, Ev::Timer(node))));
    }

    pub(super) fn timer(&mut self, node: usize) {
        self.nodes[node].timer_at = None;
        if self.nodes[node]
            .server
            .poll_timeout()
            .is_some_and(|at| at <= self.now)
        {
            self.nodes[node].server.handle_timeout(self.now);
        }
        self.drain_node(node);
    }

    fn transmit(&mut self, node: usize, conn: ConnId, bytes: Bytes) {
        let Some(&link) = self.nodes[node].conns.get(&conn) else {
            return;
        };
        let l = &mut self.links[link];
        if !l.open {
            return;
        }
        l.down.put_slice(&bytes);
        self.nodes[node]
            .server
            .handle_written(self.now, conn, bytes.len());
        if !self.links[link].down_busy {
            self.links[link].down_busy = true;
            let latency = self.latency();
            self.schedule(latency, Ev::Down(link));
        }
    }

    /// Nothing in these runs gives a node cause to close a client: no slow
    /// readers, no silent peers, valid credentials.
    fn server_closed(&mut self, node: usize, conn: ConnId, reason: CloseReason) {
        *self
            .report
            .server_closes
            .entry(reason.as_str())
            .or_default() += 1;
        let Some(&link) = self.nodes[node].conns.get(&conn) else {
            return;
        };
        self.fail(
            "no-unexplained-close",
            format!("node {node} closed link {link}: {reason:?}"),
        );
        self.close_link(link, None);
    }

    /// Closes `link` on both ends; `tell` is what the node hears, if it did
    /// not close it itself. What the link was owed is excused.
    pub(super) fn close_link(&mut self, link: usize, tell: Option<CloseReason>) {
        let l = &mut self.links[link];
        if !l.open {
            return;
        }
        l.open = false;
        l.up.clear();
        l.down.clear();
        l.up_ops.clear();
        let (node, conn, client) = (l.node, l.conn, l.client);
        self.nodes[node].conns.remove(&conn);
        if let Some(reason) = tell {
            self.nodes[node]
                .server
                .handle_closed(self.now, conn, reason);
            self.drain_node(node);
        }
        self.report.excused += self.model.closed(link);
        self.clients[client].link = None;
        self.clients[client].ready = false;
        self.note(format!("link {link} closed ({tell:?})"));
    }

    pub(super) fn down(&mut self, link: usize) {
        let l = &mut self.links[link];
        if !l.open || l.down.is_empty() {
            l.down_busy = false;
            return;
        }
        let n = self.rng.chunk_size(l.down.len());
        let l = &mut self.links[link];
        let chunk = l.down.split_to(n);
        l.parser.push(&chunk);
        self.trace.bytes(&chunk);
        loop {
            match self.links[link].parser.next_frame() {
                Ok(Some((op, _))) => self.client_op(link, op),
                Ok(None) => break,
                Err(e) => return self.fail("well-formed-output", format!("link {link}: {e:?}")),
            }
            if !self.links[link].open || self.report.failure.is_some() {
                return;
            }
        }
        if self.links[link].down.is_empty() {
            self.links[link].down_busy = false;
        } else {
            let latency = self.latency();
            self.schedule(latency, Ev::Down(link));
        }
    }

    fn client_op(&mut self, link: usize, op: ServerOp) {
        let client = self.links[link].client;
        match op {
            ServerOp::Msg(d) => {
                self.check_delivery(link, &d);
                self.mutate(link, &d);
                // Every client answers every request it sees, once.
                if let Some(reply) = &d.reply {
                    let reply = String::from_utf8_lossy(reply).into_owned();
                    self.client_publish(link, reply, false);
                }
            }
            ServerOp::Ping => {
                let mut out = bytes::BytesMut::new();
                encode::pong(&mut out);
                self.client_write(link, &out, None);
            }
            ServerOp::Pong => self.clients[client].ready = true,
            ServerOp::Info(_) | ServerOp::Ok => {}
            ServerOp::Err(text) => {
                let text = String::from_utf8_lossy(&text).into_owned();
                // Reloads deny subjects: SUBs and PUBs there are refused, and
                // removed subscriptions are reported, each with an -ERR.
                if self.reloads > 0 && text.starts_with("'Permissions Violation") {
                    return;
                }
                self.fail(
                    "no-unexplained-error",
                    format!("link {link} (client {client}) got -ERR {text}"),
                );
            }
        }
    }

    /// The checker: settles `d` against the model.
    fn check_delivery(&mut self, link: usize, d: &Delivery) {
        self.report.delivered += 1;
        self.deliveries += 1;
        let client = self.links[link].client;
        let account = self.links[link].account;
        let subject = String::from_utf8_lossy(&d.subject).into_owned();
        let id = std::str::from_utf8(&d.payload)
            .ok()
            .and_then(|p| p.strip_prefix('m'))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(u64::MAX);
        let reply = d
            .reply
            .as_ref()
            .map(|r| String::from_utf8_lossy(r).into_owned());
        let wrong = match self.model.delivered(
            &self.plan,
            (link, account),
            (d.sid, id),
            &subject,
            reply.as_deref(),
        ) {
            Ok(()) => return,
            Err(wrong) => wrong,
        };
        let origin = self
            .model
            .publish(id)
            .map_or("nothing published".to_owned(), |p| {
                format!(
                    "published in A{} on {:?} (reply {:?}), which reaches {:?}",
                    p.account, p.subject, p.reply, p.targets
                )
            });
        let detail = format!(
            "client {client} in A{account} (link {link}, sid {}) got {subject:?} (reply {reply:?}) carrying m{id}, {origin}\naccounts:\n{}",
            d.sid,
            self.plan.render()
        );
        let denied = self.model.denied_to(link).iter().any(|p| crate::subject::matches(p, &subject));
        let invariant = match wrong {
            Wrong::DeniedPublish => "reload-permissions",
            _ if denied => "reload-permissions",
            Wrong::OtherAccount => "account-isolation",
            Wrong::NotOwed | Wrong::Unknown => "no-extra-delivery",
            Wrong::Reply => "reply-subject",
        };
        self.fail(invariant, detail);
    }

    /// [`IsolationMutation::CopyToOtherAccount`]: the chosen delivery also
    /// reaches a subscription of a client in another account.
    fn mutate(&mut self, link: usize, d: &Delivery) {
        let IsolationMutation::CopyToOtherAccount { nth } = self.cfg.mutation else {
            return;
        };
        if self.deliveries != nth + 1 {
            return;
        }
        let account = self.links[link].account;
        let victim = (0..self.links.len()).find(|&l| {
            let c = &self.clients[self.links[l].client];
            self.links[l].open && self.links[l].account != account && !c.patterns.is_empty()
        });
        if let Some(victim) = victim {
            let copy = Delivery {
                sid: 0,
                ..d.clone()
            };
            self.check_delivery(victim, &copy);
        }
    }

    pub(super) fn fault(&mut self) {
        if self.draining {
            return;
        }
        self.report.faults += 1;
        if self.cfg.faults == FaultMode::All && self.rng.ratio(1, 5) {
            let node = self.rng.index(self.nodes.len());
            self.crash(node);
        } else {
            let open: Vec<usize> = (0..self.links.len())
                .filter(|&l| self.links[l].open)
                .collect();
            if !open.is_empty() {
                let link = open[self.rng.index(open.len())];
                self.close_link(link, Some(CloseReason::ReadError));
            }
        }
        self.schedule_within(100, 800, Ev::Fault);
    }

    /// The operator narrows one user's permissions in the config file and
    /// reloads it on every node. The model learns at once what each node
    /// did: the user's connections lose the subscriptions it now refuses,
    /// and are owed nothing it denies from now on.
    pub(super) fn reload(&mut self) {
        if self.draining {
            return;
        }
        let account = self.rng.index(self.plan.accounts);
        let user = super::plan::Plan::user(account, self.rng.index(self.plan.users_per_account));
        let subject = self.subjects[self.rng.index(self.subjects.len())].clone();
        let deny = super::pattern_of(&subject, &mut self.rng);
        let denied = {
            let list = self.denied.entry(user.clone()).or_default();
            list.push(deny.clone());
            list.clone()
        };
        for u in &mut self.opts.authorization.users {
            if let Some(d) = self.denied.get(&u.user) {
                u.permissions = Some(super::deny_permissions(d));
            }
        }
        self.reloads += 1;
        self.note(format!("reload {}: {user} may no longer publish or receive {deny:?}", self.reloads));
        let perms = natrix_core::auth::ClientPermissions::new(&super::deny_permissions(&denied));
        for node in 0..self.nodes.len() {
            if self.cfg.mutation != IsolationMutation::IgnoreReload {
                let (now, wall) = (self.now, self.wall());
                if let Err(e) = self.nodes[node].server.reload(now, wall, self.opts.clone()) {
                    return self.fail("reload-accepted", format!("node {node} refused the reload: {e}"));
                }
            }
            let links: Vec<usize> = self.nodes[node]
                .conns
                .values()
                .copied()
                .filter(|&l| self.links[l].user.as_deref() == Some(user.as_str()))
                .collect();
            for link in links {
                self.model.narrowed(link, denied.clone(), |pattern| !perms.can_subscribe(pattern.as_bytes(), None));
            }
            self.drain_node(node);
        }
        self.schedule_within(200, 1_500, Ev::Reload);
    }

    /// The node restarts empty: its clients lost their connections.
    fn crash(&mut self, node: usize) {
        let links: Vec<usize> = self.nodes[node].conns.values().copied().collect();
        for link in links {
            self.close_link(link, None);
        }
        self.nodes[node].server = self.new_server();
        self.nodes[node].conns.clear();
        self.nodes[node].timer_at = None;
        self.note(format!("node {node} crashed and restarted"));
        self.drain_node(node);
    }

    /// After the drain, every delivery owed to a connection still up must
    /// have arrived.
    pub(super) fn final_checks(&mut self) {
        let lost = self
            .model
            .outstanding()
            .find(|&(link, ..)| self.links[link].open)
            .map(|(link, sid, id, subject)| (link, sid, id, subject.to_owned()));
        if let Some((link, sid, id, subject)) = lost {
            let client = self.links[link].client;
            self.fail(
                "no-lost-message",
                format!(
                    "client {client} in A{} (link {link}, sid {sid}) never got m{id} as {subject:?}\naccounts:\n{}",
                    self.links[link].account,
                    self.plan.render()
                ),
            );
        }
    }
}
