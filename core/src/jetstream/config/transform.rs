//! Validation of subject transform destinations (nats-server's
//! `ValidateMapping` and the checks of `NewSubjectTransform`), with its
//! error texts. Applying a transform is the stream's business, not this
//! module's.

use crate::subject::is_valid_subject;

const INVALID: &str = "invalid mapping destination";

/// A destination token: literal, or a placeholder naming wildcard indexes.
enum Placeholder {
    Literal,
    /// `random(n)` or `partition(n)` without indexes: usable without wildcards.
    NoIndexes,
    /// Wildcard indexes the token reads (1-based).
    Indexes(Vec<usize>),
}

/// The known mapping functions, lower-cased.
const FUNCTIONS: [&str; 10] = [
    "wildcard",
    "partition",
    "splitfromleft",
    "splitfromright",
    "slicefromleft",
    "slicefromright",
    "split",
    "left",
    "right",
    "random",
];

fn is_function_token(t: &str) -> bool {
    t.len() > 4 && t.starts_with("{{") && t.ends_with("}}")
}

/// Parses `{{name(args)}}` into the lower-cased name and trimmed args.
fn parse_function(t: &str) -> Option<(String, Vec<String>)> {
    let inner = t[2..t.len() - 2].trim();
    let open = inner.find('(')?;
    if !inner.ends_with(')') {
        return None;
    }
    let name = inner[..open].trim().to_ascii_lowercase();
    let args = inner[open + 1..inner.len() - 1]
        .split(',')
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    FUNCTIONS.contains(&name.as_str()).then_some((name, args))
}

fn placeholder(t: &str) -> Result<Placeholder, String> {
    if let Some(digits) = t.strip_prefix('$') {
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return digits
                .parse()
                .map(|i| Placeholder::Indexes(vec![i]))
                .map_err(|_| {
                    format!("{INVALID}: function argument is invalid or in the wrong format in {t}")
                });
        }
        return Ok(Placeholder::Literal);
    }
    if !is_function_token(t) {
        return Ok(Placeholder::Literal);
    }
    let Some((name, args)) = parse_function(t) else {
        return Err(format!("{INVALID}: unknown function in {t}"));
    };
    let ints: Result<Vec<usize>, _> = args.iter().map(|a| a.parse::<usize>()).collect();
    let index_args = match name.as_str() {
        "random" => return Ok(Placeholder::NoIndexes),
        "partition" if args.len() == 1 => return Ok(Placeholder::NoIndexes),
        "partition" => ints.map(|v| v[1..].to_vec()),
        "split" => args
            .first()
            .map(|a| a.parse().map(|i| vec![i]))
            .unwrap_or(Ok(vec![])),
        _ => ints.map(|v| v.into_iter().take(1).collect()),
    };
    let indexes = index_args.map_err(|_| {
        format!("{INVALID}: function argument is invalid or in the wrong format in {t}")
    })?;
    if indexes.is_empty() {
        return Err(format!(
            "{INVALID}: not enough arguments passed to the function in {t}"
        ));
    }
    Ok(Placeholder::Indexes(indexes))
}

/// Checks that `dest` is a valid transform destination for subjects
/// matching `src` (empty `src` means `>`); the error is nats-server's text,
/// e.g. `invalid mapping destination: wildcard index out of range in $2: [2]`.
pub fn validate_mapping(src: &str, dest: &str) -> Result<(), String> {
    if dest.is_empty() {
        return Ok(());
    }
    let mut after_fwc = false;
    for t in dest.split('.') {
        if t.is_empty() || after_fwc {
            return Err(if t.is_empty() {
                format!("{INVALID}: invalid transform")
            } else {
                format!("{INVALID}: invalid transform in {t}")
            });
        }
        if is_function_token(t) {
            if parse_function(t).is_none() {
                return Err(format!("{INVALID}: unknown function in {t}"));
            }
            continue;
        }
        if t == ">" {
            after_fwc = true;
        } else if t.contains([' ', '\t', '\n', '\r', '\x0c']) {
            return Err(format!("{INVALID}: invalid transform"));
        }
    }
    check_transform(if src.is_empty() { ">" } else { src }, dest)
}

/// nats-server's `NewSubjectTransform` checks.
fn check_transform(src: &str, dest: &str) -> Result<(), String> {
    let bad = || "invalid subject".to_string();
    if !is_valid_subject(src.as_bytes()) || !is_valid_subject(dest.as_bytes()) {
        return Err(bad());
    }
    let src_tokens: Vec<&str> = src.split('.').collect();
    let dest_tokens: Vec<&str> = dest.split('.').collect();
    let src_pwcs = src_tokens.iter().filter(|t| **t == "*").count();
    let src_fwc = src_tokens.last() == Some(&">");
    let dest_fwc = dest_tokens.last() == Some(&">");
    if dest_tokens.contains(&"*") || src_fwc != dest_fwc {
        return Err(bad());
    }
    for t in dest_tokens {
        match placeholder(t)? {
            Placeholder::Literal | Placeholder::NoIndexes => {}
            Placeholder::Indexes(indexes) => {
                if src_pwcs == 0 && !src_fwc {
                    return Err(format!("{INVALID}: wildcard index out of range in {t}"));
                }
                if let Some(i) = indexes.iter().find(|i| **i > src_pwcs) {
                    return Err(format!(
                        "{INVALID}: wildcard index out of range in {t}: [{i}]"
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate_mapping;

    #[test]
    fn accepts_usual_mappings() {
        assert!(validate_mapping("", "").is_ok());
        assert!(validate_mapping("a.*", "b.$1").is_ok());
        assert!(validate_mapping("a.*.*", "b.{{wildcard(2)}}.{{wildcard(1)}}").is_ok());
        assert!(validate_mapping("a.>", "b.>").is_ok());
        assert!(validate_mapping("a", "b.{{random(3)}}").is_ok());
    }

    #[test]
    fn errors_read_like_nats_server() {
        assert_eq!(
            validate_mapping("ab", "x.*").unwrap_err(),
            "invalid subject"
        );
        assert_eq!(
            validate_mapping("ab.*", "x.$2").unwrap_err(),
            "invalid mapping destination: wildcard index out of range in $2: [2]"
        );
        assert_eq!(
            validate_mapping("ab.*", "x.{{nope(1)}}").unwrap_err(),
            "invalid mapping destination: unknown function in {{nope(1)}}"
        );
        assert_eq!(
            validate_mapping("a", "x..y").unwrap_err(),
            "invalid mapping destination: invalid transform"
        );
    }
}
