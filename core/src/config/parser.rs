//! The nats-server config format parsed into a [`ConfigMap`] tree.
//!
//! Syntax, as nats-server accepts it: `key: value`, `key = value` or
//! `key value`; values end at a newline, `;` or `,`; `{}` maps, `[]` arrays
//! (comma or newline separated), `"…"` strings with `\t \n \r \" \\ \xHH`
//! escapes, `'…'` raw strings, unquoted strings, `( … )` blocks ending with a
//! `)` alone on a line, integers with size suffixes, floats, booleans, Zulu
//! dates, `#` and `//` comments, `include path` (relative to the including
//! file, merged into the current map) and `$name` variables (keys of the
//! enclosing maps defined earlier, then environment variables, whose text is
//! parsed as a value). The whole file may be wrapped in `{ }` (JSON style).
//!
//! Unlike nats-server, nesting, include depth and include count are bounded
//! and an include cycle is an error rather than a stack overflow.

use std::sync::Arc;

use super::cursor::{escape_special, is_newline, Bare, Cursor};
use super::error::{ConfigError, Diagnostic};
use super::source::{join_include, parent_dir, ConfigSource};
use super::value::{ConfigMap, Pos, Value, ValueKind};

/// Deepest nesting of maps and arrays accepted.
pub const MAX_NESTING: usize = 64;
/// Deepest chain of files including each other.
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Most `include` directives followed in one load (guards against a file
/// included many times over at every level).
pub const MAX_INCLUDES: usize = 1024;
/// Deepest chain of environment variables referring to each other.
pub const MAX_ENV_DEPTH: usize = 16;

/// Parses `text`, named `file` in positions and resolving includes
/// relative to it.
pub fn parse_str(
    text: &str,
    file: &str,
    source: &dyn ConfigSource,
) -> Result<ConfigMap, ConfigError> {
    let mut shared = Shared {
        source,
        include_stack: vec![file.to_owned()],
        includes_followed: 0,
        env_stack: Vec::new(),
    };
    Parser::new(text, file, &mut shared)
        .document()
        .map_err(ConfigError::Syntax)
}

/// Reads `path` through `source` and parses it.
pub fn parse_file(path: &str, source: &dyn ConfigSource) -> Result<ConfigMap, ConfigError> {
    let text = source.read_file(path).map_err(|source| ConfigError::Open {
        path: path.to_owned(),
        source,
    })?;
    parse_str(&text, path, source)
}

/// State shared by the parsers of a file, its includes and env values.
struct Shared<'s> {
    source: &'s dyn ConfigSource,
    include_stack: Vec<String>,
    includes_followed: usize,
    env_stack: Vec<String>,
}

/// Where an entry sits: the top level ends values differently from a map.
#[derive(Clone, Copy, PartialEq)]
enum Level {
    Top,
    Map,
}

struct Parser<'t, 'x, 's> {
    cur: Cursor<'t>,
    dir: String,
    shared: &'x mut Shared<'s>,
    /// Maps under construction, innermost last: `$name` looks here first.
    scopes: Vec<ConfigMap>,
    nesting: usize,
}

impl<'t, 'x, 's> Parser<'t, 'x, 's> {
    fn new(text: &'t str, file: &str, shared: &'x mut Shared<'s>) -> Self {
        Parser {
            cur: Cursor::new(text, Arc::from(file)),
            dir: parent_dir(file),
            shared,
            scopes: vec![ConfigMap::new()],
            nesting: 0,
        }
    }

    fn document(mut self) -> Result<ConfigMap, Diagnostic> {
        let mut open_braces = 0usize;
        loop {
            self.cur.skip_space_and_comments();
            match self.cur.peek() {
                None if open_braces > 0 => return Err(self.cur.error("Unexpected EOF.")),
                None => break,
                Some('{') => {
                    self.cur.bump();
                    open_braces += 1;
                }
                Some('}') if open_braces > 0 => {
                    self.cur.bump();
                    open_braces -= 1;
                }
                Some(_) => {
                    self.entry(Level::Top)?;
                    self.end_top_value(open_braces > 0)?;
                }
            }
        }
        Ok(self.scopes.pop().unwrap_or_default())
    }

