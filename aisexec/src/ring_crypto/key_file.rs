//! The cluster's shared key file (`totem { keyfile }`, default
//! [`DEFAULT_KEYFILE`]) and the packet key derived from it.
//!
//! The file holds random bytes, the same on every node: `ais-keygen`
//! writes 128 of them with mode 0400; any file of
//! [`MIN_KEY_BYTES`]..=[`MAX_KEY_BYTES`] bytes is accepted, so corosync's
//! 256-byte `authkey` works too. It is refused when it is not a regular
//! file or when its mode lets the group or others read or write it (the
//! same rule ssh applies to private keys): a key others can read is no
//! longer a secret, one they can write lets them choose it.
//!
//! The packet key is HKDF (RFC 5869) of the file's bytes, with the hash of
//! `crypto_hash` (SHA-256 by default) and the cipher's name as context, so
//! one file gives unrelated keys for different ciphers. A fingerprint,
//! derived the same way with another context, names the key in logs
//! without revealing it, so operators can compare nodes.

use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use hkdf::Hkdf;
use sha2::{Sha256, Sha384, Sha512};
use zeroize::Zeroizing;

use super::envelope::Cipher;

/// Where the key is when the config does not say (like corosync's
/// `/etc/corosync/authkey`).
pub const DEFAULT_KEYFILE: &str = "/etc/ais/authkey";
/// Smallest key file accepted, in bytes (256 bits).
pub const MIN_KEY_BYTES: usize = 32;
/// Largest key file accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 4096;
/// HKDF salt: names this use of the key (and its version).
const SALT: &[u8] = b"aisexec ring key v1";

/// The hash HKDF uses (`totem { crypto_hash }`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KdfHash {
    /// `sha256` (the default).
    Sha256,
    /// `sha384`.
    Sha384,
    /// `sha512`.
    Sha512,
}

impl KdfHash {
    /// The config name.
    pub fn name(self) -> &'static str {
        match self {
            KdfHash::Sha256 => "sha256",
            KdfHash::Sha384 => "sha384",
            KdfHash::Sha512 => "sha512",
        }
    }
}

/// The contents of a key file, wiped from memory when dropped.
pub struct KeyMaterial(Zeroizing<Vec<u8>>);

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyMaterial({} bytes)", self.0.len())
    }
}

/// What [`derive`] makes of a key file.
pub struct Derived {
    /// The AEAD key for the cipher.
    pub key: Zeroizing<Vec<u8>>,
    /// The key's fingerprint (8 bytes as 16 hex digits).
    pub fingerprint: String,
}

