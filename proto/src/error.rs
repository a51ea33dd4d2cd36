//! `SaAisErrorT`: the SA Forum AIS error codes (B.01.01, `saAis.h`).
//!
//! On the wire a frame carries a `u32` status: [`SA_AIS_OK`] (1) or one of the
//! [`AisError`] codes. In Rust the status is a [`Status`]
//! (`Result<(), AisError>`), so "OK" is not an error variant and the
//! compiler makes every caller look at failures.

use thiserror::Error;

/// `SA_AIS_OK`: the value of a successful status on the wire and in C.
pub const SA_AIS_OK: u32 = 1;

/// The status a frame carries: `Ok(())` is `SA_AIS_OK`.
pub type Status = Result<(), AisError>;

/// An SA Forum AIS error (`SaAisErrorT` without `SA_AIS_OK`); the
/// discriminant is the C value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Error)]
#[repr(u32)]
pub enum AisError {
    /// `SA_AIS_ERR_LIBRARY`: an unexpected problem in the library (the
    /// connection to the executive broke, a malformed reply).
    #[error("SA_AIS_ERR_LIBRARY: unexpected library error")]
    Library = 2,
    /// `SA_AIS_ERR_VERSION`: the requested interface version is not supported.
    #[error("SA_AIS_ERR_VERSION: version not supported")]
    Version = 3,
    /// `SA_AIS_ERR_INIT`: a callback was needed but not given at initialize.
    #[error("SA_AIS_ERR_INIT: not initialized for this callback")]
    Init = 4,
    /// `SA_AIS_ERR_TIMEOUT`: the call did not complete in time (it may still
    /// take effect).
    #[error("SA_AIS_ERR_TIMEOUT: timed out")]
    Timeout = 5,
    /// `SA_AIS_ERR_TRY_AGAIN`: the service cannot be provided now; retry later.
    #[error("SA_AIS_ERR_TRY_AGAIN: try again later")]
    TryAgain = 6,
    /// `SA_AIS_ERR_INVALID_PARAM`: a parameter is not valid.
    #[error("SA_AIS_ERR_INVALID_PARAM: invalid parameter")]
    InvalidParam = 7,
    /// `SA_AIS_ERR_NO_MEMORY`: out of memory.
    #[error("SA_AIS_ERR_NO_MEMORY: out of memory")]
    NoMemory = 8,
    /// `SA_AIS_ERR_BAD_HANDLE`: the handle is not (or no longer) valid.
    #[error("SA_AIS_ERR_BAD_HANDLE: invalid handle")]
    BadHandle = 9,
    /// `SA_AIS_ERR_BUSY`: the resource is in use.
    #[error("SA_AIS_ERR_BUSY: resource busy")]
    Busy = 10,
    /// `SA_AIS_ERR_ACCESS`: access denied (credentials not allowed).
    #[error("SA_AIS_ERR_ACCESS: access denied")]
    Access = 11,
    /// `SA_AIS_ERR_NOT_EXIST`: the entity does not exist.
    #[error("SA_AIS_ERR_NOT_EXIST: does not exist")]
    NotExist = 12,
    /// `SA_AIS_ERR_NAME_TOO_LONG`: a name exceeds its maximum length.
    #[error("SA_AIS_ERR_NAME_TOO_LONG: name too long")]
    NameTooLong = 13,
    /// `SA_AIS_ERR_EXIST`: the entity already exists.
    #[error("SA_AIS_ERR_EXIST: already exists")]
    Exist = 14,
    /// `SA_AIS_ERR_NO_SPACE`: the buffer or storage given is too small.
    #[error("SA_AIS_ERR_NO_SPACE: no space")]
    NoSpace = 15,
    /// `SA_AIS_ERR_INTERRUPT`: the call was interrupted.
    #[error("SA_AIS_ERR_INTERRUPT: interrupted")]
    Interrupt = 16,
    /// `SA_AIS_ERR_NAME_NOT_FOUND`: no entity of that name.
    #[error("SA_AIS_ERR_NAME_NOT_FOUND: name not found")]
    NameNotFound = 17,
    /// `SA_AIS_ERR_NO_RESOURCES`: out of a resource other than memory
    /// (connections, queue space).
    #[error("SA_AIS_ERR_NO_RESOURCES: no resources")]
    NoResources = 18,
    /// `SA_AIS_ERR_NOT_SUPPORTED`: the operation or service is not supported
    /// (for a connection: the service is not loaded).
    #[error("SA_AIS_ERR_NOT_SUPPORTED: not supported")]
    NotSupported = 19,
    /// `SA_AIS_ERR_BAD_OPERATION`: the operation is not allowed now.
    #[error("SA_AIS_ERR_BAD_OPERATION: bad operation")]
    BadOperation = 20,
    /// `SA_AIS_ERR_FAILED_OPERATION`: the operation failed.
    #[error("SA_AIS_ERR_FAILED_OPERATION: operation failed")]
    FailedOperation = 21,
    /// `SA_AIS_ERR_MESSAGE_ERROR`: a communication error in the cluster.
    #[error("SA_AIS_ERR_MESSAGE_ERROR: message error")]
    MessageError = 22,
    /// `SA_AIS_ERR_QUEUE_FULL`: the destination queue is full.
    #[error("SA_AIS_ERR_QUEUE_FULL: queue full")]
    QueueFull = 23,
    /// `SA_AIS_ERR_QUEUE_NOT_AVAILABLE`: the destination queue is not there.
    #[error("SA_AIS_ERR_QUEUE_NOT_AVAILABLE: queue not available")]
    QueueNotAvailable = 24,
    /// `SA_AIS_ERR_BAD_FLAGS`: the flags are not valid.
    #[error("SA_AIS_ERR_BAD_FLAGS: bad flags")]
    BadFlags = 25,
    /// `SA_AIS_ERR_TOO_BIG`: a value exceeds its maximum size.
    #[error("SA_AIS_ERR_TOO_BIG: too big")]
    TooBig = 26,
    /// `SA_AIS_ERR_NO_SECTIONS`: no (more) sections.
    #[error("SA_AIS_ERR_NO_SECTIONS: no sections")]
    NoSections = 27,
}

