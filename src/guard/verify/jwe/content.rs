//! Content encryption (RFC 7518 §5): AES-GCM, and AES-CBC with HMAC-SHA-2 (§5.2), over the
//! claims or the nested token, with the encoded protected header as additional data.
//!
//! Every failure is the same [`Undecryptable`]: a wrong key, a wrong tag, a wrong IV or bad
//! padding cannot be told apart.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey,
    UnboundCipherKey, AES_128, AES_256,
};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::{constant_time, hmac, rand};

use super::algorithms::ContentEncryption;

/// The content did not decrypt (any reason: they are not told apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Undecryptable;

/// The pieces of an encrypted content.
pub(crate) struct Sealed {
    pub(crate) iv: Vec<u8>,
    pub(crate) ciphertext: Vec<u8>,
    pub(crate) tag: Vec<u8>,
}

/// Decrypts `ciphertext` (in place) under the content encryption key `cek`; `aad` is the
/// encoded protected header. The IV and tag lengths must be exactly the algorithm's.
pub(crate) fn decrypt(
    enc: ContentEncryption,
    cek: &[u8],
    aad: &[u8],
    iv: &[u8],
    mut ciphertext: Vec<u8>,
    tag: &[u8],
) -> Result<Vec<u8>, Undecryptable> {
    if cek.len() != enc.key_len() || iv.len() != enc.iv_len() {
        return Err(Undecryptable);
    }
    match enc {
        ContentEncryption::A128Gcm | ContentEncryption::A256Gcm => {
            let key = gcm_key(enc, cek)?;
            let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| Undecryptable)?;
            if tag.len() != aead::AES_128_GCM.tag_len() {
                return Err(Undecryptable);
            }
            let len = key
                .open_in_place_separate_tag(nonce, Aad::from(aad), tag, &mut ciphertext)
                .map_err(|_| Undecryptable)?
                .len();
            ciphertext.truncate(len);
            Ok(ciphertext)
        }
        ContentEncryption::A128CbcHs256 | ContentEncryption::A256CbcHs512 => {
            let (mac_key, enc_key) = cek.split_at(cek.len() / 2);
            let expected = cbc_hmac_tag(enc, mac_key, aad, iv, &ciphertext);
            // The tag first, in constant time (RFC 7518 §5.2.2.2): padding is looked at only in
            // an authenticated ciphertext, so it can be no oracle.
            constant_time::verify_slices_are_equal(&expected, tag).map_err(|_| Undecryptable)?;
            let key = UnboundCipherKey::new(aes(enc), enc_key).map_err(|_| Undecryptable)?;
            let key = PaddedBlockDecryptingKey::cbc_pkcs7(key).map_err(|_| Undecryptable)?;
            let iv: [u8; 16] = iv.try_into().map_err(|_| Undecryptable)?;
            let context = DecryptionContext::Iv128(FixedLength::from(iv));
            let len = key.decrypt(&mut ciphertext, context).map_err(|_| Undecryptable)?.len();
            ciphertext.truncate(len);
            Ok(ciphertext)
        }
    }
}

/// Encrypts `plaintext` under `cek` with a fresh random IV.
pub(crate) fn encrypt(
    enc: ContentEncryption,
    cek: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Sealed, Undecryptable> {
    if cek.len() != enc.key_len() {
        return Err(Undecryptable);
    }
    let mut iv = vec![0u8; enc.iv_len()];
    rand::fill(&mut iv).map_err(|_| Undecryptable)?;
    let mut ciphertext = plaintext.to_vec();
    match enc {
        ContentEncryption::A128Gcm | ContentEncryption::A256Gcm => {
            let key = gcm_key(enc, cek)?;
            let nonce = Nonce::try_assume_unique_for_key(&iv).map_err(|_| Undecryptable)?;
            let tag = key
                .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut ciphertext)
                .map_err(|_| Undecryptable)?;
            Ok(Sealed { iv, ciphertext, tag: tag.as_ref().to_vec() })
        }
        ContentEncryption::A128CbcHs256 | ContentEncryption::A256CbcHs512 => {
            let (mac_key, enc_key) = cek.split_at(cek.len() / 2);
            let key = UnboundCipherKey::new(aes(enc), enc_key).map_err(|_| Undecryptable)?;
            let key = PaddedBlockEncryptingKey::cbc_pkcs7(key).map_err(|_| Undecryptable)?;
            let fixed: [u8; 16] = iv.as_slice().try_into().map_err(|_| Undecryptable)?;
            let context = EncryptionContext::Iv128(FixedLength::from(fixed));
            key.less_safe_encrypt(&mut ciphertext, context).map_err(|_| Undecryptable)?;
            let tag = cbc_hmac_tag(enc, mac_key, aad, &iv, &ciphertext);
            Ok(Sealed { iv, ciphertext, tag })
        }
    }
}

