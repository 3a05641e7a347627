//! The JWE algorithms this crate decrypts (RFC 7518 §4 and §5), by their registered names.
//!
//! Names not listed here are refused before any key is touched: `RSA1_5` (RSAES-PKCS1-v1_5
//! leaks through Bleichenbacher's padding oracle), `PBES2-*` (a token chooses the PBKDF2
//! iteration count `p2c`: a denial of service), and the AES-192 variants (not offered).

use std::fmt;
use std::str::FromStr;

use crate::primitives::error::ConfigError;

/// A key management algorithm (`alg` of a JWE, RFC 7518 §4): how the content encryption key
/// reaches the recipient.
///
/// ```
/// use tower_jwt_guard::jwe::KeyManagement;
///
/// let alg: KeyManagement = "A256KW".parse().unwrap();
/// assert_eq!(alg, KeyManagement::A256Kw);
/// assert!(alg.is_shared_secret());
/// assert!(!KeyManagement::RsaOaep256.is_shared_secret());
/// // Refused outright: a padding oracle, and a token-chosen PBKDF2 cost.
/// assert!("RSA1_5".parse::<KeyManagement>().is_err());
/// assert!("PBES2-HS256+A128KW".parse::<KeyManagement>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyManagement {
    /// `dir`: the shared secret is the content encryption key.
    Dir,
    /// `A128KW`: AES-128 key wrap (RFC 3394) under a shared secret.
    A128Kw,
    /// `A256KW`: AES-256 key wrap (RFC 3394) under a shared secret.
    A256Kw,
    /// `A128GCMKW`: AES-128-GCM key wrap under a shared secret.
    A128GcmKw,
    /// `A256GCMKW`: AES-256-GCM key wrap under a shared secret.
    A256GcmKw,
    /// `RSA-OAEP`: RSAES-OAEP with SHA-1 and MGF1-SHA-1.
    RsaOaep,
    /// `RSA-OAEP-256`: RSAES-OAEP with SHA-256 and MGF1-SHA-256.
    RsaOaep256,
    /// `ECDH-ES`: ephemeral-static ECDH; the Concat KDF output is the content encryption key.
    EcdhEs,
    /// `ECDH-ES+A128KW`: ECDH-ES, then AES-128 key wrap.
    EcdhEsA128Kw,
    /// `ECDH-ES+A256KW`: ECDH-ES, then AES-256 key wrap.
    EcdhEsA256Kw,
}

impl KeyManagement {
    /// The registered name (`alg` header value).
    pub fn name(self) -> &'static str {
        match self {
            KeyManagement::Dir => "dir",
            KeyManagement::A128Kw => "A128KW",
            KeyManagement::A256Kw => "A256KW",
            KeyManagement::A128GcmKw => "A128GCMKW",
            KeyManagement::A256GcmKw => "A256GCMKW",
            KeyManagement::RsaOaep => "RSA-OAEP",
            KeyManagement::RsaOaep256 => "RSA-OAEP-256",
            KeyManagement::EcdhEs => "ECDH-ES",
            KeyManagement::EcdhEsA128Kw => "ECDH-ES+A128KW",
            KeyManagement::EcdhEsA256Kw => "ECDH-ES+A256KW",
        }
    }

    /// Whether the key is a secret shared by sender and recipient (`dir`, `A*KW`, `A*GCMKW`):
    /// only its holders can encrypt, so an encrypted claims set is authenticated by it. With a
    /// public-key algorithm (RSA-OAEP, ECDH-ES) anyone can encrypt.
    pub fn is_shared_secret(self) -> bool {
        matches!(
            self,
            KeyManagement::Dir
                | KeyManagement::A128Kw
                | KeyManagement::A256Kw
                | KeyManagement::A128GcmKw
                | KeyManagement::A256GcmKw
        )
    }

    /// Whether the key is an RSA private key (`RSA-OAEP`, `RSA-OAEP-256`): each try costs an RSA
    /// private-key operation.
    pub(crate) fn is_rsa(self) -> bool {
        matches!(self, KeyManagement::RsaOaep | KeyManagement::RsaOaep256)
    }

    /// The length of this algorithm's shared secret with `enc`: `dir`'s is `enc`'s key, the AES
    /// wrapping algorithms' their key-encryption key; `None` for a public-key algorithm.
    pub(crate) fn secret_len(self, enc: ContentEncryption) -> Option<usize> {
        match self {
            KeyManagement::Dir => Some(enc.key_len()),
            KeyManagement::A128Kw
            | KeyManagement::A256Kw
            | KeyManagement::A128GcmKw
            | KeyManagement::A256GcmKw => self.wrap_key_len(),
            _ => None,
        }
    }

    /// `secret` as this algorithm's shared secret with `enc`, checked for its length; `needs_a_key`
    /// is the error of a public-key algorithm (which takes a key, not a secret).
    pub(crate) fn shared_secret(
        self,
        enc: ContentEncryption,
        secret: &[u8],
        needs_a_key: &'static str,
    ) -> Result<Vec<u8>, ConfigError> {
        let expected = self.secret_len(enc).ok_or(ConfigError::InvalidKey(needs_a_key))?;
        if secret.len() != expected {
            return Err(ConfigError::InvalidKey(
                "the JWE secret's length is not the algorithm's key length (16 or 32 bytes; for dir: enc's key length)",
            ));
        }
        Ok(secret.to_vec())
    }

    /// The length of the AES key-encryption key, for the algorithms that wrap with AES.
    pub(crate) fn wrap_key_len(self) -> Option<usize> {
        match self {
            KeyManagement::A128Kw | KeyManagement::A128GcmKw | KeyManagement::EcdhEsA128Kw => Some(16),
            KeyManagement::A256Kw | KeyManagement::A256GcmKw | KeyManagement::EcdhEsA256Kw => Some(32),
            _ => None,
        }
    }
}

