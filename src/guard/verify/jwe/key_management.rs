//! Key management (RFC 7518 §4): from the encrypted key (and the header) to the content
//! encryption key (CEK), for each algorithm.
//!
//! RFC 7516 §11.5: when the key does not unwrap (a wrong key, a bad OAEP padding, a wrong
//! length), the decryption goes on with a random CEK, so that it fails at the content's tag
//! like any other bad token, with the same error, after the same work. Only what is public
//! (header members, the encrypted key's presence, the ephemeral key's validity) is refused
//! early.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::key_wrap::{AesKek, KeyWrap, AES_128, AES_256};
use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256};
use aws_lc_rs::{agreement, rand};

use super::algorithms::{ContentEncryption, KeyManagement};
use super::compact::part;
use super::concat_kdf;
use super::decryption_key::{DecryptionKey, Material};
use super::header::{EphemeralKey, JweHeader};
use super::private_key::{Curve, PrivateKey};
use crate::guard::verify::compact::malformed;
use crate::primitives::error::AuthError;

/// The content encryption key of a token under `key` (random when it does not unwrap).
pub(crate) fn content_key(
    key: &DecryptionKey,
    header: &JweHeader<'_>,
    encrypted_key: &[u8],
) -> Result<Vec<u8>, AuthError> {
    let enc = header.enc;
    let unwrapped = match (&key.material, header.alg) {
        (Material::Secret(secret), KeyManagement::Dir) => {
            if !encrypted_key.is_empty() {
                return Err(malformed("a dir encrypted token must have an empty encrypted key"));
            }
            Some(secret.clone())
        }
        (Material::Secret(secret), KeyManagement::A128Kw | KeyManagement::A256Kw) => {
            aes_unwrap(secret, encrypted_key)
        }
        (Material::Secret(secret), KeyManagement::A128GcmKw | KeyManagement::A256GcmKw) => {
            let (Some(iv), Some(tag)) = (&header.iv, &header.tag) else {
                return Err(malformed("an AES-GCM wrapped key needs the iv and tag header members"));
            };
            let iv = part(iv, "the token's iv header member is not base64url")?;
            let tag = part(tag, "the token's tag header member is not base64url")?;
            gcm_unwrap(secret, &iv, &tag, encrypted_key)
        }
        (Material::Private(PrivateKey::Rsa(rsa)), KeyManagement::RsaOaep | KeyManagement::RsaOaep256) => {
            let algorithm = match header.alg {
                KeyManagement::RsaOaep => &OAEP_SHA1_MGF1SHA1,
                _ => &OAEP_SHA256_MGF1SHA256,
            };
            let mut out = vec![0u8; rsa.min_output_size()];
            rsa.decrypt(algorithm, encrypted_key, &mut out, None).ok().map(|cek| cek.to_vec())
        }
        (
            Material::Private(PrivateKey::Ec(private, curve)),
            KeyManagement::EcdhEs | KeyManagement::EcdhEsA128Kw | KeyManagement::EcdhEsA256Kw,
        ) => {
            let agreed = agree(private, *curve, header)?;
            match header.alg.wrap_key_len() {
                None if encrypted_key.is_empty() => Some(agreed),
                None => return Err(malformed("an ECDH-ES encrypted token must have an empty encrypted key")),
                Some(_) => aes_unwrap(&agreed, encrypted_key),
            }
        }
        // The key is bound to its alg (checked by the caller): nothing else can reach here.
        _ => return Err(malformed("the token's algorithm does not match its key")),
    };
    match unwrapped {
        Some(cek) if cek.len() == enc.key_len() => Ok(cek),
        _ => random_key(enc),
    }
}

/// A random CEK of `enc`'s length: decryption goes on and fails at the tag.
fn random_key(enc: ContentEncryption) -> Result<Vec<u8>, AuthError> {
    let mut cek = vec![0u8; enc.key_len()];
    // Never a predictable key: without randomness the token is refused.
    rand::fill(&mut cek).map_err(|_| malformed("the token could not be decrypted"))?;
    Ok(cek)
}

