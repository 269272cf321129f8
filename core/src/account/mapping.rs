//! Subject mappings of an account (`mappings {}` in the config file, at the
//! top level for `$G` or in an account, and an account JWT's `mappings`):
//! a publish whose subject matches a mapping's source goes to one of its
//! weighted destinations instead, before anything else looks at it, as
//! nats-server maps a client's publishes before routing them.
//!
//! Weights are percentages. When a mapping's weights do not add up to 100
//! the rest goes to the subject unchanged, unless the source is itself one
//! of the destinations: then the rest is dropped (nats-server's way to
//! shed a share of the traffic).

use rand_core::RngCore;

use crate::subject::transform::{validate_mapping, Transform, TransformError};
use crate::subject::{is_literal, is_valid_subject, subject_matches};

/// One destination of a mapping as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapDest {
    /// The destination subject, with its placeholders.
    pub subject: String,
    /// Its share, 0 to 100.
    pub weight: u8,
    /// `cluster`: the destination applies only in that cluster.
    pub cluster: String,
}

/// One mapping as configured: a source and its weighted destinations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappingConfig {
    /// The source subject (may hold wildcards).
    pub subject: String,
    /// The destinations.
    pub dests: Vec<MapDest>,
}

/// Why a mapping is refused, in nats-server's words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// The source is not a valid subject.
    #[error("invalid subject")]
    BadSource,
    /// Two destinations with the same subject.
    #[error("duplicate entry for {0:?}")]
    Duplicate(String),
    /// One weight above 100.
    #[error("individual weights need to be <= 100")]
    Weight,
    /// The weights of one cluster add up to more than 100.
    #[error("total weight needs to be <= 100")]
    TotalWeight,
    /// A destination that cannot be made from the source.
    #[error(transparent)]
    Transform(#[from] TransformError),
}

/// A compiled mapping: destinations with cumulative weights, lightest first.
#[derive(Clone, Debug)]
pub(crate) struct Mapping {
    src: String,
    literal: bool,
    dests: Vec<(Transform, u8)>,
}

impl Mapping {
    /// Compiles `config` as nats-server's `AddWeightedMappings` does. This
    /// server has no cluster name, so destinations scoped to a cluster are
    /// checked and left out.
    pub fn new(config: &MappingConfig) -> Result<Mapping, MappingError> {
        let src = config.subject.as_str();
        if !is_valid_subject(src.as_bytes()) {
            return Err(MappingError::BadSource);
        }
        let mut seen: Vec<&str> = Vec::new();
        let mut totals: Vec<(&str, u16)> = Vec::new();
        let mut dests = Vec::new();
        for d in &config.dests {
            if seen.contains(&d.subject.as_str()) {
                return Err(MappingError::Duplicate(d.subject.clone()));
            }
            seen.push(&d.subject);
            if d.weight > 100 {
                return Err(MappingError::Weight);
            }
            let total = match totals.iter_mut().find(|(c, _)| *c == d.cluster) {
                Some((_, t)) => t,
                None => {
                    totals.push((&d.cluster, 0));
                    &mut totals.last_mut().expect("just pushed").1
                }
            };
            *total += u16::from(d.weight);
            if *total > 100 {
                return Err(MappingError::TotalWeight);
            }
            let transform = validate_mapping(src, &d.subject)?.ok_or(TransformError::BadSubject)?;
            if d.cluster.is_empty() {
                dests.push((transform, d.weight));
            }
        }
        let total: u16 = dests.iter().map(|(_, w)| u16::from(*w)).sum();
        if total != 100 && !seen.contains(&src) {
            let rest = if dests.is_empty() { 100 } else { 100 - total };
            let unchanged = Transform::new(src, &super::checks::number_wildcards(src))?;
            dests.push((unchanged, u8::try_from(rest).unwrap_or(100)));
        }
        dests.sort_by_key(|(_, w)| *w);
        let mut cumulative = 0u8;
        for (_, w) in &mut dests {
            cumulative = cumulative.saturating_add(*w);
            *w = cumulative;
        }
        Ok(Mapping { src: src.to_owned(), literal: is_literal(src.as_bytes()), dests })
    }
}

/// An account's mappings, in the order they were configured.
#[derive(Clone, Debug, Default)]
pub(crate) struct Mappings {
    list: Vec<Mapping>,
}

/// What a mapping made of a published subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mapped {
    /// No mapping applies.
    Unchanged,
    /// The message goes to this subject instead.
    To(String),
    /// The message falls in a share no destination takes: it goes nowhere.
    Dropped,
}

