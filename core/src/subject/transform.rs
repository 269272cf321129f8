//! Subject transforms with mapping functions: what `mappings {}`, account
//! JWT mappings and streams' `subject_transform` and `republish` apply.
//!
//! A destination is a subject whose tokens may be placeholders: `$n` and
//! `{{wildcard(n)}}` (the n-th `*` of the source), `{{partition(n,a,b…)}}`
//! (a bucket from nats-server's hash of the named tokens, so partitions
//! agree with a mixed deployment), `{{split(n,sep)}}`, `{{splitFromLeft(n,p)}}`,
//! `{{splitFromRight(n,p)}}`, `{{sliceFromLeft(n,s)}}`, `{{sliceFromRight(n,s)}}`,
//! `{{left(n,l)}}`, `{{right(n,l)}}` and `{{random(n)}}`. Compiling checks
//! what nats-server's `NewSubjectTransform` checks, with its error texts.

use rand_core::RngCore;

/// Why a transform destination is refused; displayed as nats-server does.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransformError {
    /// The source or destination is not a valid subject, the destination
    /// holds a `*`, or only one of them ends in `>`.
    #[error("invalid subject")]
    BadSubject,
    /// An empty token, or a token after `>`, in the destination.
    #[error("invalid mapping destination: invalid transform{}", in_token(.0))]
    InvalidTransform(String),
    /// A `{{…}}` token naming no known function.
    #[error("invalid mapping destination: unknown function in {0}")]
    UnknownFunction(String),
    /// A wildcard index beyond the source's `*`s, or a function reading a
    /// token of a source without wildcards.
    #[error("invalid mapping destination: wildcard index out of range in {0}")]
    IndexOutOfRange(String),
    /// Too few arguments.
    #[error("invalid mapping destination: not enough arguments passed to the function in {0}")]
    NotEnoughArgs(String),
    /// Too many arguments.
    #[error("invalid mapping destination: too many arguments passed to the function in {0}")]
    TooManyArgs(String),
    /// An argument that is not a number where one is needed, or a bad separator.
    #[error("invalid mapping destination: function argument is invalid or in the wrong format in {0}")]
    InvalidArg(String),
}

fn in_token(token: &str) -> String {
    if token.is_empty() {
        String::new()
    } else {
        format!(" in {token}")
    }
}

/// What one destination token becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// `>`: the rest of the subject.
    Rest,
    /// A source token, by position.
    Wildcard(usize),
    /// Bucket of the FNV-1a hash of the named source tokens (all the
    /// subject when none are named) modulo `buckets`.
    Partition { buckets: i32, tokens: Vec<usize> },
    SplitFromLeft(usize, i32),
    SplitFromRight(usize, i32),
    SliceFromLeft(usize, i32),
    SliceFromRight(usize, i32),
    Split(usize, String),
    Left(usize, i32),
    Right(usize, i32),
    Random(i32),
}

/// A compiled subject transform (see the [module](self) documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transform {
    src: String,
    dest: String,
    src_len: usize,
    parts: Vec<Part>,
}

/// The parsed placeholder of one destination token.
enum Placeholder {
    None,
    /// A function with wildcard indexes (1-based as written).
    Indexed(Part, Vec<i64>),
    /// `random(n)`, or `partition(n)` without indexes.
    Free(Part),
}

