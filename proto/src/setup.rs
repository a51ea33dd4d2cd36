//! Connection setup: the first frame on a connection.
//!
//! The client sends a [`Hello`]: a Request frame with id [`SETUP_ID`] whose
//! header names the service and whose body is the interface version the
//! client wants (SA Forum `SaVersionT`: release code, major, minor; 3 bytes).
//! The executive answers with a [`HelloReply`], a Response frame with id
//! [`SETUP_ID`] whose status is
//! - `SA_AIS_OK`: the connection now talks to that service; the body is the
//!   version the executive will speak (3 bytes);
//! - `SA_AIS_ERR_VERSION`: the body is the version the executive supports;
//! - `SA_AIS_ERR_NOT_SUPPORTED`: the service is not loaded (or unknown);
//! - `SA_AIS_ERR_ACCESS`: the peer's credentials are not allowed; the
//!   executive sends this as soon as it accepts the connection, before the
//!   Hello is read, and then closes; its service field is 0;
//! - `SA_AIS_ERR_NO_RESOURCES`: too many connections; then closed.
//!
//! The body is empty for every error but VERSION.

use bytes::Bytes;
use thiserror::Error;

use crate::codec::{DecodeError, Decoder, Encoder};
use crate::error::{AisError, Status};
use crate::frame::{Frame, FrameKind};
use crate::service::{ServiceId, UnknownService};

/// The message id of setup frames; no service uses it for anything else.
pub const SETUP_ID: u16 = 0xFFFF;

/// An interface version, SA Forum `SaVersionT` style.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Version {
    /// The release code, an ASCII letter (`b'B'` for B.01.01).
    pub release_code: u8,
    /// The major version.
    pub major: u8,
    /// The minor version.
    pub minor: u8,
}

impl Version {
    /// SA Forum AIS B.01.01, the version the CLM and CKPT APIs implement.
    pub const B_01_01: Version = Version::new(b'B', 1, 1);

    /// A version.
    pub const fn new(release_code: u8, major: u8, minor: u8) -> Version {
        Version {
            release_code,
            major,
            minor,
        }
    }

    /// SA Forum version negotiation: a request is served by `supported` if
    /// the release codes are equal and the requested major version is at
    /// most the supported one. Returns the version to use (`supported`), or
    /// `Err(supported)` to tell the client what is.
    ///
    /// # Errors
    /// `Err(supported)` when the request cannot be served.
    pub fn negotiate(requested: Version, supported: Version) -> Result<Version, Version> {
        if requested.release_code == supported.release_code && requested.major <= supported.major {
            Ok(supported)
        } else {
            Err(supported)
        }
    }

    fn encode(self, enc: &mut Encoder) {
        enc.put_u8(self.release_code)
            .put_u8(self.major)
            .put_u8(self.minor);
    }

    fn decode(dec: &mut Decoder<'_>) -> Result<Version, DecodeError> {
        Ok(Version {
            release_code: dec.get_u8()?,
            major: dec.get_u8()?,
            minor: dec.get_u8()?,
        })
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = if self.release_code.is_ascii_graphic() {
            char::from(self.release_code)
        } else {
            '?'
        };
        write!(f, "{code}.{:02}.{:02}", self.major, self.minor)
    }
}

/// Why a frame is not the setup frame expected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SetupError {
    /// The frame is not a setup frame of the expected kind (a client that
    /// skipped its Hello, or a reply that is not one).
    #[error("expected a setup {expected:?} frame (id {SETUP_ID}), got {kind:?} id {id}")]
    NotSetup {
        /// The kind expected.
        expected: FrameKind,
        /// The frame's kind.
        kind: FrameKind,
        /// The frame's id.
        id: u16,
    },
    /// A setup request carrying a status (requests have none).
    #[error("a setup request carries status {0:?}")]
    StatusOnRequest(AisError),
    /// The Hello names a service this version does not know.
    #[error(transparent)]
    UnknownService(#[from] UnknownService),
    /// The body is malformed.
    #[error("malformed setup body: {0}")]
    Body(#[from] DecodeError),
}

impl SetupError {
    /// The status the executive answers a bad Hello with.
    pub fn status(&self) -> AisError {
        match self {
            SetupError::UnknownService(_) => AisError::NotSupported,
            SetupError::NotSetup { .. } | SetupError::StatusOnRequest(_) | SetupError::Body(_) => {
                AisError::InvalidParam
            }
        }
    }
}

/// The client's first frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The service this connection will talk to.
    pub service: ServiceId,
    /// The interface version the client was written for.
    pub version: Version,
}

