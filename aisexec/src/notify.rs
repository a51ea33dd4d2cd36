//! systemd's readiness protocol (`sd_notify(3)`): a datagram such as
//! `READY=1` to the Unix socket named by `$NOTIFY_SOCKET`. Written here
//! rather than linking libsystemd: it is one `sendto`.
//!
//! The daemon sends `READY=1` once the first sync after start completed
//! (the node is in a ring and its services are synchronized), `RELOADING=1`
//! and `READY=1` around a SIGHUP reload, and `STOPPING=1` when it leaves.
//! Without `$NOTIFY_SOCKET` (not started by systemd) nothing is sent.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `state` (newline-separated `KEY=VALUE` pairs) to systemd, if the
/// daemon runs under it. Returns whether a notification was sent.
///
/// # Errors
/// The socket named by `$NOTIFY_SOCKET` could not be reached.
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(socket) => notify_to(&socket, state).map(|()| true),
        None => Ok(false),
    }
}

/// Sends `state` to the notification socket `socket`: a path, or an
/// abstract socket name when it starts with `@`.
///
/// # Errors
/// As `sendto(2)`; an empty name is `InvalidInput`.
pub fn notify_to(socket: &OsStr, state: &str) -> io::Result<()> {
    let name = socket.as_bytes();
    let addr = match name {
        [] => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "empty NOTIFY_SOCKET",
            ))
        }
        [b'@', abstract_name @ ..] => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(abstract_name)?
        }
        _ => SocketAddr::from_pathname(socket)?,
    };
    let sock = UnixDatagram::unbound()?;
    sock.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_to_a_path_and_to_an_abstract_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify");
        let listener = UnixDatagram::bind(&path).expect("bind");
        notify_to(path.as_os_str(), "READY=1").expect("sent");
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).expect("received");
        assert_eq!(&buf[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("aisexec-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("name");
        let listener = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        notify_to(OsStr::new(&format!("@{name}")), "STOPPING=1").expect("sent");
        let n = listener.recv(&mut buf).expect("received");
        assert_eq!(&buf[..n], b"STOPPING=1");

        assert!(notify_to(OsStr::new(""), "READY=1").is_err());
    }
}
