//! Monitoring query strings (`?offset=10&limit=5&sort=bytes_to&subs=1`).
//! Untrusted input: bounded, and every bad value is a clear error.

use std::collections::BTreeMap;

/// Longest query string accepted.
const QUERY_MAX_BYTES: usize = 4096;

/// Why a query string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Longer than the limit.
    #[error("query string too long")]
    TooLong,
    /// A value that should be a number is not.
    #[error("invalid value for {key}: {value:?}")]
    BadNumber {
        /// The parameter.
        key: String,
        /// What was given.
        value: String,
    },
    /// A value outside the allowed set.
    #[error("invalid {key}: {value:?}")]
    BadValue {
        /// The parameter.
        key: String,
        /// What was given.
        value: String,
    },
}

/// Decoded query parameters; the last occurrence of a key wins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    params: BTreeMap<String, String>,
}

impl Query {
    /// Parses `a=1&b=two` with `%XX` and `+` decoding.
    pub fn parse(raw: &str) -> Result<Query, QueryError> {
        if raw.len() > QUERY_MAX_BYTES {
            return Err(QueryError::TooLong);
        }
        let params = raw
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        Ok(Query { params })
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }

    /// `key` as a number, `default` when absent or empty.
    pub fn number(&self, key: &str, default: u64) -> Result<u64, QueryError> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(v) => v.parse().map_err(|_| QueryError::BadNumber { key: key.to_owned(), value: v.to_owned() }),
        }
    }

    /// `key` as nats-server reads a boolean flag: `1`, `true`, `detail`… are true.
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("1" | "true" | "t" | "T" | "TRUE" | "True" | "detail"))
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes() {
        let q = Query::parse("offset=2&limit=5&test=foo%2Ebar&x=a+b&subs=detail").unwrap();
        assert_eq!(q.number("offset", 0), Ok(2));
        assert_eq!(q.number("missing", 7), Ok(7));
        assert_eq!(q.get("test"), Some("foo.bar"));
        assert_eq!(q.get("x"), Some("a b"));
        assert!(q.flag("subs"));
        assert!(q.number("x", 0).is_err());
    }

    #[test]
    fn bad_escapes_are_kept_literally() {
        assert_eq!(Query::parse("a=%zz&b=%").unwrap().get("a"), Some("%zz"));
        assert_eq!(Query::parse("b=%4").unwrap().get("b"), Some("%4"));
        assert_eq!(Query::parse(&"a".repeat(5000)), Err(QueryError::TooLong));
    }
}
