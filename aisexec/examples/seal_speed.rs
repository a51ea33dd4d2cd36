//! How fast each cipher seals and opens one datagram on this machine
//! (what chose the default `crypto_cipher`; see docs/security.md):
//!
//! ```text
//! cargo run --release -p aisexec --example seal_speed
//! ```
//!
//! For each cipher and datagram size, seals with one node's keys and opens
//! with another's, as the transport does, for about 200 MB of packets.

use std::time::Instant;

use aisexec::ring_crypto::{Cipher, KdfHash, KeyMaterial, RingCrypto, SecureRing};
use bytes::BytesMut;

/// Datagram sizes: a token, a full 1500-byte frame, a jumbo packet, the
/// loopback/default-netmtu datagram.
const SIZES: [usize; 4] = [100, 1452, 9000, 65_000];
/// Bytes sealed per measurement.
const BYTES_PER_RUN: usize = 200_000_000;

fn main() {
    let key = KeyMaterial::from_bytes(&[1; 64]);
    for cipher in Cipher::ALL {
        let settings = SecureRing {
            cipher,
            hash: KdfHash::Sha256,
            keyfile: "/unused".into(),
        };
        let (Ok(mut a), Ok(mut b)) = (
            RingCrypto::from_material(1, settings.clone(), &key, None),
            RingCrypto::from_material(2, settings, &key, None),
        ) else {
            eprintln!("seal_speed: no keys for {cipher}");
            return;
        };
        for size in SIZES {
            let packet = vec![7u8; size];
            let n = BYTES_PER_RUN / size;
            let mut opened = 0;
            let start = Instant::now();
            for _ in 0..n {
                // As the transport: sealed into a reused buffer, received
                // into a buffer of its own and opened there in place.
                let sealed = BytesMut::from(a.seal(&packet));
                opened += usize::from(b.open(1, sealed).is_some());
            }
            let secs = start.elapsed().as_secs_f64();
            assert_eq!(opened, n, "every datagram opens");
            println!(
                "{:<20} {size:>5} bytes: {:>8.2} us per seal + open, {:>6.0} MB/s",
                cipher.to_string(),
                secs / n as f64 * 1e6,
                (n * size) as f64 / secs / 1e6
            );
        }
    }
}