impl Transform {
    /// Compiles `src` → `dest` (an empty `src` is `>`), checked as
    /// nats-server's `NewSubjectTransform` checks it.
    pub fn new(src: &str, dest: &str) -> Result<Transform, TransformError> {
        let src = if src.is_empty() { ">" } else { src };
        let (src_ok, src_tokens, src_stars, src_rest) = shape(src);
        let (dest_ok, dest_tokens, dest_stars, dest_rest) = shape(dest);
        if !src_ok || !dest_ok || dest_stars > 0 || src_rest != dest_rest {
            return Err(TransformError::BadSubject);
        }
        // Source position of each `*`, by its 1-based number.
        let stars: Vec<usize> = src_tokens.iter().enumerate().filter(|(_, t)| **t == "*").map(|(i, _)| i).collect();
        let star_at = |n: i64| -> usize {
            // nats-server looks indexes up in a map, where a missing one reads as 0.
            usize::try_from(n).ok().and_then(|n| n.checked_sub(1)).and_then(|n| stars.get(n)).copied().unwrap_or(0)
        };
        let has_wildcards = src_stars > 0 || src_rest;
        let mut parts = Vec::with_capacity(dest_tokens.len());
        for token in &dest_tokens {
            let part = match placeholder(token)? {
                Placeholder::None if *token == ">" => Part::Rest,
                Placeholder::None => Part::Literal((*token).to_owned()),
                Placeholder::Free(part) => part,
                Placeholder::Indexed(part, indexes) => {
                    if !has_wildcards {
                        if let Part::Partition { buckets, .. } = part {
                            Part::Partition { buckets, tokens: Vec::new() }
                        } else {
                            return Err(TransformError::IndexOutOfRange((*token).to_owned()));
                        }
                    } else {
                        if let Some(i) = indexes.iter().find(|i| **i > src_stars as i64) {
                            return Err(TransformError::IndexOutOfRange(format!("{token}: [{i}]")));
                        }
                        with_positions(part, indexes.iter().map(|i| star_at(*i)).collect())
                    }
                }
            };
            parts.push(part);
        }
        Ok(Transform { src: src.to_owned(), dest: dest.to_owned(), src_len: src_tokens.len(), parts })
    }

    /// The source pattern.
    pub fn src(&self) -> &str {
        &self.src
    }

    /// The destination as written.
    pub fn dest(&self) -> &str {
        &self.dest
    }

    /// True when the destination uses a function beyond wildcard
    /// references (imports refuse those: they must be reversible).
    pub fn has_functions(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Literal(_) | Part::Rest | Part::Wildcard(_)))
    }

    /// Maps `subject`, which must match the source, into `out`. `rng`
    /// serves `{{random(n)}}`.
    pub fn apply(&self, subject: &str, rng: &mut impl RngCore, out: &mut String) {
        let tokens: Vec<&str> = subject.split('.').collect();
        self.apply_tokens(&tokens, rng, out);
    }

    /// [`Transform::apply`] on a subject already split into tokens.
    pub fn apply_tokens(&self, tokens: &[&str], rng: &mut impl RngCore, out: &mut String) {
        let last = self.parts.len().saturating_sub(1);
        for (i, part) in self.parts.iter().enumerate() {
            let token = |n: usize| tokens.get(n).copied().unwrap_or("");
            match part {
                Part::Rest => break,
                Part::Literal(t) => out.push_str(t),
                Part::Wildcard(n) => out.push_str(token(*n)),
                Part::Partition { buckets, tokens: named } => {
                    let mut hash = Fnv1a32::new();
                    if named.is_empty() {
                        for (k, t) in tokens.iter().enumerate() {
                            if k > 0 {
                                hash.write(b".");
                            }
                            hash.write(t.as_bytes());
                        }
                    } else {
                        for n in named {
                            hash.write(token(*n).as_bytes());
                        }
                    }
                    push_bucket(out, hash.0, *buckets);
                }
                Part::SplitFromLeft(n, at) => split_at(out, token(*n), *at, false),
                Part::SplitFromRight(n, at) => split_at(out, token(*n), *at, true),
                Part::SliceFromLeft(n, size) => slice_from_left(out, token(*n), *size),
                Part::SliceFromRight(n, size) => slice_from_right(out, token(*n), *size),
                Part::Split(n, sep) => split(out, token(*n), sep),
                Part::Left(n, len) => out.push_str(edge(token(*n), *len, false)),
                Part::Right(n, len) => out.push_str(edge(token(*n), *len, true)),
                Part::Random(n) => {
                    let draw = i64::from(rng.next_u32() >> 1);
                    let value = if *n == 0 { 0 } else { draw % i64::from(*n) };
                    out.push_str(&value.to_string());
                }
            }
            if i < last {
                out.push('.');
            }
        }
        if matches!(self.parts.last(), Some(Part::Rest)) {
            let from = self.src_len.saturating_sub(1);
            for (k, t) in tokens.iter().enumerate().skip(from) {
                if k > from {
                    out.push('.');
                }
                out.push_str(t);
            }
        }
    }
}

