//! The decryption of a compact JWE (RFC 7516 §5.2) with the configured keys: header checks,
//! key selection, key unwrap, content decryption, and what the content may be.
//!
//! A token without `kid` is tried with the keys of its `alg` / `enc`, at most
//! [`MAX_KID_LESS_CANDIDATES`] of them; under `RSA-OAEP*` with one key only: an RSA private-key
//! operation is costly, and anyone can send a token, so a request costs at most one. With
//! several RSA keys of one `alg` / `enc`, name them ([`DecryptionKey::with_kid`]) and have the
//! senders put the `kid` in their tokens: a token without `kid` is refused.

use std::sync::Arc;

use super::compact::{part, JweCompact};
use super::content;
use super::decryption_key::DecryptionKey;
use super::header::{JweHeader, Replicated};
use super::key_management::content_key;
use crate::guard::keys::MAX_KID_LESS_CANDIDATES;
use crate::guard::verify::compact::malformed;
use crate::primitives::error::AuthError;

/// The one refusal of a token that does not decrypt, whatever the reason (key unwrap, tag, IV,
/// padding): they must not be told apart.
const UNDECRYPTABLE: &str = "the token could not be decrypted";

/// The recipient's decryption keys, selected by `kid` and bound to their `alg` / `enc`.
#[derive(Debug, Default)]
pub(crate) struct DecryptionKeys {
    keys: Vec<Arc<DecryptionKey>>,
}

/// A decrypted token's content.
pub(crate) struct Decrypted {
    pub(crate) plaintext: Vec<u8>,
    /// A nested signed JWT (`cty: "JWT"`), to verify as a JWS; else a claims set.
    pub(crate) nested: bool,
    /// The outer header's `typ`, for a claims set's token kind.
    pub(crate) typ: Option<String>,
    pub(crate) replicated: Replicated,
    /// The issuer the decryption key binds claims sets to.
    pub(crate) issuer: Option<String>,
}

