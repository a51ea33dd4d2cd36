//! The CLM service for Rust callers: one [`Clm`] per library handle.
//!
//! A [`Clm`] wraps a [`Connection`] to the local executive's CLM engine and
//! speaks [`proto::clm`]: each call is one request and its response;
//! membership notifications and asynchronous node lookups come back as
//! [`ClmCallback`]s taken with [`Clm::next_callback`]. The C functions of
//! `saClm.h` (in `ffi::clm`) are this type plus pointer checks and struct
//! conversion.
//!
//! The library checks what it can without the executive (track flags) and
//! otherwise passes the executive's answer through: `SA_AIS_ERR_NOT_EXIST`
//! for a track stop without tracking or an unknown node, for instance.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use proto::clm::{
    ClusterNode, NodeGet, NodeGetAsync, NodeGetCallback, TrackCallback, TrackReply, TrackStart,
    CB_NODE_GET, CB_TRACK, NODE_GET, NODE_GET_ASYNC, TRACK_CHANGES, TRACK_CHANGES_ONLY,
    TRACK_CURRENT, TRACK_START, TRACK_STOP,
};
use proto::{AisError, ServiceId};

use crate::client::{ClientConfig, Connection};

/// The longest a single call waits, whatever timeout the caller asked for
/// (`SA_TIME_END` means "forever" in the spec; a blocked call holds its
/// handle, so it is bounded).
pub const MAX_CALL_TIMEOUT: Duration = Duration::from_secs(3600);

/// A callback from the CLM engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClmCallback {
    /// A membership notification (`saClmClusterTrackCallback`).
    Track(TrackCallback),
    /// The answer to [`Clm::node_get_async`] (`saClmClusterNodeGetCallback`).
    NodeGet(NodeGetCallback),
}

/// A connection to the CLM service.
#[derive(Debug)]
pub struct Clm {
    conn: Connection,
    /// The change-tracking flags the executive holds for this connection
    /// (`None`: not tracking), mirrored so a failed track call can be
    /// undone.
    tracking: Option<u8>,
}

impl Clm {
    /// Connects to the CLM service of the executive at
    /// [`crate::client::socket_path`].
    ///
    /// # Errors
    /// As [`Connection::connect`]: `SA_AIS_ERR_TRY_AGAIN` when the executive
    /// is not running, ACCESS, VERSION, NOT_SUPPORTED, NO_RESOURCES,
    /// TIMEOUT, LIBRARY.
    pub fn connect() -> Result<Clm, AisError> {
        Clm::connect_with(&ClientConfig::default())
    }

    /// As [`Clm::connect`], with `config`.
    ///
    /// # Errors
    /// As [`Clm::connect`].
    pub fn connect_with(config: &ClientConfig) -> Result<Clm, AisError> {
        let conn = Connection::connect_with(config, ServiceId::Clm, proto::clm::VERSION)?;
        Ok(Clm {
            conn,
            tracking: None,
        })
    }