/// What `natrix mappings SRC DEST SUBJECT` prints: `subject`, a literal
/// subject matching `src`, mapped to `dest` (checked as `mappings {}`
/// entries are), or why not.
pub fn map_subject(src: &str, dest: &str, subject: &str, rng: &mut impl RngCore) -> Result<String, String> {
    if !super::is_valid_subject(src.as_bytes()) {
        return Err(format!("invalid source subject {src:?}"));
    }
    let transform = validate_mapping(src, dest).map_err(|e| e.to_string())?.ok_or("empty destination")?;
    if !super::is_valid_literal_subject(subject.as_bytes()) {
        return Err(format!("{subject:?} is not a valid literal subject"));
    }
    if !super::subject_matches(src.as_bytes(), subject.as_bytes()) {
        return Err(format!("subject {subject:?} does not match the source {src:?}"));
    }
    let mut out = String::new();
    transform.apply(subject, rng, &mut out);
    Ok(out)
}

/// A small generator for `{{random(n)}}` where no seeded generator is at
/// hand (streams seed it with the message's wall time): SplitMix64.
#[derive(Clone, Debug)]
pub struct SplitMix(pub u64);

impl RngCore for SplitMix {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// The part `part` with its source positions filled in.
fn with_positions(part: Part, positions: Vec<usize>) -> Part {
    let first = positions.first().copied().unwrap_or(0);
    match part {
        Part::Wildcard(_) => Part::Wildcard(first),
        Part::Partition { buckets, .. } => Part::Partition { buckets, tokens: positions },
        Part::SplitFromLeft(_, a) => Part::SplitFromLeft(first, a),
        Part::SplitFromRight(_, a) => Part::SplitFromRight(first, a),
        Part::SliceFromLeft(_, a) => Part::SliceFromLeft(first, a),
        Part::SliceFromRight(_, a) => Part::SliceFromRight(first, a),
        Part::Split(_, s) => Part::Split(first, s),
        Part::Left(_, a) => Part::Left(first, a),
        Part::Right(_, a) => Part::Right(first, a),
        other => other,
    }
}

/// nats-server's `hash/fnv` 32-bit FNV-1a.
struct Fnv1a32(u32);

impl Fnv1a32 {
    fn new() -> Self {
        Fnv1a32(0x811c_9dc5)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u32::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0193);
        }
    }
}

/// `hash % buckets` as nats-server computes it (the bucket count taken as
/// an unsigned 32-bit number; no buckets gives `0`).
fn push_bucket(out: &mut String, hash: u32, buckets: i32) {
    let buckets = u32::from_ne_bytes(buckets.to_ne_bytes());
    let bucket = hash.checked_rem(buckets).unwrap_or(0);
    out.push_str(&bucket.to_string());
}

/// A usable position or size: strictly between 0 and the token's length.
fn inside(n: i32, len: usize) -> Option<usize> {
    usize::try_from(n).ok().filter(|n| *n > 0 && *n < len)
}

/// Byte-wise slicing as nats-server does; a cut inside a UTF-8 character
/// (never a valid NATS subject from nats-py, but possible on the wire) is
/// written lossily rather than panicking.
fn push_bytes(out: &mut String, bytes: &[u8]) {
    out.push_str(&String::from_utf8_lossy(bytes));
}

fn split_at(out: &mut String, token: &str, at: i32, from_right: bool) {
    let b = token.as_bytes();
    match inside(at, b.len()) {
        Some(at) => {
            let cut = if from_right { b.len() - at } else { at };
            push_bytes(out, &b[..cut]);
            out.push('.');
            push_bytes(out, &b[cut..]);
        }
        None => out.push_str(token),
    }
}

fn slice_from_left(out: &mut String, token: &str, size: i32) {
    let b = token.as_bytes();
    let Some(size) = inside(size, b.len()) else {
        out.push_str(token);
        return;
    };
    for (k, chunk) in b.chunks(size).enumerate() {
        if k > 0 {
            out.push('.');
        }
        push_bytes(out, chunk);
    }
}

fn slice_from_right(out: &mut String, token: &str, size: i32) {
    let b = token.as_bytes();
    let Some(size) = inside(size, b.len()) else {
        out.push_str(token);
        return;
    };
    let remainder = b.len() % size;
    if remainder > 0 {
        push_bytes(out, &b[..remainder]);
        out.push('.');
    }
    for (k, chunk) in b[remainder..].chunks(size).enumerate() {
        if k > 0 {
            out.push('.');
        }
        push_bytes(out, chunk);
    }
}

