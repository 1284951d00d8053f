//! Where variables come from: the process environment, a `.env` file, or a map given by a test.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::ConfigError;

/// The name of the file read for variables that the environment does not set.
pub const DOTENV_FILE: &str = ".env";

/// The directories relative paths are resolved against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseDirs {
    /// The current directory of the process (a test's crate folder under `cargo test`).
    pub cwd: PathBuf,
    /// The nearest ancestor of `cwd` (or `cwd` itself) whose `Cargo.toml` declares `[workspace]`.
    pub workspace_root: Option<PathBuf>,
}

impl BaseDirs {
    /// The process's current directory and the workspace root above it, if any.
    pub fn discover() -> io::Result<Self> {
        let cwd = std::env::current_dir()?;
        let workspace_root = find_workspace_root(&cwd);
        Ok(Self {
            cwd,
            workspace_root,
        })
    }

    /// Where a relative output path (such as `REPORT_DIR`) is anchored: the workspace root when
    /// there is one, so that `cargo test` run from any crate writes to the same place.
    pub fn anchor(&self) -> &Path {
        self.workspace_root.as_deref().unwrap_or(&self.cwd)
    }

    /// The `.env` to read: the one in the current directory, else the one at the workspace root.
    pub fn dotenv_path(&self) -> Option<PathBuf> {
        std::iter::once(&self.cwd)
            .chain(self.workspace_root.as_ref())
            .map(|dir| dir.join(DOTENV_FILE))
            .find(|path| path.is_file())
    }
}

/// Walks up from `start` to the first directory whose `Cargo.toml` has a `[workspace]` table.
///
/// Returns `None` outside a Cargo workspace (for example when the tool runs from an installed
/// binary in an arbitrary folder).
pub fn find_workspace_root(start: &Path) -> Option<PathBuf> {
    start.ancestors().find_map(|dir| {
        let manifest = fs::read_to_string(dir.join("Cargo.toml")).ok()?;
        manifest
            .lines()
            .any(|line| line.trim() == "[workspace]")
            .then(|| dir.to_path_buf())
    })
}

/// Reads a `.env` file into a map, without touching the process environment.
///
/// The syntax is dotenvy's (`NAME=value`, `#` comments, single and double quotes, `export`
/// prefixes, `${OTHER}` substitution). When a name appears twice the last one wins, as with
/// python-dotenv, so an old suite's `.env` means the same thing here. A UTF-8 byte order mark
/// (left by some Windows editors) is ignored.
pub fn read_dotenv(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let bytes = fs::read(path).map_err(|source| ConfigError::DotenvRead {
        path: path.to_path_buf(),
        source,
    })?;
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let mut vars = BTreeMap::new();
    for item in dotenvy::from_read_iter(text) {
        let (name, value) = item.map_err(|error| match error {
            dotenvy::Error::Io(source) => ConfigError::DotenvRead {
                path: path.to_path_buf(),
                source,
            },
            other => ConfigError::DotenvSyntax {
                path: path.to_path_buf(),
                message: other.to_string(),
            },
        })?;
        vars.insert(name, value);
    }
    Ok(vars)
}

/// The variables a configuration is built from, after layering.
#[derive(Debug, Clone, Default)]
pub(crate) struct Vars {
    values: BTreeMap<String, String>,
    /// Names whose value could not be decoded; reading one of them is an error.
    not_unicode: BTreeSet<String>,
}

