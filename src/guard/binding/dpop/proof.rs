//! One DPoP proof (RFC 9449 §4.2), checked as §4.3 says: one `DPoP` header holding a compact
//! JWS; `typ` `dpop+jwt`; an allowed asymmetric `alg`; a public `jwk` (whose RFC 7638
//! thumbprint must be the token's `cnf.jkt`); `htm`, `htu`, `iat`, `jti`, `ath`; the
//! signature; then the nonce (in [`super`]) and the replay (in the revocation step).
//!
//! The header and the claims are decoded into stack buffers and read with borrowed strings:
//! a proof costs its signature check, two small JSON parses and two SHA-256 of a few hundred
//! bytes, and allocates nothing once its key is in the [`KeyCache`].

use std::borrow::Cow;

use aws_lc_rs::digest::Digest;
use base64::Engine as _;
use serde::de::IgnoredAny;
use serde::Deserialize;

use super::jwk::{KeyCache, ProofJwk};
use super::Dpop;
use crate::guard::binding::{claims_digest, sha256, RequestHead};
use crate::primitives::algorithm::Algorithm;
use crate::primitives::compact::{split_jws, JwsParts};
use crate::primitives::error::ErrorKind;

/// The longest proof read (an RSA-4096 `jwk` makes a proof of about 2 KiB).
pub(crate) const MAX_PROOF_LEN: usize = 6 * 1024;
/// The longest `jti` accepted.
const MAX_JTI_LEN: usize = 256;

/// Why a proof is refused: the kind and the audit's reason.
pub(crate) type Refusal = (ErrorKind, &'static str);

fn invalid(reason: &'static str) -> Refusal {
    (ErrorKind::InvalidDpopProof, reason)
}

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    typ: Cow<'a, str>,
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow)]
    jwk: ProofJwk<'a>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Claims<'a> {
    #[serde(borrow)]
    jti: Cow<'a, str>,
    #[serde(borrow)]
    htm: Cow<'a, str>,
    #[serde(borrow)]
    htu: Cow<'a, str>,
    iat: f64,
    #[serde(borrow, default)]
    ath: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    nonce: Option<Cow<'a, str>>,
}

/// A proof that passed every check but the nonce and the replay.
pub(crate) struct Checked {
    pub(crate) thumbprint: Digest,
    pub(crate) replay: crate::guard::revocation::ReplayKey,
    /// Until when the proof would be accepted (its replay entry must live as long).
    pub(crate) expires_at: u64,
    pub(crate) nonce_fresh: Option<bool>,
}

/// The request's one `DPoP` header.
pub(crate) fn proof_header<'r>(request: &RequestHead<'r>) -> Result<Option<&'r [u8]>, Refusal> {
    let mut values = request.headers.get_all("dpop").iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => Ok(Some(value.as_bytes())),
        (Some(_), Some(_)) => Err(invalid("more than one DPoP header")),
    }
}

/// Decodes base64url `text` into `buf`.
fn decode<'b>(text: &[u8], buf: &'b mut [u8]) -> Result<&'b [u8], Refusal> {
    if text.len() / 4 * 3 + 3 > buf.len() {
        return Err(invalid("the DPoP proof is too large"));
    }
    match base64::engine::general_purpose::URL_SAFE_NO_PAD.decode_slice(text, buf) {
        Ok(len) => Ok(&buf[..len]),
        Err(_) => Err(invalid("the DPoP proof is not base64url")),
    }
}

/// Checks `proof` against `request`, the access token (`ath`, when there is one) and the
/// token's `cnf.jkt` (when there is one).
pub(crate) fn check(
    dpop: &Dpop,
    keys: &KeyCache,
    proof: &[u8],
    request: &RequestHead<'_>,
    token: Option<&[u8]>,
    jkt: Option<&str>,
    now: u64,
) -> Result<Checked, Refusal> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(invalid("the DPoP proof is too large"));
    }
    let JwsParts { signing_input, header, payload, signature } =
        split_jws(proof).map_err(|_| invalid("the DPoP proof is not a compact JWS"))?;

    let mut header_buf = [0u8; 4096];
    let header: Header<'_> = serde_json::from_slice(decode(header, &mut header_buf)?)
        .map_err(|_| invalid("the DPoP proof's header is malformed"))?;
    if !header.typ.eq_ignore_ascii_case("dpop+jwt") {
        return Err(invalid("the DPoP proof's typ is not dpop+jwt"));
    }
    if header.crit.is_some() {
        return Err(invalid("the DPoP proof has a critical extension"));
    }
    let algorithm = dpop
        .algorithms
        .iter()
        .copied()
        // RFC 9864's fully specified `Ed25519` is the EdDSA of an Ed25519 key.
        .find(|alg| alg.as_str() == header.alg || (*alg == Algorithm::EdDSA && header.alg == "Ed25519"))
        .ok_or(invalid("the DPoP proof's alg is not allowed"))?;
    if header.jwk.is_private() {
        return Err(invalid("the DPoP proof's jwk holds a private key"));
    }
    let thumbprint = header.jwk.thumbprint().map_err(invalid)?;
    if let Some(jkt) = jkt {
        if !claims_digest(jkt, &thumbprint) {
            return Err((ErrorKind::InvalidToken, "the DPoP proof's key is not the token's (cnf.jkt)"));
        }
    }

    let mut claims_buf = [0u8; 2048];
    let claims: Claims<'_> = serde_json::from_slice(decode(payload, &mut claims_buf)?)
        .map_err(|_| invalid("the DPoP proof's claims are malformed"))?;
    if claims.htm != request.method.as_str() {
        return Err(invalid("the DPoP proof's htm is not the request's method"));
    }
    let origin = dpop.origin.as_ref().ok_or(invalid("the DPoP origin is not configured"))?;
    if !origin.matches(&claims.htu, request) {
        return Err(invalid("the DPoP proof's htu is not the request's URI"));
    }
    if !claims.iat.is_finite() || claims.iat < 0.0 {
        return Err(invalid("the DPoP proof's iat is malformed"));
    }
    let iat = claims.iat as u64;
    if iat > now.saturating_add(dpop.leeway) {
        return Err(invalid("the DPoP proof was issued in the future"));
    }
    if now.saturating_sub(iat) > dpop.max_age {
        return Err(invalid("the DPoP proof is too old"));
    }
    if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
        return Err(invalid("the DPoP proof's jti is missing or too long"));
    }
    if let Some(token) = token {
        let Some(ath) = claims.ath.as_deref() else {
            return Err(invalid("the DPoP proof has no ath"));
        };
        if !claims_digest(ath, &sha256(token)) {
            return Err(invalid("the DPoP proof's ath is not the token's hash"));
        }
    }

    let mut signature_buf = [0u8; 1024 + 3];
    let signature = decode(signature, &mut signature_buf)?;
    let key = keys.get(&header.jwk, &thumbprint, algorithm).map_err(invalid)?;
    if key.verify_sig(signing_input, signature).is_err() {
        return Err(invalid("the DPoP proof's signature is invalid"));
    }

    let nonce_fresh = dpop
        .nonces
        .as_ref()
        .map(|nonces| claims.nonce.as_deref().is_some_and(|nonce| nonces.is_fresh(nonce, now)));
    Ok(Checked {
        replay: crate::guard::revocation::ReplayKey::new(thumbprint.as_ref(), &claims.jti),
        thumbprint,
        expires_at: iat.saturating_add(dpop.max_age).saturating_add(1),
        nonce_fresh,
    })
}
