//! What the `totem` section says about ring security, validated once into
//! [`RingSecurity`].
//!
//! | given | result |
//! | --- | --- |
//! | nothing | on: AES-256-GCM, HKDF-SHA256, key at [`DEFAULT_KEYFILE`] |
//! | `secauth: on` | the same |
//! | `crypto_cipher: aes256` / `aes128` / `chacha20poly1305` | on, with that AEAD |
//! | `crypto_hash: sha256` / `sha384` / `sha512` | on, HKDF with that hash |
//! | `keyfile: PATH` | the key is read from PATH (relative: to the config file's directory) |
//! | `secauth: off` (cipher and hash absent or `none`) | off: a warning is logged |
//!
//! Refused, with the file and line: `secauth: off` together with a cipher
//! or hash other than `none` (which one was meant?); `crypto_cipher: none`
//! or `crypto_hash: none` without `secauth: off` (encryption is off only
//! when said plainly); `aes192` (no AES-192-GCM here); `md5` and `sha1`
//! (too weak to derive a key). corosync's HMAC names map to the key
//! derivation: with an AEAD the tag authenticates every packet.

use std::path::PathBuf;

use crate::config::{ClusterConfig, CryptoCipher, CryptoHash};

use super::envelope::Cipher;
use super::key_file::{KdfHash, DEFAULT_KEYFILE};

/// Whether and how the ring is protected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RingSecurity {
    /// `secauth: off`: plain Totem packets.
    Off,
    /// Every packet sealed.
    On(SecureRing),
}

/// The settings of a sealed ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecureRing {
    /// The AEAD.
    pub cipher: Cipher,
    /// The key derivation hash.
    pub hash: KdfHash,
    /// The key file (absolute or as written).
    pub keyfile: PathBuf,
}

impl SecureRing {
    /// The optional next key beside the key file: `<keyfile>.next` (the
    /// first step of a rekey).
    pub fn next_keyfile(&self) -> PathBuf {
        let mut name = self.keyfile.clone().into_os_string();
        name.push(".next");
        PathBuf::from(name)
    }
}

impl RingSecurity {
    /// Bytes a datagram carries beyond its Totem packet.
    pub fn overhead_bytes(&self) -> usize {
        match self {
            RingSecurity::Off => 0,
            RingSecurity::On(s) => s.cipher.overhead_bytes(),
        }
    }
}

/// Why the security settings were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", match line { Some(l) => format!("{file}:{l}"), None => file.clone() })]
pub struct SecurityConfigError {
    /// The config file.
    pub file: String,
    /// The line blamed, when the key was given.
    pub line: Option<u32>,
    /// What is wrong and what to write instead.
    pub message: String,
}

/// The ring security `config` asks for.
///
/// # Errors
/// [`SecurityConfigError`] for the combinations the module docs refuse.
pub fn ring_security(config: &ClusterConfig) -> Result<RingSecurity, SecurityConfigError> {
    let t = &config.totem;
    let error = |key: &str, message: String| SecurityConfigError {
        file: config.file.clone(),
        line: t.line_of(key),
        message,
    };
    let cipher_given = t.crypto_cipher.filter(|c| *c != CryptoCipher::None);
    let hash_given = t.crypto_hash.filter(|h| *h != CryptoHash::None);
    if t.secauth == Some(false) {
        if let Some(c) = cipher_given {
            return Err(error(
                "crypto_cipher",
                format!(
                    "`secauth: off` contradicts `crypto_cipher: {}`: remove one of them",
                    cipher_name(c)
                ),
            ));
        }
        if let Some(h) = hash_given {
            return Err(error(
                "crypto_hash",
                format!(
                    "`secauth: off` contradicts `crypto_hash: {}`: remove one of them",
                    hash_name(h)
                ),
            ));
        }
        return Ok(RingSecurity::Off);
    }
    let off_hint = "ring encryption is on unless the config says `secauth: off`; \
                    write that (and drop crypto_cipher/crypto_hash) to run unencrypted, \
                    or remove this line to use the default";
    let cipher = match t.crypto_cipher {
        // AES-256-GCM by default: with AES instructions (x86-64 since
        // 2010, ARMv8) it seals several times faster than XChaCha20 here
        // (docs/security.md has the figures); the default must not depend
        // on the CPU, or nodes would disagree.
        None | Some(CryptoCipher::Aes256) => Cipher::Aes256Gcm,
        Some(CryptoCipher::ChaCha20Poly1305) => Cipher::XChaCha20Poly1305,
        Some(CryptoCipher::Aes128) => Cipher::Aes128Gcm,
        Some(CryptoCipher::None) => {
            return Err(error(
                "crypto_cipher",
                format!("`crypto_cipher: none`: {off_hint}"),
            ))
        }
        Some(CryptoCipher::Aes192) => {
            return Err(error(
                "crypto_cipher",
                "`crypto_cipher: aes192` is not supported (no AES-192-GCM here): \
                 use aes256 (the default), aes128 or chacha20poly1305"
                    .to_owned(),
            ))
        }
    };
    let hash = match t.crypto_hash {
        None | Some(CryptoHash::Sha256) => KdfHash::Sha256,
        Some(CryptoHash::Sha384) => KdfHash::Sha384,
        Some(CryptoHash::Sha512) => KdfHash::Sha512,
        Some(CryptoHash::None) => {
            return Err(error(
                "crypto_hash",
                format!("`crypto_hash: none`: {off_hint}"),
            ))
        }
        Some(h @ (CryptoHash::Md5 | CryptoHash::Sha1)) => {
            return Err(error(
                "crypto_hash",
                format!(
                "`crypto_hash: {}` is too weak to derive the ring key: use sha256 (the default), \
                     sha384 or sha512 (every packet is authenticated by the cipher's AEAD tag)",
                hash_name(h)
            ),
            ))
        }
    };
    Ok(RingSecurity::On(SecureRing {
        cipher,
        hash,
        keyfile: match &t.keyfile {
            // Relative to the config file's directory, the same at start
            // and at a SIGHUP (the daemon's working directory is `/` once
            // it went to the background).
            Some(path) => std::path::Path::new(&config.file)
                .parent()
                .map_or_else(|| path.clone(), |dir| dir.join(path)),
            None => PathBuf::from(DEFAULT_KEYFILE),
        },
    }))
}

