//! Reading one variable at a time into a typed value, collecting every problem on the way.
//!
//! Each value parser returns `Err(expected)`, a phrase completing "expected ...", so that
//! every error reads `NAME="value": expected <phrase>`.

use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use crate::sources::Vars;
use crate::{AeTitle, ConfigError};

/// Reads variables and remembers what was wrong, so a user sees all mistakes in one run.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    vars: &'a Vars,
    problems: Vec<ConfigError>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(vars: &'a Vars) -> Self {
        Self {
            vars,
            problems: Vec::new(),
        }
    }

    pub(crate) fn vars(&self) -> &'a Vars {
        self.vars
    }

    /// The value, or `None` when the variable is unset or blank: `NAME=` in a `.env` file is
    /// the usual way to switch a setting back to its default, so it must not be an error.
    pub(crate) fn raw(&mut self, name: &str) -> Option<&'a str> {
        match self.vars.get(name) {
            Ok(value) => value.filter(|v| !v.trim().is_empty()),
            Err(problem) => {
                self.problems.push(problem);
                None
            }
        }
    }

    /// The parsed value; `None` when unset, or when invalid (and then the problem is recorded).
    pub(crate) fn value<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.raw(name)?;
        match parse(raw) {
            Ok(value) => Some(value),
            Err(expected) => {
                self.invalid(name, raw, expected);
                None
            }
        }
    }

    /// The parsed value, or `default` when unset or invalid (the problem is recorded).
    pub(crate) fn value_or<T>(
        &mut self,
        name: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        self.value(name, parse).unwrap_or(default)
    }

    pub(crate) fn invalid(&mut self, name: &str, value: &str, expected: impl Into<String>) {
        self.problems.push(ConfigError::InvalidValue {
            variable: name.to_owned(),
            value: value.to_owned(),
            expected: expected.into(),
        });
    }

    pub(crate) fn push(&mut self, problem: ConfigError) {
        self.problems.push(problem);
    }

    pub(crate) fn finish(self) -> Result<(), ConfigError> {
        ConfigError::from_problems(self.problems).map_or(Ok(()), Err)
    }
}

pub(crate) fn whole_number_at_least(min: u64) -> impl Fn(&str) -> Result<u64, String> {
    move |raw| {
        raw.trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= min)
            .ok_or_else(|| format!("a whole number >= {min}"))
    }
}

/// A size in bytes ([`sender::ByteSize`]'s forms) of at least `min` bytes.
pub(crate) fn byte_size_at_least(min: u64) -> impl Fn(&str) -> Result<u64, String> {
    move |raw| {
        raw.parse::<sender::ByteSize>()
            .ok()
            .map(sender::ByteSize::bytes)
            .filter(|bytes| *bytes >= min)
            .ok_or_else(|| {
                format!(
                    "a size of at least {}, {}",
                    sender::ByteSize(min),
                    sender::BYTE_SIZE_FORMS
                )
            })
    }
}

pub(crate) fn port(raw: &str) -> Result<u16, String> {
    raw.trim()
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| "a TCP port number from 1 to 65535".to_owned())
}

/// A port to listen on, where 0 asks the operating system for a free one.
pub(crate) fn port_or_any(raw: &str) -> Result<u16, String> {
    raw.trim()
        .parse::<u16>()
        .map_err(|_| "a TCP port number from 0 to 65535 (0: any free port)".to_owned())
}

/// An IPv4 or IPv6 address, without port or brackets.
pub(crate) fn ip_address(raw: &str) -> Result<IpAddr, String> {
    raw.trim()
        .parse::<IpAddr>()
        .map_err(|_| "an IP address, e.g. 127.0.0.1, 0.0.0.0 or ::1".to_owned())
}

fn finite(raw: &str) -> Option<f64> {
    raw.trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

pub(crate) fn positive_number(raw: &str) -> Result<f64, String> {
    finite(raw)
        .filter(|x| *x > 0.0)
        .ok_or_else(|| "a number > 0".to_owned())
}

pub(crate) fn fraction(raw: &str) -> Result<f64, String> {
    finite(raw)
        .filter(|x| (0.0..=1.0).contains(x))
        .ok_or_else(|| "a fraction from 0 to 1 (0.02 means 2 %)".to_owned())
}

pub(crate) fn seconds_positive(raw: &str) -> Result<Duration, String> {
    finite(raw)
        .filter(|x| *x > 0.0)
        .and_then(|x| Duration::try_from_secs_f64(x).ok())
        .ok_or_else(|| "a number of seconds > 0".to_owned())
}

pub(crate) fn seconds_non_negative(raw: &str) -> Result<Duration, String> {
    finite(raw)
        .and_then(|x| Duration::try_from_secs_f64(x).ok())
        .ok_or_else(|| "a number of seconds >= 0".to_owned())
}

pub(crate) fn milliseconds_positive(raw: &str) -> Result<Duration, String> {
    finite(raw)
        .filter(|x| *x > 0.0)
        .and_then(|x| Duration::try_from_secs_f64(x / 1000.0).ok())
        .ok_or_else(|| "a number of milliseconds > 0".to_owned())
}

pub(crate) fn boolean(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err("true or false (or 1/0, yes/no)".to_owned()),
    }
}