    fn end_top_value(&mut self, in_braces: bool) -> Result<(), Diagnostic> {
        self.cur.skip_blanks();
        if self.cur.at_comment() {
            self.cur.skip_comment();
            return Ok(());
        }
        match self.cur.peek() {
            None => Ok(()),
            Some(c) if is_newline(c) || c == ';' || c == ',' => {
                self.cur.bump();
                Ok(())
            }
            Some('}') if in_braces => Ok(()),
            Some(c) => Err(self.cur.error(format!(
                "Expected a top-level value to end with a new line, comment or EOF, \
                 but got '{}' instead.",
                escape_special(c)
            ))),
        }
    }

    /// `key [=|:] value` or `include path`, stored in the innermost scope.
    fn entry(&mut self, level: Level) -> Result<(), Diagnostic> {
        let key_pos = self.cur.here();
        let key = match self.cur.peek() {
            Some(c @ ('=' | ':')) => {
                return Err(self.cur.error(format!("Unexpected key separator '{c}'")))
            }
            Some(']') if level == Level::Map => {
                return Err(self.cur.error("Unexpected array end ']' processing map."))
            }
            Some(q @ ('"' | '\'')) => self.cur.raw_quoted(q, "Unexpected EOF.")?.to_owned(),
            _ => {
                let key = self.cur.bare_key();
                let at_space = self.cur.peek().is_some_and(char::is_whitespace);
                if at_space && key.eq_ignore_ascii_case("include") {
                    return self.include();
                }
                key.to_owned()
            }
        };
        self.cur.skip_whitespace();
        self.key_separator(level, &key_pos)?;
        let mut value = self.value()?;
        value.pos = key_pos;
        self.current_scope().insert(key, value);
        Ok(())
    }

    fn key_separator(&mut self, level: Level, key_pos: &Pos) -> Result<(), Diagnostic> {
        match self.cur.peek() {
            None if level == Level::Top => Err(Diagnostic::new(
                key_pos,
                "config is invalid: key without a value",
            )),
            None => Err(self.cur.error("Unexpected EOF processing map.")),
            Some('=' | ':') => {
                self.cur.bump();
                if level == Level::Map {
                    // Inside a map nats-server lets the value start on the next line.
                    self.cur.skip_whitespace();
                }
                Ok(())
            }
            Some(_) => Ok(()),
        }
    }

    fn current_scope(&mut self) -> &mut ConfigMap {
        if self.scopes.is_empty() {
            self.scopes.push(ConfigMap::new());
        }
        let last = self.scopes.len() - 1;
        &mut self.scopes[last]
    }

    fn value(&mut self) -> Result<Value, Diagnostic> {
        self.cur.skip_blanks();
        let pos = self.cur.here();
        let kind = match self.cur.peek() {
            Some('[') => self.nested(Self::array)?,
            Some('{') => self.nested(Self::map)?,
            Some('\'') => {
                ValueKind::String(self.cur.raw_quoted('\'', "Unexpected EOF.")?.to_owned())
            }
            Some('"') => ValueKind::String(self.cur.double_quoted()?),
            Some('(') => ValueKind::String(self.cur.block()?),
            Some(',') => return Err(self.cur.error("Unexpected map value terminator ','.")),
            Some('}') => return Err(self.cur.error("Expected value but found '}'")),
            Some('.') => return Err(self.cur.error("Floats must start with a digit")),
            Some(c) if is_newline(c) => {
                return Err(self.cur.error("Expected value but found new line"))
            }
            Some(c) if c.is_ascii_digit() || c == '-' => {
                let bare = self.cur.number_like()?;
                self.resolve(bare, &pos)?
            }
            _ => {
                let bare = self.cur.bare(self.cur_offset())?;
                self.resolve(bare, &pos)?
            }
        };
        Ok(Value { kind, pos })
    }

    fn cur_offset(&self) -> usize {
        self.cur.offset()
    }

