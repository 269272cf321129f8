//! The config value tree: what the nats-server config format parses to,
//! before any key is interpreted. Every value keeps where it came from so a
//! later error can name the file, line and column.

use std::fmt;
use std::sync::Arc;

/// Where a value (or the key it is assigned to) sits in a config file.
///
/// The column follows nats-server: on the first line of a file it is the
/// zero-based byte offset, on every later line it is one-based (nats-server
/// measures from the preceding newline). Keeping its quirk makes natrix's
/// `file:line:col` identical to the reference server's for the same file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pos {
    /// The file name as the user wrote it (or the include path), empty for
    /// text that came from no file (an environment variable).
    pub file: Arc<str>,
    /// One-based line number.
    pub line: u32,
    /// Column, see the type's documentation.
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A parsed value and its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    /// The value itself.
    pub kind: ValueKind,
    /// For a value assigned to a key, the key's position (as nats-server
    /// reports it); for an array element, the element's own position.
    pub pos: Pos,
}

/// The types the config format knows.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueKind {
    /// Quoted, unquoted or block (`( … )`) string.
    String(String),
    /// Integer, size suffixes (`1MB`, `64k`) already applied.
    Integer(i64),
    /// Floating point number.
    Float(f64),
    /// `true/false/yes/no/on/off`, any case.
    Bool(bool),
    /// A Zulu ISO-8601 date time (`2016-05-04T18:53:41Z`), kept as text.
    DateTime(String),
    /// `[ … ]`.
    Array(Vec<Value>),
    /// `{ … }`.
    Map(ConfigMap),
}

impl ValueKind {
    /// The type's name as used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            ValueKind::String(_) => "string",
            ValueKind::Integer(_) => "integer",
            ValueKind::Float(_) => "float",
            ValueKind::Bool(_) => "boolean",
            ValueKind::DateTime(_) => "datetime",
            ValueKind::Array(_) => "array",
            ValueKind::Map(_) => "map",
        }
    }
}

/// One `key: value` of a map.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The key exactly as written (keys are matched case-insensitively by
    /// the option mapping, case-sensitively by `$variable` lookup).
    pub key: String,
    /// The value; its position is the key's.
    pub value: Value,
    /// Set when the entry was referenced as a `$variable`: nats-server does
    /// not report such entries as unknown fields.
    pub used_as_variable: bool,
}

/// A map in source order. A key given twice keeps its first slot and the
/// last value, as nats-server's map assignment does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfigMap {
    entries: Vec<Entry>,
}

impl ConfigMap {
    /// An empty map.
    pub fn new() -> Self {
        ConfigMap::default()
    }

    /// Sets `key`, replacing an earlier value of the same key.
    pub fn insert(&mut self, key: String, value: Value) {
        match self.entries.iter_mut().find(|e| e.key == key) {
            Some(entry) => {
                entry.value = value;
                entry.used_as_variable = false;
            }
            None => self.entries.push(Entry {
                key,
                value,
                used_as_variable: false,
            }),
        }
    }

    /// The value of `key` (exact case).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    /// The first value whose key matches one of `names`, ignoring case.
    pub fn get_ignore_case(&self, names: &[&str]) -> Option<&Value> {
        self.entries
            .iter()
            .find(|e| names.iter().any(|n| e.key.eq_ignore_ascii_case(n)))
            .map(|e| &e.value)
    }

    /// Looks `key` up for a `$variable` reference and marks it used.
    pub(crate) fn lookup_variable(&mut self, key: &str) -> Option<Value> {
        let entry = self.entries.iter_mut().find(|e| e.key == key)?;
        entry.used_as_variable = true;
        Some(entry.value.clone())
    }

    /// The entries in source order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the map has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
