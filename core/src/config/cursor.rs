//! Character cursor over config text with nats-server's position rules,
//! and the scanners for scalar tokens (strings, numbers, dates, blocks).

use std::sync::Arc;

use super::error::Diagnostic;
use super::value::{Pos, ValueKind};

/// Reading position in one text.
pub(crate) struct Cursor<'t> {
    text: &'t str,
    at: usize,
    line: u32,
    /// Offset the column is measured from: 0 on line 1, then the index of
    /// the newline that started the current line (nats-server's rule, which
    /// makes line 1 zero-based and later lines one-based).
    line_start: usize,
    file: Arc<str>,
}

/// What an unquoted token turned out to be.
pub(crate) enum Bare {
    /// A plain string, a boolean, a number...
    Value(ValueKind),
    /// `$name`: resolved by the parser, which knows the scopes.
    Variable(String),
}

impl<'t> Cursor<'t> {
    pub(crate) fn new(text: &'t str, file: Arc<str>) -> Self {
        Cursor {
            text,
            at: 0,
            line: 1,
            line_start: 0,
            file,
        }
    }

    pub(crate) fn here(&self) -> Pos {
        Pos {
            file: self.file.clone(),
            line: self.line,
            column: u32::try_from(self.at - self.line_start).unwrap_or(u32::MAX),
        }
    }

    pub(crate) fn line(&self) -> u32 {
        self.line
    }

    pub(crate) fn offset(&self) -> usize {
        self.at
    }

