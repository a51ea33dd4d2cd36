//! Ring security: every Totem datagram sealed with an AEAD under a key
//! shared by the cluster (`totem { secauth crypto_cipher crypto_hash
//! keyfile }`).
//!
//! Totem itself stays sans-IO and keeps its CRC framing; the seal is put
//! on at the transport boundary ([`crate`]'s daemon calls
//! [`RingCrypto::seal`] on each outgoing datagram and
//! [`RingCrypto::open`] on each incoming one). A datagram that does not
//! open is dropped and counted ([`CryptoStats`]), never parsed: Totem
//! sees only authentic packets from configured members.
//!
//! - [`settings`]: the config keys, validated into [`RingSecurity`].
//! - [`key_file`]: the key file, its checks, and the key derived from it.
//! - [`envelope`]: the sealed datagram's layout, the AEADs, the nonces.
//!
//! # Keys and rekeying
//! A node holds up to three keys: the *current* key (from `keyfile`),
//! which seals and opens; the *next* key (from `<keyfile>.next`, if that
//! file exists), which only opens; and the *previous* key, which opens for
//! [`PREVIOUS_KEY_GRACE`] after SIGHUP replaced it. A datagram is tried
//! with the current key first, so the others cost nothing in the steady
//! state. The procedure (also in `docs/security.md`):
//!
//! 1. Write the new key as `<keyfile>.next` on every node
//!    (`ais-keygen -o /etc/ais/authkey.next`, then copy it), and SIGHUP
//!    every node: each now opens both keys and still seals with the old.
//! 2. On every node, `mv <keyfile>.next <keyfile>` and SIGHUP it: it seals
//!    with the new key and opens the old one for the grace period, so the
//!    nodes not done yet still read it and it reads them. Finish step 2 on
//!    every node within [`PREVIOUS_KEY_GRACE`].
//!
//! No step stops the ring. Replacing `keyfile` directly and SIGHUPping
//! (one step) also works, but a node reads the others only once they are
//! switched too: if the nodes are not switched within a token timeout of
//! each other, the ring re-forms once they are.

pub mod envelope;
pub mod key_file;
pub mod settings;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

pub use envelope::{Cipher, Rejected};
pub use key_file::{KdfHash, KeyFileError, KeyMaterial, DEFAULT_KEYFILE};
pub use settings::{ring_security, RingSecurity, SecureRing, SecurityConfigError};

use envelope::{KeyError, PacketKey};

/// How long the key replaced by a rekey still opens datagrams.
pub const PREVIOUS_KEY_GRACE: Duration = Duration::from_secs(300);

/// Counters of the seal layer (shown by `ais-ring-status` as `crypto_*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CryptoStats {
    /// Datagrams sealed (once per transmit, whatever the number of peers).
    pub sealed: u64,
    /// Datagrams opened (with any key).
    pub opened: u64,
    /// Of those, opened with the next or the previous key (a rekey is
    /// under way somewhere in the cluster).
    pub opened_other_key: u64,
    /// Datagrams whose tag verified under no key: tampered with, or from
    /// a node with another key. Dropped.
    pub auth_failures: u64,
    /// Datagrams that are not sealed the way this node seals (too short,
    /// another magic, version or cipher; a plain Totem packet). Dropped.
    pub bad_envelope: u64,
    /// Authentic datagrams whose sender is not the node at their source
    /// address (replayed from another member's address). Dropped.
    pub sender_mismatch: u64,
    /// Key changes applied by SIGHUP.
    pub rekeys: u64,
}

/// Why keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The key file (or the next key file) is unusable.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// The packet key could not be made.
    #[error("cannot set up the ring key: {0}")]
    Key(#[from] KeyError),
}

/// A loaded key.
#[derive(Debug)]
struct Slot {
    key: PacketKey,
    fingerprint: String,
}

impl Slot {
    fn new(material: &KeyMaterial, cipher: Cipher, hash: KdfHash) -> Result<Slot, KeyError> {
        let derived = key_file::derive(material, cipher, hash);
        Ok(Slot {
            key: PacketKey::new(cipher, &derived.key)?,
            fingerprint: derived.fingerprint,
        })
    }
}

/// The keys of this node and the seal/open operations on datagrams.
#[derive(Debug)]
pub struct RingCrypto {
    me: u32,
    settings: SecureRing,
    current: Slot,
    next: Option<Slot>,
    previous: Option<(Slot, Instant)>,
    sealed: Vec<u8>,
    stats: CryptoStats,
}

