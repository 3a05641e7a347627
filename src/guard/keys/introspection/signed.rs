//! JWT introspection responses (RFC 9701): the endpoint is asked for
//! `application/token-introspection+jwt`, and its answer is a JWS signed by the authorization
//! server, whose `token_introspection` member is the RFC 7662 answer. It is read only when the
//! signature verifies with one of the authorization server's keys (given, or from its JWKS: any
//! [`KeySource`], looked up by the answer's `kid` and `alg` like a token's key), `typ` is
//! `token-introspection+jwt`, `iss` is the authorization server, `aud` names this client, and
//! `iat` is present, not in the future and at most a minute old (beyond a leeway of 10 s). An
//! unsigned (plain JSON) answer is refused: the configuration asked for signed ones (as FAPI 2.0
//! Message Signing does).
//!
//! With decryption keys (feature `jwe`), the answer must be encrypted (RFC 9701 §5: a JWE whose
//! content is the signed JWT, `cty` `JWT`); it is decrypted first, then read as above, and the
//! claims its header replicates (`iss`, `sub`, `aud`: RFC 7519 §5.3) must be the signed answer's.
//! An answer left unencrypted, or an encrypted claims set that is not a nested signed JWT, is
//! refused.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use crate::guard::keys::{KeyLookup, KeySource, MAX_KID_LESS_CANDIDATES};
use crate::primitives::algorithm::Algorithm;

/// The media type of a signed answer.
pub(super) const MEDIA_TYPE: &str = "application/token-introspection+jwt";

/// Clock skew tolerated on the answer's `iat`.
const LEEWAY: u64 = 10;

/// How old an answer's `iat` may be (beyond the leeway): the answer is made for this call, so
/// an old one is a replay (an intermediary's, or a cache's), not the token's state now.
const MAX_AGE: u64 = 60;

/// What a signed answer must show.
#[derive(Clone)]
pub(crate) struct SignedResponses {
    pub(super) issuer: String,
    /// The authorization server's keys.
    pub(super) keys: Arc<dyn KeySource>,
    /// The client's decryption keys: answers must then be encrypted (feature `jwe`).
    #[cfg(feature = "jwe")]
    pub(super) decryption: Option<Arc<crate::guard::verify::jwe::DecryptionKeys>>,
}