impl fmt::Debug for Derived {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Derived")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Why a key file was not used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// There is no file at the path.
    #[error("no ring key at {}: create one with `ais-keygen -o {}` and copy it to every node (or set `totem {{ secauth: off }}` to run the ring unencrypted)", path.display(), path.display())]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// It could not be read.
    #[error("cannot read the ring key {}: {source} (it must be readable by the user aisexec runs as; see ais-keygen)", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The reason.
        source: io::Error,
    },
    /// Not a regular file.
    #[error("the ring key {} is not a regular file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// Group or others may read or write it.
    #[error("the ring key {} has mode {mode:04o}: group and others must have no access (chmod 0400 {})", path.display(), path.display())]
    Exposed {
        /// The path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Too short or too long.
    #[error("the ring key {} has {len} bytes; a key has {MIN_KEY_BYTES} to {MAX_KEY_BYTES} (ais-keygen writes a good one)", path.display())]
    BadLength {
        /// The path.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
}

impl KeyFileError {
    /// Whether the file is simply absent (an optional `.next` key).
    pub fn is_missing(&self) -> bool {
        matches!(self, KeyFileError::Missing { .. })
    }
}

/// Reads and checks the key file at `path`.
///
/// # Errors
/// [`KeyFileError`] naming the path and what to do.
pub fn read(path: &Path) -> Result<KeyMaterial, KeyFileError> {
    let io_error = |source: io::Error| {
        if source.kind() == io::ErrorKind::NotFound {
            KeyFileError::Missing {
                path: path.to_owned(),
            }
        } else {
            KeyFileError::Io {
                path: path.to_owned(),
                source,
            }
        }
    };
    let mut file = fs::File::open(path).map_err(io_error)?;
    // Checked on the open file, so a rename in between changes nothing.
    let meta = file.metadata().map_err(io_error)?;
    if !meta.is_file() {
        return Err(KeyFileError::NotAFile {
            path: path.to_owned(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Exposed {
            path: path.to_owned(),
            mode,
        });
    }
    let len = meta.len();
    if len < MIN_KEY_BYTES as u64 || len > MAX_KEY_BYTES as u64 {
        return Err(KeyFileError::BadLength {
            path: path.to_owned(),
            len,
        });
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_KEY_BYTES));
    // One byte more than allowed tells a file that grew since the check.
    file.by_ref()
        .take(MAX_KEY_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&bytes.len()) {
        return Err(KeyFileError::BadLength {
            path: path.to_owned(),
            len: bytes.len() as u64,
        });
    }
    Ok(KeyMaterial(bytes))
}

impl KeyMaterial {
    /// Key material from bytes (tests, and tools that hold a key).
    pub fn from_bytes(bytes: &[u8]) -> KeyMaterial {
        KeyMaterial(Zeroizing::new(bytes.to_vec()))
    }
}

/// The packet key for `cipher` and its fingerprint, derived from
/// `material` with HKDF over `hash`.
pub fn derive(material: &KeyMaterial, cipher: Cipher, hash: KdfHash) -> Derived {
    let mut key = Zeroizing::new(vec![0; cipher.key_bytes()]);
    let mut print = [0; 8];
    let key_info = [b"packet key ".as_slice(), cipher.name().as_bytes()].concat();
    let print_info = [b"fingerprint ".as_slice(), cipher.name().as_bytes()].concat();
    // `expand` fails only for outputs over 255 hash lengths; ours are at
    // most 32 bytes.
    let ok = match hash {
        KdfHash::Sha256 => {
            let h = Hkdf::<Sha256>::new(Some(SALT), &material.0);
            h.expand(&key_info, &mut key).is_ok() && h.expand(&print_info, &mut print).is_ok()
        }
        KdfHash::Sha384 => {
            let h = Hkdf::<Sha384>::new(Some(SALT), &material.0);
            h.expand(&key_info, &mut key).is_ok() && h.expand(&print_info, &mut print).is_ok()
        }
        KdfHash::Sha512 => {
            let h = Hkdf::<Sha512>::new(Some(SALT), &material.0);
            h.expand(&key_info, &mut key).is_ok() && h.expand(&print_info, &mut print).is_ok()
        }
    };
    debug_assert!(ok, "HKDF outputs are far below 255 hash lengths");
    Derived {
        key,
        fingerprint: print.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::OpenOptionsExt;

    fn write(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
        let path = dir.join(name);
        fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(mode)
            .open(&path)
            .and_then(|mut f| io::Write::write_all(&mut f, bytes))
            .expect("key written");
        // The umask may have taken bits away.
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn reads_a_private_key_and_refuses_the_rest() {
        let dir = tempfile::tempdir().expect("dir");
        let good = write(dir.path(), "good", &[7; 128], 0o400);
        assert_eq!(read(&good).expect("good key").0.len(), 128);
        let owner_rw = write(dir.path(), "rw", &[7; 32], 0o600);
        assert!(read(&owner_rw).is_ok());

        let readable = write(dir.path(), "readable", &[7; 128], 0o440);
        let e = read(&readable).expect_err("group-readable");
        assert!(
            matches!(e, KeyFileError::Exposed { mode: 0o440, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("chmod 0400"), "{e}");
        let world = write(dir.path(), "world", &[7; 128], 0o402);
        assert!(matches!(read(&world), Err(KeyFileError::Exposed { .. })));

        let short = write(dir.path(), "short", &[7; 31], 0o400);
        assert!(matches!(
            read(&short),
            Err(KeyFileError::BadLength { len: 31, .. })
        ));
        let long = write(dir.path(), "long", &[7; 4097], 0o400);
        assert!(matches!(
            read(&long),
            Err(KeyFileError::BadLength { len: 4097, .. })
        ));

        let missing = dir.path().join("missing");
        let e = read(&missing).expect_err("missing");
        assert!(e.is_missing());
        let text = e.to_string();
        assert!(
            text.contains(&missing.display().to_string()) && text.contains("ais-keygen"),
            "{text}"
        );

        assert!(matches!(
            read(dir.path()),
            Err(KeyFileError::NotAFile { .. } | KeyFileError::Exposed { .. })
        ));
    }

    #[test]
    fn derivation_depends_on_key_cipher_and_hash() {
        let a = KeyMaterial::from_bytes(&[1; 64]);
        let b = KeyMaterial::from_bytes(&[2; 64]);
        let x = derive(&a, Cipher::XChaCha20Poly1305, KdfHash::Sha256);
        assert_eq!(x.key.len(), 32);
        assert_eq!(x.fingerprint.len(), 16);
        assert_eq!(
            derive(&a, Cipher::XChaCha20Poly1305, KdfHash::Sha256).key,
            x.key,
            "deterministic"
        );
        for other in [
            derive(&b, Cipher::XChaCha20Poly1305, KdfHash::Sha256),
            derive(&a, Cipher::Aes256Gcm, KdfHash::Sha256),
            derive(&a, Cipher::XChaCha20Poly1305, KdfHash::Sha512),
        ] {
            assert_ne!(other.key, x.key);
            assert_ne!(other.fingerprint, x.fingerprint);
        }
        assert_eq!(derive(&a, Cipher::Aes128Gcm, KdfHash::Sha384).key.len(), 16);
    }
}
