//! What can be wrong with a configuration, said so that the user knows which line to fix.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A configuration problem. Each variant names the variable (or file) at fault.
///
/// Loading reports every problem it finds, not only the first: when there are several,
/// they come as [`ConfigError::Several`]; [`ConfigError::problems`] lists them one by one
/// either way.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A variable holds a value of the wrong kind or out of range.
    #[error("{variable}={value:?}: expected {expected}")]
    InvalidValue {
        /// The variable's name, e.g. `LOAD_CONCURRENCY`.
        variable: String,
        /// The value as written (before trimming).
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// A variable's value is not valid Unicode, so it cannot be read at all.
    #[error("{variable} holds bytes that are not valid UTF-8")]
    NotUnicode {
        /// The variable's name.
        variable: String,
    },
    /// `COMPASS_ROUTE` names a route that no `REMOTE_AE_<NAME>`/`LOCAL_AE_<NAME>` pair defines.
    #[error(
        "COMPASS_ROUTE={route:?}: no such route; known routes: {known} \
         (a route NAME is defined by setting both REMOTE_AE_NAME and LOCAL_AE_NAME)",
        known = known_list(known)
    )]
    UnknownRoute {
        /// The requested route.
        route: String,
        /// Every route that is defined, sorted.
        known: Vec<String>,
    },
    /// Only one half of a route's `REMOTE_AE_<NAME>`/`LOCAL_AE_<NAME>` pair is set.
    #[error("{present} is set but {missing} is not: route {route} needs both")]
    IncompleteRoute {
        /// The route's name.
        route: String,
        /// The variable that is set.
        present: String,
        /// The variable that is missing.
        missing: String,
    },
    /// A variable is set but another one it needs is not (or one it excludes is).
    #[error("{variable} is set but {needs}: {why}")]
    Requires {
        /// The variable that is set.
        variable: String,
        /// What is missing, e.g. `DICOM_TLS_KEY_FILE is not`.
        needs: String,
        /// Why it matters and what to do.
        why: String,
    },
    /// The `.env` file exists but could not be read.
    #[error("cannot read {path}: {source}", path = path.display())]
    DotenvRead {
        /// The `.env` file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The `.env` file has a line that is not `NAME=value`.
    #[error("{path}: {message}", path = path.display())]
    DotenvSyntax {
        /// The `.env` file.
        path: PathBuf,
        /// The parser's description, with the offending line.
        message: String,
    },
    /// More than one of the above, in the order found.
    #[error("{} configuration problems:\n{}", .0.len(), Lines(.0))]
    Several(Vec<ConfigError>),
}

impl ConfigError {
    /// The individual problems: this one, or each of [`ConfigError::Several`].
    pub fn problems(&self) -> &[ConfigError] {
        match self {
            ConfigError::Several(all) => all,
            one => std::slice::from_ref(one),
        }
    }

    /// One error for a non-empty list of problems.
    pub(crate) fn from_problems(mut problems: Vec<ConfigError>) -> Option<Self> {
        match problems.len() {
            0 => None,
            1 => problems.pop(),
            _ => Some(ConfigError::Several(problems)),
        }
    }
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "(none)".to_owned()
    } else {
        known.join(", ")
    }
}

struct Lines<'a>(&'a [ConfigError]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_value_names_the_variable_the_value_and_what_was_expected() {
        let error = ConfigError::InvalidValue {
            variable: "LOAD_CONCURRENCY".into(),
            value: "eight".into(),
            expected: "a whole number >= 1".into(),
        };
        assert_eq!(
            error.to_string(),
            r#"LOAD_CONCURRENCY="eight": expected a whole number >= 1"#
        );
    }

    #[test]
    fn an_unknown_route_lists_the_known_ones() {
        let error = ConfigError::UnknownRoute {
            route: "CT".into(),
            known: vec!["HTM_GI".into(), "HTM_OPH".into()],
        };
        let text = error.to_string();
        assert!(
            text.starts_with(r#"COMPASS_ROUTE="CT": no such route; known routes: HTM_GI, HTM_OPH"#)
        );
    }

    #[test]
    fn several_problems_are_listed_one_per_line() {
        let several = ConfigError::from_problems(vec![
            ConfigError::NotUnicode {
                variable: "A".into(),
            },
            ConfigError::NotUnicode {
                variable: "B".into(),
            },
        ])
        .unwrap();
        assert_eq!(several.problems().len(), 2);
        assert_eq!(
            several.to_string(),
            "2 configuration problems:\n  - A holds bytes that are not valid UTF-8\n  - B holds bytes that are not valid UTF-8"
        );
    }

    #[test]
    fn a_single_problem_is_not_wrapped() {
        let one = ConfigError::from_problems(vec![ConfigError::NotUnicode {
            variable: "A".into(),
        }])
        .unwrap();
        assert!(matches!(one, ConfigError::NotUnicode { .. }));
        assert_eq!(one.problems().len(), 1);
        assert!(ConfigError::from_problems(Vec::new()).is_none());
    }
}