impl RingCrypto {
    /// Loads the key file (and `<keyfile>.next` if present) of `settings`
    /// for node `me`.
    ///
    /// # Errors
    /// [`LoadError`]: the key file is missing, unreadable, exposed or of a
    /// bad length (the message names the path and `ais-keygen`).
    pub fn load(me: u32, settings: SecureRing) -> Result<RingCrypto, LoadError> {
        let current = key_file::read(&settings.keyfile)?;
        let next = read_optional(&settings.next_keyfile())?;
        RingCrypto::from_material(me, settings, &current, next.as_ref())
    }

    /// As [`RingCrypto::load`], with the key bytes given.
    ///
    /// # Errors
    /// The OS random generator failed.
    pub fn from_material(
        me: u32,
        settings: SecureRing,
        current: &KeyMaterial,
        next: Option<&KeyMaterial>,
    ) -> Result<RingCrypto, LoadError> {
        let current = Slot::new(current, settings.cipher, settings.hash)?;
        let next = match next {
            Some(m) => Some(Slot::new(m, settings.cipher, settings.hash)?)
                .filter(|n| n.fingerprint != current.fingerprint),
            None => None,
        };
        Ok(RingCrypto {
            me,
            settings,
            current,
            next,
            previous: None,
            sealed: Vec::with_capacity(crate_max_datagram()),
            stats: CryptoStats::default(),
        })
    }

    /// The settings the keys were loaded with.
    pub fn settings(&self) -> &SecureRing {
        &self.settings
    }

    /// One line for the log: cipher, key fingerprints, key file.
    pub fn describe(&self) -> String {
        let mut line = format!(
            "{} with HKDF-{}, key {} from {}",
            self.settings.cipher,
            self.settings.hash.name().to_uppercase(),
            self.current.fingerprint,
            self.settings.keyfile.display()
        );
        if let Some(next) = &self.next {
            line.push_str(&format!(
                "; next key {} from {} (opens only)",
                next.fingerprint,
                self.settings.next_keyfile().display()
            ));
        }
        if let Some((prev, _)) = &self.previous {
            line.push_str(&format!(
                "; previous key {} (opens during the grace period)",
                prev.fingerprint
            ));
        }
        line
    }

