//! Command-line flags, with Go's `flag` package rules as nats-server uses
//! them: `-name` or `--name`, `-name=value` or `-name value` (a value may
//! start with `-`, so `-p -1` works), booleans as `-D` or `-D=false`,
//! parsing stops at `--` or the first argument that is not a flag, and a
//! flag given twice keeps its last value.

mod flags;

pub use flags::{Overrides, SignalCommand};

use flags::{lookup, FlagKind};

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum CliCommand {
    /// Start the server.
    Run {
        /// `-c` / `--config`.
        config_file: Option<String>,
        /// Every flag that sets an option; they win over the file.
        overrides: Overrides,
    },
    /// `-t`: check the config file and exit.
    TestConfig {
        /// `-c` / `--config` (required; [`load`](super::load) reports its absence).
        config_file: Option<String>,
        /// Flags given alongside.
        overrides: Overrides,
    },
    /// `-v` / `--version` / `version`.
    ShowVersion,
    /// `-h` / `--help` / `help`.
    ShowHelp,
    /// `--help_tls`.
    ShowTlsHelp,
    /// `mappings SRC DEST SUBJECT`: print what a mapping makes of a subject.
    Mappings {
        /// The mapping's source.
        src: String,
        /// The mapping's destination.
        dest: String,
        /// The subject to map.
        subject: String,
    },
    /// `--signal` / `-sl`: signal a running server and exit.
    Signal {
        /// What to send.
        command: SignalCommand,
        /// The text after `=`: a pid, a pid file path or a `prefix*` pid
        /// glob; the runtime resolves it. `None` means every running server.
        pid: Option<String>,
    },
}

/// A command line that cannot be used. `Display` is nats-server's text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// A flag nobody defined.
    #[error("flag provided but not defined: -{0}")]
    UnknownFlag(String),
    /// `---x`, `-=x`.
    #[error("bad flag syntax: {0}")]
    BadSyntax(String),
    /// A value flag last on the line.
    #[error("flag needs an argument: -{0}")]
    MissingValue(String),
    /// A number flag with a non-number.
    #[error("invalid value \"{value}\" for flag -{flag}: {reason}")]
    InvalidValue {
        /// Flag name as typed, without dashes.
        flag: String,
        /// The value given.
        value: String,
        /// Go's `parse error` or `value out of range`.
        reason: &'static str,
    },
    /// A boolean flag with a non-boolean.
    #[error("invalid boolean value \"{value}\" for -{flag}: parse error")]
    InvalidBool {
        /// Flag name as typed, without dashes.
        flag: String,
        /// The value given.
        value: String,
    },
    /// A positional argument other than `version` or `help`.
    #[error("unrecognized command: \"{0}\"")]
    UnrecognizedCommand(String),
    /// `mappings` without exactly three arguments.
    #[error("usage: natrix mappings SRC DEST SUBJECT (e.g. natrix mappings \"foo.*.*\" \"bar.{{{{wildcard(2)}}}}.{{{{wildcard(1)}}}}\" foo.10.40)")]
    MappingsUsage,
    /// `--signal a=b=c`.
    #[error("invalid signal parameters: [{}]", .0.join(" "))]
    SignalParameters(Vec<String>),
    /// `--signal bogus`.
    #[error("unknown signal \"{0}\"")]
    UnknownSignal(String),
}

impl CliError {
    /// Whether the usage text follows the message (flag-syntax errors, as
    /// Go's `flag` package prints them).
    pub fn shows_usage(&self) -> bool {
        !matches!(
            self,
            CliError::UnrecognizedCommand(_)
                | CliError::MappingsUsage
                | CliError::SignalParameters(_)
                | CliError::UnknownSignal(_)
        )
    }

    /// The process exit status nats-server 2.15 ends with: its usage
    /// function exits 0 after a flag error; other errors exit 1.
    pub fn exit_code(&self) -> i32 {
        if self.shows_usage() {
            0
        } else {
            1
        }
    }
}

/// Parses the arguments after the program name.
pub fn parse_args(args: &[String]) -> Result<CliCommand, CliError> {
    let mut state = ParseState::default();
    let mut rest = args;
    while let Some((first, tail)) = rest.split_first() {
        let Some(flag_text) = flag_text(first)? else {
            break;
        };
        if flag_text.is_empty() {
            rest = tail;
            break;
        }
        rest = state.one_flag(flag_text, tail)?;
    }
    state.finish(rest)
}