impl AisError {
    /// Every variant, in code order.
    pub const ALL: [AisError; 26] = [
        AisError::Library,
        AisError::Version,
        AisError::Init,
        AisError::Timeout,
        AisError::TryAgain,
        AisError::InvalidParam,
        AisError::NoMemory,
        AisError::BadHandle,
        AisError::Busy,
        AisError::Access,
        AisError::NotExist,
        AisError::NameTooLong,
        AisError::Exist,
        AisError::NoSpace,
        AisError::Interrupt,
        AisError::NameNotFound,
        AisError::NoResources,
        AisError::NotSupported,
        AisError::BadOperation,
        AisError::FailedOperation,
        AisError::MessageError,
        AisError::QueueFull,
        AisError::QueueNotAvailable,
        AisError::BadFlags,
        AisError::TooBig,
        AisError::NoSections,
    ];

    /// The `SaAisErrorT` value.
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The error with SaAisErrorT value `code`; `None` for `SA_AIS_OK` and
    /// for values this version does not know.
    pub fn from_code(code: u32) -> Option<AisError> {
        let index = usize::try_from(code.checked_sub(AisError::Library.code())?).ok()?;
        AisError::ALL.get(index).copied()
    }

    /// The C name, e.g. `"SA_AIS_ERR_TRY_AGAIN"`.
    pub fn c_name(self) -> &'static str {
        match self {
            AisError::Library => "SA_AIS_ERR_LIBRARY",
            AisError::Version => "SA_AIS_ERR_VERSION",
            AisError::Init => "SA_AIS_ERR_INIT",
            AisError::Timeout => "SA_AIS_ERR_TIMEOUT",
            AisError::TryAgain => "SA_AIS_ERR_TRY_AGAIN",
            AisError::InvalidParam => "SA_AIS_ERR_INVALID_PARAM",
            AisError::NoMemory => "SA_AIS_ERR_NO_MEMORY",
            AisError::BadHandle => "SA_AIS_ERR_BAD_HANDLE",
            AisError::Busy => "SA_AIS_ERR_BUSY",
            AisError::Access => "SA_AIS_ERR_ACCESS",
            AisError::NotExist => "SA_AIS_ERR_NOT_EXIST",
            AisError::NameTooLong => "SA_AIS_ERR_NAME_TOO_LONG",
            AisError::Exist => "SA_AIS_ERR_EXIST",
            AisError::NoSpace => "SA_AIS_ERR_NO_SPACE",
            AisError::Interrupt => "SA_AIS_ERR_INTERRUPT",
            AisError::NameNotFound => "SA_AIS_ERR_NAME_NOT_FOUND",
            AisError::NoResources => "SA_AIS_ERR_NO_RESOURCES",
            AisError::NotSupported => "SA_AIS_ERR_NOT_SUPPORTED",
            AisError::BadOperation => "SA_AIS_ERR_BAD_OPERATION",
            AisError::FailedOperation => "SA_AIS_ERR_FAILED_OPERATION",
            AisError::MessageError => "SA_AIS_ERR_MESSAGE_ERROR",
            AisError::QueueFull => "SA_AIS_ERR_QUEUE_FULL",
            AisError::QueueNotAvailable => "SA_AIS_ERR_QUEUE_NOT_AVAILABLE",
            AisError::BadFlags => "SA_AIS_ERR_BAD_FLAGS",
            AisError::TooBig => "SA_AIS_ERR_TOO_BIG",
            AisError::NoSections => "SA_AIS_ERR_NO_SECTIONS",
        }
    }
}

