//! The encryption of a compact JWE (RFC 7516 §5.1) with an [`EncryptionKey`].

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::agreement;
use aws_lc_rs::key_wrap::{AesKek, KeyWrap, AES_128, AES_256};
use aws_lc_rs::rand;
use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::algorithms::KeyManagement;
use super::concat_kdf;
use super::content;
use super::encryption_key::{ephemeral_jwk, EncryptionKey, Recipient};

/// Encryption failed: the system's randomness or a primitive failed (never the input's fault).
///
/// ```
/// use tower_jwt_guard::jwe::EncryptionFailed;
///
/// fn report(err: EncryptionFailed) -> String {
///     err.to_string()
/// }
/// # let _ = report;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncryptionFailed;

impl std::fmt::Display for EncryptionFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the token could not be encrypted")
    }
}

impl std::error::Error for EncryptionFailed {}

impl EncryptionKey {
    /// Encrypts `plaintext` into a compact JWE. `nested`: the plaintext is a signed JWT
    /// (the header says `cty: "JWT"`, RFC 7519 §5.2); else it is a claims set (`typ: "JWT"`).
    pub fn encrypt(&self, plaintext: &[u8], nested: bool) -> Result<String, EncryptionFailed> {
        self.encrypt_typed(plaintext, nested, Some("JWT"))
    }

    /// [`encrypt`](Self::encrypt), with the header's `typ` of a claims set (`at+jwt`, ...).
    pub(crate) fn encrypt_typed(
        &self,
        plaintext: &[u8],
        nested: bool,
        typ: Option<&str>,
    ) -> Result<String, EncryptionFailed> {
        let mut header = serde_json::Map::new();
        header.insert("alg".into(), self.alg.name().into());
        header.insert("enc".into(), self.enc.name().into());
        if let Some(kid) = &self.kid {
            header.insert("kid".into(), kid.as_str().into());
        }
        if nested {
            header.insert("cty".into(), "JWT".into());
        } else if let Some(typ) = typ {
            header.insert("typ".into(), typ.into());
        }
        let mut cek = vec![0u8; self.enc.key_len()];
        rand::fill(&mut cek).map_err(|_| EncryptionFailed)?;
        let encrypted_key = match (&self.recipient, self.alg) {
            (Recipient::Secret(secret), KeyManagement::Dir) => {
                cek.clone_from(secret);
                Vec::new()
            }
            (Recipient::Secret(secret), KeyManagement::A128Kw | KeyManagement::A256Kw) => {
                aes_wrap(secret, &cek)?
            }
            (Recipient::Secret(secret), _) => {
                let GcmWrapped { wrapped, iv, tag } = gcm_wrap(secret, &cek)?;
                header.insert("iv".into(), URL_SAFE_NO_PAD.encode(iv).into());
                header.insert("tag".into(), URL_SAFE_NO_PAD.encode(tag).into());
                wrapped
            }
            (Recipient::Rsa(rsa), alg) => {
                let algorithm =
                    if alg == KeyManagement::RsaOaep { &OAEP_SHA1_MGF1SHA1 } else { &OAEP_SHA256_MGF1SHA256 };
                let mut out = vec![0u8; rsa.ciphertext_size()];
                rsa.encrypt(algorithm, &cek, &mut out, None).map_err(|_| EncryptionFailed)?.to_vec()
            }
            (Recipient::Ec(public, curve), alg) => {
                let ephemeral =
                    agreement::PrivateKey::generate(curve.agreement()).map_err(|_| EncryptionFailed)?;
                let ephemeral_public = ephemeral.compute_public_key().map_err(|_| EncryptionFailed)?;
                header.insert("epk".into(), ephemeral_jwk(&ephemeral_public, *curve));
                let (algorithm_id, len) = match alg.wrap_key_len() {
                    Some(len) => (alg.name(), len),
                    None => (self.enc.name(), self.enc.key_len()),
                };
                let derived = agreement::agree(&ephemeral, public.clone(), EncryptionFailed, |z| {
                    let mut key = vec![0u8; len];
                    concat_kdf::derive(z, algorithm_id, &[], &[], &mut key);
                    Ok(key)
                })?;
                if alg.wrap_key_len().is_some() {
                    aes_wrap(&derived, &cek)?
                } else {
                    cek = derived;
                    Vec::new()
                }
            }
        };
        let header = serde_json::to_vec(&header).map_err(|_| EncryptionFailed)?;
        let header = URL_SAFE_NO_PAD.encode(header);
        let sealed =
            content::encrypt(self.enc, &cek, header.as_bytes(), plaintext).map_err(|_| EncryptionFailed)?;
        Ok([
            header,
            URL_SAFE_NO_PAD.encode(encrypted_key),
            URL_SAFE_NO_PAD.encode(sealed.iv),
            URL_SAFE_NO_PAD.encode(sealed.ciphertext),
            URL_SAFE_NO_PAD.encode(sealed.tag),
        ]
        .join("."))
    }
}

fn aes_wrap(kek: &[u8], cek: &[u8]) -> Result<Vec<u8>, EncryptionFailed> {
    let cipher = if kek.len() == 16 { &AES_128 } else { &AES_256 };
    let kek = AesKek::new(cipher, kek).map_err(|_| EncryptionFailed)?;
    let mut out = vec![0u8; cek.len() + 8];
    Ok(kek.wrap(cek, &mut out).map_err(|_| EncryptionFailed)?.to_vec())
}

/// A key wrapped with AES-GCM: the wrapped key, its IV and its tag.
struct GcmWrapped {
    wrapped: Vec<u8>,
    iv: [u8; 12],
    tag: Vec<u8>,
}

fn gcm_wrap(kek: &[u8], cek: &[u8]) -> Result<GcmWrapped, EncryptionFailed> {
    let algorithm = if kek.len() == 16 { &aead::AES_128_GCM } else { &aead::AES_256_GCM };
    let key = LessSafeKey::new(UnboundKey::new(algorithm, kek).map_err(|_| EncryptionFailed)?);
    let mut iv = [0u8; 12];
    rand::fill(&mut iv).map_err(|_| EncryptionFailed)?;
    let mut wrapped = cek.to_vec();
    let nonce = Nonce::assume_unique_for_key(iv);
    let tag =
        key.seal_in_place_separate_tag(nonce, Aad::empty(), &mut wrapped).map_err(|_| EncryptionFailed)?;
    Ok(GcmWrapped { wrapped, iv, tag: tag.as_ref().to_vec() })
}