impl Mappings {
    /// Compiles `configs`, replacing an earlier mapping of the same source
    /// by a later one as nats-server does.
    pub fn new(configs: &[MappingConfig]) -> Result<Mappings, (String, MappingError)> {
        let mut list: Vec<Mapping> = Vec::with_capacity(configs.len());
        for c in configs {
            let m = Mapping::new(c).map_err(|e| (c.subject.clone(), e))?;
            match list.iter_mut().find(|e| e.src == m.src) {
                Some(existing) => *existing = m,
                None => list.push(m),
            }
        }
        Ok(Mappings { list })
    }

    /// True when there is nothing to map.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Maps `subject` through the first mapping whose source it matches.
    pub fn select(&self, subject: &str, rng: &mut impl RngCore) -> Mapped {
        // nats-server splits the subject into tokens only once it meets a
        // mapping with wildcards; a literal mapping met before that maps
        // from no tokens at all, which matters to `{{partition(n)}}`
        // (it then hashes the empty string). Kept, so partitions agree.
        let mut split = false;
        let mut found = None;
        for m in &self.list {
            if m.literal && m.src == subject {
                found = Some(m);
                break;
            }
            split = true;
            if subject_matches(m.src.as_bytes(), subject.as_bytes()) {
                found = Some(m);
                break;
            }
        }
        let Some(m) = found else { return Mapped::Unchanged };
        let chosen = match m.dests.as_slice() {
            [(t, 100)] => Some(t),
            dests => {
                let w = u8::try_from(rng.next_u32() % 100).unwrap_or(0);
                dests.iter().find(|(_, cum)| w < *cum).map(|(t, _)| t)
            }
        };
        let Some(transform) = chosen else { return Mapped::Dropped };
        let tokens: Vec<&str> = if split { subject.split('.').collect() } else { Vec::new() };
        let mut out = String::with_capacity(subject.len() + 8);
        transform.apply_tokens(&tokens, rng, &mut out);
        Mapped::To(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    fn config(src: &str, dests: &[(&str, u8)]) -> MappingConfig {
        MappingConfig {
            subject: src.to_owned(),
            dests: dests.iter().map(|(s, w)| MapDest { subject: (*s).to_owned(), weight: *w, cluster: String::new() }).collect(),
        }
    }

    #[test]
    fn refuses_what_nats_server_refuses() {
        let err = |src, dests: &[(&str, u8)]| Mapping::new(&config(src, dests)).unwrap_err().to_string();
        assert_eq!(err("a", &[("b", 60), ("c", 50)]), "total weight needs to be <= 100");
        assert_eq!(err("a", &[("b", 101)]), "individual weights need to be <= 100");
        assert_eq!(err("a", &[("b", 10), ("b", 10)]), "duplicate entry for \"b\"");
        assert_eq!(
            err("x", &[("y.{{wildcard(1)}}", 100)]),
            "invalid mapping destination: wildcard index out of range in {{wildcard(1)}}"
        );
        assert_eq!(err("a..b", &[("c", 100)]), "invalid subject");
        assert_eq!(err("a.*", &[("c.{{left(1,2)}}", 100)]), "invalid mapping destination: unknown function in {{left(1,2)}}");
    }

    #[test]
    fn weights_split_the_traffic_and_the_rest_stays_or_drops() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let ms = Mappings::new(&[config("a", &[("b", 30)]), config("d", &[("d", 25), ("e", 25)])]).unwrap();
        let (mut b, mut a) = (0, 0);
        let (mut d, mut e, mut dropped) = (0, 0, 0);
        for _ in 0..10_000 {
            match ms.select("a", &mut rng) {
                Mapped::To(s) if s == "b" => b += 1,
                Mapped::To(s) if s == "a" => a += 1,
                other => panic!("{other:?}"),
            }
            match ms.select("d", &mut rng) {
                Mapped::To(s) if s == "d" => d += 1,
                Mapped::To(s) if s == "e" => e += 1,
                Mapped::Dropped => dropped += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!((2_700..3_300).contains(&b) && a == 10_000 - b, "{b} {a}");
        assert!((2_200..2_800).contains(&d), "{d}");
        assert!((2_200..2_800).contains(&e), "{e}");
        assert!((4_700..5_300).contains(&dropped), "{dropped}");
        assert_eq!(ms.select("zzz", &mut rng), Mapped::Unchanged);
    }

    #[test]
    fn wildcard_sources_map_and_the_remainder_keeps_the_subject() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let ms = Mappings::new(&[config("foo.*.*", &[("bar.{{wildcard(2)}}.{{wildcard(1)}}", 100)])]).unwrap();
        assert_eq!(ms.select("foo.10.40", &mut rng), Mapped::To("bar.40.10".into()));
        let ms = Mappings::new(&[config("foo.*.>", &[("bar.$1.>", 0)])]).unwrap();
        assert_eq!(ms.select("foo.1.2.3", &mut rng), Mapped::To("foo.1.2.3".into()));
    }
}