/// The wire (and C) value of a status: [`SA_AIS_OK`] or the error's code.
pub const fn status_code(status: Status) -> u32 {
    match status {
        Ok(()) => SA_AIS_OK,
        Err(error) => error.code(),
    }
}

/// The status with wire value `code`; `None` if `code` is neither
/// [`SA_AIS_OK`] nor a known error.
pub fn status_from_code(code: u32) -> Option<Status> {
    if code == SA_AIS_OK {
        Some(Ok(()))
    } else {
        AisError::from_code(code).map(Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_sa_ais_h() {
        let table = [
            (AisError::Library, 2),
            (AisError::Version, 3),
            (AisError::Init, 4),
            (AisError::Timeout, 5),
            (AisError::TryAgain, 6),
            (AisError::InvalidParam, 7),
            (AisError::NoMemory, 8),
            (AisError::BadHandle, 9),
            (AisError::Busy, 10),
            (AisError::Access, 11),
            (AisError::NotExist, 12),
            (AisError::NameTooLong, 13),
            (AisError::Exist, 14),
            (AisError::NoSpace, 15),
            (AisError::Interrupt, 16),
            (AisError::NameNotFound, 17),
            (AisError::NoResources, 18),
            (AisError::NotSupported, 19),
            (AisError::BadOperation, 20),
            (AisError::FailedOperation, 21),
            (AisError::MessageError, 22),
            (AisError::QueueFull, 23),
            (AisError::QueueNotAvailable, 24),
            (AisError::BadFlags, 25),
            (AisError::TooBig, 26),
            (AisError::NoSections, 27),
        ];
        for (error, code) in table {
            assert_eq!(error.code(), code, "{error:?}");
            assert_eq!(AisError::from_code(code), Some(error));
            assert!(error.c_name().starts_with("SA_AIS_ERR_"));
            assert!(error.to_string().starts_with(error.c_name()));
        }
    }

    #[test]
    fn status_round_trips_and_rejects_unknown_codes() {
        assert_eq!(status_code(Ok(())), SA_AIS_OK);
        assert_eq!(status_from_code(SA_AIS_OK), Some(Ok(())));
        for error in AisError::ALL {
            assert_eq!(status_from_code(status_code(Err(error))), Some(Err(error)));
        }
        for code in [0, 28, 1000, u32::MAX] {
            assert_eq!(status_from_code(code), None);
            assert_eq!(AisError::from_code(code), None);
        }
        assert_eq!(AisError::from_code(SA_AIS_OK), None);
    }
}