    /// The value of a bare token, looking `$name` up.
    fn resolve(&mut self, bare: Bare, pos: &Pos) -> Result<ValueKind, Diagnostic> {
        match bare {
            Bare::Value(kind) => Ok(kind),
            Bare::Variable(name) => self.variable(&name, pos),
        }
    }

    fn nested(
        &mut self,
        inner: fn(&mut Self) -> Result<ValueKind, Diagnostic>,
    ) -> Result<ValueKind, Diagnostic> {
        if self.nesting >= MAX_NESTING {
            return Err(self.cur.error(format!(
                "config nesting is deeper than {MAX_NESTING} levels"
            )));
        }
        self.nesting += 1;
        let result = inner(self);
        self.nesting -= 1;
        result
    }

    fn array(&mut self) -> Result<ValueKind, Diagnostic> {
        self.cur.bump();
        let mut items = Vec::new();
        loop {
            self.cur.skip_space_and_comments();
            match self.cur.peek() {
                None => return Err(self.cur.error("Unexpected EOF processing array.")),
                Some(',') => return Err(self.cur.error("Unexpected array value terminator ','.")),
                Some(']') => {
                    self.cur.bump();
                    return Ok(ValueKind::Array(items));
                }
                Some(_) => {}
            }
            items.push(self.value()?);
            if self.end_array_value()? {
                return Ok(ValueKind::Array(items));
            }
        }
    }

    /// After an array element: `true` when the array is closed.
    fn end_array_value(&mut self) -> Result<bool, Diagnostic> {
        self.cur.skip_blanks();
        if self.cur.at_comment() {
            self.cur.skip_comment();
        }
        match self.cur.peek() {
            Some(c) if c == ',' || is_newline(c) => {
                self.cur.bump();
                Ok(false)
            }
            Some(']') => {
                self.cur.bump();
                Ok(true)
            }
            None => Err(self.cur.error("Unexpected EOF processing array.")),
            Some(c) => Err(self.cur.error(format!(
                "Expected an array value terminator \",\" or an array terminator \"]\", \
                 but got '{}' instead.",
                escape_special(c)
            ))),
        }
    }

    fn map(&mut self) -> Result<ValueKind, Diagnostic> {
        self.cur.bump();
        self.scopes.push(ConfigMap::new());
        let result = self.map_entries();
        let map = self.scopes.pop().unwrap_or_default();
        result.map(|()| ValueKind::Map(map))
    }

    fn map_entries(&mut self) -> Result<(), Diagnostic> {
        loop {
            self.cur.skip_space_and_comments();
            match self.cur.peek() {
                None => return Err(self.cur.error("Unexpected EOF processing map.")),
                Some('}') => {
                    self.cur.bump();
                    return Ok(());
                }
                Some(_) => self.entry(Level::Map)?,
            }
            if self.end_map_value()? {
                return Ok(());
            }
        }
    }

    /// After a map entry: `true` when the map is closed.
    fn end_map_value(&mut self) -> Result<bool, Diagnostic> {
        self.cur.skip_blanks();
        if self.cur.at_comment() {
            self.cur.skip_comment();
        }
        match self.cur.peek() {
            Some(c) if c == ',' || c == ';' || is_newline(c) => {
                self.cur.bump();
                Ok(false)
            }
            Some('}') => {
                self.cur.bump();
                Ok(true)
            }
            None => Err(self.cur.error("Unexpected EOF processing map.")),
            Some(c) => Err(self.cur.error(format!(
                "Expected a map value terminator \",\" or a map terminator \"}}\", \
                 but got '{}' instead.",
                escape_special(c)
            ))),
        }
    }
}