impl Hello {
    /// The Hello as a frame.
    pub fn to_frame(&self) -> Frame {
        let mut enc = Encoder::new();
        self.version.encode(&mut enc);
        Frame::request(self.service, SETUP_ID, enc.finish())
    }

    /// The Hello as bytes on the wire.
    pub fn encode(&self) -> Bytes {
        encode_small(&self.to_frame())
    }

    /// Reads a Hello from a client's first frame.
    ///
    /// # Errors
    /// [`SetupError::NotSetup`] if it is not a setup request;
    /// [`SetupError::UnknownService`]; [`SetupError::Body`]. Answer with
    /// [`SetupError::status`].
    pub fn decode(frame: &Frame) -> Result<Hello, SetupError> {
        check_setup(frame, FrameKind::Request)?;
        let service = frame.service_id()?;
        let mut dec = Decoder::new(&frame.body);
        let version = Version::decode(&mut dec)?;
        dec.finish()?;
        Ok(Hello { service, version })
    }
}

/// The executive's answer to a [`Hello`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HelloReply {
    /// OK, or why the connection is refused.
    pub status: Status,
    /// With OK: the version the executive will speak; with VERSION: the one
    /// it supports; otherwise `None`.
    pub version: Option<Version>,
}

impl HelloReply {
    /// Accepts the connection, speaking `version`.
    pub fn accepted(version: Version) -> HelloReply {
        HelloReply {
            status: Ok(()),
            version: Some(version),
        }
    }

    /// Refuses the requested version; `supported` is what the executive has.
    pub fn version_mismatch(supported: Version) -> HelloReply {
        HelloReply {
            status: Err(AisError::Version),
            version: Some(supported),
        }
    }

    /// Refuses the connection with `error` (not VERSION: use
    /// [`HelloReply::version_mismatch`]).
    pub fn refused(error: AisError) -> HelloReply {
        HelloReply {
            status: Err(error),
            version: None,
        }
    }

    /// The reply as a frame on a connection to service number `service`.
    pub fn to_frame(&self, service: u16) -> Frame {
        let mut enc = Encoder::new();
        if let Some(version) = self.version {
            version.encode(&mut enc);
        }
        Frame::response(service, SETUP_ID, self.status, enc.finish())
    }

    /// The reply as bytes on the wire.
    pub fn encode(&self, service: u16) -> Bytes {
        encode_small(&self.to_frame(service))
    }

    /// Reads the executive's reply to a Hello.
    ///
    /// # Errors
    /// [`SetupError::NotSetup`] if it is not a setup response;
    /// [`SetupError::Body`] if the body does not match the status.
    pub fn decode(frame: &Frame) -> Result<HelloReply, SetupError> {
        check_setup(frame, FrameKind::Response)?;
        let mut dec = Decoder::new(&frame.body);
        let version = match frame.status {
            Ok(()) | Err(AisError::Version) => Some(Version::decode(&mut dec)?),
            Err(_) => None,
        };
        dec.finish()?;
        Ok(HelloReply {
            status: frame.status,
            version,
        })
    }
}

fn check_setup(frame: &Frame, expected: FrameKind) -> Result<(), SetupError> {
    if frame.kind == expected && frame.id == SETUP_ID {
        // A request carries no status: a Hello with one is malformed (and
        // would not re-encode to the frame it came from).
        if let (FrameKind::Request, Err(status)) = (expected, frame.status) {
            return Err(SetupError::StatusOnRequest(status));
        }
        Ok(())
    } else {
        Err(SetupError::NotSetup {
            expected,
            kind: frame.kind,
            id: frame.id,
        })
    }
}