pub(crate) fn ae_title(raw: &str) -> Result<AeTitle, String> {
    AeTitle::new(raw).map_err(|why| {
        format!("an AE title of 1 to 16 printable ASCII characters without backslash ({why})")
    })
}

/// A host name or IP address; a port glued on (`host:104`) is refused because it would be
/// silently ignored in favour of the separate port variable.
pub(crate) fn host(raw: &str) -> Result<String, String> {
    let host = raw.trim();
    let looks_fine = !host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '/')
        && (!host.contains(':') || host.parse::<Ipv6Addr>().is_ok());
    if looks_fine {
        Ok(host.to_owned())
    } else {
        Err("a host name or IP address, without scheme, port or spaces".to_owned())
    }
}

pub(crate) fn path(raw: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(raw.trim()))
}

/// One of a fixed set of words, compared without regard to case.
pub(crate) fn one_of<T: Copy>(choices: &[(&str, T)]) -> impl Fn(&str) -> Result<T, String> {
    move |raw| {
        let wanted = raw.trim();
        choices
            .iter()
            .find(|(word, _)| word.eq_ignore_ascii_case(wanted))
            .map(|(_, value)| *value)
            .ok_or_else(|| {
                let words: Vec<&str> = choices.iter().map(|(word, _)| *word).collect();
                format!("one of {}", words.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_reject_words_fractions_and_values_below_the_minimum() {
        let at_least_one = whole_number_at_least(1);
        assert_eq!(at_least_one(" 8 "), Ok(8));
        for bad in ["eight", "8.0", "0", "-1", ""] {
            assert_eq!(
                at_least_one(bad),
                Err("a whole number >= 1".to_owned()),
                "{bad}"
            );
        }
    }

    #[test]
    fn ports_are_1_to_65535() {
        assert_eq!(port("104"), Ok(104));
        assert_eq!(port("65535"), Ok(65535));
        assert!(port("0").is_err());
        assert!(port("65536").is_err());
        assert!(port("http").is_err());
    }

    #[test]
    fn listening_ports_are_0_to_65535() {
        assert_eq!(port_or_any("0"), Ok(0));
        assert_eq!(port_or_any(" 11113 "), Ok(11113));
        assert_eq!(port_or_any("65535"), Ok(65535));
        for bad in ["65536", "-1", "any", "1.5"] {
            assert!(port_or_any(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ip_addresses_are_v4_or_v6_without_port() {
        assert_eq!(ip_address("127.0.0.1"), Ok(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(ip_address(" ::1 "), Ok(IpAddr::from(Ipv6Addr::LOCALHOST)));
        for bad in ["localhost", "127.0.0.1:104", "[::1]", "256.0.0.1", "10.0.0"] {
            assert!(ip_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn positive_numbers_reject_zero_negatives_and_non_finite_values() {
        assert_eq!(positive_number("2.5"), Ok(2.5));
        for bad in ["0", "-1", "inf", "NaN", "fast"] {
            assert!(positive_number(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fractions_are_within_0_and_1_inclusive() {
        assert_eq!(fraction("0"), Ok(0.0));
        assert_eq!(fraction("1"), Ok(1.0));
        assert!(fraction("1.01").is_err());
        assert!(fraction("-0.1").is_err());
        assert!(fraction("2%").is_err());
    }

    #[test]
    fn seconds_accept_fractions_and_reject_absurd_values() {
        assert_eq!(seconds_positive("0.25"), Ok(Duration::from_millis(250)));
        assert!(seconds_positive("0").is_err());
        assert!(seconds_positive("1e300").is_err());
        assert_eq!(seconds_non_negative("0"), Ok(Duration::ZERO));
        assert!(seconds_non_negative("-1").is_err());
    }

    #[test]
    fn milliseconds_become_durations() {
        assert_eq!(
            milliseconds_positive("1500"),
            Ok(Duration::from_millis(1500))
        );
        assert!(milliseconds_positive("0").is_err());
    }

    #[test]
    fn booleans_accept_the_usual_spellings_in_any_case() {
        for yes in ["true", "TRUE", "1", "yes", "Yes"] {
            assert_eq!(boolean(yes), Ok(true), "{yes}");
        }
        for no in ["false", "False", "0", "no", "NO"] {
            assert_eq!(boolean(no), Ok(false), "{no}");
        }
        assert!(boolean("maybe").is_err());
        assert!(boolean("on").is_err());
    }

    #[test]
    fn hosts_refuse_ports_schemes_and_spaces_but_take_ipv6() {
        assert_eq!(
            host("compass.example.org"),
            Ok("compass.example.org".to_owned())
        );
        assert_eq!(host("10.0.0.5"), Ok("10.0.0.5".to_owned()));
        assert_eq!(host("::1"), Ok("::1".to_owned()));
        for bad in ["10.0.0.5:104", "dicom://pacs", "my host"] {
            assert!(host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn choices_ignore_case_and_list_the_alternatives() {
        let pick = one_of(&[("asis", 1), ("fresh", 2)]);
        assert_eq!(pick("FRESH"), Ok(2));
        assert_eq!(pick("new"), Err("one of asis, fresh".to_owned()));
    }
}