/// `split(n, sep)`: the token cut at every `sep`, empty pieces left out.
fn split(out: &mut String, token: &str, sep: &str) {
    if sep.is_empty() {
        // Go's strings.Split on "" splits after each UTF-8 character.
        let mut first = true;
        for c in token.chars() {
            if !first {
                out.push('.');
            }
            first = false;
            out.push(c);
        }
        return;
    }
    let pieces: Vec<&str> = token.split(sep).collect();
    for (j, piece) in pieces.iter().enumerate() {
        out.push_str(piece);
        let next_nonempty = pieces.get(j + 1).is_some_and(|p| !p.is_empty());
        if next_nonempty && !(j == 0 && piece.is_empty()) {
            out.push('.');
        }
    }
}

/// `left(n, len)` / `right(n, len)`.
fn edge(token: &str, len: i32, from_right: bool) -> &str {
    let b = token.as_bytes();
    match inside(len, b.len()) {
        Some(len) => {
            let range = if from_right { b.len() - len..b.len() } else { 0..len };
            token.get(range).unwrap_or(token)
        }
        None => token,
    }
}

/// Whether `subject` is a valid pattern, its tokens, its number of `*` and
/// whether it ends in `>`.
fn shape(subject: &str) -> (bool, Vec<&str>, usize, bool) {
    // nats-server's `subjectInfo`: no empty token, nothing after `>`
    // (whitespace is the caller's business).
    let tokens: Vec<&str> = subject.split('.').collect();
    let rest_at = tokens.iter().position(|t| *t == ">");
    let valid = !subject.is_empty()
        && tokens.iter().all(|t| !t.is_empty())
        && rest_at.is_none_or(|i| i + 1 == tokens.len());
    if !valid {
        return (false, tokens, 0, false);
    }
    let stars = tokens.iter().filter(|t| **t == "*").count();
    let rest = tokens.last() == Some(&">");
    (true, tokens, stars, rest)
}

/// The functions, each with how its name may be spelled: nats-server's
/// patterns accept either case for the first letter of each word only.
const FUNCTIONS: [(&str, &[&str]); 10] = [
    ("wildcard", &["wildcard"]),
    ("partition", &["partition"]),
    ("splitfromleft", &["split", "from", "left"]),
    ("splitfromright", &["split", "from", "right"]),
    ("slicefromleft", &["slice", "from", "left"]),
    ("slicefromright", &["slice", "from", "right"]),
    ("split", &["split"]),
    ("left", &["left"]),
    ("right", &["right"]),
    ("random", &["random"]),
];

/// True when `name` spells `words` with only each word's first letter in
/// either case.
fn spells(name: &str, words: &[&str]) -> bool {
    let mut rest = name;
    for w in words {
        let Some(first) = rest.chars().next() else { return false };
        if !first.eq_ignore_ascii_case(&w.chars().next().unwrap_or(' ')) {
            return false;
        }
        let Some(tail) = rest.get(1..) else { return false };
        let Some(after) = tail.strip_prefix(&w[1..]) else { return false };
        rest = after;
    }
    rest.is_empty()
}

/// `{{ name ( args ) }}` → the function's canonical name and its raw
/// arguments (split at commas, whitespace after each comma dropped).
fn function_call(token: &str) -> Option<(&'static str, Vec<&str>)> {
    let inner = token.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.trim_start_matches(is_space).trim_end_matches(is_space);
    let open = inner.find('(')?;
    let name = inner[..open].trim_end_matches(is_space);
    let args = inner[open + 1..].strip_suffix(')')?;
    let canonical = FUNCTIONS.iter().find(|(_, words)| spells(name, words))?.0;
    let args = args.split(',').enumerate().map(|(i, a)| if i == 0 { a } else { a.trim_start_matches(is_space) }).collect();
    Some((canonical, args))
}

/// RE2's `\s`.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')
}

/// Go's `strconv.Atoi` after trimming spaces.
fn int_arg(arg: &str) -> Option<i64> {
    let a = arg.trim_matches(' ');
    let digits = a.strip_prefix(['+', '-']).unwrap_or(a);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    a.parse().ok()
}

fn int32_arg(arg: &str) -> Option<i32> {
    int_arg(arg).and_then(|n| i32::try_from(n).ok())
}