/// Encodes a frame whose body is a few bytes.
fn encode_small(frame: &Frame) -> Bytes {
    // Upheld here: setup bodies are at most 3 bytes, far below the maximum.
    frame
        .encode()
        .expect("a setup frame is far below the maximum frame size")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hello_round_trips() {
        for service in ServiceId::ALL {
            let hello = Hello {
                service,
                version: Version::B_01_01,
            };
            let frame = Frame::decode(&hello.encode()).unwrap();
            assert_eq!(frame.id, SETUP_ID);
            assert_eq!(frame.kind, FrameKind::Request);
            assert_eq!(Hello::decode(&frame), Ok(hello));
        }
    }

    #[test]
    fn replies_round_trip() {
        let replies = [
            HelloReply::accepted(Version::B_01_01),
            HelloReply::version_mismatch(Version::new(b'B', 2, 0)),
            HelloReply::refused(AisError::NotSupported),
            HelloReply::refused(AisError::Access),
            HelloReply::refused(AisError::NoResources),
        ];
        for reply in replies {
            let frame = Frame::decode(&reply.encode(7)).unwrap();
            assert_eq!(frame.service, 7);
            assert_eq!(HelloReply::decode(&frame), Ok(reply));
        }
    }

    #[test]
    fn a_hello_with_a_status_is_refused() {
        // Found by the ipc_frame fuzz target: a setup request carrying
        // TIMEOUT decoded as a Hello and re-encoded without it.
        let mut frame = Hello {
            service: ServiceId::Evs,
            version: Version::B_01_01,
        }
        .to_frame();
        frame.status = Err(AisError::Timeout);
        let error = Hello::decode(&frame).unwrap_err();
        assert_eq!(error, SetupError::StatusOnRequest(AisError::Timeout));
        assert_eq!(error.status(), AisError::InvalidParam);
    }

    #[test]
    fn bad_hellos_get_the_right_status() {
        let mut frame = Hello {
            service: ServiceId::Clm,
            version: Version::B_01_01,
        }
        .to_frame();
        frame.service = 2;
        let error = Hello::decode(&frame).unwrap_err();
        assert_eq!(error, SetupError::UnknownService(UnknownService(2)));
        assert_eq!(error.status(), AisError::NotSupported);

        frame.service = ServiceId::Clm.code();
        frame.id = 0;
        assert_eq!(
            Hello::decode(&frame).unwrap_err().status(),
            AisError::InvalidParam
        );

        frame.id = SETUP_ID;
        frame.body = Bytes::from_static(b"B\x01");
        assert!(matches!(Hello::decode(&frame), Err(SetupError::Body(_))));
        frame.body = Bytes::from_static(b"B\x01\x01\x00");
        assert!(matches!(Hello::decode(&frame), Err(SetupError::Body(_))));

        // A Hello is not a reply and the other way round.
        let hello = Hello {
            service: ServiceId::Clm,
            version: Version::B_01_01,
        }
        .to_frame();
        assert!(matches!(
            HelloReply::decode(&hello),
            Err(SetupError::NotSetup { .. })
        ));
    }

    #[test]
    fn negotiation_follows_sa_forum() {
        let supported = Version::B_01_01;
        assert_eq!(
            Version::negotiate(Version::new(b'B', 1, 0), supported),
            Ok(supported)
        );
        assert_eq!(
            Version::negotiate(Version::new(b'B', 1, 9), supported),
            Ok(supported)
        );
        assert_eq!(
            Version::negotiate(Version::new(b'B', 2, 1), supported),
            Err(supported)
        );
        assert_eq!(
            Version::negotiate(Version::new(b'A', 1, 1), supported),
            Err(supported)
        );
        assert_eq!(Version::B_01_01.to_string(), "B.01.01");
    }

    proptest! {
        #[test]
        fn arbitrary_setup_frames_never_panic(
            kind in 1u8..=3,
            service in any::<u16>(),
            status in 1u32..=27,
            body in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let frame = Frame {
                kind: FrameKind::from_code(kind).unwrap(),
                service,
                id: SETUP_ID,
                status: crate::error::status_from_code(status).unwrap(),
                body: Bytes::from(body),
            };
            if let Ok(hello) = Hello::decode(&frame) {
                prop_assert_eq!(hello.to_frame(), frame.clone());
            }
            if let Ok(reply) = HelloReply::decode(&frame) {
                prop_assert_eq!(reply.to_frame(service), frame);
            }
        }
    }
}
