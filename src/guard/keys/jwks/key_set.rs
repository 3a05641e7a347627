//! A parsed JWKS: the usable signature keys of one document, each bound to one algorithm.
//!
//! Rules (RFC 7517, RFC 8725 §3.1):
//! - `oct` (HMAC) keys are never taken from a JWKS: a published secret is no secret;
//! - a key whose `use` is not `sig` is skipped;
//! - a key's algorithm is its `alg`, or follows from its type (RSA → `RS256`, P-256 → `ES256`,
//!   P-384 → `ES384`, Ed25519 → `EdDSA`);
//! - keys of unsupported types or curves are skipped, not fatal: one odd key must not cost all others.
//!
//! A well-formed document whose keys are all skipped (or `{"keys":[]}`) is still a set: an empty
//! one. The provider may have withdrawn a compromised key that way, so it is honoured, not ignored.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::AlgorithmFamily;

use serde::Deserialize;
use serde_json::Value;

use super::JwksError;
use crate::guard::keys::{KeyLookup, VerificationKey};
use crate::primitives::algorithm::Algorithm;

/// One usable key and the JWK it came from (to recognise it in the next document).
struct Stored {
    jwk: Value,
    key: Arc<VerificationKey>,
}

/// The keys of one JWKS document.
pub(super) struct KeySet {
    keys: Vec<Stored>,
    /// The indexes in `keys` of each `kid`'s keys, in document order: a document of a thousand
    /// keys selects in constant time, not by a scan (and a refresh matches the previous keys
    /// the same way).
    by_kid: HashMap<Box<str>, Vec<usize>>,
    /// How many keys of the document were skipped.
    skipped: usize,
}

#[derive(Deserialize)]
struct Document {
    keys: Vec<Value>,
}

impl KeySet {
    /// Parses a JWKS document. A key already in `previous` (same JWK) keeps its `Arc`, so tokens it
    /// verified stay in the verified-token cache; a retired key's `Arc` is dropped with the old set.
    /// Only a document that is not a JWKS is an error: one without usable keys is an empty set.
    pub(super) fn parse(
        body: &[u8],
        previous: Option<&KeySet>,
        allowed: Option<&[Algorithm]>,
    ) -> Result<KeySet, JwksError> {
        let document: Document =
            serde_json::from_slice(body).map_err(|err| JwksError::Malformed(format!("not a JWKS: {err}")))?;
        let mut keys = Vec::with_capacity(document.keys.len());
        let mut by_kid: HashMap<Box<str>, Vec<usize>> = HashMap::new();
        let mut skipped = 0;
        for jwk in document.keys {
            let reused = previous.and_then(|set| set.same_jwk(&jwk));
            let key = match reused {
                Some(stored) => Ok(Arc::clone(&stored.key)),
                None => usable_key(&jwk, allowed).map(Arc::new),
            };
            match key {
                Ok(key) => {
                    if let Some(kid) = key.kid() {
                        by_kid.entry(kid.into()).or_default().push(keys.len());
                    }
                    keys.push(Stored { jwk, key });
                }
                Err(why) => {
                    skipped += 1;
                    let kid = jwk.get("kid").and_then(Value::as_str).unwrap_or("");
                    tracing::debug!(target: "tower_jwt_guard", kid, why, "JWKS key skipped");
                }
            }
        }
        Ok(KeySet { keys, by_kid, skipped })
    }

    /// The stored key whose JWK is exactly `jwk`: among the keys of its `kid`, or (a JWK without
    /// one) among all keys.
    fn same_jwk(&self, jwk: &Value) -> Option<&Stored> {
        match jwk.get("kid").and_then(Value::as_str) {
            Some(kid) => self.named(kid).find(|stored| stored.jwk == *jwk),
            None => self.keys.iter().find(|stored| stored.jwk == *jwk),
        }
    }

    /// The keys whose `kid` is `kid`, in document order.
    fn named<'s>(&'s self, kid: &str) -> impl Iterator<Item = &'s Stored> + 's {
        let indexes = self.by_kid.get(kid).map_or(&[][..], Vec::as_slice);
        indexes.iter().filter_map(|&index| self.keys.get(index))
    }

    /// The key for a token: with a `kid`, the key of that id (preferring one bound to `alg`);
    /// without, the keys bound to `alg`, in document order ([`KeyLookup::Candidates`] when there
    /// are several). [`KeyLookup::Unknown`] when no key matches.
    pub(super) fn find(&self, kid: Option<&str>, alg: Algorithm) -> KeyLookup {
        let Some(kid) = kid else {
            return crate::guard::keys::kid_less(self.keys.iter().map(|stored| &stored.key), alg);
        };
        let mut named = self.named(kid).map(|stored| &stored.key);
        let Some(first) = named.next() else {
            return KeyLookup::Unknown;
        };
        let key = if first.algorithm() == alg {
            first
        } else {
            named.find(|k| k.algorithm() == alg).unwrap_or(first)
        };
        KeyLookup::Found(Arc::clone(key))
    }

    /// The JWKs of the usable keys whose `kid` is `kid`, in document order (for HTTP message
    /// signatures, which build their own keys from them; keys sharing a `kid` are told apart by
    /// the signature).
    pub(super) fn find_jwks(&self, kid: &str) -> Vec<Value> {
        self.keys
            .iter()
            .map(|stored| &stored.jwk)
            .filter(|jwk| jwk.get("kid").and_then(Value::as_str) == Some(kid))
            .cloned()
            .collect()
    }

    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    /// How many keys of the document were skipped (HMAC, encryption, unsupported, not allowed).
    pub(super) fn skipped(&self) -> usize {
        self.skipped
    }
}

