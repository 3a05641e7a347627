//! Verification past the signature: arbitrary header and claims bytes, correctly encoded and
//! signed with the configured HS256 secret, so the fuzzer explores the JSON parsing and the
//! claim rules that only run on a genuine signature.
#![no_main]

use std::sync::OnceLock;

use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use tower_jwt_guard::JwtAuth;

const SECRET: [u8; 32] = [7u8; 32];

fn auth() -> &'static JwtAuth {
    static AUTH: OnceLock<JwtAuth> = OnceLock::new();
    AUTH.get_or_init(|| {
        JwtAuth::builder()
            .hmac_secret(SECRET)
            .issuer("https://issuer.example")
            .audience("api")
            .build()
            .expect("a valid configuration")
    })
}

fuzz_target!(|data: &[u8]| {
    // header JSON, 0xFF, claims JSON; the header defaults to HS256.
    let (header, claims) = match data.iter().position(|&b| b == 0xFF) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&br#"{"alg":"HS256"}"#[..], data),
    };
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &SECRET), input.as_bytes());
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    if let Ok(facts) = tower_jwt_guard::__fuzz::verify(auth(), &token, 1_700_000_000) {
        // Whatever verified honours the configured rules.
        assert_eq!(facts.issuer.as_deref(), Some("https://issuer.example"));
        assert!(facts.audience.iter().any(|aud| aud == "api"));
        assert!(facts.expires_at.is_some_and(|exp| exp + 30 > 1_700_000_000));
    }
});
