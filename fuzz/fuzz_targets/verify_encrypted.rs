//! Decryption past the tag (feature `jwe`): an arbitrary protected header and plaintext,
//! encrypted correctly under the configured `dir` / A256GCM key, so the fuzzer explores the JWE
//! header parser (refused algorithms, `zip`, `crit`, `cty`, `epk`, replicated claims) and, behind
//! a genuine tag, the claims set or the nested token. Asserts that whatever verifies honours the
//! configured issuer, audience and expiry.
#![no_main]

use std::sync::OnceLock;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use tower_jwt_guard::jwe::{ContentEncryption, DecryptionKey, KeyManagement};
use tower_jwt_guard::JwtAuth;

const KEY: [u8; 32] = [9u8; 32];

fn auth() -> &'static JwtAuth {
    static AUTH: OnceLock<JwtAuth> = OnceLock::new();
    AUTH.get_or_init(|| {
        JwtAuth::builder()
            .hmac_secret([7u8; 32])
            .issuer("https://issuer.example")
            .audience("api")
            .try_decryption_key(DecryptionKey::secret(KeyManagement::Dir, ContentEncryption::A256Gcm, KEY))
            .build()
            .expect("a valid configuration")
    })
}

fuzz_target!(|data: &[u8]| {
    // header JSON, 0xFF, plaintext; the header defaults to dir / A256GCM.
    let (header, plaintext) = match data.iter().position(|&b| b == 0xFF) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&br#"{"alg":"dir","enc":"A256GCM"}"#[..], data),
    };
    let header = URL_SAFE_NO_PAD.encode(header);
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &KEY).expect("a 32-byte key"));
    let iv = [1u8; 12];
    let mut ciphertext = plaintext.to_vec();
    let Ok(tag) =
        key.seal_in_place_separate_tag(Nonce::assume_unique_for_key(iv), Aad::from(header.as_bytes()), &mut ciphertext)
    else {
        return;
    };
    let token = format!(
        "{header}..{}.{}.{}",
        URL_SAFE_NO_PAD.encode(iv),
        URL_SAFE_NO_PAD.encode(&ciphertext),
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    );
    if let Ok(facts) = tower_jwt_guard::__fuzz::verify(auth(), &token, 1_700_000_000) {
        assert_eq!(facts.issuer.as_deref(), Some("https://issuer.example"));
        assert!(facts.audience.iter().any(|aud| aud == "api"));
        assert!(facts.expires_at.is_some_and(|exp| exp + 30 > 1_700_000_000));
    }
});