    /// The current key's fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.current.fingerprint
    }

    /// Seals one Totem packet; the sealed datagram is valid until the next
    /// call.
    pub fn seal(&mut self, packet: &[u8]) -> &[u8] {
        self.seal_pieces(&[packet])
    }

    /// Seals the Totem packet made of `pieces` back to back (see
    /// `totem::Datagram`); valid until the next call.
    pub fn seal_pieces(&mut self, pieces: &[&[u8]]) -> &[u8] {
        self.stats.sealed += 1;
        self.current
            .key
            .seal_pieces(self.me, pieces, &mut self.sealed);
        &self.sealed
    }

    /// Opens a datagram from node `source` (the node at its source
    /// address): the Totem packet, or `None` when it was dropped (and
    /// counted).
    ///
    /// In the steady state (one key) the datagram is decrypted in place
    /// and the packet is a slice of it: no allocation, no copy. While a
    /// rekey is under way (a next or previous key loaded) the current key
    /// opens a copy, so that the datagram is still intact for the others
    /// if the current key fails.
    pub fn open(&mut self, source: u32, datagram: BytesMut) -> Option<Bytes> {
        self.open_at(Instant::now(), source, datagram)
    }

    fn open_at(&mut self, now: Instant, source: u32, mut datagram: BytesMut) -> Option<Bytes> {
        let first = if self.next.is_none() && self.previous.is_none() {
            self.current
                .key
                .open_in_place(source, &mut datagram)
                .map(|range| datagram.split().freeze().slice(range))
        } else {
            self.current.key.open(source, &datagram)
        };
        match first {
            Ok(packet) => {
                self.stats.opened += 1;
                Some(packet)
            }
            Err(rejected) => self.open_slow(now, source, &datagram, rejected),
        }
    }

    /// The other keys, once the current one failed.
    fn open_slow(
        &mut self,
        now: Instant,
        source: u32,
        datagram: &[u8],
        first: Rejected,
    ) -> Option<Bytes> {
        match first {
            Rejected::BadEnvelope => {
                // Every key has the same cipher, so the same envelope.
                self.stats.bad_envelope += 1;
                return None;
            }
            Rejected::SenderMismatch => {
                self.stats.sender_mismatch += 1;
                return None;
            }
            Rejected::AuthFailed => {}
        }
        if self
            .previous
            .as_ref()
            .is_some_and(|(_, until)| now >= *until)
        {
            if let Some((prev, _)) = self.previous.take() {
                log::info!(target: "CRYPTO", "the previous ring key {} is no longer accepted (grace period over)", prev.fingerprint);
            }
        }
        let others = self
            .next
            .iter()
            .chain(self.previous.as_ref().map(|(slot, _)| slot));
        for slot in others {
            match slot.key.open(source, datagram) {
                Ok(packet) => {
                    self.stats.opened += 1;
                    self.stats.opened_other_key += 1;
                    return Some(packet);
                }
                Err(Rejected::SenderMismatch) => {
                    self.stats.sender_mismatch += 1;
                    return None;
                }
                Err(_) => {}
            }
        }
        self.stats.auth_failures += 1;
        None
    }

    /// SIGHUP: re-reads the key files of `settings` (same cipher and hash:
    /// the caller checks). A new key file becomes the current key and the
    /// old one opens for [`PREVIOUS_KEY_GRACE`]; `<keyfile>.next` is
    /// (re)loaded or forgotten. Returns what changed, for the log.
    ///
    /// # Errors
    /// A key file is unusable; nothing changed.
    pub fn reload(&mut self, settings: SecureRing) -> Result<Vec<String>, LoadError> {
        self.reload_at(Instant::now(), settings)
    }

    fn reload_at(&mut self, now: Instant, settings: SecureRing) -> Result<Vec<String>, LoadError> {
        let current = key_file::read(&settings.keyfile)?;
        let next = read_optional(&settings.next_keyfile())?;
        self.replace_keys(now, settings, &current, next.as_ref())
    }

    fn replace_keys(
        &mut self,
        now: Instant,
        settings: SecureRing,
        current: &KeyMaterial,
        next: Option<&KeyMaterial>,
    ) -> Result<Vec<String>, LoadError> {
        let current = Slot::new(current, settings.cipher, settings.hash)?;
        let next = match next {
            Some(m) => Some(Slot::new(m, settings.cipher, settings.hash)?),
            None => None,
        };
        let mut changes = Vec::new();
        if current.fingerprint != self.current.fingerprint {
            let old = std::mem::replace(&mut self.current, current);
            changes.push(format!(
                "ring key {} -> {}: sealing with the new key; the old one opens for {} s",
                old.fingerprint,
                self.current.fingerprint,
                PREVIOUS_KEY_GRACE.as_secs()
            ));
            self.previous = Some((old, now + PREVIOUS_KEY_GRACE));
            self.stats.rekeys += 1;
        }
        if self
            .previous
            .as_ref()
            .is_some_and(|(p, _)| p.fingerprint == self.current.fingerprint)
        {
            // Switched back to the previous key: nothing to keep.
            self.previous = None;
        }
        let next = next.filter(|n| n.fingerprint != self.current.fingerprint);
        let old_next = self.next.as_ref().map(|n| n.fingerprint.clone());
        let new_next = next.as_ref().map(|n| n.fingerprint.clone());
        if old_next != new_next {
            changes.push(match &new_next {
                Some(fp) => format!(
                    "next ring key {fp} from {} opens from now on",
                    settings.next_keyfile().display()
                ),
                None => "no next ring key".to_owned(),
            });
        }
        self.next = next;
        self.settings = settings;
        Ok(changes)
    }

    /// The counters.
    pub fn stats(&self) -> &CryptoStats {
        &self.stats
    }
}