impl Vars {
    pub(crate) fn from_map<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            values: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            not_unicode: BTreeSet::new(),
        }
    }

    /// The `.env` values, overridden by the real environment's.
    pub(crate) fn layered(
        dotenv: BTreeMap<String, String>,
        env: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Self {
        let mut vars = Self {
            values: dotenv,
            not_unicode: BTreeSet::new(),
        };
        for (name, value) in env {
            // A name that is not Unicode cannot be one of ours.
            let Ok(name) = name.into_string() else {
                continue;
            };
            match value.into_string() {
                Ok(value) => {
                    vars.values.insert(name, value);
                }
                Err(_) => {
                    vars.values.remove(&name);
                    vars.not_unicode.insert(name);
                }
            }
        }
        vars
    }

    /// The raw value, `Ok(None)` when unset.
    pub(crate) fn get(&self, name: &str) -> Result<Option<&str>, ConfigError> {
        if self.not_unicode.contains(name) {
            return Err(ConfigError::NotUnicode {
                variable: name.to_owned(),
            });
        }
        Ok(self.values.get(name).map(String::as_str))
    }

    /// Every readable variable whose name starts with `prefix`, as (suffix, value).
    pub(crate) fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.values
            .range(prefix.to_owned()..)
            .take_while(move |(name, _)| name.starts_with(prefix))
            .map(move |(name, value)| (&name[prefix.len()..], value.as_str()))
    }

    /// Names with the prefix whose value could not be decoded.
    pub(crate) fn unreadable_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.not_unicode
            .iter()
            .filter(move |name| name.starts_with(prefix))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_workspace_root_is_the_nearest_manifest_with_a_workspace_table() {
        let root = tempfile::tempdir().unwrap();
        write(
            root.path(),
            "Cargo.toml",
            "[workspace]\nmembers = [\"crates/a\"]\n",
        );
        let member = root.path().join("crates/a");
        fs::create_dir_all(&member).unwrap();
        write(
            &member,
            "Cargo.toml",
            "[package]\nname = \"a\"\n[workspace.lints]\n",
        );

        assert_eq!(
            find_workspace_root(&member),
            Some(root.path().to_path_buf())
        );
    }

    #[test]
    fn outside_a_workspace_there_is_no_root() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "Cargo.toml", "[package]\nname = \"solo\"\n");
        // Ancestors of a temp dir have no Cargo.toml with [workspace] on a sane machine.
        assert_eq!(find_workspace_root(dir.path()), None);
    }

    #[test]
    fn the_current_directory_dotenv_wins_over_the_workspace_root_one() {
        let root = tempfile::tempdir().unwrap();
        let member = root.path().join("member");
        fs::create_dir_all(&member).unwrap();
        write(root.path(), DOTENV_FILE, "A=root\n");
        let dirs = BaseDirs {
            cwd: member.clone(),
            workspace_root: Some(root.path().to_path_buf()),
        };
        assert_eq!(dirs.dotenv_path(), Some(root.path().join(DOTENV_FILE)));

        write(&member, DOTENV_FILE, "A=member\n");
        assert_eq!(dirs.dotenv_path(), Some(member.join(DOTENV_FILE)));
    }

    #[test]
    fn no_dotenv_anywhere_means_none() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = BaseDirs {
            cwd: dir.path().to_path_buf(),
            workspace_root: None,
        };
        assert_eq!(dirs.dotenv_path(), None);
    }

    #[test]
    fn dotenv_files_are_read_with_comments_quotes_and_export() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            DOTENV_FILE,
            "\u{feff}# comment\nCOMPASS_HOST=10.0.0.5\nexport COMPASS_PORT=104\n\
             COMPASS_AE_TITLE=\"MY ROUTER\"\nLOCAL_AE_TITLE='SCU'\nCOMPASS_PORT=105\n",
        );
        let vars = read_dotenv(&path).unwrap();
        assert_eq!(vars["COMPASS_HOST"], "10.0.0.5");
        assert_eq!(vars["COMPASS_PORT"], "105", "the last occurrence wins");
        assert_eq!(vars["COMPASS_AE_TITLE"], "MY ROUTER");
        assert_eq!(vars["LOCAL_AE_TITLE"], "SCU");
    }

    #[test]
    fn a_malformed_dotenv_line_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            DOTENV_FILE,
            "GOOD=1\nthis is not an assignment\n",
        );
        let error = read_dotenv(&path).unwrap_err();
        assert!(
            matches!(error, ConfigError::DotenvSyntax { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains(&path.display().to_string()));
    }

    #[test]
    fn a_missing_dotenv_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.env");
        let error = read_dotenv(&path).unwrap_err();
        assert!(matches!(error, ConfigError::DotenvRead { .. }));
        assert!(error.to_string().contains("absent.env"));
    }

    #[test]
    fn real_environment_values_override_dotenv_values() {
        let dotenv = BTreeMap::from([
            ("COMPASS_PORT".to_owned(), "104".to_owned()),
            ("COMPASS_HOST".to_owned(), "pacs".to_owned()),
        ]);
        let env = [(OsString::from("COMPASS_PORT"), OsString::from("4242"))];
        let vars = Vars::layered(dotenv, env);
        assert_eq!(vars.get("COMPASS_PORT").unwrap(), Some("4242"));
        assert_eq!(vars.get("COMPASS_HOST").unwrap(), Some("pacs"));
    }

    #[cfg(unix)]
    #[test]
    fn a_non_unicode_value_is_an_error_only_when_read() {
        use std::os::unix::ffi::OsStringExt;
        let env = [
            (
                OsString::from("COMPASS_HOST"),
                OsString::from_vec(vec![0xff, 0xfe]),
            ),
            (OsString::from("UNRELATED"), OsString::from("x")),
        ];
        let vars = Vars::layered(BTreeMap::new(), env);
        assert!(matches!(
            vars.get("COMPASS_HOST"),
            Err(ConfigError::NotUnicode { variable }) if variable == "COMPASS_HOST"
        ));
        assert_eq!(vars.get("UNRELATED").unwrap(), Some("x"));
    }

    #[test]
    fn prefix_lookup_returns_suffixes_in_name_order() {
        let vars = Vars::from_map([
            ("REMOTE_AE_B", "2"),
            ("REMOTE_AE_A", "1"),
            ("REMOTE_AEX", "no"),
            ("LOCAL_AE_A", "3"),
        ]);
        let found: Vec<_> = vars.with_prefix("REMOTE_AE_").collect();
        assert_eq!(found, [("A", "1"), ("B", "2")]);
    }
}
