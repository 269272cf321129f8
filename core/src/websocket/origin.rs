//! Origins (`scheme://host[:port]`) as nats-server compares them: host in
//! lower case, the port defaulting to 80 or 443 by scheme.

/// A parsed origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// `http`, `https`, or whatever the header said.
    pub scheme: String,
    /// Lower-cased host, without brackets for IPv6.
    pub host: String,
    /// The port, as text (nats-server compares strings).
    pub port: String,
}

impl Origin {
    /// Parses an `Origin` header value (Go's `url.ParseRequestURI`, then the
    /// host and port split). The error is the reason given in the 403.
    pub fn parse(text: &str) -> Result<Origin, String> {
        let invalid = || format!("parse \"{text}\": invalid URI for request");
        let (scheme, rest) = text.split_once("://").ok_or_else(invalid)?;
        let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
        if !scheme_ok {
            return Err(invalid());
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        // Userinfo is not part of the host.
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = host_and_port(scheme.eq_ignore_ascii_case("https"), hostport)?;
        Ok(Origin { scheme: scheme.to_owned(), host, port })
    }

    /// Parses an `allowed_origins` entry, with the checks nats-server makes
    /// at start-up; the error is its message.
    pub fn parse_allowed(text: &str) -> Result<Origin, String> {
        let origin = Origin::parse(text).map_err(|e| format!("unable to parse allowed origin: {e}"))?;
        if origin.scheme != "http" && origin.scheme != "https" {
            return Err(format!(
                "unable to parse allowed origin \"{text}\": allowed origins must be absolute URLs with http or https scheme"
            ));
        }
        if origin.host.is_empty() {
            return Err(format!("unable to parse allowed origin \"{text}\": host is required"));
        }
        Ok(origin)
    }
}

/// Splits `host[:port]`, defaulting the port by scheme (Go's
/// `net.SplitHostPort` with nats-server's "missing port" fallback).
pub fn host_and_port(tls: bool, hostport: &str) -> Result<(String, String), String> {
    let default_port = if tls { "443" } else { "80" };
    if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| format!("address {hostport}: missing ']' in address"))?;
        return match after {
            "" => Ok((host.to_ascii_lowercase(), default_port.to_owned())),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host.to_ascii_lowercase(), port.to_owned())),
                None => Err(format!("address {hostport}: missing port in address")),
            },
        };
    }
    match hostport.rsplit_once(':') {
        None => Ok((hostport.to_ascii_lowercase(), default_port.to_owned())),
        Some((host, _)) if host.contains(':') => Err(format!("address {hostport}: too many colons in address")),
        Some((host, port)) => Ok((host.to_ascii_lowercase(), port.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_default_by_scheme() {
        let o = Origin::parse("https://Example.COM").unwrap();
        assert_eq!((o.scheme.as_str(), o.host.as_str(), o.port.as_str()), ("https", "example.com", "443"));
        let o = Origin::parse("http://example.com:8080/path").unwrap();
        assert_eq!(o.port, "8080");
        let o = Origin::parse("http://[::1]:80").unwrap();
        assert_eq!(o.host, "::1");
        assert!(Origin::parse("example.com").is_err());
        assert!(Origin::parse("http://a:b:c").is_err());
    }

    #[test]
    fn allowed_origins_are_checked() {
        assert!(Origin::parse_allowed("http://a.example").is_ok());
        assert!(Origin::parse_allowed("ws://a.example").unwrap_err().contains("http or https scheme"));
        assert!(Origin::parse_allowed("http://").unwrap_err().contains("host is required"));
    }
}
