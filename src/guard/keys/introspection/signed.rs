//! JWT introspection responses (RFC 9701): the endpoint is asked for
//! `application/token-introspection+jwt`, and its answer is a JWS signed by the authorization
//! server, whose `token_introspection` member is the RFC 7662 answer. It is read only when the
//! signature verifies with one of the configured keys, `typ` is `token-introspection+jwt`, `iss`
//! is the authorization server, `aud` names this client, and `iat` is present and not in the
//! future (beyond the leeway). An unsigned (plain JSON) answer is refused: the configuration asked
//! for signed ones (as FAPI 2.0 Message Signing does). Encrypted answers are not read yet.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use crate::guard::keys::VerificationKey;

/// The media type of a signed answer.
pub(super) const MEDIA_TYPE: &str = "application/token-introspection+jwt";

/// Clock skew tolerated on the answer's `iat`.
const LEEWAY: u64 = 10;

/// What a signed answer must show.
#[derive(Clone)]
pub(crate) struct SignedResponses {
    pub(super) issuer: String,
    pub(super) keys: Vec<VerificationKey>,
}

impl fmt::Debug for SignedResponses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedResponses").field("issuer", &self.issuer).field("keys", &self.keys).finish()
    }
}

/// Why a signed answer is no answer (the caller makes it a malformed answer: 503).
fn malformed(why: &'static str) -> &'static str {
    why
}

impl SignedResponses {
    /// The RFC 7662 answer inside a signed answer of `content_type`, for the client `client_id`.
    pub(super) fn open(
        &self,
        content_type: Option<&str>,
        body: &[u8],
        client_id: &str,
        now: u64,
    ) -> Result<Vec<u8>, &'static str> {
        let media = content_type.and_then(|value| value.split(';').next()).map(str::trim);
        if !media.is_some_and(|media| media.eq_ignore_ascii_case(MEDIA_TYPE)) {
            return Err(malformed("an unsigned answer where a signed one (RFC 9701) is required"));
        }
        let text = std::str::from_utf8(body).map_err(|_| malformed("the signed answer is not text"))?.trim();
        let mut parts = text.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("the signed answer is not a compact JWS"));
        };
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| malformed("bad base64url"));
        let header_json: Value = serde_json::from_slice(&decode(header)?)
            .map_err(|_| malformed("the signed answer's header is not JSON"))?;
        let typ = header_json.get("typ").and_then(Value::as_str).unwrap_or_default();
        let typ = typ.strip_prefix("application/").unwrap_or(typ);
        if !typ.eq_ignore_ascii_case("token-introspection+jwt") {
            return Err(malformed("the signed answer's typ is not token-introspection+jwt"));
        }
        let alg = header_json.get("alg").and_then(Value::as_str).unwrap_or_default();
        let kid = header_json.get("kid").and_then(Value::as_str);
        let signature = decode(signature)?;
        let message = &text.as_bytes()[..header.len() + 1 + payload.len()];
        let verified = self.keys.iter().any(|key| {
            key.algorithm().as_str() == alg
                && (kid.is_none() || key.kid().is_none() || key.kid() == kid)
                && key.verify(message, &signature)
        });
        if !verified {
            return Err(malformed("the signed answer's signature does not verify"));
        }
        let claims: Value = serde_json::from_slice(&decode(payload)?)
            .map_err(|_| malformed("the signed answer is not JSON"))?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(malformed("the signed answer is from another issuer"));
        }
        let for_us = match claims.get("aud") {
            Some(Value::String(aud)) => aud == client_id,
            Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(client_id)),
            _ => false,
        };
        if !for_us {
            return Err(malformed("the signed answer is for another audience"));
        }
        match claims.get("iat").and_then(Value::as_u64) {
            Some(iat) if iat <= now.saturating_add(LEEWAY) => {}
            Some(_) => return Err(malformed("the signed answer is issued in the future")),
            None => return Err(malformed("the signed answer has no iat")),
        }
        match claims.get("token_introspection") {
            Some(answer @ Value::Object(_)) => {
                serde_json::to_vec(answer).map_err(|_| malformed("the signed answer is not JSON"))
            }
            _ => Err(malformed("the signed answer has no token_introspection object")),
        }
    }
}