/// The verification key of one JWK, or why it is skipped.
fn usable_key(jwk: &Value, allowed: Option<&[Algorithm]>) -> Result<VerificationKey, &'static str> {
    if jwk.get("kty").and_then(Value::as_str) == Some("oct") {
        return Err("symmetric (oct) keys are never taken from a JWKS");
    }
    let parsed: Jwk = serde_json::from_value(jwk.clone()).map_err(|_| "not a JWK this crate understands")?;
    let key = VerificationKey::from_parsed_jwk(&parsed, None)
        .map_err(|_| "unusable key (use, type, curve or alg)")?;
    if key.algorithm().family() == AlgorithmFamily::Hmac {
        return Err("symmetric (oct) keys are never taken from a JWKS");
    }
    if allowed.is_some_and(|list| !list.contains(&key.algorithm())) {
        return Err("the key's algorithm is not allowed for this source");
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    // An Ed25519 public key (RFC 8037 A.2).
    const OKP: &str =
        r#"{"kty":"OKP","crv":"Ed25519","kid":"ed","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;

    fn document(keys: &[&str]) -> Vec<u8> {
        format!(r#"{{"keys":[{}]}}"#, keys.join(",")).into_bytes()
    }

    /// The single key found, if any.
    fn found(lookup: KeyLookup) -> Option<Arc<VerificationKey>> {
        match lookup {
            KeyLookup::Found(key) => Some(key),
            KeyLookup::Unknown => None,
            other => panic!("expected one key or none, got {other:?}"),
        }
    }

    #[test]
    fn hmac_and_encryption_keys_are_skipped() {
        let oct =
            r#"{"kty":"oct","alg":"HS256","kid":"h","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#;
        let enc = r#"{"kty":"OKP","crv":"Ed25519","use":"enc","kid":"e","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        let set = KeySet::parse(&document(&[oct, enc, OKP]), None, None).unwrap();
        assert_eq!(set.len(), 1);
        assert!(found(set.find(Some("h"), Algorithm::HS256)).is_none());
        assert!(found(set.find(Some("e"), Algorithm::EdDSA)).is_none());
        assert_eq!(found(set.find(Some("ed"), Algorithm::EdDSA)).unwrap().algorithm(), Algorithm::EdDSA);
        let only_hmac = KeySet::parse(&document(&[oct]), None, None).unwrap();
        assert_eq!((only_hmac.len(), only_hmac.skipped()), (0, 1));
    }

    #[test]
    fn an_empty_document_is_an_empty_set() {
        let empty = KeySet::parse(&document(&[]), None, None).unwrap();
        assert_eq!((empty.len(), empty.skipped()), (0, 0));
        assert!(found(empty.find(Some("ed"), Algorithm::EdDSA)).is_none());
        assert!(found(empty.find(None, Algorithm::EdDSA)).is_none());
    }

    #[test]
    fn unchanged_keys_keep_their_arc() {
        let first = KeySet::parse(&document(&[OKP]), None, None).unwrap();
        let second = KeySet::parse(&document(&[OKP]), Some(&first), None).unwrap();
        let a = found(first.find(Some("ed"), Algorithm::EdDSA)).unwrap();
        let b = found(second.find(Some("ed"), Algorithm::EdDSA)).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }

    /// FAPI 2.0 (`fapi2/key-selection`): keys sharing a `kid` are told apart by `kty`, `use`,
    /// `alg` and `crv`: an encryption key is skipped, and the token's `alg` picks the key of its
    /// type and curve.
    #[test]
    fn keys_sharing_a_kid_are_told_apart_by_use_and_alg() {
        // A P-256 key (for signing, and for encryption), and the Ed25519 key, all under one kid.
        let ec = |usage: &str| {
            format!(
                r#"{{"kty":"EC","crv":"P-256","kid":"shared","use":"{usage}","x":"EskcAw25byxYQpzS7159rPvfuUAv1vXLSgfcNrdlWnI","y":"xB-AQ3zd5Nx9kt3saZaQqfe5uIPbItobVeKlr7t7z58"}}"#
            )
        };
        let ed = OKP.replace(r#""kid":"ed""#, r#""kid":"shared""#);
        let set = KeySet::parse(&document(&[&ec("enc"), &ed, &ec("sig")]), None, None).unwrap();
        assert_eq!((set.len(), set.skipped()), (2, 1), "the encryption key is skipped");
        assert_eq!(found(set.find(Some("shared"), Algorithm::ES256)).unwrap().algorithm(), Algorithm::ES256);
        assert_eq!(found(set.find(Some("shared"), Algorithm::EdDSA)).unwrap().algorithm(), Algorithm::EdDSA);
        // No key of that kid is bound to PS256: the key found is not one (the verifier refuses it).
        assert_ne!(found(set.find(Some("shared"), Algorithm::PS256)).unwrap().algorithm(), Algorithm::PS256);
    }

    #[test]
    fn keys_without_kid_match_by_algorithm() {
        let no_kid = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        let set = KeySet::parse(&document(&[no_kid]), None, None).unwrap();
        assert!(found(set.find(None, Algorithm::EdDSA)).is_some());
        assert!(found(set.find(None, Algorithm::ES256)).is_none());
        assert!(found(set.find(Some("other"), Algorithm::EdDSA)).is_none());
    }

    #[test]
    fn a_token_without_kid_gets_every_key_of_its_algorithm_in_document_order() {
        let ed = |x: &str| format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{x}"}}"#);
        let (a, b) = (
            ed("PUAXw-hDiVqStwqnTRt-vJyYLM8uxJaMwM1V8Sr0Zgw"),
            ed("_FHNjmIYoaONpH7QAjDwWAgW7RO6MwOsXeuRFUiQgCU"),
        );
        let set = KeySet::parse(&document(&[&a, OKP, &b]), None, None).unwrap();
        let KeyLookup::Candidates(candidates) = set.find(None, Algorithm::EdDSA) else {
            panic!("several EdDSA keys are candidates");
        };
        assert_eq!(candidates.len(), 3);
        for (candidate, stored) in candidates.iter().zip(&set.keys) {
            assert!(Arc::ptr_eq(candidate, &stored.key));
        }
        // A kid still names exactly one key; no key of the algorithm is no key.
        let named = found(set.find(Some("ed"), Algorithm::EdDSA)).unwrap();
        assert!(Arc::ptr_eq(&named, &set.keys[1].key));
        assert!(found(set.find(None, Algorithm::ES256)).is_none());
    }

    #[test]
    fn candidates_are_collected_only_up_to_one_past_the_bound() {
        let keys: Vec<String> = (0..10)
            .map(|i| format!(r#"{{"kty":"OKP","crv":"Ed25519","kid":"k{i}","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}"#))
            .collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let set = KeySet::parse(&document(&keys), None, None).unwrap();
        assert_eq!(set.len(), 10);
        let KeyLookup::Candidates(candidates) = set.find(None, Algorithm::EdDSA) else {
            panic!("several EdDSA keys are candidates");
        };
        assert_eq!(candidates.len(), crate::guard::keys::MAX_KID_LESS_CANDIDATES + 1);
    }

    #[test]
    fn every_kid_of_a_large_document_selects_its_key_and_keeps_its_arc() {
        let keys: Vec<String> = (0..1_000)
            .map(|i| format!(r#"{{"kty":"OKP","crv":"Ed25519","kid":"k{i}","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}"#))
            .collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let first = KeySet::parse(&document(&keys), None, None).unwrap();
        let second = KeySet::parse(&document(&keys), Some(&first), None).unwrap();
        for i in 0..1_000 {
            let kid = format!("k{i}");
            let a = found(first.find(Some(&kid), Algorithm::EdDSA)).unwrap();
            assert_eq!(a.kid(), Some(kid.as_str()));
            assert!(Arc::ptr_eq(&a, &first.keys[i].key), "{kid}");
            assert!(Arc::ptr_eq(&a, &found(second.find(Some(&kid), Algorithm::EdDSA)).unwrap()), "{kid}");
        }
        assert!(found(first.find(Some("k1000"), Algorithm::EdDSA)).is_none());
    }

    #[test]
    fn a_kid_shared_by_two_keys_prefers_the_one_of_the_token_algorithm() {
        let ed =
            r#"{"kty":"OKP","crv":"Ed25519","kid":"same","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
        let ec = r#"{"kty":"EC","crv":"P-256","kid":"same","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
        let set = KeySet::parse(&document(&[ed, ec]), None, None).unwrap();
        assert_eq!(set.len(), 2);
        assert!(Arc::ptr_eq(&found(set.find(Some("same"), Algorithm::ES256)).unwrap(), &set.keys[1].key));
        assert!(Arc::ptr_eq(&found(set.find(Some("same"), Algorithm::EdDSA)).unwrap(), &set.keys[0].key));
        // No key of the token's algorithm under that kid: the first one (its check then refuses).
        assert!(Arc::ptr_eq(&found(set.find(Some("same"), Algorithm::ES384)).unwrap(), &set.keys[0].key));
    }

    #[test]
    fn malformed_documents_are_errors() {
        assert!(matches!(KeySet::parse(b"<html>", None, None), Err(JwksError::Malformed(_))));
        assert!(matches!(KeySet::parse(br#"{"kids":[]}"#, None, None), Err(JwksError::Malformed(_))));
    }

    #[test]
    fn an_allow_list_skips_other_algorithms() {
        let allowed = [Algorithm::ES256];
        let set = KeySet::parse(&document(&[OKP]), None, Some(&allowed)).unwrap();
        assert_eq!((set.len(), set.skipped()), (0, 1));
    }
}