impl DecryptionKeys {
    pub(crate) fn new(keys: Vec<DecryptionKey>) -> Self {
        DecryptionKeys { keys: keys.into_iter().map(Arc::new).collect() }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether a key accepts claims sets without being bound to an issuer.
    pub(crate) fn has_unbound_claims_key(&self) -> bool {
        self.keys.iter().any(|key| !key.requires_nested_jws() && key.issuer().is_none())
    }

    /// A `kid` that names two keys of the same `alg` / `enc`.
    pub(crate) fn duplicate_kid(&self) -> Option<&str> {
        self.keys.iter().enumerate().find_map(|(i, key)| {
            let kid = key.kid()?;
            self.keys[..i]
                .iter()
                .any(|other| {
                    other.kid() == Some(kid)
                        && other.algorithm() == key.algorithm()
                        && other.content_encryption() == key.content_encryption()
                })
                .then_some(kid)
        })
    }

    /// Decrypts `token`: the content, and whether it is a nested JWT.
    pub(crate) fn decrypt(&self, token: &str) -> Result<Decrypted, AuthError> {
        let jwe = JweCompact::split(token)?;
        let header_bytes = jwe.header_bytes()?;
        let header = JweHeader::parse(&header_bytes)?;
        // The key decides the algorithms (RFC 8725 §3.1): only keys bound to this very pair,
        // of the token's `kid` when it names one.
        let mut candidates = self
            .keys
            .iter()
            .filter(|key| key.algorithm() == header.alg && key.content_encryption() == header.enc)
            .filter(|key| header.kid.is_none() || key.kid() == header.kid.as_deref());
        let first = candidates.next().ok_or_else(|| match header.kid {
            Some(_) => malformed("no decryption key is known for this token's kid, alg and enc"),
            None => malformed("no decryption key is known for this token's alg and enc"),
        })?;
        let keys: Vec<&Arc<DecryptionKey>> =
            std::iter::once(first).chain(candidates).take(MAX_KID_LESS_CANDIDATES + 1).collect();
        if keys.len() > MAX_KID_LESS_CANDIDATES {
            return Err(malformed("too many decryption keys match this token without kid: name them"));
        }
        if keys.len() > 1 && header.alg.is_rsa() {
            return Err(malformed(
                "several RSA decryption keys match this token without kid: it must name one",
            ));
        }
        let encrypted_key = part(jwe.encrypted_key, "the token's encrypted key is not base64url")?;
        let iv = part(jwe.iv, "the token's iv is not base64url")?;
        let ciphertext = part(jwe.ciphertext, "the token's ciphertext is not base64url")?;
        let tag = part(jwe.tag, "the token's tag is not base64url")?;
        let mut opened = None;
        // A candidate that cannot take this token at all (an ephemeral key of another curve)
        // leaves the others to try; its refusal stands only if no candidate could try.
        let mut unusable = None;
        let mut tried = false;
        for key in keys {
            let cek = match content_key(key, &header, &encrypted_key) {
                Ok(cek) => cek,
                Err(err) => {
                    unusable = Some(err);
                    continue;
                }
            };
            tried = true;
            let aad = jwe.header.as_bytes();
            if let Ok(plaintext) = content::decrypt(header.enc, &cek, aad, &iv, ciphertext.clone(), &tag) {
                opened = Some((key, plaintext));
                break;
            }
        }
        let Some((key, plaintext)) = opened else {
            return Err(match unusable {
                Some(err) if !tried => err,
                _ => malformed(UNDECRYPTABLE),
            });
        };
        if key.requires_nested_jws() && !header.nested {
            return Err(malformed("this decryption key accepts only a nested signed JWT (cty JWT)"));
        }
        Ok(Decrypted {
            plaintext,
            nested: header.nested,
            typ: header.typ.map(Into::into),
            replicated: header.replicated,
            issuer: key.issuer().map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::agreement;
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
    use aws_lc_rs::rsa::{KeySize, PrivateDecryptingKey};
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;

    use super::super::{ContentEncryption, EncryptionKey, KeyManagement};
    use super::*;

    fn pem(label: &str, der: &[u8]) -> String {
        format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", STANDARD.encode(der))
    }

    /// A recipient's decryption key and the sender's encryption key of one `alg` / `enc`.
    fn pair(alg: KeyManagement, enc: ContentEncryption) -> (DecryptionKey, EncryptionKey) {
        match alg {
            KeyManagement::RsaOaep | KeyManagement::RsaOaep256 => {
                let private = PrivateDecryptingKey::generate(KeySize::Rsa2048).unwrap();
                let public = private.public_key();
                let public: PublicKeyX509Der = public.as_der().unwrap();
                let private: Pkcs8V1Der = private.as_der().unwrap();
                (
                    DecryptionKey::from_pem(alg, enc, pem("PRIVATE KEY", private.as_ref()).as_bytes())
                        .unwrap(),
                    EncryptionKey::from_pem(alg, enc, pem("PUBLIC KEY", public.as_ref()).as_bytes()).unwrap(),
                )
            }
            KeyManagement::EcdhEs | KeyManagement::EcdhEsA128Kw | KeyManagement::EcdhEsA256Kw => {
                let private = agreement::PrivateKey::generate(&agreement::ECDH_P256).unwrap();
                let public: PublicKeyX509Der = private.compute_public_key().unwrap().as_der().unwrap();
                let private: Pkcs8V1Der = private.as_der().unwrap();
                (
                    DecryptionKey::from_pem(alg, enc, pem("PRIVATE KEY", private.as_ref()).as_bytes())
                        .unwrap(),
                    EncryptionKey::from_pem(alg, enc, pem("PUBLIC KEY", public.as_ref()).as_bytes()).unwrap(),
                )
            }
            _ => {
                let len = if alg == KeyManagement::Dir { enc.key_len() } else { alg.wrap_key_len().unwrap() };
                let secret = vec![42u8; len];
                (
                    DecryptionKey::secret(alg, enc, &secret).unwrap(),
                    EncryptionKey::secret(alg, enc, &secret).unwrap(),
                )
            }
        }
    }

    const ALGS: [KeyManagement; 10] = [
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
    ];
    const ENCS: [ContentEncryption; 4] = [
        ContentEncryption::A128Gcm,
        ContentEncryption::A256Gcm,
        ContentEncryption::A128CbcHs256,
        ContentEncryption::A256CbcHs512,
    ];

    #[test]
    fn every_pair_round_trips_and_a_flipped_bit_anywhere_is_refused() {
        for alg in ALGS {
            for enc in ENCS {
                let (decryption, encryption) = pair(alg, enc);
                let keys = DecryptionKeys::new(vec![decryption]);
                let token = encryption.encrypt(b"{\"sub\":\"a\"}", true).unwrap();
                let decrypted = keys.decrypt(&token).unwrap_or_else(|err| panic!("{alg} {enc}: {err:?}"));
                assert_eq!(decrypted.plaintext, b"{\"sub\":\"a\"}");
                assert!(decrypted.nested);
                // Every part but the header (whose change breaks its JSON or its AAD).
                let parts: Vec<&str> = token.split('.').collect();
                for index in 1..5 {
                    if parts[index].is_empty() {
                        continue;
                    }
                    let mut bytes = URL_SAFE_NO_PAD.decode(parts[index]).unwrap();
                    bytes[0] ^= 1;
                    let mut tampered = parts.clone();
                    let encoded = URL_SAFE_NO_PAD.encode(&bytes);
                    tampered[index] = &encoded;
                    let err = keys.decrypt(&tampered.join(".")).err().unwrap();
                    assert_eq!(err.detail(), UNDECRYPTABLE, "{alg} {enc} part {index}");
                }
            }
        }
    }

    #[test]
    fn a_wrong_key_and_a_wrong_tag_are_the_same_refusal() {
        let (key, encryption) = pair(KeyManagement::A256Kw, ContentEncryption::A256Gcm);
        let other =
            DecryptionKey::secret(KeyManagement::A256Kw, ContentEncryption::A256Gcm, [1u8; 32]).unwrap();
        let token = encryption.encrypt(b"{}", false).unwrap();
        let wrong_key = DecryptionKeys::new(vec![other]).decrypt(&token).err().unwrap();
        let (rest, tag) = token.rsplit_once('.').unwrap();
        let mut tag = URL_SAFE_NO_PAD.decode(tag).unwrap();
        tag[5] ^= 0x80;
        let bad_tag = format!("{rest}.{}", URL_SAFE_NO_PAD.encode(tag));
        let wrong_tag = DecryptionKeys::new(vec![key]).decrypt(&bad_tag).err().unwrap();
        assert_eq!(wrong_key.detail(), wrong_tag.detail());
        assert_eq!(wrong_key.detail(), UNDECRYPTABLE);
    }

    #[test]
    fn keys_are_bound_to_their_alg_and_enc_and_kid() {
        let (key, encryption) = pair(KeyManagement::A256Kw, ContentEncryption::A256Gcm);
        let keys = DecryptionKeys::new(vec![key.with_kid("a")]);
        let token = encryption.encrypt(b"{}", false).unwrap();
        assert!(keys.decrypt(&token).is_ok(), "no kid: the key of this alg/enc");
        let named = EncryptionKey::secret(KeyManagement::A256Kw, ContentEncryption::A256Gcm, [42u8; 32])
            .unwrap()
            .with_kid("b");
        assert!(keys.decrypt(&named.encrypt(b"{}", false).unwrap()).err().unwrap().detail().contains("kid"));
        let other_enc =
            EncryptionKey::secret(KeyManagement::A256Kw, ContentEncryption::A128Gcm, [42u8; 32]).unwrap();
        assert!(keys.decrypt(&other_enc.encrypt(b"{}", false).unwrap()).is_err());
        let other_alg =
            EncryptionKey::secret(KeyManagement::A256GcmKw, ContentEncryption::A256Gcm, [42u8; 32]).unwrap();
        assert!(keys.decrypt(&other_alg.encrypt(b"{}", false).unwrap()).is_err());
    }

    #[test]
    fn a_public_key_algorithm_needs_a_nested_jwt() {
        let (key, encryption) = pair(KeyManagement::RsaOaep256, ContentEncryption::A256Gcm);
        let keys = DecryptionKeys::new(vec![key]);
        let claims = keys.decrypt(&encryption.encrypt(b"{\"sub\":\"a\"}", false).unwrap());
        assert!(claims.err().unwrap().detail().contains("nested"));
    }

    /// At most one RSA private-key operation per token: a token without `kid` is refused when
    /// several RSA keys of its alg / enc could take it, and decrypts once it names its key.
    #[test]
    fn a_kid_less_token_costs_at_most_one_rsa_operation() {
        let (alg, enc) = (KeyManagement::RsaOaep256, ContentEncryption::A256Gcm);
        let (first, _) = pair(alg, enc);
        let (second, to_second) = pair(alg, enc);
        let keys = DecryptionKeys::new(vec![first.with_kid("one"), second.with_kid("two")]);
        let err = keys.decrypt(&to_second.encrypt(b"a.b.c", true).unwrap()).err().unwrap();
        assert!(err.detail().contains("several RSA decryption keys"), "{}", err.detail());
        let named = to_second.with_kid("two").encrypt(b"a.b.c", true).unwrap();
        assert_eq!(keys.decrypt(&named).unwrap_or_else(|err| panic!("{err:?}")).plaintext, b"a.b.c");
        // One RSA key: a token without kid decrypts.
        let (only, to_only) = pair(alg, enc);
        let token = to_only.encrypt(b"a.b.c", true).unwrap();
        assert!(DecryptionKeys::new(vec![only]).decrypt(&token).is_ok());
    }

    /// Two kid-less ECDH-ES keys of one alg / enc on different curves: a token for either decrypts
    /// (the other key cannot take its ephemeral key, and steps aside).
    #[test]
    fn kid_less_keys_on_other_curves_step_aside() {
        let (alg, enc) = (KeyManagement::EcdhEsA256Kw, ContentEncryption::A256Gcm);
        let pair_on = |curve: &'static agreement::Algorithm| {
            let private = agreement::PrivateKey::generate(curve).unwrap();
            let public: PublicKeyX509Der = private.compute_public_key().unwrap().as_der().unwrap();
            let private: Pkcs8V1Der = private.as_der().unwrap();
            (
                DecryptionKey::from_pem(alg, enc, pem("PRIVATE KEY", private.as_ref()).as_bytes()).unwrap(),
                EncryptionKey::from_pem(alg, enc, pem("PUBLIC KEY", public.as_ref()).as_bytes()).unwrap(),
            )
        };
        let (p256, to_p256) = pair_on(&agreement::ECDH_P256);
        let (p384, to_p384) = pair_on(&agreement::ECDH_P384);
        let keys = DecryptionKeys::new(vec![p256, p384]);
        for to in [to_p256, to_p384] {
            let token = to.encrypt(b"a.b.c", true).unwrap();
            assert_eq!(keys.decrypt(&token).unwrap_or_else(|err| panic!("{err:?}")).plaintext, b"a.b.c");
        }
    }

    #[test]
    fn an_ephemeral_key_off_the_curve_is_refused() {
        let (key, encryption) = pair(KeyManagement::EcdhEsA256Kw, ContentEncryption::A256Gcm);
        let keys = DecryptionKeys::new(vec![key]);
        let token = encryption.encrypt(b"{}", true).unwrap();
        let (header, rest) = token.split_once('.').unwrap();
        let mut json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        // A point of a weak curve: y moved off P-256.
        let y = json["epk"]["y"].as_str().unwrap().to_owned();
        let mut y = URL_SAFE_NO_PAD.decode(y).unwrap();
        y[31] ^= 1;
        json["epk"]["y"] = URL_SAFE_NO_PAD.encode(y).into();
        let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json).unwrap());
        let err = keys.decrypt(&format!("{header}.{rest}")).err().unwrap();
        assert_eq!(err.detail(), "the token's ephemeral key is not a valid point");
        // A P-384 point for a P-256 key.
        json["epk"]["crv"] = "P-384".into();
        let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json).unwrap());
        assert!(keys.decrypt(&format!("{header}.{rest}")).err().unwrap().detail().contains("curve"));
    }
}
