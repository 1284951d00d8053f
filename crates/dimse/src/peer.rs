//! Where a DICOM peer listens: [`PeerAddress`], a host and a port.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use serde::Serialize;

/// A peer's host (name or IP literal) and TCP port.
///
/// Its text form is what sockets and people read: `host:port`, with IPv6 literals in
/// brackets (`[::1]:104`), so the same text names the peer in errors and connects to it.
///
/// ```
/// use dimse::PeerAddress;
///
/// assert_eq!(PeerAddress::new("::1", 104).to_string(), "[::1]:104");
/// let pacs: PeerAddress = "pacs.example:11112".parse()?;
/// assert_eq!((pacs.host(), pacs.port()), ("pacs.example", 11112));
/// # Ok::<(), dimse::PeerAddressError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PeerAddress {
    host: String,
    port: u16,
}

/// Why a text is not `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not host:port ({reason}); write e.g. 127.0.0.1:11112 or [::1]:104")]
pub struct PeerAddressError {
    /// The text given.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl PeerAddress {
    /// The peer at `host` (surrounding spaces removed; IPv6 brackets optional) and `port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        let host = host.into();
        let host = host.trim();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        PeerAddress {
            host: host.to_string(),
            port,
        }
    }

    /// The host name or IP literal, without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => SocketAddr::from((ip, self.port)).fmt(f),
            _ => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

impl fmt::Debug for PeerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerAddress({self})")
    }
}

impl FromStr for PeerAddress {
    type Err = PeerAddressError;

    /// Reads `host:port` or `[v6]:port`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason| PeerAddressError {
            text: text.to_string(),
            reason,
        };
        let trimmed = text.trim();
        let (host, port) = if let Some(rest) = trimmed.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(|| fail("no closing ']'"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| fail("no ':port' after the bracketed host"))?;
            (host, port)
        } else {
            let (host, port) = trimmed.rsplit_once(':').ok_or_else(|| fail("no ':port'"))?;
            if host.contains(':') {
                return Err(fail("an IPv6 literal must be in brackets"));
            }
            (host, port)
        };
        if host.is_empty() {
            return Err(fail("empty host"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| fail("the port must be a number from 1 to 65535"))?;
        if port == 0 {
            return Err(fail("the port must be a number from 1 to 65535"));
        }
        Ok(PeerAddress::new(host, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_literals_are_bracketed_and_names_are_not() {
        assert_eq!(PeerAddress::new("::1", 104).to_string(), "[::1]:104");
        assert_eq!(PeerAddress::new("[::1]", 104).to_string(), "[::1]:104");
        assert_eq!(PeerAddress::new("pacs", 104).to_string(), "pacs:104");
        assert_eq!(PeerAddress::new("127.0.0.1", 1).to_string(), "127.0.0.1:1");
    }

    #[test]
    fn text_round_trips() {
        for text in ["[::1]:104", "pacs:11112", "10.0.0.1:4242"] {
            assert_eq!(text.parse::<PeerAddress>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn bad_text_says_what_to_write() {
        for text in ["pacs", "::1:104", ":104", "pacs:0", "pacs:port", "[::1]104"] {
            let error = text.parse::<PeerAddress>().unwrap_err();
            assert!(error.to_string().contains("127.0.0.1:11112"), "{error}");
        }
    }
}