fn gcm_key(enc: ContentEncryption, cek: &[u8]) -> Result<LessSafeKey, Undecryptable> {
    let algorithm = match enc {
        ContentEncryption::A128Gcm => &aead::AES_128_GCM,
        _ => &aead::AES_256_GCM,
    };
    Ok(LessSafeKey::new(UnboundKey::new(algorithm, cek).map_err(|_| Undecryptable)?))
}

fn aes(enc: ContentEncryption) -> &'static aws_lc_rs::cipher::Algorithm {
    match enc {
        ContentEncryption::A128CbcHs256 => &AES_128,
        _ => &AES_256,
    }
}

/// RFC 7518 §5.2.2.1: HMAC over `AAD || IV || ciphertext || AL` (AL: the AAD's length in bits,
/// 64-bit big-endian), truncated to half its length.
fn cbc_hmac_tag(enc: ContentEncryption, mac_key: &[u8], aad: &[u8], iv: &[u8], ciphertext: &[u8]) -> Vec<u8> {
    let algorithm = match enc {
        ContentEncryption::A128CbcHs256 => hmac::HMAC_SHA256,
        _ => hmac::HMAC_SHA512,
    };
    let key = hmac::Key::new(algorithm, mac_key);
    let mut context = hmac::Context::with_key(&key);
    context.update(aad);
    context.update(iv);
    context.update(ciphertext);
    context.update(&(aad.len() as u64).wrapping_mul(8).to_be_bytes());
    let full = context.sign();
    full.as_ref()[..mac_key.len()].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7518 Appendix B.1: AES_128_CBC_HMAC_SHA_256.
    #[test]
    fn rfc_7518_appendix_b1() {
        let cek: Vec<u8> = (0u8..32).collect();
        let plaintext = b"A cipher system must not be required to be secret, and it must be able to fall into the hands of the enemy without inconvenience";
        let iv = hex("1af38c2dc2b96ffdd86694092341bc04");
        let aad = b"The second principle of Auguste Kerckhoffs";
        let ciphertext = hex(concat!(
            "c80edfa32ddf39d5ef00c0b468834279a2e46a1b8049f792f76bfe54b903a9c9",
            "a94ac9b47ad2655c5f10f9aef71427e2fc6f9b3f399a221489f16362c7032336",
            "09d45ac69864e3321cf82935ac4096c86e133314c54019e8ca7980dfa4b9cf1b",
            "384c486f3a54c51078158ee5d79de59fbd34d848b3d69550a67646344427ade5",
            "4b8851ffb598f7f80074b9473c82e2db"
        ));
        let tag = hex("652c3fa36b0a7c5b3219fab3a30bc1c4");
        let opened =
            decrypt(ContentEncryption::A128CbcHs256, &cek, aad, &iv, ciphertext.clone(), &tag).unwrap();
        assert_eq!(opened, plaintext);
        // One bit off anywhere: the same refusal.
        let mut bad_tag = tag.clone();
        bad_tag[0] ^= 1;
        assert_eq!(
            decrypt(ContentEncryption::A128CbcHs256, &cek, aad, &iv, ciphertext.clone(), &bad_tag),
            Err(Undecryptable)
        );
        let mut bad_iv = iv.clone();
        bad_iv[3] ^= 1;
        assert!(
            decrypt(ContentEncryption::A128CbcHs256, &cek, aad, &bad_iv, ciphertext.clone(), &tag).is_err()
        );
        assert!(decrypt(ContentEncryption::A128CbcHs256, &cek, b"other", &iv, ciphertext, &tag).is_err());
    }

    #[test]
    fn every_algorithm_round_trips_and_refuses_tampering() {
        for enc in [
            ContentEncryption::A128Gcm,
            ContentEncryption::A256Gcm,
            ContentEncryption::A128CbcHs256,
            ContentEncryption::A256CbcHs512,
        ] {
            let cek = vec![9u8; enc.key_len()];
            let sealed = encrypt(enc, &cek, b"aad", b"{\"sub\":\"a\"}").unwrap();
            let opened = decrypt(enc, &cek, b"aad", &sealed.iv, sealed.ciphertext.clone(), &sealed.tag);
            assert_eq!(opened.unwrap(), b"{\"sub\":\"a\"}", "{enc}");
            let mut ciphertext = sealed.ciphertext.clone();
            ciphertext[0] ^= 1;
            assert!(decrypt(enc, &cek, b"aad", &sealed.iv, ciphertext, &sealed.tag).is_err(), "{enc}");
            let short_tag = &sealed.tag[..sealed.tag.len() - 1];
            assert!(decrypt(enc, &cek, b"aad", &sealed.iv, sealed.ciphertext.clone(), short_tag).is_err());
            assert!(
                decrypt(enc, &cek[1..], b"aad", &sealed.iv, sealed.ciphertext.clone(), &sealed.tag).is_err()
            );
            assert!(decrypt(enc, &cek, b"aad", &sealed.iv[1..], sealed.ciphertext, &sealed.tag).is_err());
        }
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
    }
}
