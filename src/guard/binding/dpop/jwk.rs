//! The proof's `jwk` (RFC 9449 §4.2): a public key only, its RFC 7638 thumbprint, and the
//! parsed keys, cached by thumbprint.
//!
//! The thumbprint is the SHA-256 of the key's required members in canonical JSON; it is
//! hashed piece by piece from the borrowed member texts, without building the JSON. A key is
//! parsed (base64url decoded, the RSA key put in DER, the curve point checked) once per
//! thumbprint and algorithm, then taken from a bounded cache: the members that make the
//! thumbprint are exactly those that make the key, so a hit is the same key.

use std::borrow::Cow;
use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, ParsedPublicKey};
use base64::Engine as _;
use quick_cache::sync::Cache;
use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::primitives::algorithm::Algorithm;

/// The members of a proof's `jwk`, borrowed from the decoded header.
#[derive(Deserialize)]
pub(crate) struct ProofJwk<'a> {
    #[serde(borrow)]
    kty: Cow<'a, str>,
    #[serde(borrow, default)]
    crv: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    x: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    y: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    n: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    e: Option<Cow<'a, str>>,
    // Private members (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2): any of them refuses the proof.
    #[serde(default)]
    d: Option<IgnoredAny>,
    #[serde(default)]
    p: Option<IgnoredAny>,
    #[serde(default)]
    q: Option<IgnoredAny>,
    #[serde(default)]
    dp: Option<IgnoredAny>,
    #[serde(default)]
    dq: Option<IgnoredAny>,
    #[serde(default)]
    qi: Option<IgnoredAny>,
    #[serde(default)]
    oth: Option<IgnoredAny>,
    #[serde(default)]
    k: Option<IgnoredAny>,
}

/// Why a `jwk` is refused (the audit's reason).
pub(crate) type JwkError = &'static str;

impl ProofJwk<'_> {
    /// Whether the JWK carries a private or symmetric member.
    pub(crate) fn is_private(&self) -> bool {
        self.d.is_some()
            || self.p.is_some()
            || self.q.is_some()
            || self.dp.is_some()
            || self.dq.is_some()
            || self.qi.is_some()
            || self.oth.is_some()
            || self.k.is_some()
    }

    /// The RFC 7638 thumbprint (SHA-256), after the members the key type requires are checked
    /// to be there and to be plain base64url or curve names (nothing JSON would escape).
    pub(crate) fn thumbprint(&self) -> Result<digest::Digest, JwkError> {
        let mut ctx = digest::Context::new(&digest::SHA256);
        let mut member = |first: bool, name: &str, value: &str| {
            ctx.update(if first { b"{\"" } else { b",\"" });
            ctx.update(name.as_bytes());
            ctx.update(b"\":\"");
            ctx.update(value.as_bytes());
            ctx.update(b"\"");
        };
        match &*self.kty {
            "EC" => {
                let (crv, x, y) = (plain(&self.crv)?, plain(&self.x)?, plain(&self.y)?);
                member(true, "crv", crv);
                member(false, "kty", "EC");
                member(false, "x", x);
                member(false, "y", y);
            }
            "RSA" => {
                let (e, n) = (plain(&self.e)?, plain(&self.n)?);
                member(true, "e", e);
                member(false, "kty", "RSA");
                member(false, "n", n);
            }
            "OKP" => {
                let (crv, x) = (plain(&self.crv)?, plain(&self.x)?);
                member(true, "crv", crv);
                member(false, "kty", "OKP");
                member(false, "x", x);
            }
            _ => return Err("the proof's jwk has an unsupported key type"),
        }
        ctx.update(b"}");
        Ok(ctx.finish())
    }

    /// The key, parsed for `algorithm`: the key type and curve must be the algorithm's.
    fn parse(&self, algorithm: Algorithm) -> Result<ParsedPublicKey, JwkError> {
        const MISMATCH: JwkError = "the proof's jwk does not fit its alg";
        let crv = self.crv.as_deref();
        let (verification, bytes): (&'static dyn signature::VerificationAlgorithm, Vec<u8>) =
            match (algorithm, &*self.kty) {
                (Algorithm::ES256 | Algorithm::ES384, "EC") => {
                    let (curve, len, verification): (_, _, &'static dyn signature::VerificationAlgorithm) =
                        match algorithm {
                            Algorithm::ES256 => ("P-256", 32, &signature::ECDSA_P256_SHA256_FIXED),
                            _ => ("P-384", 48, &signature::ECDSA_P384_SHA384_FIXED),
                        };
                    if crv != Some(curve) {
                        return Err(MISMATCH);
                    }
                    let (x, y) = (decode(&self.x)?, decode(&self.y)?);
                    if x.len() != len || y.len() != len {
                        return Err("the proof's jwk has coordinates of the wrong length");
                    }
                    let mut point = Vec::with_capacity(1 + 2 * len);
                    point.push(4);
                    point.extend_from_slice(&x);
                    point.extend_from_slice(&y);
                    (verification, point)
                }
                (Algorithm::EdDSA, "OKP") => {
                    if crv != Some("Ed25519") {
                        return Err(MISMATCH);
                    }
                    let x = decode(&self.x)?;
                    if x.len() != 32 {
                        return Err("the proof's jwk has a key of the wrong length");
                    }
                    (&signature::ED25519, x)
                }
                (alg, "RSA") if alg.family() == jsonwebtoken::AlgorithmFamily::Rsa => {
                    let (n, e) = (decode(&self.n)?, decode(&self.e)?);
                    let verification: &'static dyn signature::VerificationAlgorithm = match alg {
                        Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
                        _ => &signature::RSA_PSS_2048_8192_SHA512,
                    };
                    (verification, crate::guard::keys::rsa_public_key_der(&n, &e))
                }
                _ => return Err(MISMATCH),
            };
        ParsedPublicKey::new(verification, &bytes).map_err(|_| "the proof's jwk is not a valid public key")
    }
}