/// The flag part of `arg` (`None`: not a flag, `Some("")`: `--`).
fn flag_text(arg: &str) -> Result<Option<&str>, CliError> {
    if arg.len() < 2 || !arg.starts_with('-') {
        return Ok(None);
    }
    let name = arg.strip_prefix("--").unwrap_or(&arg[1..]);
    if arg == "--" {
        return Ok(Some(""));
    }
    if name.is_empty() || name.starts_with('-') || name.starts_with('=') {
        return Err(CliError::BadSyntax(arg.to_owned()));
    }
    Ok(Some(name))
}

#[derive(Default)]
struct ParseState {
    overrides: Overrides,
    config_file: Option<String>,
    test: bool,
    version: bool,
    help: bool,
    tls_help: bool,
    signal: Option<String>,
}

impl ParseState {
    /// Applies one flag; returns the arguments left after it (and its value).
    fn one_flag<'a>(&mut self, text: &str, tail: &'a [String]) -> Result<&'a [String], CliError> {
        let (name, inline) = match text.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (text, None),
        };
        let flag = lookup(name).ok_or_else(|| CliError::UnknownFlag(name.to_owned()))?;
        let (value, rest) = match (flag.kind, inline) {
            (FlagKind::Bool, Some(v)) => (v, tail),
            (FlagKind::Bool, None) => ("true".to_owned(), tail),
            (_, Some(v)) => (v, tail),
            (_, None) => match tail.split_first() {
                Some((v, after)) => (v.clone(), after),
                None => return Err(CliError::MissingValue(name.to_owned())),
            },
        };
        match flag.kind {
            FlagKind::Bool => self.set_bool(flag.key, name, &value)?,
            FlagKind::Int => self
                .overrides
                .set_int(flag.key, parse_go_int(name, &value)?),
            FlagKind::Text => self.set_text(flag.key, value),
        }
        Ok(rest)
    }

    fn set_bool(&mut self, key: &str, name: &str, value: &str) -> Result<(), CliError> {
        let b = parse_go_bool(value).ok_or_else(|| CliError::InvalidBool {
            flag: name.to_owned(),
            value: value.to_owned(),
        })?;
        match key {
            "t" => self.test = b,
            "version" => self.version = b,
            "help" => self.help = b,
            "help_tls" => self.tls_help = b,
            other => self.overrides.set_bool(other, b),
        }
        Ok(())
    }

    fn set_text(&mut self, key: &str, value: String) {
        match key {
            "config" => self.config_file = Some(value),
            "signal" => self.signal = Some(value),
            other => self.overrides.set_text(other, value),
        }
    }

    /// nats-server's precedence: version, help, TLS help, positional
    /// commands, signal, then test or run.
    fn finish(self, positional: &[String]) -> Result<CliCommand, CliError> {
        if self.version {
            return Ok(CliCommand::ShowVersion);
        }
        if self.help {
            return Ok(CliCommand::ShowHelp);
        }
        if self.tls_help {
            return Ok(CliCommand::ShowTlsHelp);
        }
        if let Some(first) = positional.first() {
            return match first.as_str() {
                "version" => Ok(CliCommand::ShowVersion),
                "help" => Ok(CliCommand::ShowHelp),
                "mappings" => match &positional[1..] {
                    [src, dest, subject] => {
                        Ok(CliCommand::Mappings { src: src.clone(), dest: dest.clone(), subject: subject.clone() })
                    }
                    _ => Err(CliError::MappingsUsage),
                },
                other => Err(CliError::UnrecognizedCommand(other.to_owned())),
            };
        }
        if let Some(signal) = self.signal.filter(|s| !s.is_empty()) {
            return parse_signal(&signal);
        }
        let (config_file, overrides) = (self.config_file.filter(|c| !c.is_empty()), self.overrides);
        Ok(if self.test {
            CliCommand::TestConfig {
                config_file,
                overrides,
            }
        } else {
            CliCommand::Run {
                config_file,
                overrides,
            }
        })
    }
}

fn parse_signal(text: &str) -> Result<CliCommand, CliError> {
    let parts: Vec<&str> = text.split('=').collect();
    if parts.len() > 2 {
        return Err(CliError::SignalParameters(
            parts[2..].iter().map(|s| (*s).to_owned()).collect(),
        ));
    }
    let command = SignalCommand::from_name(parts[0])
        .ok_or_else(|| CliError::UnknownSignal(parts[0].to_owned()))?;
    Ok(CliCommand::Signal {
        command,
        pid: parts.get(1).map(|p| (*p).to_owned()),
    })
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: optional sign, `0x`/`0o`/`0b`/`0`
/// prefixes, underscores between digits when a prefix is present.
fn parse_go_int(name: &str, value: &str) -> Result<i64, CliError> {
    let fail = |reason| CliError::InvalidValue {
        flag: name.to_owned(),
        value: value.to_owned(),
        reason,
    };
    let (negative, body) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits, prefixed) = match lower.get(..2) {
        Some("0x") => (16, &lower[2..], true),
        Some("0o") => (8, &lower[2..], true),
        Some("0b") => (2, &lower[2..], true),
        _ if lower.len() > 1 && lower.starts_with('0') => (8, &lower[1..], true),
        _ => (10, lower.as_str(), false),
    };
    let cleaned: String = if prefixed {
        digits.replace('_', "")
    } else {
        digits.to_owned()
    };
    if cleaned.is_empty() || !cleaned.chars().all(|c| c.is_digit(radix)) {
        return Err(fail("parse error"));
    }
    let magnitude =
        i128::from_str_radix(&cleaned, radix).map_err(|_| fail("value out of range"))?;
    let signed = if negative { -magnitude } else { magnitude };
    i64::try_from(signed).map_err(|_| fail("value out of range"))
}

