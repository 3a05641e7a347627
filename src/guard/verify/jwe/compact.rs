//! The JWE compact serialization (RFC 7516 §7.1): five base64url parts, split and decoded.

use crate::guard::verify::compact::{decode, malformed, Decoded};
use crate::primitives::error::AuthError;

/// Largest protected header decoded: room for an `epk` with a P-384 point, `apu`, `apv`, `kid`.
const MAX_HEADER_LEN: usize = 1024;

/// The five parts of a compact JWE, still encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JweCompact<'t> {
    /// The encoded protected header: also the additional authenticated data.
    pub(crate) header: &'t str,
    pub(crate) encrypted_key: &'t str,
    pub(crate) iv: &'t str,
    pub(crate) ciphertext: &'t str,
    pub(crate) tag: &'t str,
}

impl<'t> JweCompact<'t> {
    /// Whether `token` has the five parts of a compact JWE (four dots), to route it here.
    pub(crate) fn is_jwe(token: &str) -> bool {
        token.bytes().filter(|&b| b == b'.').count() == 4
    }

    pub(crate) fn split(token: &'t str) -> Result<Self, AuthError> {
        let mut parts = token.split('.');
        let (Some(header), Some(encrypted_key), Some(iv), Some(ciphertext), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("the token is not a compact JWE"));
        };
        // The encrypted key is empty for `dir` and `ECDH-ES`; every other part is required.
        if header.is_empty() || iv.is_empty() || ciphertext.is_empty() || tag.is_empty() {
            return Err(malformed("the token is not a compact JWE"));
        }
        Ok(JweCompact { header, encrypted_key, iv, ciphertext, tag })
    }

    /// The decoded protected header (at most [`MAX_HEADER_LEN`] bytes).
    pub(crate) fn header_bytes(&self) -> Result<Vec<u8>, AuthError> {
        if base64::decoded_len_estimate(self.header.len()) > MAX_HEADER_LEN {
            return Err(malformed("the token header is too large"));
        }
        part(self.header, "the token header is not base64url")
    }
}

/// One part decoded (the token's length is already capped, so the part is too).
pub(crate) fn part(encoded: &str, what: &'static str) -> Result<Vec<u8>, AuthError> {
    Ok(match decode(encoded, &mut [], what)? {
        Decoded::Heap(bytes) => bytes,
        Decoded::Stack(bytes) => bytes.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_parts_and_only_the_key_may_be_empty() {
        assert!(JweCompact::is_jwe("a..c.d.e"));
        assert!(!JweCompact::is_jwe("a.b.c"));
        let jwe = JweCompact::split("a..c.d.e").unwrap();
        assert_eq!((jwe.header, jwe.encrypted_key, jwe.tag), ("a", "", "e"));
        for bad in ["a.b.c.d", "a.b.c.d.e.f", ".b.c.d.e", "a.b..d.e", "a.b.c..e", "a.b.c.d."] {
            assert!(JweCompact::split(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_huge_header_is_refused_before_decoding() {
        let header = "e".repeat(2000);
        let token = format!("{header}.b.c.d.e");
        let jwe = JweCompact::split(&token).unwrap();
        assert_eq!(jwe.header_bytes().unwrap_err().detail(), "the token header is too large");
    }
}
