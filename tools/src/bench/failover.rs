//! Failure detection: kill one daemon and time until the survivors see the
//! new configuration.
//!
//! Two clocks stop per survivor, as the corosync harness's two (`totem` and
//! `cpg` configuration changes):
//! - `detect_evs_ms`: an EVS client of the survivor gets a configuration
//!   change whose members no longer hold the victim (what an application
//!   sees; after the sync barrier);
//! - `detect_ring_ms`: the survivor's ring status (the CFG service, polled
//!   every [`RING_POLL`]) is operational without the victim.
//!
//! The victim is named by its socket; its pid comes from the pid file beside
//! it and must be an `aisexec`. This mode only kills; restarting the victim
//! is the caller's (`scripts/bench.sh` does it).

use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use ais::client::{ClientConfig, Connection};
use ais::evs::{Evs, EvsCallback};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use proto::status::{RingState, RingStatus, RING_STATUS, VERSION};
use proto::{AisError, ServiceId};

use super::daemon::Daemon;
use super::{BenchError, Line};

/// How often a survivor's ring status is asked.
pub const RING_POLL: Duration = Duration::from_millis(1);

/// A failure-detection run.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Every node's socket.
    pub sockets: Vec<PathBuf>,
    /// Index (into `sockets`) of the node to kill.
    pub victim: usize,
    /// SIGKILL or SIGTERM (any signal is accepted).
    pub signal: Signal,
    /// How long the survivors may take.
    pub timeout: Duration,
}

/// The ring status of the node at `socket`.
///
/// # Errors
/// As the CFG status request: TRY_AGAIN when no daemon listens, etc.
pub fn ring_status(socket: &Path) -> Result<RingStatus, AisError> {
    let config = ClientConfig::with_socket(socket);
    let mut conn = Connection::connect_with(&config, ServiceId::Cfg, VERSION)?;
    let body = conn.request(RING_STATUS, &[])?.into_result()?;
    RingStatus::decode(&body).map_err(|_| AisError::Library)
}

/// Waits until every socket's node is operational and synchronized with
/// `members` members; returns their statuses.
///
/// # Errors
/// [`BenchError::Timeout`] after `timeout`.
pub fn wait_ring(
    sockets: &[PathBuf],
    members: usize,
    timeout: Duration,
) -> Result<Vec<RingStatus>, BenchError> {
    let deadline = Instant::now() + timeout;
    loop {
        let all: Vec<_> = sockets.iter().map(|s| ring_status(s)).collect();
        let ready = all.iter().all(|r| {
            r.as_ref().is_ok_and(|s| {
                s.state == RingState::Operational && s.sync_done && s.members.len() == members
            })
        });
        if ready {
            return Ok(all.into_iter().filter_map(Result::ok).collect());
        }
        if Instant::now() >= deadline {
            return Err(BenchError::Timeout(format!(
                "no {members}-member synchronized ring in {timeout:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `spec`: one line per survivor.
///
/// # Errors
/// The ring is not whole, the victim's pid is unknown, the kill failed.
/// A survivor that saw nothing in time gets `NA` in its line instead.
pub fn run(spec: &Spec) -> Result<Vec<Line>, BenchError> {
    let n = spec.sockets.len();
    let victim_socket = spec
        .sockets
        .get(spec.victim)
        .ok_or_else(|| BenchError::Setup("the victim is not one of the sockets".into()))?;
    let statuses = wait_ring(&spec.sockets, n, Duration::from_secs(20))?;
    let victim_id = statuses[spec.victim].node_id;
    let daemon = Daemon::beside(victim_socket).ok_or_else(|| {
        BenchError::Setup(format!(
            "no running aisexec in the pid file beside {}",
            victim_socket.display()
        ))
    })?;
    let survivors: Vec<(&PathBuf, u32)> = spec
        .sockets
        .iter()
        .zip(&statuses)
        .enumerate()
        .filter(|(i, _)| *i != spec.victim)
        .map(|(_, (sock, st))| (sock, st.node_id))
        .collect();
    let armed = Barrier::new(survivors.len() * 2 + 1);
    let (kill_at, seen) = std::thread::scope(|scope| {
        let handles: Vec<_> = survivors
            .iter()
            .map(|&(socket, _)| {
                let armed = &armed;
                let evs = scope.spawn(move || watch_evs(socket, victim_id, armed, spec.timeout));
                let ring = scope.spawn(move || watch_ring(socket, victim_id, armed, spec.timeout));
                (evs, ring)
            })
            .collect();
        armed.wait();
        // The watchers are connected; give the EVS ones a moment to take
        // their first configuration (sent on connect).
        std::thread::sleep(Duration::from_millis(200));
        let kill_at = Instant::now();
        let killed = kill(
            Pid::from_raw(i32::try_from(daemon.pid).unwrap_or(0)),
            spec.signal,
        );
        let seen: Vec<(Option<Instant>, Option<Instant>)> = handles
            .into_iter()
            .map(|(e, r)| (e.join().ok().flatten(), r.join().ok().flatten()))
            .collect();
        (killed.map(|()| kill_at), seen)
    });
    let kill_at = kill_at.map_err(|e| BenchError::Io("kill", std::io::Error::from(e)))?;
    let ms =
        |t: Option<Instant>| t.map(|t| t.saturating_duration_since(kill_at).as_secs_f64() * 1000.0);
    Ok(survivors
        .iter()
        .zip(seen)
        .map(|(&(_, id), (evs, ring))| {
            Line::default()
                .put(
                    "result",
                    if evs.is_some() && ring.is_some() {
                        "ok"
                    } else {
                        "timeout"
                    },
                )
                .put("impl", "ais")
                .put("mode", "failover")
                .put("sig", spec.signal as i32)
                .put("victim", victim_id)
                .put("survivor", id)
                .num("detect_ring_ms", ms(ring), 1)
                .num("detect_evs_ms", ms(evs), 1)
        })
        .collect())
}

/// An EVS client of a survivor: when does a configuration without the
/// victim come?
fn watch_evs(socket: &Path, victim: u32, armed: &Barrier, timeout: Duration) -> Option<Instant> {
    let evs = Evs::connect_with(&ClientConfig::with_socket(socket));
    armed.wait();
    let mut evs = evs.ok()?;
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        {
            use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
            let mut fds = [PollFd::new(evs.selection(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(100u16));
        }
        let cb = evs.next_callback(false).ok()?;
        if let Some(EvsCallback::ConfChg(c)) = cb {
            if !c.members.contains(&victim) {
                return Some(Instant::now());
            }
        }
    }
    None
}

/// Polls a survivor's ring status: when is it operational without the
/// victim?
fn watch_ring(socket: &Path, victim: u32, armed: &Barrier, timeout: Duration) -> Option<Instant> {
    let config = ClientConfig::with_socket(socket);
    let connect = || Connection::connect_with(&config, ServiceId::Cfg, VERSION).ok();
    let mut conn = connect();
    armed.wait();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        // One connection, asked again and again; a new one if it broke.
        let status = match conn.as_mut() {
            Some(c) => c
                .request(RING_STATUS, &[])
                .and_then(|r| r.into_result())
                .ok()
                .and_then(|b| RingStatus::decode(&b).ok()),
            None => None,
        };
        match status {
            Some(s)
                if s.state == RingState::Operational
                    && !s.members.iter().any(|m| m.id == victim) =>
            {
                return Some(Instant::now());
            }
            Some(_) => {}
            None => conn = connect(),
        }
        std::thread::sleep(RING_POLL);
    }
    None
}
