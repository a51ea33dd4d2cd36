//! The EVS service for Rust callers: one [`Evs`] per library handle.
//!
//! An [`Evs`] wraps a [`Connection`] to the local executive's EVS engine
//! and speaks [`proto::evs`]: join and leave groups, multicast to the
//! joined groups or to named ones, read the membership; delivered messages
//! and configuration changes come back as [`EvsCallback`]s taken with
//! [`Evs::next_callback`]. The C functions of `evs.h` (in `ffi::evs`) are
//! this type plus pointer checks.
//!
//! openais's `EVS_ERR_TOO_MANY_GROUPS` (more than
//! [`MAX_GROUPS_PER_CALL`] groups in one call) is not an `SaAisErrorT`; it
//! is [`EvsError::TooManyGroups`], decided here before anything is sent.

use std::os::fd::{AsFd, BorrowedFd};

use proto::evs::{
    ConfChg, Deliver, EvsGuarantee, Group, Groups, McastGroups, McastJoined, Membership,
    CB_CONFCHG, CB_DELIVER, JOIN, LEAVE, MAX_GROUPS_PER_CALL, MAX_MSG_BYTES, MCAST_GROUPS,
    MCAST_JOINED, MEMBERSHIP_GET,
};
use proto::{AisError, ServiceId};
use thiserror::Error;

use crate::client::{ClientConfig, Connection};

/// Why an EVS call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum EvsError {
    /// An SA Forum error (the executive's, or the connection's).
    #[error(transparent)]
    Ais(#[from] AisError),
    /// More than [`MAX_GROUPS_PER_CALL`] groups in one call
    /// (`EVS_ERR_TOO_MANY_GROUPS`).
    #[error("EVS_ERR_TOO_MANY_GROUPS: more than {MAX_GROUPS_PER_CALL} groups in one call")]
    TooManyGroups,
}

/// A callback from the EVS engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvsCallback {
    /// A message for one of this connection's groups (`evs_deliver_fn`).
    Deliver(Deliver),
    /// A configuration change (`evs_confchg_fn`).
    ConfChg(ConfChg),
}

/// A connection to the EVS service.
#[derive(Debug)]
pub struct Evs {
    conn: Connection,
}

impl Evs {
    /// Connects to the EVS service of the executive at
    /// [`crate::client::socket_path`].
    ///
    /// # Errors
    /// As [`Connection::connect`]: `SA_AIS_ERR_TRY_AGAIN` when the executive
    /// is not running, ACCESS, VERSION, NOT_SUPPORTED, NO_RESOURCES,
    /// TIMEOUT, LIBRARY.
    pub fn connect() -> Result<Evs, EvsError> {
        Evs::connect_with(&ClientConfig::default())
    }

    /// As [`Evs::connect`], with `config`.
    ///
    /// # Errors
    /// As [`Evs::connect`].
    pub fn connect_with(config: &ClientConfig) -> Result<Evs, EvsError> {
        let conn = Connection::connect_with(config, ServiceId::Evs, proto::evs::VERSION)?;
        Ok(Evs { conn })
    }

