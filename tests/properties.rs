//! Property tests (proptest) of the layer, run in the normal test suite:
//!
//! - whatever bytes arrive in the `Authorization` header, the answer is a clean 400/401 with a
//!   known code — never a panic, a 500 or a 200;
//! - a token verifies only if it was signed by a configured key with the algorithm that key is
//!   bound to, and only while every byte of it is the signer's;
//! - `exp` decides: a token is accepted exactly when its `exp` is a sane JSON number in the future;
//! - (feature `jwe`) encrypted tokens of arbitrary parts are refused cleanly, and a genuine one
//!   with any character changed is refused.
//!
//! The requests go through the real layer on an axum router (in process, so that one case costs
//! microseconds and any byte string can be tried); tokens are crafted by hand (tests/craft).

mod craft;

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::{Json, Router};
use http::{HeaderValue, Request};
use proptest::prelude::*;
use serde_json::Value;
use tower::ServiceExt;
use tower_jwt_guard::{Claims, ErrorKind, JwtAuth, VerificationKey};

use craft::{b64, keys, now, signing_input};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap())
}

/// HS256 (the test secret) and ES256 (the test EC key), no leeway; EdDSA and RSA keys exist
/// but are not configured.
fn router() -> &'static Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let k = keys();
        let auth = JwtAuth::builder()
            .hmac_secret(k.hmac)
            .try_key(VerificationKey::from_pem(k.ec_pem().as_bytes(), None))
            .leeway(Duration::ZERO);
        #[cfg(feature = "jwe")]
        let auth = auth.decryption_key(
            tower_jwt_guard::jwe::DecryptionKey::secret(
                tower_jwt_guard::jwe::KeyManagement::A256Kw,
                tower_jwt_guard::jwe::ContentEncryption::A256Gcm,
                JWE_SECRET,
            )
            .unwrap(),
        );
        let auth = auth.build().unwrap();
        let me = |Claims(claims): Claims<Value>| async move { Json((*claims).clone()) };
        Router::new().route("/me", get(me)).route_layer(auth.layer::<Value>())
    })
}

/// The status and JSON `code` (or `"OK"`) of `GET /me` with this `Authorization` value.
fn call(authorization: Option<HeaderValue>) -> (u16, String) {
    runtime().block_on(async {
        let mut request = Request::get("/me");
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = router().clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let code =
            if status == 200 { "OK".to_owned() } else { json["code"].as_str().unwrap_or("?").to_owned() };
        (status, code)
    })
}

fn bearer(token: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("Bearer {token}")).ok()
}

/// The layer's A256KW secret (feature `jwe`).
#[cfg(feature = "jwe")]
const JWE_SECRET: [u8; 32] = [0x3c; 32];

/// A genuine A256KW / A256GCM token of a valid claims set.
#[cfg(feature = "jwe")]
fn genuine_jwe() -> &'static str {
    use tower_jwt_guard::jwe::{ContentEncryption, EncryptionKey, KeyManagement};
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let key =
            EncryptionKey::secret(KeyManagement::A256Kw, ContentEncryption::A256Gcm, JWE_SECRET).unwrap();
        let claims = serde_json::json!({ "sub": "alice", "exp": now() + 3600 });
        key.encrypt(claims.to_string().as_bytes(), false).unwrap()
    })
}

fn is_clean_refusal((status, code): &(u16, String)) -> bool {
    let known = ErrorKind::ALL.iter().any(|kind| kind.code() == code);
    matches!(status, 400 | 401) && known
}

/// How a candidate token is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signer {
    /// HS256 with the configured secret.
    Hs256,
    /// HS256 with another secret.
    Hs256Other,
    /// HS384 with the configured secret.
    Hs384,
    /// ES256 with the configured key.
    Es256,
    /// EdDSA with a key that is not configured.
    EdDsa,
    /// RS256 with a key that is not configured.
    Rs256,
    /// No signature at all.
    Unsigned,
}

