//! The faults: partitions, slow and stalled links, clock jumps, full
//! disks, and the drain at the end of a run.

use std::time::Duration;

use natrix_core::server::CloseReason;

use crate::config::FaultMode;
use crate::model::LinkId;
use crate::net::{Dir, LinkState};

use super::{Ev, Partition, World};

impl World {
    pub(super) fn open_links(&self) -> Vec<LinkId> {
        (0..self.links.len())
            .filter(|&l| self.links[l].state == LinkState::Open)
            .collect()
    }

    pub(super) fn inject_fault(&mut self) {
        if self.draining {
            return;
        }
        self.faults += 1;
        let all = self.cfg.faults == FaultMode::All;
        let kinds = if all { 8 } else { 4 };
        let kind = self.fault_rng.below(kinds);
        let open = self.open_links();
        let pick = (!open.is_empty()).then(|| open[self.fault_rng.index(open.len())]);
        match (kind, pick) {
            (0, Some(link)) => {
                self.links[link].faulted = true;
                self.recorder
                    .push(self.now, format!("fault: reset link {link}"));
                self.close_link(link, Some(CloseReason::ReadError));
            }
            (1, _) => self.partition(),
            (2, Some(link)) => self.slow_link(link),
            (3, Some(link)) => self.stop_reading(link),
            (4, _) => {
                let node = self.fault_rng.index(self.nodes.len());
                self.recorder
                    .push(self.now, format!("fault: crash node {node}"));
                self.crash_node(node);
            }
            (5, _) => self.clock_jump(),
            (6, _) => self.disk_full(),
            _ => {}
        }
        let after = self
            .fault_rng
            .duration(Duration::from_millis(20), Duration::from_millis(400));
        self.schedule(after, Ev::Fault);
    }

    pub(super) fn partition(&mut self) {
        let node = self.fault_rng.index(self.nodes.len());
        let clients: Vec<usize> = (0..self.clients.len())
            .filter(|_| self.fault_rng.ratio(1, 2))
            .collect();
        let (up, down) = match self.fault_rng.below(3) {
            0 => (true, false),
            1 => (false, true),
            _ => (true, true),
        };
        // Half-closed links too: a partition that holds back a client's
        // last bytes and its FIN leaves the server a link that goes stale.
        for l in &mut self.links {
            if l.state != LinkState::Closed && l.node == node && clients.contains(&l.client) {
                l.faulted = true;
            }
        }
        let id = self.partitions.len();
        let text =
            format!("fault: partition {id} node {node} clients {clients:?} up {up} down {down}");
        self.recorder.push(self.now, text);
        self.partitions.push(Some(Partition {
            node,
            clients,
            up,
            down,
        }));
        let after = self
            .fault_rng
            .duration(Duration::from_millis(50), Duration::from_secs(3));
        self.schedule(after, Ev::HealPartition { id });
    }

    pub(super) fn heal_partition(&mut self, id: usize) {
        if self.partitions[id].take().is_none() {
            return;
        }
        for link in 0..self.links.len() {
            if self.links[link].state != LinkState::Closed {
                self.schedule(Duration::ZERO, Ev::Deliver { link, dir: Dir::Up });
                self.schedule(
                    Duration::ZERO,
                    Ev::Deliver {
                        link,
                        dir: Dir::Down,
                    },
                );
            }
        }
    }

    pub(super) fn slow_link(&mut self, link: LinkId) {
        let extra = self
            .fault_rng
            .duration(Duration::from_millis(10), Duration::from_millis(300));
        let ns_per_byte = self.fault_rng.range(1_000, 100_000);
        let l = &mut self.links[link];
        l.faulted = true;
        l.slow_extra = extra;
        l.ns_per_byte = ns_per_byte;
        self.recorder.push(
            self.now,
            format!("fault: slow link {link} +{extra:?} {ns_per_byte}ns/B"),
        );
        let after = self
            .fault_rng
            .duration(Duration::from_millis(200), Duration::from_secs(5));
        self.schedule(after, Ev::RestoreLink { link });
    }

    pub(super) fn restore_link(&mut self, link: LinkId) {
        let l = &mut self.links[link];
        l.slow_extra = Duration::ZERO;
        l.ns_per_byte = 1;
    }

    pub(super) fn stop_reading(&mut self, link: LinkId) {
        let client = self.links[link].client;
        if self.clients[client].link != Some(link) {
            return;
        }
        self.links[link].faulted = true;
        self.clients[client].reading = false;
        self.recorder.push(
            self.now,
            format!("fault: client {client} stops reading link {link}"),
        );
        let after = self
            .fault_rng
            .duration(Duration::from_millis(200), Duration::from_secs(8));
        self.schedule(after, Ev::ResumeReading { client, link });
    }

    pub(super) fn resume_reading(&mut self, client: usize, link: LinkId) {
        let slot = &mut self.clients[client];
        if slot.link != Some(link) || slot.reading {
            return;
        }
        slot.reading = true;
        self.client_read(client);
    }

    pub(super) fn clock_jump(&mut self) {
        let node = self.fault_rng.index(self.nodes.len());
        let jump = self.fault_rng.range(0, 7_200_000_000_000) as i64 - 3_600_000_000_000;
        self.nodes[node].wall.offset_ns += jump;
        self.recorder.push(
            self.now,
            format!("fault: node {node} wall clock jumps {jump}ns"),
        );
    }

    pub(super) fn disk_full(&mut self) {
        let node = self.fault_rng.index(self.nodes.len());
        let mut disk = self.nodes[node].disk.lock();
        let used = disk.used_bytes();
        disk.set_capacity(used);
        drop(disk);
        let after = self
            .fault_rng
            .duration(Duration::from_millis(100), Duration::from_secs(2));
        self.schedule(after, Ev::RestoreDisk { node });
    }

    /// Stops creating work and faults, heals everything, and lets the
    /// system settle so that the final checks can demand completeness.
    pub(super) fn drain_start(&mut self) {
        self.draining = true;
        for id in 0..self.partitions.len() {
            self.heal_partition(id);
        }
        for link in 0..self.links.len() {
            self.restore_link(link);
        }
        for client in 0..self.clients.len() {
            if let Some(link) = self.clients[client].link {
                self.resume_reading(client, link);
            }
        }
        for node in 0..self.nodes.len() {
            self.start_node(node);
        }
    }
}
