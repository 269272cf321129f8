//! Delivery checks on the receiving side: loss, duplication and order per
//! publisher, for plain subscribers (every message, in order) and for queue
//! members or pull consumers (a share of the messages, in order, and across
//! all members every message exactly once).

/// How many of `msgs` publisher `index` of `pubs` sends (the first
/// `msgs % pubs` publishers send one more).
pub fn share(msgs: u64, pubs: u32, index: u32) -> u64 {
    let pubs = u64::from(pubs);
    msgs / pubs + u64::from(u64::from(index) < msgs % pubs)
}

/// What a receiver expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Every message of every publisher, each exactly once, in order.
    All,
    /// Some of the messages, in increasing order per publisher, none twice;
    /// [`merge_shares`] then checks the members together.
    Share,
}

/// A set of sequence numbers `1..=len`.
#[derive(Clone, Debug)]
pub struct SeqSet {
    words: Vec<u64>,
    len: u64,
}

impl SeqSet {
    fn new(len: u64) -> SeqSet {
        SeqSet {
            words: vec![0; len.div_ceil(64) as usize],
            len,
        }
    }

    /// Inserts `seq`; false if it was already there.
    fn insert(&mut self, seq: u64) -> bool {
        let i = (seq - 1) as usize;
        let (w, bit) = (i / 64, 1u64 << (i % 64));
        let fresh = self.words[w] & bit == 0;
        self.words[w] |= bit;
        fresh
    }

    fn count(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

/// The state of one receiver.
pub struct Tracker {
    expect: Expect,
    last_seq: Vec<u64>,
    sent: Vec<u64>,
    seen: Vec<SeqSet>,
    /// Messages accepted so far.
    pub received: u64,
}

impl Tracker {
    /// A tracker for `msgs` messages from `pubs` publishers.
    pub fn new(expect: Expect, msgs: u64, pubs: u32) -> Tracker {
        let sent: Vec<u64> = (0..pubs).map(|i| share(msgs, pubs, i)).collect();
        let seen = match expect {
            Expect::All => Vec::new(),
            Expect::Share => sent.iter().map(|&n| SeqSet::new(n)).collect(),
        };
        Tracker {
            expect,
            last_seq: vec![0; pubs as usize],
            sent,
            seen,
            received: 0,
        }
    }

    /// Records one message, or says what is wrong with it.
    pub fn record(&mut self, publisher: u32, seq: u64) -> Result<(), String> {
        let p = publisher as usize;
        let last = self.last_seq[p];
        if seq == 0 || seq > self.sent[p] {
            return Err(format!(
                "publisher {p} seq {seq} outside 1..={}",
                self.sent[p]
            ));
        }
        match self.expect {
            Expect::All if seq == last + 1 => {}
            Expect::All if seq <= last => {
                return Err(format!(
                    "duplicate or reordered: publisher {p} seq {seq} after seq {last}"
                ))
            }
            Expect::All => {
                return Err(format!(
                    "lost or reordered: publisher {p} jumped from seq {last} to {seq} ({} missing)",
                    seq - last - 1
                ))
            }
            Expect::Share if seq <= last => {
                return Err(format!(
                    "out of order: publisher {p} seq {seq} after seq {last}"
                ))
            }
            Expect::Share => {
                if !self.seen[p].insert(seq) {
                    return Err(format!("duplicate: publisher {p} seq {seq}"));
                }
            }
        }
        self.last_seq[p] = seq;
        self.received += 1;
        Ok(())
    }

    /// For an `All` receiver: an error naming what never arrived.
    pub fn check_complete(&self) -> Result<(), String> {
        let missing: u64 = self
            .sent
            .iter()
            .zip(&self.last_seq)
            .map(|(s, l)| s - l)
            .sum();
        if missing == 0 {
            return Ok(());
        }
        Err(format!(
            "lost {missing} messages (received {})",
            self.received
        ))
    }
}

/// Checks queue members (or pull consumers) together: no message went to two
/// of them and together they received every message.
pub fn merge_shares(members: &[&Tracker]) -> Result<(), String> {
    let Some(first) = members.first() else {
        return Ok(());
    };
    let mut union: Vec<SeqSet> = first.sent.iter().map(|&n| SeqSet::new(n)).collect();
    for m in members {
        for (p, (u, s)) in union.iter_mut().zip(&m.seen).enumerate() {
            for (i, (uw, sw)) in u.words.iter_mut().zip(&s.words).enumerate() {
                if *uw & *sw != 0 {
                    let seq = i as u64 * 64 + u64::from((*uw & *sw).trailing_zeros()) + 1;
                    return Err(format!("duplicate across members: publisher {p} seq {seq}"));
                }
                *uw |= *sw;
            }
        }
    }
    let missing: u64 = union.iter().map(|u| u.len - u.count()).sum();
    if missing > 0 {
        return Err(format!("lost {missing} messages across all members"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        assert_eq!(
            (0..3).map(|i| share(10, 3, i)).collect::<Vec<_>>(),
            vec![4, 3, 3]
        );
    }

    #[test]
    fn all_detects_gap_dup_and_loss() {
        let mut t = Tracker::new(Expect::All, 4, 2);
        t.record(0, 1).unwrap();
        assert!(t.record(0, 1).unwrap_err().contains("duplicate"));
        assert!(t.record(1, 2).unwrap_err().contains("lost"));
        t.record(1, 1).unwrap();
        assert!(t.check_complete().unwrap_err().contains("lost 2"));
        t.record(0, 2).unwrap();
        t.record(1, 2).unwrap();
        assert!(t.check_complete().is_ok());
        assert!(t.record(1, 3).is_err());
    }

    #[test]
    fn shares_detect_dup_across_members_and_loss() {
        let mut a = Tracker::new(Expect::Share, 4, 1);
        let mut b = Tracker::new(Expect::Share, 4, 1);
        a.record(0, 1).unwrap();
        a.record(0, 3).unwrap();
        assert!(a.record(0, 2).unwrap_err().contains("out of order"));
        b.record(0, 2).unwrap();
        assert!(merge_shares(&[&a, &b]).unwrap_err().contains("lost 1"));
        let mut a = Tracker::new(Expect::Share, 2, 1);
        let mut b = Tracker::new(Expect::Share, 2, 1);
        a.record(0, 1).unwrap();
        b.record(0, 1).unwrap();
        b.record(0, 2).unwrap();
        assert!(merge_shares(&[&a, &b]).unwrap_err().contains("duplicate"));
    }
}
