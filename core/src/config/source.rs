//! Where config text and environment variables come from. The core does no
//! I/O: the runtime implements [`ConfigSource`] over the real file system and
//! process environment, tests and the simulator use [`MemorySource`].

use std::collections::BTreeMap;

use super::error::ReadError;

/// Supplies file contents (the main file and every `include`) and
/// environment variables (the fallback for `$VAR`).
pub trait ConfigSource {
    /// The whole text of the file at `path`. Include paths arrive already
    /// joined to the including file's directory.
    fn read_file(&self, path: &str) -> Result<String, ReadError>;
    /// The value of environment variable `name`, if set.
    fn env_var(&self, name: &str) -> Option<String>;
}

/// An in-memory [`ConfigSource`]: named files and environment variables.
#[derive(Clone, Debug, Default)]
pub struct MemorySource {
    files: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
}

impl MemorySource {
    /// An empty source.
    pub fn new() -> Self {
        MemorySource::default()
    }

    /// Adds a file (its path is normalised like include paths are).
    pub fn with_file(mut self, path: &str, text: &str) -> Self {
        self.files.insert(clean_path(path), text.to_owned());
        self
    }

    /// Adds an environment variable.
    pub fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.insert(name.to_owned(), value.to_owned());
        self
    }
}

impl ConfigSource for MemorySource {
    fn read_file(&self, path: &str) -> Result<String, ReadError> {
        self.files
            .get(&clean_path(path))
            .cloned()
            .ok_or_else(|| ReadError {
                reason: format!("open {path}: no such file or directory"),
            })
    }

    fn env_var(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
}

/// The directory part of `path` (`"."` when it has none), like Go's
/// `filepath.Dir`, which nats-server resolves includes against.
pub fn parent_dir(path: &str) -> String {
    match path.rfind('/') {
        Some(0) => "/".to_owned(),
        Some(i) => clean_path(&path[..i]),
        None => ".".to_owned(),
    }
}

/// `include` target resolved against the including file's directory.
/// An absolute include path is kept as is (nats-server would glue it under
/// the directory, which never names an existing file).
pub fn join_include(dir: &str, include: &str) -> String {
    if include.starts_with('/') {
        clean_path(include)
    } else {
        clean_path(&format!("{dir}/{include}"))
    }
}

/// Lexical path clean-up (`a/./b/../c` → `a/c`), as Go's `filepath.Clean`.
pub fn clean_path(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if absolute => {}
                _ => parts.push(".."),
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_clean_like_go() {
        assert_eq!(clean_path("./a/../b/./c"), "b/c");
        assert_eq!(clean_path("../x"), "../x");
        assert_eq!(clean_path("/../x"), "/x");
        assert_eq!(clean_path(""), ".");
        assert_eq!(parent_dir("conf/main.conf"), "conf");
        assert_eq!(parent_dir("main.conf"), ".");
        assert_eq!(parent_dir("/main.conf"), "/");
        assert_eq!(join_include(".", "./inc.conf"), "inc.conf");
        assert_eq!(join_include("conf", "../x.conf"), "x.conf");
        assert_eq!(join_include("conf", "/etc/x.conf"), "/etc/x.conf");
    }
}
