//! The decryption of a compact JWE (RFC 7516 §5.2) with the configured keys: header checks,
//! key selection, key unwrap, content decryption, and what the content may be.

use std::sync::Arc;

use super::compact::{part, JweCompact};
use super::content;
use super::decryption_key::DecryptionKey;
use super::header::{JweHeader, Replicated};
use super::key_management::content_key;
use crate::error::AuthError;
use crate::guard::keys::MAX_KID_LESS_CANDIDATES;
use crate::guard::verify::compact::malformed;

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
}

impl DecryptionKeys {
    pub(crate) fn new(keys: Vec<DecryptionKey>) -> Self {
        DecryptionKeys { keys: keys.into_iter().map(Arc::new).collect() }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
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
        let encrypted_key = part(jwe.encrypted_key, "the token's encrypted key is not base64url")?;
        let iv = part(jwe.iv, "the token's iv is not base64url")?;
        let ciphertext = part(jwe.ciphertext, "the token's ciphertext is not base64url")?;
        let tag = part(jwe.tag, "the token's tag is not base64url")?;
        let mut opened = None;
        for key in keys {
            let cek = content_key(key, &header, &encrypted_key)?;
            let aad = jwe.header.as_bytes();
            if let Ok(plaintext) = content::decrypt(header.enc, &cek, aad, &iv, ciphertext.clone(), &tag) {
                opened = Some((key, plaintext));
                break;
            }
        }
        let Some((key, plaintext)) = opened else { return Err(malformed(UNDECRYPTABLE)) };
        if key.requires_nested_jws() && !header.nested {
            return Err(malformed("this decryption key accepts only a nested signed JWT (cty JWT)"));
        }
        Ok(Decrypted {
            plaintext,
            nested: header.nested,
            typ: header.typ.map(Into::into),
            replicated: header.replicated,
        })
    }
}