/// A required member, refused when absent or when it is not plain text: base64url or a curve
/// name (`P-256`, `Ed25519`), so that the canonical JSON of RFC 7638 is the text itself.
fn plain<'m>(member: &'m Option<Cow<'_, str>>) -> Result<&'m str, JwkError> {
    match member.as_deref() {
        Some(value)
            if !value.is_empty()
                && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(value)
        }
        Some(_) => Err("the proof's jwk has a malformed member"),
        None => Err("the proof's jwk lacks a member its key type requires"),
    }
}

fn decode(member: &Option<Cow<'_, str>>) -> Result<Vec<u8>, JwkError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(plain(member)?)
        .map_err(|_| "the proof's jwk has a member that is not base64url")
}

/// Parsed proof keys by (thumbprint, algorithm): bounded, shared by every request.
pub(crate) struct KeyCache {
    keys: Cache<([u8; 32], u8), Arc<ParsedPublicKey>>,
}

impl KeyCache {
    pub(crate) fn new(capacity: usize) -> Self {
        KeyCache { keys: Cache::new(capacity.max(1)) }
    }

    /// The key of `jwk` (whose thumbprint is `thumbprint`) for `algorithm`, parsed once.
    pub(crate) fn get(
        &self,
        jwk: &ProofJwk<'_>,
        thumbprint: &digest::Digest,
        algorithm: Algorithm,
    ) -> Result<Arc<ParsedPublicKey>, JwkError> {
        let mut id = [0u8; 32];
        id.copy_from_slice(thumbprint.as_ref());
        let key = (id, algorithm as u8);
        if let Some(parsed) = self.keys.get(&key) {
            return Ok(parsed);
        }
        let parsed = Arc::new(jwk.parse(algorithm)?);
        self.keys.insert(key, Arc::clone(&parsed));
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1: the thumbprint of the example RSA key.
    #[test]
    fn rfc_7638_example_thumbprint() {
        let jwk = r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#;
        let jwk: ProofJwk<'_> = serde_json::from_str(jwk).unwrap();
        let thumbprint = jwk.thumbprint().unwrap();
        assert_eq!(
            crate::guard::binding::base64url(thumbprint.as_ref()),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert!(!jwk.is_private());
        assert!(jwk.parse(Algorithm::RS256).is_ok());
        assert!(jwk.parse(Algorithm::ES256).is_err());
    }

    #[test]
    fn private_and_malformed_keys_are_refused() {
        let private: ProofJwk<'_> =
            serde_json::from_str(r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}"#).unwrap();
        assert!(private.is_private());
        let escaped: ProofJwk<'_> =
            serde_json::from_str(r#"{"kty":"OKP","crv":"Ed25519","x":"a\"b"}"#).unwrap();
        assert!(escaped.thumbprint().is_err());
        let missing: ProofJwk<'_> = serde_json::from_str(r#"{"kty":"EC","crv":"P-256","x":"AA"}"#).unwrap();
        assert!(missing.thumbprint().is_err());
        let oct: ProofJwk<'_> = serde_json::from_str(r#"{"kty":"oct","k":"AAAA"}"#).unwrap();
        assert!(oct.is_private() && oct.thumbprint().is_err());
    }
}
