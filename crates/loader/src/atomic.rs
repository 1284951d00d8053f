//! The one way the workspace replaces a file: so that a crash, a kill or an error never leaves
//! it half-written.
//!
//! The new content goes to a temporary file in the target's own folder (a rename is only atomic
//! within one file system), is flushed and synced to disk, and only then renamed over the
//! target. If anything fails before the rename, the temporary file is deleted and the target is
//! as it was.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Writing a file atomically failed; the original file, if any, is untouched and no temporary
/// file is left behind.
///
/// `E` is the error of the caller's own content writer (an encoder's, or [`io::Error`]).
///
/// Not `#[non_exhaustive]`: the four variants are the four steps of the replacement, and
/// callers map each to their own error type.
#[derive(Debug, thiserror::Error)]
pub enum AtomicWriteError<E> {
    /// The target's folder could not be created, or the temporary file in it could not.
    #[error("cannot create a temporary file in {dir}")]
    TempFile {
        /// The folder of the target file.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The caller's writer failed.
    #[error("cannot write the new content of {path}")]
    Content {
        /// The target file.
        path: PathBuf,
        /// The writer's error.
        #[source]
        source: E,
    },
    /// Flushing, syncing or setting the permissions of the temporary file failed.
    #[error("cannot write the new content of {path}")]
    Io {
        /// The target file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Renaming the temporary file over the target failed.
    #[error("cannot replace {path}")]
    Replace {
        /// The target file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

type Hook<'a> = &'a dyn Fn(&Path) -> io::Result<()>;

/// Replaces one file atomically: configure, then [`write`](AtomicFile::write) once.
///
/// The new file keeps the permissions of the file it replaces; a new file is readable by all
/// (0644 on Unix), not owner-only like the temporary file it starts as, because sample files
/// and reports are meant to be shared.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let target = dir.path().join("reports/summary.json");
/// loader::AtomicFile::new(&target)
///     .create_parent_dirs(true)
///     .write_bytes(b"{}")?;
/// assert_eq!(std::fs::read(&target)?, b"{}");
/// # Ok(()) }
/// ```
pub struct AtomicFile<'a> {
    target: &'a Path,
    temp_prefix: &'a str,
    temp_suffix: &'a str,
    create_parent_dirs: bool,
    before_rename: Option<Hook<'a>>,
}

impl std::fmt::Debug for AtomicFile<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicFile")
            .field("target", &self.target)
            .field("temp_prefix", &self.temp_prefix)
            .field("temp_suffix", &self.temp_suffix)
            .field("create_parent_dirs", &self.create_parent_dirs)
            .field("before_rename", &self.before_rename.is_some())
            .finish()
    }
}

impl<'a> AtomicFile<'a> {
    /// Replaces `target` (or creates it).
    pub fn new(target: &'a Path) -> Self {
        AtomicFile {
            target,
            temp_prefix: ".tmp",
            temp_suffix: "",
            create_parent_dirs: false,
            before_rename: None,
        }
    }

    /// Names the temporary file `<prefix><random><suffix>`, so that a scan of the folder can
    /// recognise one left behind by a killed process.
    pub fn temp_name(mut self, prefix: &'a str, suffix: &'a str) -> Self {
        self.temp_prefix = prefix;
        self.temp_suffix = suffix;
        self
    }

    /// Creates the target's missing parent folders first (off by default: an editor of
    /// existing files should fail on a folder that has gone).
    pub fn create_parent_dirs(mut self, create: bool) -> Self {
        self.create_parent_dirs = create;
        self
    }

    /// Calls `hook` on the synced temporary file just before it is renamed over the target; an
    /// error from it fails the write like a failed rename. Tests use it to inject a failure at
    /// the last moment.
    pub fn before_rename(mut self, hook: Hook<'a>) -> Self {
        self.before_rename = Some(hook);
        self
    }

    /// Writes `bytes` as the new content.
    ///
    /// # Errors
    /// See [`write`](AtomicFile::write); `Content` never occurs.
    pub fn write_bytes(self, bytes: &[u8]) -> Result<(), AtomicWriteError<io::Error>> {
        self.write(|out| out.write_all(bytes))
    }

