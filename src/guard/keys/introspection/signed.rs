//! JWT introspection responses (RFC 9701): the endpoint is asked for
//! `application/token-introspection+jwt`, and its answer is a JWS signed by the authorization
//! server, whose `token_introspection` member is the RFC 7662 answer. It is read only when the
//! signature verifies with one of the authorization server's keys (given, or from its JWKS: any
//! [`KeySource`], looked up by the answer's `kid` and `alg` like a token's key), `typ` is
//! `token-introspection+jwt`, `iss` is the authorization server, `aud` names this client, and
//! `iat` is present and not in the future (beyond the leeway). An unsigned (plain JSON) answer is
//! refused: the configuration asked for signed ones (as FAPI 2.0 Message Signing does).
//!
//! With decryption keys (feature `jwe`), the answer must be encrypted (RFC 9701 §5: a JWE whose
//! content is the signed JWT, `cty` `JWT`); it is decrypted first, then read as above. An answer
//! left unencrypted, or an encrypted claims set that is not a nested signed JWT, is refused.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use crate::guard::keys::{KeyLookup, KeySource, VerificationKey, MAX_KID_LESS_CANDIDATES};
use crate::primitives::algorithm::Algorithm;

/// The media type of a signed answer.
pub(super) const MEDIA_TYPE: &str = "application/token-introspection+jwt";

/// Clock skew tolerated on the answer's `iat`.
const LEEWAY: u64 = 10;

/// What a signed answer must show.
#[derive(Clone)]
pub(crate) struct SignedResponses {
    pub(super) issuer: String,
    /// The authorization server's keys.
    pub(super) keys: Arc<dyn KeySource>,
    /// Given as a list (checked at build: not empty, no HMAC key), or a source (a JWKS).
    pub(super) static_keys: Option<Vec<VerificationKey>>,
    /// The client's decryption keys: answers must then be encrypted (feature `jwe`).
    #[cfg(feature = "jwe")]
    pub(super) decryption: Option<Arc<crate::guard::verify::jwe::DecryptionKeys>>,
}

impl fmt::Debug for SignedResponses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = match &self.static_keys {
            Some(keys) => format!("{} given", keys.len()),
            None => "from a key source".to_owned(),
        };
        #[cfg(feature = "jwe")]
        let encrypted = self.decryption.is_some();
        #[cfg(not(feature = "jwe"))]
        let encrypted = false;
        f.debug_struct("SignedResponses")
            .field("issuer", &self.issuer)
            .field("keys", &keys)
            .field("encrypted", &encrypted)
            .finish()
    }
}

/// Why an answer is no answer: the caller makes it a malformed answer (503).
pub(super) type Refusal = &'static str;

impl SignedResponses {
    /// The RFC 7662 answer inside a signed (and, with decryption keys, encrypted) answer of
    /// `content_type`, for the client `client_id`.
    pub(super) async fn open(
        &self,
        content_type: Option<&str>,
        body: &[u8],
        client_id: &str,
        now: u64,
    ) -> Result<Vec<u8>, Refusal> {
        let media = content_type.and_then(|value| value.split(';').next()).map(str::trim);
        if !media.is_some_and(|media| media.eq_ignore_ascii_case(MEDIA_TYPE)) {
            return Err("an unsigned answer where a signed one (RFC 9701) is required");
        }
        let text = std::str::from_utf8(body).map_err(|_| "the signed answer is not text")?.trim();
        let jws = self.decrypted(text)?;
        let text = jws.as_deref().unwrap_or(text);
        let mut parts = text.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("the signed answer is not a compact JWS");
        };
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| "bad base64url");
        let header_json: Value =
            serde_json::from_slice(&decode(header)?).map_err(|_| "the signed answer's header is not JSON")?;
        let typ = header_json.get("typ").and_then(Value::as_str).unwrap_or_default();
        let typ = typ.strip_prefix("application/").unwrap_or(typ);
        if !typ.eq_ignore_ascii_case("token-introspection+jwt") {
            return Err("the signed answer's typ is not token-introspection+jwt");
        }
        if header_json.get("crit").is_some() {
            return Err("the signed answer names critical header parameters");
        }
        let alg = header_json
            .get("alg")
            .and_then(Value::as_str)
            .and_then(|alg| alg.parse::<Algorithm>().ok())
            .filter(|alg| alg.family() != jsonwebtoken::AlgorithmFamily::Hmac)
            .ok_or("the signed answer's alg is not an asymmetric signature algorithm")?;
        let kid = header_json.get("kid").and_then(Value::as_str);
        let signature = decode(signature)?;
        let message = &text.as_bytes()[..header.len() + 1 + payload.len()];
        let mut lookup = self.keys.lookup(kid, alg);
        if let KeyLookup::Pending(fetch) = lookup {
            lookup = fetch.await;
        }
        let verified = match lookup {
            KeyLookup::Found(key) => key.algorithm() == alg && key.verify(message, &signature),
            KeyLookup::Candidates(keys) => {
                keys.len() <= MAX_KID_LESS_CANDIDATES
                    && keys.iter().any(|key| key.algorithm() == alg && key.verify(message, &signature))
            }
            KeyLookup::Unavailable | KeyLookup::Pending(_) => {
                return Err("the authorization server's keys are unavailable")
            }
            KeyLookup::Unknown => false,
        };
        if !verified {
            return Err("the signed answer's signature does not verify");
        }
        let claims: Value = serde_json::from_slice(&decode(payload)?).map_err(|_| "the signed answer is not JSON")?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err("the signed answer is from another issuer");
        }
        let for_us = match claims.get("aud") {
            Some(Value::String(aud)) => aud == client_id,
            Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(client_id)),
            _ => false,
        };
        if !for_us {
            return Err("the signed answer is for another audience");
        }
        match claims.get("iat").and_then(Value::as_u64) {
            Some(iat) if iat <= now.saturating_add(LEEWAY) => {}
            Some(_) => return Err("the signed answer is issued in the future"),
            None => return Err("the signed answer has no iat"),
        }
        match claims.get("token_introspection") {
            Some(answer @ Value::Object(_)) => serde_json::to_vec(answer).map_err(|_| "the signed answer is not JSON"),
            _ => Err("the signed answer has no token_introspection object"),
        }
    }

    /// With decryption keys: the signed JWT inside the encrypted answer `text` (which must be a
    /// JWE). Without: `None` (the answer is read as it is).
    #[cfg(feature = "jwe")]
    fn decrypted(&self, text: &str) -> Result<Option<String>, Refusal> {
        let Some(keys) = &self.decryption else { return Ok(None) };
        if !crate::guard::verify::jwe::JweCompact::is_jwe(text) {
            return Err("an unencrypted answer where an encrypted one (RFC 9701 §5) is required");
        }
        let decrypted = keys.decrypt(text).map_err(|_| "the encrypted answer could not be decrypted")?;
        if !decrypted.nested {
            return Err("the encrypted answer is not a nested signed JWT (cty JWT)");
        }
        String::from_utf8(decrypted.plaintext).map(Some).map_err(|_| "the encrypted answer is not text")
    }

    #[cfg(not(feature = "jwe"))]
    fn decrypted(&self, _text: &str) -> Result<Option<String>, Refusal> {
        Ok(None)
    }
}