/// `include` and `$variable`.
impl Parser<'_, '_, '_> {
    fn include(&mut self) -> Result<(), Diagnostic> {
        self.cur.skip_blanks();
        let pos = self.cur.here();
        let path = match self.cur.peek() {
            Some('\'') => self
                .cur
                .raw_quoted('\'', "Unexpected EOF in quoted include")?,
            Some('"') => self
                .cur
                .raw_quoted('"', "Unexpected EOF in double quoted include")?,
            Some(c) => {
                if let Some(what) = include_misfit(c) {
                    return Err(self
                        .cur
                        .error(format!("Expected include value but found {what}")));
                }
                self.cur.include_path()
            }
            None => return Err(self.cur.error("Expected include value but found EOF")),
        };
        let included = self.follow_include(path, &pos)?;
        let scope = self.current_scope();
        for entry in included.entries() {
            scope.insert(entry.key.clone(), entry.value.clone());
        }
        Ok(())
    }

    fn follow_include(&mut self, path: &str, pos: &Pos) -> Result<ConfigMap, Diagnostic> {
        let full = join_include(&self.dir, path);
        let shared = &mut *self.shared;
        if shared.include_stack.contains(&full) {
            let chain = shared.include_stack.join(" -> ");
            return Err(Diagnostic::new(
                pos,
                format!("error parsing include file '{path}', include cycle: {chain} -> {full}"),
            ));
        }
        if shared.include_stack.len() > MAX_INCLUDE_DEPTH
            || shared.includes_followed >= MAX_INCLUDES
        {
            return Err(Diagnostic::new(
                pos,
                format!(
                    "error parsing include file '{path}', too many nested or repeated includes"
                ),
            ));
        }
        shared.includes_followed += 1;
        let text = shared.source.read_file(&full).map_err(|e| {
            Diagnostic::new(pos, format!("error parsing include file '{path}', {e}"))
        })?;
        shared.include_stack.push(full.clone());
        let result = Parser::new(&text, &full, shared).document();
        shared.include_stack.pop();
        result
    }

    /// `$name`: the enclosing maps first (innermost out), then the
    /// environment. `$2a$…` is a bcrypt hash, kept literally.
    fn variable(&mut self, name: &str, pos: &Pos) -> Result<ValueKind, Diagnostic> {
        if name.starts_with("2a$") {
            return Ok(ValueKind::String(format!("${name}")));
        }
        for scope in self.scopes.iter_mut().rev() {
            if let Some(value) = scope.lookup_variable(name) {
                return Ok(value.kind);
            }
        }
        let line = self.cur.line();
        let unparsable = |reason: String| {
            Diagnostic::new(
                pos,
                format!(
                    "variable reference for '{name}' on line {line} could not be parsed: {reason}"
                ),
            )
        };
        if self.shared.env_stack.iter().any(|n| n == name) {
            return Err(unparsable(format!("variable reference cycle for '{name}'")));
        }
        if self.shared.env_stack.len() >= MAX_ENV_DEPTH {
            return Err(unparsable("too many nested variable references".to_owned()));
        }
        let Some(text) = self.shared.source.env_var(name) else {
            return Err(Diagnostic::new(
                pos,
                format!("variable reference for '{name}' on line {line} can not be found"),
            ));
        };
        self.env_value(name, &text)
            .map_err(|d| unparsable(d.message))
    }

    /// An environment value is parsed as the value of a one-key document,
    /// so `NATS_PORT=4222` gives an integer and `X={a: 1}` a map.
    fn env_value(&mut self, name: &str, text: &str) -> Result<ValueKind, Diagnostic> {
        let document = format!("pk={text}");
        let shared = &mut *self.shared;
        shared.env_stack.push(name.to_owned());
        let saved_includes = std::mem::take(&mut shared.include_stack);
        let result = Parser::new(&document, "", shared).document();
        shared.include_stack = saved_includes;
        shared.env_stack.pop();
        let map = result?;
        Ok(map
            .get("pk")
            .map_or(ValueKind::String(String::new()), |v| v.kind.clone()))
    }
}

fn include_misfit(c: char) -> Option<&'static str> {
    match c {
        '[' => Some("start of an array"),
        '{' => Some("start of a map"),
        '(' => Some("start of a block"),
        '\\' => Some("escape sequence"),
        '-' => Some("start of a number"),
        c if c.is_ascii_digit() => Some("start of a number"),
        c if is_newline(c) => Some("new line"),
        _ => None,
    }
}
