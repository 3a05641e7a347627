//! Step 2, verification of an arbitrary token string against HS256 and EdDSA keys.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tower_jwt_guard::{JwtAuth, VerificationKey};

const ED25519_PEM: &str = "-----BEGIN PUBLIC KEY-----\n\
    MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
    -----END PUBLIC KEY-----\n";

fn auth() -> &'static JwtAuth {
    static AUTH: OnceLock<JwtAuth> = OnceLock::new();
    AUTH.get_or_init(|| {
        JwtAuth::builder()
            .hmac_secret([7u8; 32])
            .try_key(VerificationKey::from_pem(ED25519_PEM.as_bytes(), None))
            .build()
            .expect("a valid configuration")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let _ = tower_jwt_guard::__fuzz::verify(auth(), token, 1_700_000_000);
    }
});