impl fmt::Debug for SignedResponses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = match self.keys.algorithms() {
            Some(algorithms) => format!("{} given", algorithms.len()),
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
        #[cfg(feature = "jwe")]
        let decrypted = self.decrypted(text)?;
        #[cfg(feature = "jwe")]
        let text = match &decrypted {
            Some(decrypted) => {
                std::str::from_utf8(&decrypted.plaintext).map_err(|_| "the encrypted answer is not text")?
            }
            None => text,
        };
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
        let claims: Value =
            serde_json::from_slice(&decode(payload)?).map_err(|_| "the signed answer is not JSON")?;
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
        // RFC 7519 §5.3: claims the encrypted answer's header replicates must be the answer's.
        #[cfg(feature = "jwe")]
        if let Some(decrypted) = &decrypted {
            let aud: Vec<String> = match claims.get("aud") {
                Some(Value::String(aud)) => vec![aud.clone()],
                Some(Value::Array(auds)) => {
                    auds.iter().filter_map(Value::as_str).map(str::to_owned).collect()
                }
                _ => Vec::new(),
            };
            let iss = claims.get("iss").and_then(Value::as_str);
            let sub = claims.get("sub").and_then(Value::as_str);
            if !decrypted.replicated.agrees_with(iss, sub, &aud) {
                return Err("the encrypted answer's header disagrees with its claims");
            }
        }
        match claims.get("iat").and_then(Value::as_u64) {
            Some(iat) if iat > now.saturating_add(LEEWAY) => {
                return Err("the signed answer is issued in the future")
            }
            Some(iat) if iat.saturating_add(MAX_AGE + LEEWAY) < now => {
                return Err("the signed answer is too old")
            }
            Some(_) => {}
            None => return Err("the signed answer has no iat"),
        }
        match claims.get("token_introspection") {
            Some(answer @ Value::Object(_)) => {
                serde_json::to_vec(answer).map_err(|_| "the signed answer is not JSON")
            }
            _ => Err("the signed answer has no token_introspection object"),
        }
    }

    /// With decryption keys: the decrypted answer `text` (which must be a JWE), whose content
    /// must be a signed JWT. Without: `None` (the answer is read as it is).
    #[cfg(feature = "jwe")]
    fn decrypted(&self, text: &str) -> Result<Option<crate::guard::verify::jwe::Decrypted>, Refusal> {
        let Some(keys) = &self.decryption else { return Ok(None) };
        if !crate::guard::verify::jwe::JweCompact::is_jwe(text) {
            return Err("an unencrypted answer where an encrypted one (RFC 9701 §5) is required");
        }
        let decrypted = keys.decrypt(text).map_err(|_| "the encrypted answer could not be decrypted")?;
        if !decrypted.nested {
            return Err("the encrypted answer is not a nested signed JWT (cty JWT)");
        }
        Ok(Some(decrypted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::keys::{StaticKeys, VerificationKey};
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    use serde_json::json;

    const ISSUER: &str = "https://as.example.com";

    struct Signer(Ed25519KeyPair);

    impl Signer {
        fn new() -> Signer {
            Signer(Ed25519KeyPair::generate().unwrap())
        }

        fn key(&self, kid: &str) -> VerificationKey {
            VerificationKey::from_der(Algorithm::EdDSA, self.0.public_key().as_ref()).unwrap().with_kid(kid)
        }

        fn sign(&self, header: Value, claims: Value) -> String {
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let signature = self.0.sign(input.as_bytes());
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
        }

        /// A valid answer for `api` by this key (kid `k1`).
        fn answer(&self) -> String {
            let header = json!({ "alg": "EdDSA", "kid": "k1", "typ": "token-introspection+jwt" });
            self.sign(header, json!({ "iss": ISSUER, "aud": "api", "iat": 1000, "token_introspection": { "active": true, "sub": "alice" } }))
        }
    }

    fn responses(keys: impl KeySource) -> SignedResponses {
        SignedResponses {
            issuer: ISSUER.into(),
            keys: Arc::new(keys),
            #[cfg(feature = "jwe")]
            decryption: None,
        }
    }

    fn open(responses: &SignedResponses, body: &str) -> Result<Vec<u8>, Refusal> {
        let opened = responses.open(Some(MEDIA_TYPE), body.as_bytes(), "api", 1000);
        futures_util::FutureExt::now_or_never(opened).expect("no I/O")
    }

    #[test]
    fn the_key_is_found_by_kid_and_alg_in_the_source() {
        let signer = Signer::new();
        let responses = responses(StaticKeys::new([signer.key("k1")]));
        let opened = open(&responses, &signer.answer()).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&opened).unwrap()["sub"], "alice");
        // Another kid: no key. Another key: no signature. An HMAC or unknown alg: refused first.
        let other_kid = responses_with_kid(&signer, "k2");
        assert_eq!(open(&other_kid, &signer.answer()), Err("the signed answer's signature does not verify"));
        let impostor = Signer::new();
        assert!(open(&responses, &impostor.answer()).is_err());
        for alg in ["HS256", "none", "ES256"] {
            let header = json!({ "alg": alg, "kid": "k1", "typ": "token-introspection+jwt" });
            let forged = signer.sign(header, json!({ "iss": ISSUER, "aud": "api", "iat": 1000 }));
            assert!(open(&responses, &forged).is_err(), "{alg}");
        }
        assert_eq!(
            responses.open(Some("application/json"), b"{}", "api", 1000).now_or_never(),
            Some(Err("an unsigned answer where a signed one (RFC 9701) is required"))
        );
    }

    fn responses_with_kid(signer: &Signer, kid: &str) -> SignedResponses {
        responses(StaticKeys::new([signer.key(kid)]))
    }

    use futures_util::FutureExt as _;

    /// A source that must fetch first (a JWKS meeting a new kid): the answer waits for it.
    struct Fetching(Arc<VerificationKey>);

    impl KeySource for Fetching {
        fn lookup(&self, _kid: Option<&str>, _alg: Algorithm) -> KeyLookup {
            let key = Arc::clone(&self.0);
            KeyLookup::Pending(async move { KeyLookup::Found(key) }.boxed())
        }
    }

    struct Down;

    impl KeySource for Down {
        fn lookup(&self, _kid: Option<&str>, _alg: Algorithm) -> KeyLookup {
            KeyLookup::Unavailable
        }
    }

    #[test]
    fn a_source_that_fetches_is_waited_for_and_one_that_is_down_refuses() {
        let signer = Signer::new();
        let fetching = responses(Fetching(Arc::new(signer.key("k1"))));
        assert!(open(&fetching, &signer.answer()).is_ok());
        assert_eq!(
            open(&responses(Down), &signer.answer()),
            Err("the authorization server's keys are unavailable")
        );
    }

    #[cfg(feature = "jwe")]
    #[test]
    fn with_decryption_keys_the_answer_must_be_an_encrypted_signed_jwt() {
        use crate::guard::verify::jwe::{
            ContentEncryption, DecryptionKey, DecryptionKeys, EncryptionKey, KeyManagement,
        };
        let (alg, enc, secret) = (KeyManagement::A256Kw, ContentEncryption::A256Gcm, [5u8; 32]);
        let signer = Signer::new();
        let mut responses = responses(StaticKeys::new([signer.key("k1")]));
        responses.decryption =
            Some(Arc::new(DecryptionKeys::new(vec![DecryptionKey::secret(alg, enc, secret).unwrap()])));
        let encryption = EncryptionKey::secret(alg, enc, secret).unwrap();
        let encrypted = encryption.encrypt(signer.answer().as_bytes(), true).unwrap();
        assert!(open(&responses, &encrypted).is_ok());
        assert_eq!(
            open(&responses, &signer.answer()),
            Err("an unencrypted answer where an encrypted one (RFC 9701 §5) is required")
        );
        let claims =
            json!({ "iss": ISSUER, "aud": "api", "iat": 1000, "token_introspection": { "active": true } });
        let claims_set = encryption.encrypt(claims.to_string().as_bytes(), false).unwrap();
        assert_eq!(
            open(&responses, &claims_set),
            Err("the encrypted answer is not a nested signed JWT (cty JWT)")
        );
        // A header replicating another issuer than the signed answer's (RFC 7519 §5.3).
        let replicated = |iss: &str| {
            use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
            let key = [5u8; 32];
            let header = json!({ "alg": "dir", "enc": "A256GCM", "cty": "JWT", "iss": iss });
            let header = URL_SAFE_NO_PAD.encode(header.to_string());
            let sealing = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).unwrap());
            let iv = [1u8; 12];
            let mut content = signer.answer().into_bytes();
            let nonce = Nonce::assume_unique_for_key(iv);
            let tag = sealing
                .seal_in_place_separate_tag(nonce, Aad::from(header.as_bytes()), &mut content)
                .unwrap();
            let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
            format!("{header}..{}.{}.{}", b64(&iv), b64(&content), b64(tag.as_ref()))
        };
        let mut direct = responses_with_kid(&signer, "k1");
        direct.decryption = Some(Arc::new(DecryptionKeys::new(vec![DecryptionKey::secret(
            KeyManagement::Dir,
            enc,
            [5u8; 32],
        )
        .unwrap()])));
        assert!(open(&direct, &replicated(ISSUER)).is_ok());
        assert_eq!(
            open(&direct, &replicated("https://evil.example.com")),
            Err("the encrypted answer's header disagrees with its claims")
        );
        let other_key = EncryptionKey::secret(alg, enc, [6u8; 32]).unwrap();
        let undecryptable = other_key.encrypt(signer.answer().as_bytes(), true).unwrap();
        assert_eq!(open(&responses, &undecryptable), Err("the encrypted answer could not be decrypted"));
    }
}
