//! `ais-keygen`: writes a new ring key for `totem { secauth }`.
//!
//! ```text
//! ais-keygen [-o PATH] [--force]
//! ```
//!
//! Writes [`KEY_BYTES`] bytes from the operating system's random generator
//! to PATH (default `/etc/ais/authkey`, the daemon's default `keyfile`)
//! with mode 0400, owned by the user running it. The file appears whole or
//! not at all: the key is written and synced under a temporary name in
//! the same directory, then linked into place (which fails if PATH exists)
//! or, with `--force`, renamed over it. Copy the file to every node, at
//! the path their config names, mode 0400.
//!
//! Exit codes: 0 when written; 1 when PATH exists (without `--force`) or
//! the file cannot be written; 2 for a bad command line.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;

/// Bytes of key written (1024 bits; the daemon accepts 32 to 4096).
const KEY_BYTES: usize = 128;
/// Where the daemon looks when `keyfile` is not set.
const DEFAULT_PATH: &str = "/etc/ais/authkey";

/// Write a new random ring key (mode 0400) for aisexec's secauth.
#[derive(Debug, Parser)]
#[command(name = "ais-keygen", version)]
struct Cli {
    /// Where to write the key.
    #[arg(short = 'o', long = "output", value_name = "PATH", default_value = DEFAULT_PATH)]
    output: PathBuf,
    /// Replace an existing key file.
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match write_key(&cli.output, cli.force) {
        Ok(()) => {
            println!(
                "ais-keygen: wrote a {KEY_BYTES}-byte random key to {} (mode 0400); \
                 copy it to every node, at the path of their `totem {{ keyfile }}`",
                cli.output.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ais-keygen: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why no key was written.
#[derive(Debug, thiserror::Error)]
enum KeygenError {
    #[error("{} exists; pass --force to replace it (every node needs the new key then: see the rekey procedure in docs/security.md)", .0.display())]
    Exists(PathBuf),
    #[error("the OS random generator failed: {0}")]
    Random(getrandom::Error),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

fn write_key(path: &Path, force: bool) -> Result<(), KeygenError> {
    let io_error = |what: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source: io::Error| KeygenError::Io { what, path, source }
    };
    if !force && fs::symlink_metadata(path).is_ok() {
        return Err(KeygenError::Exists(path.to_owned()));
    }
    let mut key = vec![0u8; KEY_BYTES];
    getrandom::fill(&mut key).map_err(KeygenError::Random)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(io_error("cannot create the directory", dir))?;
    let name = path
        .file_name()
        .map_or_else(|| "authkey".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .open(&tmp)
            .map_err(io_error("cannot create", &tmp))?;
        // The umask may have taken bits away; no group or other bits
        // either way.
        file.set_permissions(fs::Permissions::from_mode(0o400))
            .map_err(io_error("cannot chmod", &tmp))?;
        file.write_all(&key)
            .map_err(io_error("cannot write", &tmp))?;
        file.sync_all().map_err(io_error("cannot sync", &tmp))?;
        if force {
            fs::rename(&tmp, path).map_err(io_error("cannot rename into", path))
        } else {
            // link() refuses an existing target: no race with another writer.
            fs::hard_link(&tmp, path).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    KeygenError::Exists(path.to_owned())
                } else {
                    KeygenError::Io {
                        what: "cannot link into",
                        path: path.to_owned(),
                        source: e,
                    }
                }
            })
        }
    })();
    // Best effort: after a rename the name is gone already.
    let _ = fs::remove_file(&tmp);
    key.fill(0);
    written?;
    // The new name is durable once its directory is synced.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn writes_a_private_random_key_and_never_overwrites_unless_forced() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("sub/authkey");
        write_key(&path, false).expect("written");
        let meta = fs::metadata(&path).expect("exists");
        assert_eq!(meta.mode() & 0o7777, 0o400);
        assert_eq!(meta.len(), KEY_BYTES as u64);
        let first = fs::read(&path).expect("read");
        assert!(first.iter().any(|&b| b != 0));

        assert!(matches!(
            write_key(&path, false),
            Err(KeygenError::Exists(_))
        ));
        assert_eq!(fs::read(&path).expect("read"), first, "untouched");

        write_key(&path, true).expect("forced");
        let second = fs::read(&path).expect("read");
        assert_eq!(second.len(), KEY_BYTES);
        assert_ne!(second, first, "a new random key");
        assert_eq!(fs::metadata(&path).expect("exists").mode() & 0o7777, 0o400);
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("sub"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("authkey")]);
    }
}