/// The `-h` text: nats-server's layout, natrix's words.
pub const USAGE: &str = "
Usage: natrix [options]

Server Options:
    -a, --addr, --net <host>         Address to bind client connections to (default: 0.0.0.0)
    -p, --port <port>                Client port; -1 picks a random free port (default: 4222)
    -n, --name
        --server_name <server_name>  Name of this server (default: its generated id)
    -P, --pid <file>                 Write the process id to this file
    -m, --http_port <port>           Serve HTTP monitoring on this port
    -ms,--https_port <port>          Serve HTTPS monitoring on this port
    -c, --config <file>              Read this configuration file
    -t                               Check the configuration file and exit
    -sl,--signal <signal>[=<pid>]    Signal a running server (ldm, stop, quit, term, reopen, reload)
                                     <pid> is a process id or a pid file path (e.g. /var/run/natrix.pid)
        --client_advertise <string>  Client URL advertised to other servers
        --ports_file_dir <dir>       Write the listening ports to <dir>/<executable_name>_<pid>.ports

Logging Options:
    -l, --log <file>                 Log to this file instead of stderr
    -T, --logtime                    Prefix log lines with a timestamp (default: true)
        --logtime_utc                Timestamps in UTC rather than local time (default: false)
    -s, --syslog                     Log to syslog
    -r, --remote_syslog <addr>       Log to a remote syslog server (udp://localhost:514)
    -D, --debug                      Log debug messages
    -V, --trace                      Log the raw protocol
    -VV                              Log the raw protocol, system account included
    -DV                              Debug and trace
    -DVV                             Debug and trace, system account included
        --log_size_limit <limit>     Rotate the log file past this size (default: no rotation)
        --max_traced_msg_len <len>   Cut traced payloads to this length (default: no limit)

JetStream Options:
    -js, --jetstream                 Turn JetStream on
    -sd, --store_dir <dir>           Directory JetStream stores its data in

Authorization Options:
        --user <user>                User name clients must present
        --pass <password>            Password clients must present
        --auth <token>               Token clients must present

TLS Options:
        --tls                        Serve clients over TLS without checking their certificates (default: false)
        --tlscert <file>             Server certificate
        --tlskey <file>              Server certificate's private key
        --tlsverify                  Serve clients over TLS and require valid client certificates
        --tlscacert <file>           CA that client certificates must chain to

Cluster Options:
        --routes <rurl-1, rurl-2>    Routes to dial
        --cluster <cluster-url>      Address other cluster members connect to
        --cluster_name <string>      Cluster name (default: generated)
        --no_advertise <bool>        Do not tell clients about other cluster members
        --cluster_advertise <string> Cluster URL advertised to other servers
        --connect_retries <number>   Connect attempts for implicit routes
        --cluster_listen <url>       Address other cluster members connect to

Profiling Options:
        --profile <port>             Serve profiling over HTTP on this port

Common Options:
    -h, --help                       Show this text
    -v, --version                    Show the version
        --help_tls                   Show TLS help

Commands:
    mappings SRC DEST SUBJECT        Print SUBJECT mapped from SRC to DEST
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_ints() {
        assert_eq!(parse_go_int("p", "-1"), Ok(-1));
        assert_eq!(parse_go_int("p", "4222"), Ok(4222));
        assert_eq!(parse_go_int("p", "0x10"), Ok(16));
        assert_eq!(parse_go_int("p", "010"), Ok(8));
        assert_eq!(parse_go_int("p", "0"), Ok(0));
        assert!(parse_go_int("p", "abc").is_err());
        assert!(parse_go_int("p", "").is_err());
        assert_eq!(
            parse_go_int("p", "99999999999999999999")
                .unwrap_err()
                .to_string(),
            "invalid value \"99999999999999999999\" for flag -p: value out of range"
        );
    }
}