    pub(crate) fn error(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.here(), message)
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    pub(crate) fn peek_second(&self) -> Option<char> {
        let mut chars = self.text[self.at..].chars();
        chars.next();
        chars.next()
    }

    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        if c == '\n' {
            self.line += 1;
            self.line_start = self.at;
        }
        self.at += c.len_utf8();
        Some(c)
    }

    fn bump_while(&mut self, keep: impl Fn(char) -> bool) {
        while self.peek().is_some_and(&keep) {
            self.bump();
        }
    }

    /// Spaces and tabs only: a newline ends a value.
    pub(crate) fn skip_blanks(&mut self) {
        self.bump_while(is_blank);
    }

    /// At `#` or `//`: a comment runs to the end of the line.
    pub(crate) fn at_comment(&self) -> bool {
        match self.peek() {
            Some('#') => true,
            Some('/') => self.peek_second() == Some('/'),
            _ => false,
        }
    }

    pub(crate) fn skip_comment(&mut self) {
        self.bump_while(|c| !is_newline(c));
    }

    /// Any whitespace including newlines (between a key and its value).
    pub(crate) fn skip_whitespace(&mut self) {
        self.bump_while(char::is_whitespace);
    }

    /// The rest of an unquoted include path.
    pub(crate) fn include_path(&mut self) -> &'t str {
        let start = self.at;
        self.bump_while(|c| !is_newline(c) && !is_blank(c) && !matches!(c, ';' | '}' | '\''));
        let path = &self.text[start..self.at];
        if self.peek() == Some('\'') {
            self.bump();
        }
        path
    }

    /// Any whitespace including newlines, and comments.
    pub(crate) fn skip_space_and_comments(&mut self) {
        loop {
            self.bump_while(char::is_whitespace);
            if !self.at_comment() {
                return;
            }
            self.skip_comment();
        }
    }

    /// A key up to whitespace, `=`, `:` or the end.
    pub(crate) fn bare_key(&mut self) -> &'t str {
        let start = self.at;
        self.bump_while(|c| !c.is_whitespace() && c != '=' && c != ':');
        &self.text[start..self.at]
    }

    /// The text between `quote` and the next `quote`, no escapes.
    pub(crate) fn raw_quoted(&mut self, quote: char, eof: &str) -> Result<&'t str, Diagnostic> {
        self.bump();
        let start = self.at;
        self.bump_while(|c| c != quote);
        if self.peek().is_none() {
            return Err(self.error(eof));
        }
        let text = &self.text[start..self.at];
        self.bump();
        Ok(text)
    }

    /// `"…"` with nats-server's escapes.
    pub(crate) fn double_quoted(&mut self) -> Result<String, Diagnostic> {
        self.bump();
        let mut out = Vec::new();
        loop {
            match self.bump() {
                None => return Err(self.error("Unexpected EOF.")),
                Some('"') => return Ok(String::from_utf8_lossy(&out).into_owned()),
                Some('\\') => self.escape(&mut out)?,
                Some(c) => push_char(&mut out, c),
            }
        }
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), Diagnostic> {
        let replacement = match self.bump() {
            Some('x') => return self.hex_escape(out),
            Some('t') => b'\t',
            Some('n') => b'\n',
            Some('r') => b'\r',
            Some('"') => b'"',
            Some('\\') => b'\\',
            other => {
                let shown = other.map(escape_special).unwrap_or_default();
                return Err(self.error(format!(
                    "Invalid escape character '{shown}'. Only the following escape characters \
                     are allowed: \\xXX, \\t, \\n, \\r, \\\", \\\\."
                )));
            }
        };
        out.push(replacement);
        Ok(())
    }

    fn hex_escape(&mut self, out: &mut Vec<u8>) -> Result<(), Diagnostic> {
        let mut digits = String::new();
        for _ in 0..2 {
            match self.bump() {
                Some(c) if !is_newline(c) => digits.push(c),
                _ => {
                    return Err(self
                        .error("Expected two hexadecimal digits after '\\x', but hit end of line"))
                }
            }
        }
        match u8::from_str_radix(&digits, 16) {
            Ok(byte) if digits.bytes().all(|b| b.is_ascii_hexdigit()) => {
                out.push(byte);
                Ok(())
            }
            _ => Err(self.error(format!(
                "Expected two hexadecimal digits after '\\x', but got '{digits}'"
            ))),
        }
    }

    /// `( … )`: raw text up to a `)` alone at the start of a line.
    pub(crate) fn block(&mut self) -> Result<String, Diagnostic> {
        self.bump();
        let start = self.at;
        loop {
            match self.bump() {
                None => return Err(self.error("Unexpected EOF processing block.")),
                Some('\n') if self.at_block_end() => {
                    let text = self.text[start..self.at].to_owned();
                    self.bump();
                    return Ok(text);
                }
                Some(_) => {}
            }
        }
    }

    fn at_block_end(&self) -> bool {
        self.peek() == Some(')') && matches!(self.peek_second(), None | Some('\n'))
    }

    /// An unquoted token: string, boolean or `$variable`. `start` is where
    /// the token began (a number scan may already have consumed part of it).
    pub(crate) fn bare(&mut self, start: usize) -> Result<Bare, Diagnostic> {
        let mut escaped: Option<Vec<u8>> = None;
        let mut plain_from = start;
        loop {
            match self.peek() {
                Some('\\') => {
                    let buf = escaped.get_or_insert_with(Vec::new);
                    buf.extend_from_slice(&self.text.as_bytes()[plain_from..self.at]);
                    self.bump();
                    self.escape(buf)?;
                    plain_from = self.at;
                }
                Some('\'') => {
                    // nats-server ends an unquoted string at a single quote
                    // and drops the quote.
                    let token = self.text[plain_from..self.at].to_owned();
                    self.bump();
                    return Ok(Bare::Value(ValueKind::String(finish(escaped, &token))));
                }
                Some(c) if !ends_bare(c) => {
                    self.bump();
                }
                _ => break,
            }
        }
        let tail = &self.text[plain_from..self.at];
        if let Some(buf) = escaped {
            return Ok(Bare::Value(ValueKind::String(finish(Some(buf), tail))));
        }
        Ok(classify_bare(tail))
    }

    /// A token starting with a digit or `-`: integer (with size suffix),
    /// float, dotted address, date, or a string that merely starts with a
    /// digit (`10s`, `1h30m`).
    pub(crate) fn number_like(&mut self) -> Result<Bare, Diagnostic> {
        let start = self.at;
        let negative = self.peek() == Some('-');
        if negative {
            self.bump();
            self.expect_first_digit()?;
        }
        self.bump_while(|c| c.is_ascii_digit());
        match self.peek() {
            Some('-') if !negative => self.date(start).map(Bare::Value),
            Some('.') => self.float_or_address(start).map(Bare::Value),
            Some(c) if is_size_suffix(c) => self.suffixed(start),
            Some(c) if !negative && !ends_number(c) => self.bare(start),
            _ => self.integer(start, self.at).map(Bare::Value),
        }
    }

    fn expect_first_digit(&self) -> Result<(), Diagnostic> {
        match self.peek() {
            Some(c) if c.is_ascii_digit() => Ok(()),
            Some('.') => Err(self.error("Floats must start with a digit, not '.'.")),
            other => Err(self.error(format!(
                "Expected a digit but got '{}'.",
                other.map(escape_special).unwrap_or_default()
            ))),
        }
    }

    fn suffixed(&mut self, start: usize) -> Result<Bare, Diagnostic> {
        self.bump();
        self.bump_while(|c| matches!(c, 'b' | 'B' | 'i' | 'I'));
        match self.peek() {
            Some(c) if !ends_number(c) => self.bare(start),
            _ => self.integer(start, self.at).map(Bare::Value),
        }
    }

    fn integer(&self, start: usize, end: usize) -> Result<ValueKind, Diagnostic> {
        let token = &self.text[start..end];
        let digits_end = token
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && c == '-')))
            .map_or(token.len(), |(i, _)| i);
        let out_of_range = || self.error(format!("integer '{token}' is out of the range"));
        let number: i64 = token[..digits_end].parse().map_err(|_| out_of_range())?;
        let multiplier = size_multiplier(&token[digits_end..])
            .ok_or_else(|| self.error(format!("invalid integer suffix in '{token}'")))?;
        number
            .checked_mul(multiplier)
            .map(ValueKind::Integer)
            .ok_or_else(out_of_range)
    }

    fn float_or_address(&mut self, start: usize) -> Result<ValueKind, Diagnostic> {
        self.bump();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {}
            other => {
                return Err(self.error(format!(
                    "Floats must have a digit after the '.', but got '{}' instead.",
                    other.map(escape_special).unwrap_or_default()
                )))
            }
        }
        self.bump_while(|c| c.is_ascii_digit());
        if self.peek() == Some('.') {
            self.bump_while(|c| c.is_ascii_digit() || matches!(c, '.' | ':' | '-'));
            return Ok(ValueKind::String(self.text[start..self.at].to_owned()));
        }
        let token = &self.text[start..self.at];
        match token.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(ValueKind::Float(f)),
            _ => Err(self.error(format!("float '{token}' is out of the range"))),
        }
    }

    fn date(&mut self, start: usize) -> Result<ValueKind, Diagnostic> {
        if self.at - start != 4 {
            return Err(self.error("All ISO8601 dates must be in full Zulu form."));
        }
        self.bump();
        for expected in "00-00T00:00:00Z".chars() {
            let got = self.bump();
            let ok = match expected {
                '0' => got.is_some_and(|c| c.is_ascii_digit()),
                other => got == Some(other),
            };
            if !ok {
                let what = if expected == '0' {
                    "digit".to_owned()
                } else {
                    format!("'{expected}'")
                };
                return Err(self.error(format!(
                    "Expected {what} in ISO8601 datetime, but found '{}' instead.",
                    got.map(escape_special).unwrap_or_default()
                )));
            }
        }
        Ok(ValueKind::DateTime(self.text[start..self.at].to_owned()))
    }
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