/// A key file that may be absent.
fn read_optional(path: &std::path::Path) -> Result<Option<KeyMaterial>, KeyFileError> {
    match key_file::read(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.is_missing() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Capacity of the seal buffer: the largest UDP payload.
fn crate_max_datagram() -> usize {
    65_536
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn settings() -> SecureRing {
        SecureRing {
            cipher: Cipher::XChaCha20Poly1305,
            hash: KdfHash::Sha256,
            keyfile: PathBuf::from("/nonexistent/authkey"),
        }
    }

    fn material(byte: u8) -> KeyMaterial {
        KeyMaterial::from_bytes(&[byte; 64])
    }

    fn node(me: u32, current: u8, next: Option<u8>) -> RingCrypto {
        RingCrypto::from_material(
            me,
            settings(),
            &material(current),
            next.map(material).as_ref(),
        )
        .expect("keys")
    }

    /// What `to` makes of a datagram `from` seals now.
    fn deliver(from: &mut RingCrypto, to: &mut RingCrypto, now: Instant) -> bool {
        let sealed = BytesMut::from(from.seal(b"totem packet"));
        to.open_at(now, from.me, sealed)
            .is_some_and(|p| p[..] == b"totem packet"[..])
    }

    #[test]
    fn different_keys_never_open_and_are_counted() {
        let mut a = node(1, 1, None);
        let mut b = node(2, 2, None);
        let t = Instant::now();
        for _ in 0..10 {
            assert!(!deliver(&mut a, &mut b, t));
        }
        assert_eq!(b.stats().auth_failures, 10);
        assert_eq!(b.stats().opened, 0);
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn plain_and_replayed_datagrams_are_dropped_and_counted() {
        let mut a = node(1, 1, None);
        let mut b = node(2, 1, None);
        assert!(b
            .open(1, BytesMut::from(&b"TM\x01\x01 a plain totem packet"[..]))
            .is_none());
        assert_eq!(b.stats().bad_envelope, 1);
        let sealed = a.seal(b"x").to_vec();
        assert!(
            b.open(3, BytesMut::from(&sealed[..])).is_none(),
            "node 1's packet from node 3's address"
        );
        assert_eq!(b.stats().sender_mismatch, 1);
        assert!(b.open(1, BytesMut::from(&sealed[..])).is_some());
        assert_eq!(b.stats().opened, 1);
    }

    /// The two-step procedure of the module docs, three nodes, every
    /// order of step 2: every datagram opens at every point.
    #[test]
    fn two_step_rekey_never_loses_a_datagram() {
        const OLD: u8 = 1;
        const NEW: u8 = 2;
        let t0 = Instant::now();
        let mut nodes: Vec<RingCrypto> = (1..=3).map(|id| node(id, OLD, None)).collect();
        let all_pairs_open = |nodes: &mut Vec<RingCrypto>, now: Instant| {
            for i in 0..nodes.len() {
                for j in 0..nodes.len() {
                    let (from, to) = if i < j {
                        let (l, r) = nodes.split_at_mut(j);
                        (&mut l[i], &mut r[0])
                    } else if i > j {
                        let (l, r) = nodes.split_at_mut(i);
                        (&mut r[0], &mut l[j])
                    } else {
                        continue;
                    };
                    assert!(deliver(from, to, now), "{} -> {}", i + 1, j + 1);
                }
            }
        };
        // Step 1: <keyfile>.next everywhere, one node at a time.
        for i in 0..3 {
            let changes = nodes[i]
                .replace_keys(t0, settings(), &material(OLD), Some(&material(NEW)))
                .expect("reload");
            assert_eq!(changes.len(), 1, "{changes:?}");
            all_pairs_open(&mut nodes, t0);
        }
        assert!(
            nodes.iter().all(|n| n.stats().opened_other_key == 0),
            "nobody seals with the next key yet"
        );
        // Step 2: the new key becomes the key file, one node at a time.
        for i in 0..3 {
            nodes[i]
                .replace_keys(t0, settings(), &material(NEW), None)
                .expect("reload");
            assert_eq!(nodes[i].stats().rekeys, 1);
            all_pairs_open(&mut nodes, t0);
        }
        assert!(
            nodes.iter().any(|n| n.stats().opened_other_key > 0),
            "the mixed phase used both keys"
        );
        let before: Vec<u64> = nodes.iter().map(|n| n.stats().opened_other_key).collect();
        all_pairs_open(&mut nodes, t0);
        let after: Vec<u64> = nodes.iter().map(|n| n.stats().opened_other_key).collect();
        assert_eq!(
            before, after,
            "after step 2 everywhere only the current key is used"
        );
        assert!(nodes.iter().all(|n| n.stats().auth_failures == 0));
    }

    #[test]
    fn the_previous_key_expires_after_the_grace_period() {
        let t0 = Instant::now();
        let mut old_node = node(1, 1, None);
        let mut b = node(2, 1, None);
        b.replace_keys(t0, settings(), &material(2), None)
            .expect("reload");
        assert!(b.describe().contains("previous key"));
        assert!(deliver(
            &mut old_node,
            &mut b,
            t0 + PREVIOUS_KEY_GRACE - Duration::from_secs(1)
        ));
        assert!(!deliver(&mut old_node, &mut b, t0 + PREVIOUS_KEY_GRACE));
        assert_eq!(b.stats().auth_failures, 1);
        assert!(!b.describe().contains("previous key"), "dropped");
    }

    #[test]
    fn reload_without_change_changes_nothing() {
        let t0 = Instant::now();
        let mut a = node(1, 1, Some(2));
        let fp = a.fingerprint().to_owned();
        let changes = a
            .replace_keys(t0, settings(), &material(1), Some(&material(2)))
            .expect("reload");
        assert!(changes.is_empty(), "{changes:?}");
        assert_eq!(a.fingerprint(), fp);
        assert_eq!(a.stats().rekeys, 0);
        // Dropping the next file is reported.
        let changes = a
            .replace_keys(t0, settings(), &material(1), None)
            .expect("reload");
        assert_eq!(changes, vec!["no next ring key".to_owned()]);
    }

    #[test]
    fn load_refuses_a_missing_key_naming_path_and_keygen() {
        let e = RingCrypto::load(1, settings()).expect_err("no key");
        let text = e.to_string();
        assert!(
            text.contains("/nonexistent/authkey") && text.contains("ais-keygen"),
            "{text}"
        );
    }
}