/// Parses one destination token.
fn placeholder(token: &str) -> Result<Placeholder, TransformError> {
    let bad = |make: fn(String) -> TransformError| Err(make(token.to_owned()));
    if token.len() > 1 && token.starts_with('$') {
        // `$` followed by something else than a number is a literal token.
        return Ok(match int_arg(&token[1..]) {
            Some(n) => Placeholder::Indexed(Part::Wildcard(0), vec![n]),
            None => Placeholder::None,
        });
    }
    let looks_like_function = token.len() > 4 && token.starts_with("{{") && token.ends_with("}}");
    if !looks_like_function {
        return Ok(Placeholder::None);
    }
    let Some((name, args)) = function_call(token) else {
        return bad(TransformError::UnknownFunction);
    };
    match name {
        "wildcard" => match args.as_slice() {
            [""] => bad(TransformError::NotEnoughArgs),
            [one] => match int_arg(one) {
                Some(n) => Ok(Placeholder::Indexed(Part::Wildcard(0), vec![n])),
                None => bad(TransformError::InvalidArg),
            },
            _ => bad(TransformError::TooManyArgs),
        },
        "partition" => {
            let Some(buckets) = int_arg(args[0]).and_then(|n| i32::try_from(n).ok()) else {
                return bad(TransformError::InvalidArg);
            };
            if args.len() == 1 {
                return Ok(Placeholder::Free(Part::Partition { buckets, tokens: Vec::new() }));
            }
            let indexes: Option<Vec<i64>> = args[1..].iter().map(|a| int_arg(a)).collect();
            match indexes {
                Some(indexes) => Ok(Placeholder::Indexed(Part::Partition { buckets, tokens: Vec::new() }, indexes)),
                None => bad(TransformError::InvalidArg),
            }
        }
        "split" => {
            if args.len() < 2 {
                return bad(TransformError::NotEnoughArgs);
            }
            if args.len() > 2 {
                return bad(TransformError::TooManyArgs);
            }
            let Some(index) = int_arg(args[0]) else { return bad(TransformError::InvalidArg) };
            if args[1].contains([' ', '.']) {
                return bad(TransformError::InvalidArg);
            }
            Ok(Placeholder::Indexed(Part::Split(0, args[1].to_owned()), vec![index]))
        }
        "random" => {
            if args.len() != 1 {
                return bad(TransformError::NotEnoughArgs);
            }
            match int_arg(args[0]).and_then(|n| i32::try_from(n).ok()) {
                Some(n) => Ok(Placeholder::Free(Part::Random(n))),
                None => bad(TransformError::InvalidArg),
            }
        }
        _ => {
            if args.len() < 2 {
                return bad(TransformError::NotEnoughArgs);
            }
            if args.len() > 2 {
                return bad(TransformError::TooManyArgs);
            }
            let (Some(index), Some(n)) = (int_arg(args[0]), int32_arg(args[1])) else {
                return bad(TransformError::InvalidArg);
            };
            let part = match name {
                "splitfromleft" => Part::SplitFromLeft(0, n),
                "splitfromright" => Part::SplitFromRight(0, n),
                "slicefromleft" => Part::SliceFromLeft(0, n),
                "slicefromright" => Part::SliceFromRight(0, n),
                "left" => Part::Left(0, n),
                _ => Part::Right(0, n),
            };
            Ok(Placeholder::Indexed(part, vec![index]))
        }
    }
}

/// nats-server's `ValidateMapping`: the destination's own checks (only
/// the functions it knows for mappings: not `left` and `right`), then
/// [`Transform::new`]'s.
pub fn validate_mapping(src: &str, dest: &str) -> Result<Option<Transform>, TransformError> {
    if dest.is_empty() {
        return Ok(None);
    }
    let mut after_rest = false;
    for t in dest.split('.') {
        if t.is_empty() || after_rest {
            return Err(TransformError::InvalidTransform(t.to_owned()));
        }
        if t.len() > 4 && t.starts_with("{{") && t.ends_with("}}") {
            match function_call(t) {
                Some((name, _)) if name != "left" && name != "right" => continue,
                _ => return Err(TransformError::UnknownFunction(t.to_owned())),
            }
        }
        if t == ">" {
            after_rest = true;
        } else if t.contains([' ', '\t', '\n', '\x0c', '\r']) {
            return Err(TransformError::InvalidTransform(String::new()));
        }
    }
    Transform::new(src, dest).map(Some)
}

#[cfg(test)]
mod tests;