/// AES key unwrap (RFC 3394) with the default IV.
fn aes_unwrap(kek: &[u8], wrapped: &[u8]) -> Option<Vec<u8>> {
    let cipher = if kek.len() == 16 { &AES_128 } else { &AES_256 };
    let kek = AesKek::new(cipher, kek).ok()?;
    let mut out = vec![0u8; wrapped.len()];
    let len = kek.unwrap(wrapped, &mut out).ok()?.len();
    out.truncate(len);
    Some(out)
}

/// AES-GCM key unwrap (RFC 7518 §4.7): the encrypted key with the header's `iv` and `tag`.
fn gcm_unwrap(kek: &[u8], iv: &[u8], tag: &[u8], wrapped: &[u8]) -> Option<Vec<u8>> {
    let algorithm = if kek.len() == 16 { &aead::AES_128_GCM } else { &aead::AES_256_GCM };
    let key = LessSafeKey::new(UnboundKey::new(algorithm, kek).ok()?);
    let nonce = Nonce::try_assume_unique_for_key(iv).ok()?;
    if tag.len() != algorithm.tag_len() {
        return None;
    }
    let mut out = wrapped.to_vec();
    let len = key.open_in_place_separate_tag(nonce, Aad::empty(), tag, &mut out).ok()?.len();
    out.truncate(len);
    Some(out)
}

/// ECDH-ES (RFC 7518 §4.6): the agreed secret through the Concat KDF, as long as the key it
/// stands for (the CEK for `ECDH-ES`, the key-encryption key for `ECDH-ES+A*KW`).
fn agree(
    private: &agreement::PrivateKey,
    curve: Curve,
    header: &JweHeader<'_>,
) -> Result<Vec<u8>, AuthError> {
    let epk =
        header.epk.as_ref().ok_or(malformed("an ECDH-ES encrypted token needs an epk header member"))?;
    let point = ephemeral_point(epk, curve)?;
    let apu = header.apu.as_deref().map(|apu| part(apu, "the token's apu is not base64url")).transpose()?;
    let apv = header.apv.as_deref().map(|apv| part(apv, "the token's apv is not base64url")).transpose()?;
    let (algorithm_id, len) = match header.alg.wrap_key_len() {
        Some(len) => (header.alg.name(), len),
        None => (header.enc.name(), header.enc.key_len()),
    };
    let peer = agreement::UnparsedPublicKey::new(curve.agreement(), point);
    // aws-lc-rs checks the point is on the curve (and refuses X25519's low-order points): an
    // invalid-curve point never reaches the private key.
    agreement::agree(private, peer, malformed("the token's ephemeral key is not a valid point"), |z| {
        let mut key = vec![0u8; len];
        concat_kdf::derive(
            z,
            algorithm_id,
            apu.as_deref().unwrap_or(&[]),
            apv.as_deref().unwrap_or(&[]),
            &mut key,
        );
        Ok(key)
    })
}

/// The `epk` as the bytes aws-lc-rs reads: the uncompressed point (EC) or the key (X25519),
/// on the recipient key's curve.
fn ephemeral_point(epk: &EphemeralKey<'_>, curve: Curve) -> Result<Vec<u8>, AuthError> {
    let wrong = || malformed("the token's ephemeral key is not on the key's curve");
    let kty = if curve == Curve::X25519 { "OKP" } else { "EC" };
    if epk.kty != kty || epk.crv != curve.name() {
        return Err(wrong());
    }
    let coordinate = |encoded: &str| {
        part(encoded, "the token's ephemeral key is not base64url").and_then(|bytes| {
            if bytes.len() == curve.coordinate_len() {
                Ok(bytes)
            } else {
                Err(wrong())
            }
        })
    };
    let x = coordinate(&epk.x)?;
    match (curve, &epk.y) {
        (Curve::X25519, None) => Ok(x),
        (Curve::P256 | Curve::P384, Some(y)) => Ok([&[4u8][..], &x, &coordinate(y)?].concat()),
        _ => Err(wrong()),
    }
}