    /// The selection object: readable when a callback may be waiting.
    pub fn selection(&self) -> BorrowedFd<'_> {
        self.conn.as_fd()
    }

    /// Joins `groups` (already joined ones stay joined).
    ///
    /// # Errors
    /// [`EvsError::TooManyGroups`]; `SA_AIS_ERR_NO_RESOURCES` (from the
    /// executive) past its per-connection maximum; the connection's errors.
    pub fn join(&mut self, groups: &[Group]) -> Result<(), EvsError> {
        self.groups_request(JOIN, groups)
    }

    /// Leaves `groups`.
    ///
    /// # Errors
    /// [`EvsError::TooManyGroups`]; `SA_AIS_ERR_NOT_EXIST` (from the
    /// executive) if one of them is not joined (then none is left); the
    /// connection's errors.
    pub fn leave(&mut self, groups: &[Group]) -> Result<(), EvsError> {
        self.groups_request(LEAVE, groups)
    }

    /// Multicasts the concatenation of `parts` to the groups this
    /// connection has joined.
    ///
    /// The multicast is *posted* ([`Connection::post`]): this returns once
    /// the executive has the message, without waiting for its answer, so a
    /// sender keeps up to [`crate::client::ClientConfig::post_window`]
    /// multicasts on their way. The executive holds them while it syncs or
    /// its queue is full, and sends them in order.
    ///
    /// # Errors
    /// `SA_AIS_ERR_TOO_BIG` above [`MAX_MSG_BYTES`]; `SA_AIS_ERR_TRY_AGAIN`
    /// when the window stayed full for the timeout, or deliveries read
    /// while it was full fill half the callback queue (dispatch, then send
    /// again); an error the executive
    /// answered to an earlier multicast (see [`Connection::post`]); the
    /// connection's errors.
    pub fn mcast_joined(
        &mut self,
        guarantee: EvsGuarantee,
        parts: &[&[u8]],
    ) -> Result<(), EvsError> {
        let prefix = McastJoined::prefix(guarantee, message_len(parts)?);
        self.post_message(MCAST_JOINED, prefix, parts)
    }

    /// Multicasts the concatenation of `parts` to `groups` (this
    /// connection need not have joined them).
    ///
    /// # Errors
    /// As [`Evs::mcast_joined`], and [`EvsError::TooManyGroups`].
    pub fn mcast_groups(
        &mut self,
        guarantee: EvsGuarantee,
        groups: &[Group],
        parts: &[&[u8]],
    ) -> Result<(), EvsError> {
        check_group_count(groups.len())?;
        let prefix = McastGroups::prefix(guarantee, groups, message_len(parts)?);
        self.post_message(MCAST_GROUPS, prefix, parts)
    }

    /// Posts request `id`: the request's fields (`prefix`, `None` if the
    /// message is too big), then the message's `parts`, copied once into
    /// the frame.
    fn post_message(
        &mut self,
        id: u16,
        prefix: Option<bytes::Bytes>,
        parts: &[&[u8]],
    ) -> Result<(), EvsError> {
        let prefix = prefix.ok_or(EvsError::Ais(AisError::TooBig))?;
        let frame_parts: Vec<&[u8]> = std::iter::once(&prefix[..])
            .chain(parts.iter().copied())
            .collect();
        self.conn
            .post_parts(id, &frame_parts)
            .map_err(EvsError::Ais)
    }

    /// This node's id and the members of the last configuration.
    ///
    /// # Errors
    /// The connection's errors.
    pub fn membership_get(&mut self) -> Result<Membership, EvsError> {
        let body = self.conn.request(MEMBERSHIP_GET, &[])?.into_result()?;
        Membership::decode(&body).map_err(|_| EvsError::Ais(AisError::Library))
    }

    /// The next callback; with `blocking`, waits for one.
    ///
    /// # Errors
    /// `SA_AIS_ERR_LIBRARY` if the connection broke or the executive sent a
    /// callback this library cannot decode.
    pub fn next_callback(&mut self, blocking: bool) -> Result<Option<EvsCallback>, EvsError> {
        let Some(frame) = self.conn.recv_callback(blocking)? else {
            return Ok(None);
        };
        let callback = match frame.id {
            CB_DELIVER => Deliver::decode(&frame.body).map(EvsCallback::Deliver),
            CB_CONFCHG => ConfChg::decode(&frame.body).map(EvsCallback::ConfChg),
            _ => return Err(EvsError::Ais(AisError::Library)),
        };
        callback
            .map(Some)
            .map_err(|_| EvsError::Ais(AisError::Library))
    }

    fn groups_request(&mut self, id: u16, groups: &[Group]) -> Result<(), EvsError> {
        check_group_count(groups.len())?;
        let body = Groups {
            groups: groups.to_vec(),
        }
        .encode();
        self.simple_request(id, &body)
    }

    fn simple_request(&mut self, id: u16, body: &[u8]) -> Result<(), EvsError> {
        self.conn.request(id, body)?.into_result()?;
        Ok(())
    }
}

/// [`EvsError::TooManyGroups`] above [`MAX_GROUPS_PER_CALL`].
fn check_group_count(n: usize) -> Result<(), EvsError> {
    if n > MAX_GROUPS_PER_CALL {
        Err(EvsError::TooManyGroups)
    } else {
        Ok(())
    }
}

/// The length of the message made of `parts`, refusing more than
/// [`MAX_MSG_BYTES`] before anything is copied. The parts go into the
/// request frame as they are, behind the request's fields: one copy.
fn message_len(parts: &[&[u8]]) -> Result<usize, EvsError> {
    parts
        .iter()
        .try_fold(0usize, |sum, p| sum.checked_add(p.len()))
        .filter(|&n| n <= MAX_MSG_BYTES)
        .ok_or(EvsError::Ais(AisError::TooBig))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_parts_are_bounded_before_anything_is_copied() {
        assert_eq!(message_len(&[b"ab", b"", b"cde"]), Ok(5));
        let big = vec![0u8; MAX_MSG_BYTES];
        assert_eq!(message_len(&[&big]), Ok(MAX_MSG_BYTES));
        assert_eq!(
            message_len(&[&big, b"x"]),
            Err(EvsError::Ais(AisError::TooBig))
        );
    }

    #[test]
    fn more_than_fifty_groups_is_too_many() {
        assert_eq!(check_group_count(MAX_GROUPS_PER_CALL), Ok(()));
        assert_eq!(
            check_group_count(MAX_GROUPS_PER_CALL + 1),
            Err(EvsError::TooManyGroups)
        );
    }
}
