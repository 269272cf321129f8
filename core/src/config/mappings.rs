//! `mappings {}` (alias `maps`), at the top level for the global account or
//! inside an account: `SRC: DEST`, `SRC: {destination: DEST, weight: N%}`
//! or `SRC: [ {…}, {…} ]`, checked at load with nats-server's messages.

use crate::account::mapping::{MapDest, Mapping, MappingConfig};
use crate::subject::is_valid_subject;

use super::apply::Report;
use super::value::{ConfigMap, Value, ValueKind};

/// Parses a `mappings {}` block; refused mappings are reported and left out.
pub(crate) fn mappings(v: &Value, r: &mut Report) -> Vec<MappingConfig> {
    let Some(map) = r.map(v, "mappings") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in map.entries() {
        let subject = entry.key.clone();
        if !is_valid_subject(subject.as_bytes()) {
            r.error(&entry.value.pos, format!("Subject {subject:?} is not a valid subject"));
            continue;
        }
        let ev = &entry.value;
        let (dests, single) = match &ev.kind {
            ValueKind::String(dest) => {
                (vec![MapDest { subject: dest.clone(), weight: 100, cluster: String::new() }], Some(dest))
            }
            ValueKind::Array(items) => {
                let dests: Vec<MapDest> = items.iter().filter_map(|item| map_dest(item, r)).collect();
                if dests.len() != items.len() {
                    continue;
                }
                (dests, None)
            }
            ValueKind::Map(_) => match map_dest(ev, r) {
                Some(d) => (vec![d], None),
                None => continue,
            },
            other => {
                r.error(&ev.pos, format!("Unknown type {} for mapping destination", other.type_name()));
                continue;
            }
        };
        let config = MappingConfig { subject: subject.clone(), dests };
        match Mapping::new(&config) {
            Ok(_) => out.push(config),
            Err(e) => match single {
                Some(dest) => r.error(&ev.pos, format!("Error adding mapping for {subject:?} to {dest:?} : {e}")),
                None => r.error(&ev.pos, format!("Error adding mapping for {subject:?} : {e}")),
            },
        }
    }
    out
}

/// One `{destination: …, weight: …, cluster: …}`.
fn map_dest(v: &Value, r: &mut Report) -> Option<MapDest> {
    let ValueKind::Map(m) = &v.kind else {
        r.error(&v.pos, "Expected an entry for the mapping destination");
        return None;
    };
    one_dest(m, v, r)
}

fn one_dest(m: &ConfigMap, v: &Value, r: &mut Report) -> Option<MapDest> {
    let mut dest = MapDest { subject: String::new(), weight: 0, cluster: String::new() };
    let mut weighted = false;
    for entry in m.entries() {
        let ev = &entry.value;
        match entry.key.to_ascii_lowercase().as_str() {
            "dest" | "destination" => dest.subject = r.string(ev, &entry.key)?,
            "weight" => {
                let weight = match &ev.kind {
                    ValueKind::String(s) => {
                        let digits = s.strip_suffix('%').unwrap_or(s);
                        match digits.parse::<i64>() {
                            Ok(w) => w,
                            Err(_) => {
                                r.error(&ev.pos, format!("Invalid weight {digits:?} for mapping destination"));
                                return None;
                            }
                        }
                    }
                    ValueKind::Integer(w) => *w,
                    other => {
                        r.error(&ev.pos, format!("Unknown entry type for weight of {}", other.type_name()));
                        return None;
                    }
                };
                let Ok(weight) = u8::try_from(weight).map_err(|_| ()).and_then(|w| if w > 100 { Err(()) } else { Ok(w) }) else {
                    r.error(&ev.pos, format!("Invalid weight {weight} for mapping destination"));
                    return None;
                };
                dest.weight = weight;
                weighted = true;
            }
            "cluster" => dest.cluster = r.string(ev, &entry.key)?,
            _ if entry.used_as_variable => {}
            _ => {
                r.error(&ev.pos, format!("Unknown field {:?} for mapping destination", entry.key));
                return None;
            }
        }
    }
    if !weighted {
        r.error(&v.pos, format!("Missing weight for mapping destination {:?}", dest.subject));
        return None;
    }
    Some(dest)
}
