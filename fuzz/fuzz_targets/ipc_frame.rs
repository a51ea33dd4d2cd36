//! Fuzzes the client IPC decoders of `proto`: the frame header and
//! [`proto::FrameReader`], the setup frames, and the status body.
//!
//! Nothing may panic. A frame that decodes must re-encode to exactly the
//! bytes it came from, whether it arrived whole or cut into pieces (the
//! first input byte picks the piece size, as a stream read would).

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::status::RingStatus;
use proto::{Frame, FrameReader, Hello, HelloReply};

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = Frame::decode(data) {
        assert_eq!(frame.encode().as_deref(), Ok(data));
        check_bodies(&frame);
    }

    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut reader = FrameReader::new();
    let mut consumed = 0;
    for piece in stream.chunks(chunk) {
        reader.feed(piece);
        loop {
            match reader.next_frame() {
                Ok(Some(frame)) => {
                    let bytes = frame.encode().expect("a decoded frame re-encodes");
                    assert_eq!(&bytes[..], &stream[consumed..consumed + bytes.len()]);
                    consumed += bytes.len();
                    check_bodies(&frame);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    assert_eq!(consumed + reader.buffered_bytes(), stream.len());
});

/// Every body decoder that could see this frame: none may panic; what
/// decodes re-encodes to the same frame.
fn check_bodies(frame: &Frame) {
    if let Ok(hello) = Hello::decode(frame) {
        assert_eq!(&hello.to_frame(), frame);
    }
    if let Ok(reply) = HelloReply::decode(frame) {
        assert_eq!(&reply.to_frame(frame.service), frame);
    }
    if let Ok(status) = RingStatus::decode(&frame.body) {
        assert_eq!(status.encode(), frame.body);
    }
}
