//! The JWS compact serialization of a token (RFC 7515 §7.1): its parts (split by
//! [`split_jws`]), strict base64url, the JOSE header.

use std::borrow::Cow;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::primitives::compact::split_jws;
use crate::primitives::error::{AuthError, ErrorKind};

/// Largest signature accepted: RSA-8192 (1024 bytes).
pub(crate) const MAX_SIGNATURE_LEN: usize = 1024;

/// Bytes decoded into a stack buffer when they fit, on the heap otherwise.
pub(crate) enum Decoded<'b> {
    Stack(&'b [u8]),
    Heap(Vec<u8>),
}

impl std::ops::Deref for Decoded<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Decoded::Stack(bytes) => bytes,
            Decoded::Heap(bytes) => bytes,
        }
    }
}

pub(crate) fn malformed(message: &'static str) -> AuthError {
    AuthError::with_detail(ErrorKind::InvalidToken, message)
}

/// The three parts of a compact JWS, still encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Compact<'t> {
    /// `header.payload`: what the signature covers.
    pub(crate) signing_input: &'t str,
    pub(crate) header: &'t str,
    pub(crate) payload: &'t str,
    pub(crate) signature: &'t str,
}

impl<'t> Compact<'t> {
    pub(crate) fn split(token: &'t str) -> Result<Self, AuthError> {
        let parts = match split_jws(token.as_bytes()) {
            Ok(parts) => parts,
            Err(5) => return Err(malformed("encrypted tokens (JWE) are not accepted")),
            Err(_) => return Err(malformed("the token is not a compact JWS")),
        };
        if parts.header.is_empty() || parts.payload.is_empty() {
            return Err(malformed("the token is not a compact JWS"));
        }
        if parts.signature.is_empty() {
            return Err(malformed("the token is not signed"));
        }
        // The parts end at dots (ASCII): character boundaries of `token`.
        let header_end = parts.header.len();
        let payload_end = header_end + 1 + parts.payload.len();
        Ok(Compact {
            signing_input: &token[..payload_end],
            header: &token[..header_end],
            payload: &token[header_end + 1..payload_end],
            signature: &token[payload_end + 1..],
        })
    }
}

/// Strict base64url without padding (RFC 7515 §2); non-canonical trailing bits are refused.
pub(crate) fn decode<'b>(
    encoded: &str,
    buf: &'b mut [u8],
    what: &'static str,
) -> Result<Decoded<'b>, AuthError> {
    let bad = || malformed(what);
    if base64::decoded_len_estimate(encoded.len()) <= buf.len() {
        let len = URL_SAFE_NO_PAD.decode_slice(encoded, buf).map_err(|_| bad())?;
        Ok(Decoded::Stack(&buf[..len]))
    } else {
        URL_SAFE_NO_PAD.decode(encoded).map(Decoded::Heap).map_err(|_| bad())
    }
}

/// Whether `json` starts like a JSON object: a header and a claims set must be objects
/// (RFC 7515 §4, RFC 7519 §7.2), never an array read positionally into a struct.
pub(crate) fn is_json_object(json: &[u8]) -> bool {
    json.trim_ascii_start().first() == Some(&b'{')
}

/// The JOSE header members the verifier reads. Unknown members (`x5t`, `jku`, `x5u`, `jwk`,
/// `x5c`, ...) are ignored: keys never come from the token. Duplicate members are refused.
#[derive(Debug, Deserialize)]
pub(crate) struct JoseHeader<'a> {
    #[serde(borrow)]
    pub(crate) alg: Cow<'a, str>,
    #[serde(borrow, default)]
    pub(crate) kid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub(crate) typ: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
    #[serde(default)]
    enc: Option<IgnoredAny>,
}

impl<'a> JoseHeader<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, AuthError> {
        // RFC 7515 §4: the header is a JSON object (serde would also read a struct from an array).
        if !is_json_object(bytes) {
            return Err(malformed("the token header is malformed"));
        }
        let header: JoseHeader<'a> =
            serde_json::from_slice(bytes).map_err(|_| malformed("the token header is malformed"))?;
        if header.enc.is_some() {
            return Err(malformed("encrypted tokens (JWE) are not accepted"));
        }
        // RFC 7515 §4.1.11: this verifier understands no extension, so any `crit` rejects.
        if header.crit.is_some() {
            return Err(malformed("the token uses a critical extension this server does not support"));
        }
        Ok(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_three_parts_and_refuses_others() {
        let c = Compact::split("aa.bb.cc").unwrap();
        assert_eq!((c.signing_input, c.signature), ("aa.bb", "cc"));
        assert!(Compact::split("aa.bb").is_err());
        assert!(Compact::split("aa.bb.").is_err());
        assert!(Compact::split(".bb.cc").is_err());
        assert!(Compact::split("a.b.c.d").is_err());
        assert_eq!(
            Compact::split("a.b.c.d.e").unwrap_err().detail(),
            "encrypted tokens (JWE) are not accepted"
        );
    }

    #[test]
    fn an_rsa_8192_signature_fits_the_stack_buffer() {
        let encoded = URL_SAFE_NO_PAD.encode([7u8; MAX_SIGNATURE_LEN]);
        let mut buf = [0u8; MAX_SIGNATURE_LEN + 3];
        assert!(
            matches!(decode(&encoded, &mut buf, "x"), Ok(Decoded::Stack(bytes)) if bytes.len() == MAX_SIGNATURE_LEN)
        );
    }

    #[test]
    fn base64_is_strict() {
        let mut buf = [0u8; 8];
        assert_eq!(&*decode("YWI", &mut buf, "x").unwrap(), b"ab");
        assert!(decode("YWI=", &mut buf, "x").is_err(), "padding");
        assert!(decode("YW+", &mut buf, "x").is_err(), "standard alphabet");
        assert!(decode("YWJ", &mut buf, "x").is_err(), "non-canonical trailing bits");
        assert_eq!(&*decode("YWJjZGVmZ2hpams", &mut buf, "x").unwrap(), b"abcdefghijk", "heap fallback");
    }

    #[test]
    fn header_rules() {
        assert!(JoseHeader::parse(br#"{"alg":"HS256","crit":["exp"]}"#).is_err());
        assert!(JoseHeader::parse(br#"{"alg":"HS256","alg":"none"}"#).is_err());
        assert!(JoseHeader::parse(br#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#).is_err());
        assert!(JoseHeader::parse(br#"{"kid":"a"}"#).is_err());
        assert!(JoseHeader::parse(br#"["HS256"]"#).is_err(), "an array is not a header");
        assert!(JoseHeader::parse(br#" {"alg":"HS256"}"#).is_ok());
        let h = JoseHeader::parse(br#"{"alg":"RS256","jku":"https://evil","kid":"k\"1"}"#).unwrap();
        assert_eq!(h.kid.as_deref(), Some("k\"1"));
    }
}