    /// The selection object: readable when a callback may be waiting.
    pub fn selection(&self) -> BorrowedFd<'_> {
        self.conn.as_fd()
    }

    /// The change-tracking flags in force (`SA_TRACK_CHANGES` or
    /// `SA_TRACK_CHANGES_ONLY`), or `None` when not tracking.
    pub fn tracking(&self) -> Option<u8> {
        self.tracking
    }

    /// Starts tracking with `flags` (`SA_TRACK_*`). With `SA_TRACK_CURRENT`
    /// the current membership is returned, or sent as a track callback if
    /// `current_as_callback`; otherwise the result is `None`.
    ///
    /// # Errors
    /// `SA_AIS_ERR_BAD_FLAGS` for no flag, an unknown bit, or CHANGES with
    /// CHANGES_ONLY (checked before anything is sent); the executive's
    /// error; the connection's errors (see [`Connection::request`]).
    pub fn track(
        &mut self,
        flags: u8,
        current_as_callback: bool,
    ) -> Result<Option<TrackReply>, AisError> {
        check_track_flags(flags)?;
        let body = TrackStart {
            flags,
            current_as_callback,
        }
        .encode();
        let reply = self.conn.request(TRACK_START, &body)?.into_result()?;
        let changes = flags & (TRACK_CHANGES | TRACK_CHANGES_ONLY);
        if changes != 0 {
            self.tracking = Some(changes);
        }
        if flags & TRACK_CURRENT != 0 && !current_as_callback {
            TrackReply::decode(&reply)
                .map(Some)
                .map_err(|_| AisError::Library)
        } else {
            Ok(None)
        }
    }

    /// Puts change tracking back to `previous` (a value of
    /// [`Clm::tracking`] read before a [`Clm::track`] whose result the
    /// caller could not use).
    ///
    /// # Errors
    /// As [`Clm::track`] and [`Clm::track_stop`].
    pub fn restore_tracking(&mut self, previous: Option<u8>) -> Result<(), AisError> {
        if self.tracking == previous {
            return Ok(());
        }
        match previous {
            Some(flags) => self.track(flags, false).map(|_| ()),
            None => self.track_stop(),
        }
    }

    /// Stops tracking.
    ///
    /// # Errors
    /// `SA_AIS_ERR_NOT_EXIST` (from the executive) when not tracking; the
    /// connection's errors.
    pub fn track_stop(&mut self) -> Result<(), AisError> {
        let result = self.conn.request(TRACK_STOP, &[])?.into_result();
        if matches!(result, Ok(_) | Err(AisError::NotExist)) {
            self.tracking = None;
        }
        result.map(|_| ())
    }

    /// The record of node `node_id` ([`proto::clm::LOCAL_NODE_ID`]: this
    /// node), waiting at most `timeout` (and at most [`MAX_CALL_TIMEOUT`]).
    ///
    /// # Errors
    /// `SA_AIS_ERR_TIMEOUT` for a zero timeout or no answer in time;
    /// `SA_AIS_ERR_NOT_EXIST` for a node not in the cluster; the
    /// connection's errors.
    pub fn node_get(&mut self, node_id: u32, timeout: Duration) -> Result<ClusterNode, AisError> {
        if timeout.is_zero() {
            return Err(AisError::Timeout);
        }
        let saved = self.conn.timeout();
        self.conn.set_timeout(timeout.min(MAX_CALL_TIMEOUT));
        let result = self.conn.request(NODE_GET, &NodeGet { node_id }.encode());
        self.conn.set_timeout(saved);
        let body = result?.into_result()?;
        ClusterNode::decode(&body).map_err(|_| AisError::Library)
    }

    /// Asks for node `node_id`'s record; it comes as a
    /// [`ClmCallback::NodeGet`] carrying `invocation`.
    ///
    /// # Errors
    /// The connection's errors.
    pub fn node_get_async(&mut self, invocation: u64, node_id: u32) -> Result<(), AisError> {
        let body = NodeGetAsync {
            invocation,
            node_id,
        }
        .encode();
        self.conn
            .request(NODE_GET_ASYNC, &body)?
            .into_result()
            .map(|_| ())
    }

    /// The next callback; with `blocking`, waits for one.
    ///
    /// # Errors
    /// `SA_AIS_ERR_LIBRARY` if the connection broke or the executive sent a
    /// callback this library cannot decode.
    pub fn next_callback(&mut self, blocking: bool) -> Result<Option<ClmCallback>, AisError> {
        let Some(frame) = self.conn.recv_callback(blocking)? else {
            return Ok(None);
        };
        let callback = match frame.id {
            CB_TRACK => TrackCallback::decode(&frame.body).map(ClmCallback::Track),
            CB_NODE_GET => NodeGetCallback::decode(&frame.body).map(ClmCallback::NodeGet),
            _ => return Err(AisError::Library),
        };
        callback.map(Some).map_err(|_| AisError::Library)
    }
}

/// `SA_AIS_ERR_BAD_FLAGS` unless `flags` is a valid `SA_TRACK_*`
/// combination.
///
/// # Errors
/// `SA_AIS_ERR_BAD_FLAGS`.
pub fn check_track_flags(flags: u8) -> Result<(), AisError> {
    let known = TRACK_CURRENT | TRACK_CHANGES | TRACK_CHANGES_ONLY;
    let both = TRACK_CHANGES | TRACK_CHANGES_ONLY;
    if flags == 0 || flags & !known != 0 || flags & both == both {
        Err(AisError::BadFlags)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track_flags_are_checked_as_the_spec_says() {
        for ok in [1, 2, 3, 4, 5] {
            assert_eq!(check_track_flags(ok), Ok(()), "{ok:#x}");
        }
        for bad in [0, 6, 7, 8, 0x10, 0x81, 0xff] {
            assert_eq!(check_track_flags(bad), Err(AisError::BadFlags), "{bad:#x}");
        }
    }
}