    /// Runs `write` into a temporary file beside the target, flushes and syncs it, then renames
    /// it over the target and syncs the folder.
    ///
    /// # Errors
    /// [`AtomicWriteError`] naming the folder or the target; the target is then untouched and
    /// the temporary file removed.
    pub fn write<E>(
        self,
        write: impl FnOnce(&mut BufWriter<&File>) -> Result<(), E>,
    ) -> Result<(), AtomicWriteError<E>> {
        let target = self.target;
        let dir = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let temp_file_error = |source| AtomicWriteError::TempFile {
            dir: dir.to_owned(),
            source,
        };
        if self.create_parent_dirs {
            fs::create_dir_all(dir).map_err(temp_file_error)?;
        }
        // The temporary file deletes itself when dropped, on every error path below.
        let temp = tempfile::Builder::new()
            .prefix(self.temp_prefix)
            .suffix(self.temp_suffix)
            .tempfile_in(dir)
            .map_err(temp_file_error)?;
        let io_error = |source| AtomicWriteError::Io {
            path: target.to_owned(),
            source,
        };
        {
            let mut out = BufWriter::new(temp.as_file());
            write(&mut out).map_err(|source| AtomicWriteError::Content {
                path: target.to_owned(),
                source,
            })?;
            out.flush().map_err(io_error)?;
        }
        match fs::metadata(target) {
            Ok(meta) => fs::set_permissions(temp.path(), meta.permissions()).map_err(io_error)?,
            Err(_) => shareable(temp.as_file()).map_err(io_error)?,
        }
        temp.as_file().sync_all().map_err(io_error)?;
        let replace_error = |source| AtomicWriteError::Replace {
            path: target.to_owned(),
            source,
        };
        if let Some(hook) = self.before_rename {
            hook(temp.path()).map_err(replace_error)?;
        }
        temp.persist(target).map_err(|e| replace_error(e.error))?;
        // Make the rename itself durable; a failure here leaves a complete file either way.
        if let Ok(dir_handle) = File::open(dir) {
            let _ = dir_handle.sync_all();
        }
        Ok(())
    }
}

/// Temporary files are created owner-only; the files written here are meant to be read by
/// others (samples, reports).
#[cfg(unix)]
fn shareable(file: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn shareable(_file: &File) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn failure_before_rename_leaves_original_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("image.dcm");
        fs::write(&target, b"original bytes").unwrap();

        let result = AtomicFile::new(&target)
            .before_rename(&|_| Err(io::Error::other("injected failure before rename")))
            .write_bytes(b"new bytes");

        let err = result.unwrap_err();
        assert!(matches!(err, AtomicWriteError::Replace { .. }), "{err}");
        assert!(err.to_string().contains("image.dcm"), "{err}");
        assert_eq!(fs::read(&target).unwrap(), b"original bytes");
        assert_eq!(entries(dir.path()), vec!["image.dcm"]);
    }

    #[test]
    fn failure_while_writing_leaves_original_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("image.dcm");
        fs::write(&target, b"original bytes").unwrap();

        let result = AtomicFile::new(&target).write(|out| {
            out.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        });

        assert!(matches!(result, Err(AtomicWriteError::Content { .. })));
        assert_eq!(fs::read(&target).unwrap(), b"original bytes");
        assert_eq!(entries(dir.path()), vec!["image.dcm"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_replaced_file_keeps_its_permissions_and_a_new_one_is_world_readable() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.dcm");
        fs::write(&old, b"old").unwrap();
        fs::set_permissions(&old, fs::Permissions::from_mode(0o640)).unwrap();
        let new = dir.path().join("new.dcm");

        AtomicFile::new(&old).write_bytes(b"replaced").unwrap();
        AtomicFile::new(&new).write_bytes(b"created").unwrap();

        assert_eq!(fs::read(&old).unwrap(), b"replaced");
        assert_eq!(mode(&old), 0o640);
        assert_eq!(mode(&new), 0o644);
        assert_eq!(entries(dir.path()), vec!["new.dcm", "old.dcm"]);
    }

    #[test]
    fn missing_folders_are_created_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b/report.xml");
        let err = AtomicFile::new(&target).write_bytes(b"x").unwrap_err();
        assert!(matches!(err, AtomicWriteError::TempFile { .. }), "{err}");
        AtomicFile::new(&target)
            .create_parent_dirs(true)
            .write_bytes(b"x")
            .unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"x");
    }

    #[test]
    fn a_named_temp_file_carries_the_prefix_and_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("image.dcm");
        let seen = std::cell::RefCell::new(String::new());
        AtomicFile::new(&target)
            .temp_name(".tagutil-", ".tmp")
            .before_rename(&|temp| {
                *seen.borrow_mut() = temp.file_name().unwrap().to_string_lossy().into_owned();
                Ok(())
            })
            .write_bytes(b"x")
            .unwrap();
        let name = seen.borrow();
        assert!(
            name.starts_with(".tagutil-") && name.ends_with(".tmp"),
            "{name}"
        );
    }
}