fn finish(escaped: Option<Vec<u8>>, tail: &str) -> String {
    let mut buf = escaped.unwrap_or_default();
    buf.extend_from_slice(tail.as_bytes());
    String::from_utf8_lossy(&buf).into_owned()
}

fn classify_bare(token: &str) -> Bare {
    match token.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => return Bare::Value(ValueKind::Bool(true)),
        "false" | "no" | "off" => return Bare::Value(ValueKind::Bool(false)),
        _ => {}
    }
    match token.strip_prefix('$') {
        Some(name) => Bare::Variable(name.to_owned()),
        None => Bare::Value(ValueKind::String(token.to_owned())),
    }
}

/// nats-server's integer suffixes: a bare letter is decimal (`k` = 1000),
/// `b`, `i` or `ib` after it is binary (`kb` = `ki` = `kib` = 1024).
fn size_multiplier(suffix: &str) -> Option<i64> {
    if suffix.is_empty() {
        return Some(1);
    }
    let lower = suffix.to_ascii_lowercase();
    let (unit, rest) = lower.split_at(1);
    let power = match unit {
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        "e" => 6,
        _ => return None,
    };
    let base: i64 = match rest {
        "" => 1000,
        "b" | "i" | "ib" => 1024,
        _ => return None,
    };
    Some(base.pow(power))
}

fn is_size_suffix(c: char) -> bool {
    matches!(c.to_ascii_lowercase(), 'k' | 'm' | 'g' | 't' | 'p' | 'e')
}

pub(crate) fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

pub(crate) fn is_newline(c: char) -> bool {
    c == '\n' || c == '\r'
}

/// Characters that end a number. nats-server does not count `]` (so `[1]`
/// is a syntax error there); natrix does, accepting strictly more files.
fn ends_number(c: char) -> bool {
    is_newline(c) || is_blank(c) || matches!(c, '}' | ']' | ';' | ',')
}

fn ends_bare(c: char) -> bool {
    is_newline(c) || is_blank(c) || matches!(c, '}' | ']' | ';' | ',')
}

/// How nats-server shows a character in an error.
pub(crate) fn escape_special(c: char) -> String {
    match c {
        '\n' => "\\n".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_match_nats_server() {
        assert_eq!(size_multiplier("k"), Some(1000));
        assert_eq!(size_multiplier("KB"), Some(1024));
        assert_eq!(size_multiplier("Ki"), Some(1024));
        assert_eq!(size_multiplier("kib"), Some(1024));
        assert_eq!(size_multiplier("m"), Some(1_000_000));
        assert_eq!(size_multiplier("mb"), Some(1 << 20));
        assert_eq!(size_multiplier("GB"), Some(1 << 30));
        assert_eq!(size_multiplier("e"), Some(1_000_000_000_000_000_000));
        assert_eq!(size_multiplier("kbb"), None);
        assert_eq!(size_multiplier("x"), None);
    }
}