/// The datagram overhead `config` implies, for sizing Totem's packets: the
/// resolved cipher's, and the largest one when the settings are refused
/// (that error is reported on its own).
pub fn overhead_bytes(config: &ClusterConfig) -> usize {
    match ring_security(config) {
        Ok(s) => s.overhead_bytes(),
        Err(_) => Cipher::ALL
            .iter()
            .map(|c| c.overhead_bytes())
            .max()
            .unwrap_or(0),
    }
}

fn cipher_name(c: CryptoCipher) -> &'static str {
    match c {
        CryptoCipher::None => "none",
        CryptoCipher::ChaCha20Poly1305 => "chacha20poly1305",
        CryptoCipher::Aes128 => "aes128",
        CryptoCipher::Aes192 => "aes192",
        CryptoCipher::Aes256 => "aes256",
    }
}

fn hash_name(h: CryptoHash) -> &'static str {
    match h {
        CryptoHash::None => "none",
        CryptoHash::Md5 => "md5",
        CryptoHash::Sha1 => "sha1",
        CryptoHash::Sha256 => "sha256",
        CryptoHash::Sha384 => "sha384",
        CryptoHash::Sha512 => "sha512",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn security(totem: &str) -> Result<RingSecurity, SecurityConfigError> {
        let text = format!(
            "totem {{\n version: 2\n{totem}}}\nnodelist {{\n node {{\n ring0_addr: 127.0.0.1\n nodeid: 1\n }}\n}}\n"
        );
        let (config, _) = ClusterConfig::parse("t.conf", text.as_bytes()).expect("parses");
        ring_security(&config)
    }

    fn on(cipher: Cipher, hash: KdfHash, keyfile: &str) -> RingSecurity {
        RingSecurity::On(SecureRing {
            cipher,
            hash,
            keyfile: PathBuf::from(keyfile),
        })
    }

    #[test]
    fn default_is_on_with_the_default_key() {
        let expected = on(Cipher::Aes256Gcm, KdfHash::Sha256, DEFAULT_KEYFILE);
        assert_eq!(security(""), Ok(expected.clone()));
        assert_eq!(security(" secauth: on\n"), Ok(expected));
        assert_eq!(
            security(" crypto_cipher: aes256\n crypto_hash: sha512\n keyfile: /k\n"),
            Ok(on(Cipher::Aes256Gcm, KdfHash::Sha512, "/k"))
        );
        assert_eq!(
            security(" crypto_cipher: aes128\n crypto_hash: sha384\n"),
            Ok(on(Cipher::Aes128Gcm, KdfHash::Sha384, DEFAULT_KEYFILE))
        );
        assert_eq!(
            security(" crypto_cipher: chacha20poly1305\n secauth: yes\n"),
            Ok(on(
                Cipher::XChaCha20Poly1305,
                KdfHash::Sha256,
                DEFAULT_KEYFILE
            ))
        );
        let text = "totem {\n keyfile: keys/authkey\n}\nnodelist {\n node {\n ring0_addr: 127.0.0.1\n nodeid: 1\n }\n}\n";
        let (config, _) =
            ClusterConfig::parse("/etc/ais/openais.conf", text.as_bytes()).expect("parses");
        assert_eq!(
            ring_security(&config),
            Ok(on(
                Cipher::Aes256Gcm,
                KdfHash::Sha256,
                "/etc/ais/keys/authkey"
            ))
        );
    }

    #[test]
    fn off_only_when_said() {
        assert_eq!(security(" secauth: off\n"), Ok(RingSecurity::Off));
        assert_eq!(
            security(" secauth: off\n crypto_cipher: none\n crypto_hash: none\n"),
            Ok(RingSecurity::Off)
        );
        assert_eq!(RingSecurity::Off.overhead_bytes(), 0);
    }

    #[test]
    fn refusals_name_the_line_and_the_way_out() {
        let cases = [
            (" crypto_cipher: none\n", 3, "secauth: off"),
            (" crypto_hash: none\n", 3, "secauth: off"),
            (" secauth: off\n crypto_cipher: aes256\n", 4, "contradicts"),
            (" secauth: off\n crypto_hash: sha256\n", 4, "contradicts"),
            (" crypto_cipher: aes192\n", 3, "not supported"),
            (" crypto_hash: sha1\n", 3, "too weak"),
            (" crypto_hash: md5\n", 3, "too weak"),
        ];
        for (totem, line, words) in cases {
            let e = security(totem).expect_err(totem);
            assert_eq!(e.line, Some(line), "{totem}");
            let text = e.to_string();
            assert!(text.starts_with(&format!("t.conf:{line}: ")), "{text}");
            assert!(text.contains(words), "{totem}: {text}");
        }
    }

    #[test]
    fn next_key_sits_beside_the_key() {
        let s = SecureRing {
            cipher: Cipher::XChaCha20Poly1305,
            hash: KdfHash::Sha256,
            keyfile: PathBuf::from("/etc/ais/authkey"),
        };
        assert_eq!(s.next_keyfile(), PathBuf::from("/etc/ais/authkey.next"));
    }
}