impl Signer {
    /// The algorithm the signature really is.
    fn algorithm(self) -> &'static str {
        match self {
            Signer::Hs256 | Signer::Hs256Other => "HS256",
            Signer::Hs384 => "HS384",
            Signer::Es256 => "ES256",
            Signer::EdDsa => "EdDSA",
            Signer::Rs256 => "RS256",
            Signer::Unsigned => "none",
        }
    }

    /// Whether the server holds this very key, bound to this very algorithm.
    fn configured(self) -> bool {
        matches!(self, Signer::Hs256 | Signer::Es256)
    }

    fn sign(self, input: &str) -> Vec<u8> {
        use aws_lc_rs::{hmac, rand::SystemRandom, signature};
        let k = keys();
        let mac = |alg, key: &[u8]| hmac::sign(&hmac::Key::new(alg, key), input.as_bytes()).as_ref().to_vec();
        match self {
            Signer::Hs256 => mac(hmac::HMAC_SHA256, &k.hmac),
            Signer::Hs256Other => mac(hmac::HMAC_SHA256, &[3; 32]),
            Signer::Hs384 => mac(hmac::HMAC_SHA384, &k.hmac),
            Signer::Es256 => k.ec.sign(&SystemRandom::new(), input.as_bytes()).unwrap().as_ref().to_vec(),
            Signer::EdDsa => k.ed.sign(input.as_bytes()).as_ref().to_vec(),
            Signer::Rs256 => {
                let mut sig = vec![0; k.rogue_rsa.public_modulus_len()];
                k.rogue_rsa
                    .sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig)
                    .unwrap();
                sig
            }
            Signer::Unsigned => Vec::new(),
        }
    }
}

fn signer() -> impl Strategy<Value = Signer> {
    prop_oneof![
        Just(Signer::Hs256),
        Just(Signer::Hs256Other),
        Just(Signer::Hs384),
        Just(Signer::Es256),
        Just(Signer::EdDsa),
        Just(Signer::Rs256),
        Just(Signer::Unsigned),
    ]
}

/// The `alg` the header claims: often the signer's own, sometimes another one.
fn header_alg() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        3 => Just(None),
        1 => proptest::sample::select(vec!["HS256", "HS384", "HS512", "ES256", "ES384", "RS256", "PS256", "EdDSA", "none", "NONE"])
            .prop_map(Some),
    ]
}

