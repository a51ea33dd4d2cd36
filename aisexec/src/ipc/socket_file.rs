//! The listening socket's file: created safely, removed only if still ours.
//!
//! Binding goes through a temporary name in the same directory, which is
//! chmod-ed (and chown-ed to the configured group) before it is renamed to
//! the final path, so the socket is never reachable with the umask's
//! permissions. A file already at the path is replaced only if it is a
//! socket nobody listens on (a stale one left by a crash); a live socket or
//! a file that is not a socket stops the bind. On drop the file is removed
//! if the path still names our socket (same device and inode), so a newer
//! executive's socket is never deleted by an older one exiting.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::server::BindError;

/// Longest socket path (`sun_path` is 108 bytes with its NUL).
pub const MAX_SOCKET_PATH_BYTES: usize = 107;

/// A socket file this process created.
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    /// Binds a listening socket at `path` with permissions `mode`, owned by
    /// group `group` if given. The listener is blocking: the caller makes it
    /// non-blocking.
    pub(crate) fn bind(
        path: &Path,
        mode: u32,
        group: Option<u32>,
    ) -> Result<(UnixListener, SocketFile), BindError> {
        if path.as_os_str().len() > MAX_SOCKET_PATH_BYTES {
            return Err(BindError::PathTooLong(path.to_owned()));
        }
        let io_error = |what: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source: io::Error| BindError::Io { what, path, source }
        };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        fs::create_dir_all(dir).map_err(io_error("creating the socket directory", dir))?;
        check_stale(path)?;

        static NEXT: AtomicU64 = AtomicU64::new(0);
        let tmp = dir.join(format!(
            ".ais-{}-{}.tmp",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        if tmp.as_os_str().len() > MAX_SOCKET_PATH_BYTES {
            return Err(BindError::PathTooLong(tmp));
        }
        remove_if_exists(&tmp).map_err(io_error("removing an old temporary socket", &tmp))?;
        let listener = UnixListener::bind(&tmp).map_err(io_error("binding", &tmp))?;
        let placed = place(&tmp, path, mode, group);
        if placed.is_err() {
            // Best effort: the temporary name is ours and useless now.
            let _ = fs::remove_file(&tmp);
        }
        let file = placed?;
        Ok((listener, file))
    }

    /// The socket's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        match fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.dev() == self.dev && meta.ino() == self.ino => {
                if let Err(error) = fs::remove_file(&self.path) {
                    log::warn!(target: "IPC", "cannot remove {}: {error}", self.path.display());
                }
            }
            _ => {}
        }
    }
}

/// Refuses to replace a live socket or a file that is not a socket.
fn check_stale(path: &Path) -> Result<(), BindError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(BindError::Io {
                what: "inspecting the socket path",
                path: path.to_owned(),
                source,
            })
        }
    };
    if !meta.file_type().is_socket() {
        return Err(BindError::NotASocket(path.to_owned()));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(BindError::InUse(path.to_owned())),
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
            ) =>
        {
            log::info!(target: "IPC", "replacing stale socket {}", path.display());
            Ok(())
        }
        Err(source) => Err(BindError::Io {
            what: "probing the existing socket",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Sets the temporary socket's permissions and group, then renames it to
/// `path`.
fn place(tmp: &Path, path: &Path, mode: u32, group: Option<u32>) -> Result<SocketFile, BindError> {
    let io_error = |what: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source: io::Error| BindError::Io { what, path, source }
    };
    fs::set_permissions(tmp, fs::Permissions::from_mode(mode))
        .map_err(io_error("setting the socket's mode", tmp))?;
    if let Some(gid) = group {
        nix::unistd::chown(tmp, None, Some(nix::unistd::Gid::from_raw(gid))).map_err(|errno| {
            BindError::Io {
                what: "setting the socket's group",
                path: tmp.to_owned(),
                source: errno.into(),
            }
        })?;
    }
    fs::rename(tmp, path).map_err(io_error("renaming the socket into place", path))?;
    let meta = fs::symlink_metadata(path).map_err(io_error("inspecting the new socket", path))?;
    Ok(SocketFile {
        path: path.to_owned(),
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}