impl FromStr for KeyManagement {
    type Err = UnsupportedAlgorithm;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(match name {
            "dir" => KeyManagement::Dir,
            "A128KW" => KeyManagement::A128Kw,
            "A256KW" => KeyManagement::A256Kw,
            "A128GCMKW" => KeyManagement::A128GcmKw,
            "A256GCMKW" => KeyManagement::A256GcmKw,
            "RSA-OAEP" => KeyManagement::RsaOaep,
            "RSA-OAEP-256" => KeyManagement::RsaOaep256,
            "ECDH-ES" => KeyManagement::EcdhEs,
            "ECDH-ES+A128KW" => KeyManagement::EcdhEsA128Kw,
            "ECDH-ES+A256KW" => KeyManagement::EcdhEsA256Kw,
            _ => return Err(UnsupportedAlgorithm),
        })
    }
}

impl fmt::Display for KeyManagement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A content encryption algorithm (`enc` of a JWE, RFC 7518 §5): an AEAD over the claims.
///
/// ```
/// use tower_jwt_guard::jwe::ContentEncryption;
///
/// let enc: ContentEncryption = "A256GCM".parse().unwrap();
/// assert_eq!(enc.key_len(), 32);
/// assert_eq!(ContentEncryption::A128CbcHs256.key_len(), 32, "MAC key and AES key");
/// assert!("A192GCM".parse::<ContentEncryption>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContentEncryption {
    /// `A128GCM`: AES-128-GCM.
    A128Gcm,
    /// `A256GCM`: AES-256-GCM.
    A256Gcm,
    /// `A128CBC-HS256`: AES-128-CBC with HMAC-SHA-256 (RFC 7518 §5.2.3).
    A128CbcHs256,
    /// `A256CBC-HS512`: AES-256-CBC with HMAC-SHA-512 (RFC 7518 §5.2.5).
    A256CbcHs512,
}

impl ContentEncryption {
    /// The registered name (`enc` header value).
    pub fn name(self) -> &'static str {
        match self {
            ContentEncryption::A128Gcm => "A128GCM",
            ContentEncryption::A256Gcm => "A256GCM",
            ContentEncryption::A128CbcHs256 => "A128CBC-HS256",
            ContentEncryption::A256CbcHs512 => "A256CBC-HS512",
        }
    }

    /// The length of the content encryption key, in bytes (for CBC-HS: the MAC key and the AES
    /// key together).
    pub fn key_len(self) -> usize {
        match self {
            ContentEncryption::A128Gcm => 16,
            ContentEncryption::A256Gcm | ContentEncryption::A128CbcHs256 => 32,
            ContentEncryption::A256CbcHs512 => 64,
        }
    }

    /// The length of the initialization vector, in bytes.
    pub(crate) fn iv_len(self) -> usize {
        match self {
            ContentEncryption::A128Gcm | ContentEncryption::A256Gcm => 12,
            ContentEncryption::A128CbcHs256 | ContentEncryption::A256CbcHs512 => 16,
        }
    }
}

impl FromStr for ContentEncryption {
    type Err = UnsupportedAlgorithm;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Ok(match name {
            "A128GCM" => ContentEncryption::A128Gcm,
            "A256GCM" => ContentEncryption::A256Gcm,
            "A128CBC-HS256" => ContentEncryption::A128CbcHs256,
            "A256CBC-HS512" => ContentEncryption::A256CbcHs512,
            _ => return Err(UnsupportedAlgorithm),
        })
    }
}

impl fmt::Display for ContentEncryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A JWE algorithm name this crate does not decrypt (refused, or unknown).
///
/// ```
/// use tower_jwt_guard::jwe::{KeyManagement, UnsupportedAlgorithm};
///
/// assert!(matches!("RSA1_5".parse::<KeyManagement>(), Err(UnsupportedAlgorithm { .. })));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnsupportedAlgorithm;

impl fmt::Display for UnsupportedAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unsupported or refused JWE algorithm")
    }
}

impl std::error::Error for UnsupportedAlgorithm {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for alg in [
            KeyManagement::Dir,
            KeyManagement::A128Kw,
            KeyManagement::A256Kw,
            KeyManagement::A128GcmKw,
            KeyManagement::A256GcmKw,
            KeyManagement::RsaOaep,
            KeyManagement::RsaOaep256,
            KeyManagement::EcdhEs,
            KeyManagement::EcdhEsA128Kw,
            KeyManagement::EcdhEsA256Kw,
        ] {
            assert_eq!(alg.name().parse::<KeyManagement>(), Ok(alg));
        }
        for enc in [
            ContentEncryption::A128Gcm,
            ContentEncryption::A256Gcm,
            ContentEncryption::A128CbcHs256,
            ContentEncryption::A256CbcHs512,
        ] {
            assert_eq!(enc.name().parse::<ContentEncryption>(), Ok(enc));
        }
    }

    #[test]
    fn refused_names() {
        for name in ["RSA1_5", "PBES2-HS256+A128KW", "PBES2-HS512+A256KW", "A192KW", "none", "dir ", "a256kw"]
        {
            assert!(name.parse::<KeyManagement>().is_err(), "{name}");
        }
        for name in ["A192GCM", "A192CBC-HS384", "a256gcm"] {
            assert!(name.parse::<ContentEncryption>().is_err(), "{name}");
        }
    }
}