/// A change to one byte of the token, or none.
fn tamper() -> impl Strategy<Value = Option<(prop::sample::Index, u8)>> {
    prop_oneof![2 => Just(None), 1 => (any::<prop::sample::Index>(), 1..=255u8).prop_map(Some)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_header_bytes_are_refused_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        // Whatever a client can put in a header value (hyper refuses CR, LF and NUL itself).
        if let Ok(value) = HeaderValue::from_bytes(&bytes) {
            let answer = call(Some(value));
            prop_assert!(is_clean_refusal(&answer), "{answer:?} for {bytes:?}");
        }
    }

    #[test]
    fn arbitrary_bearer_tokens_are_refused_cleanly(token in "[A-Za-z0-9_=+/.~-]{0,300}") {
        let answer = call(bearer(&token));
        prop_assert!(is_clean_refusal(&answer), "{answer:?} for {token:?}");
    }

    #[test]
    fn arbitrary_segments_are_refused_cleanly(
        header in proptest::collection::vec(any::<u8>(), 0..80),
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        signature in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        // Well-encoded base64url segments carrying arbitrary bytes.
        let token = format!("{}.{}.{}", b64(&header), b64(&payload), b64(&signature));
        let answer = call(bearer(&token));
        prop_assert!(is_clean_refusal(&answer), "{answer:?} for {token:?}");
    }

    #[test]
    fn a_token_verifies_only_with_a_configured_key_and_its_algorithm(
        signer in signer(),
        claimed in header_alg(),
        sub in "[a-z]{1,12}",
        tamper in tamper(),
    ) {
        let alg = claimed.unwrap_or(signer.algorithm());
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#);
        let claims = format!(r#"{{"sub":"{sub}","exp":{}}}"#, now() + 600);
        let input = signing_input(&header, &claims);
        let mut token = format!("{input}.{}", b64(signer.sign(&input)));
        let mut tampered = false;
        if let Some((index, delta)) = tamper {
            let mut bytes = token.into_bytes();
            let i = index.index(bytes.len());
            let original = bytes[i];
            // Stay in the base64url alphabet or the dot, so the change is not caught by the
            // character filter alone.
            const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
            bytes[i] = ALPHABET[(ALPHABET.iter().position(|&c| c == original).unwrap_or(0) + delta as usize) % ALPHABET.len()];
            tampered = bytes[i] != original;
            token = String::from_utf8(bytes).unwrap();
        }
        let answer = call(bearer(&token));
        let should_verify = signer.configured() && alg == signer.algorithm() && !tampered;
        if should_verify {
            prop_assert_eq!(answer, (200, "OK".to_owned()));
        } else {
            // Any changed character is refused: strict base64url even refuses a change in the
            // unused low bits of a segment's last character.
            prop_assert!(is_clean_refusal(&answer), "{signer:?} claiming {alg}, tampered {tampered}: {answer:?}");
        }
    }

    #[test]
    fn exp_decides_acceptance(choice in 0..6u8, offset in 100u64..10_000_000_000, text in "[0-9]{1,12}") {
        let now = now();
        let (exp, accepted) = match choice {
            0 => ((now + offset).to_string(), now + offset <= 253_402_300_799),
            1 => (now.saturating_sub(offset).to_string(), false),
            2 => (format!("-{offset}"), false),
            3 => (format!("{}.5", now + offset), now + offset < 253_402_300_799),
            4 => (format!("\"{text}\""), false),
            _ => (format!("{}e30", offset), false),
        };
        let claims = format!(r#"{{"sub":"a","exp":{exp}}}"#);
        let token = craft::hs256(&keys().hmac, r#"{"alg":"HS256"}"#, &claims);
        let answer = call(bearer(&token));
        if accepted {
            prop_assert_eq!(answer, (200, "OK".to_owned()), "exp {}", exp);
        } else {
            prop_assert!(is_clean_refusal(&answer), "exp {exp}: {answer:?}");
            prop_assert!(answer.1 == "INVALID_TOKEN" || answer.1 == "TOKEN_EXPIRED", "exp {exp}: {answer:?}");
        }
    }

    #[cfg(feature = "jwe")]
    #[test]
    fn arbitrary_encrypted_parts_are_refused_cleanly(
        alg in prop::sample::select(vec!["A256KW", "dir", "A256GCMKW", "RSA-OAEP-256", "ECDH-ES", "RSA1_5", "PBES2-HS256+A128KW"]),
        enc in prop::sample::select(vec!["A256GCM", "A128CBC-HS256", "A192GCM"]),
        key in proptest::collection::vec(any::<u8>(), 0..60),
        iv in proptest::collection::vec(any::<u8>(), 0..20),
        ciphertext in proptest::collection::vec(any::<u8>(), 0..120),
        tag in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let header = serde_json::json!({ "alg": alg, "enc": enc }).to_string();
        let token = format!("{}.{}.{}.{}.{}", b64(header), b64(&key), b64(&iv), b64(&ciphertext), b64(&tag));
        let answer = call(bearer(&token));
        prop_assert!(is_clean_refusal(&answer), "{answer:?} for {token:?}");
    }

    #[cfg(feature = "jwe")]
    #[test]
    fn a_genuine_encrypted_token_with_any_character_changed_is_refused(
        at in any::<prop::sample::Index>(),
        replacement in prop::sample::select(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.".to_vec()),
    ) {
        let genuine = genuine_jwe();
        prop_assert_eq!(call(bearer(genuine)), (200, "OK".to_owned()));
        let mut bytes = genuine.as_bytes().to_vec();
        let index = at.index(bytes.len());
        prop_assume!(bytes[index] != replacement);
        bytes[index] = replacement;
        let token = String::from_utf8(bytes).unwrap();
        let answer = call(bearer(&token));
        prop_assert!(is_clean_refusal(&answer), "{answer:?} for {token:?}");
    }
}
