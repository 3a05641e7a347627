//! The Wycheproof JWS and JWK test vectors (C2SP), played against a real server running the
//! layer. Each test group's key is configured as a static key (`VerificationKey::from_jwk`);
//! each compact vector is sent as a bearer token.
//!
//! Wycheproof payloads are not JWT claims sets (`foo`, text, empty), so the oracle is whether
//! the token got past the signature: either the request is accepted, or it is refused only
//! because its verified payload is not a claims set ("the token claims are malformed", which
//! the verifier says only after the signature checked out). A "valid" vector must get past
//! the signature; an "invalid" vector must never do so, and must be refused cleanly (400/401,
//! or the key itself refused when the configuration is built).
//!
//! The few vectors where this crate differs from Wycheproof's expectation are listed in
//! `DIFFERENCES` with the reason; the test checks they still behave as written there.

use std::collections::BTreeMap;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;
use tower_jwt_guard::{Claims, JwtAuth, VerificationKey};

const SIGNATURES: &str = include_str!("data/wycheproof/json_web_signature_test.json");
const KEYS: &str = include_str!("data/wycheproof/json_web_key_test.json");

/// The message of a refusal that happens only after the signature verified.
const PAST_SIGNATURE: &str = "the token claims are malformed";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The signature verified (the request was accepted, or refused for its payload).
    Verified,
    /// Refused before or at the signature check.
    Refused,
    /// The key itself was refused when the configuration was built.
    KeyRefused,
}

/// Vectors where this crate deliberately differs from Wycheproof's expectation.
const DIFFERENCES: &[(u64, Outcome, &str)] = &[
    // Empty payloads: a JWT always has a claims set, so an empty payload is refused as
    // malformed before the signature is looked at.
    (259, Outcome::Refused, "empty payload (RS256)"),
    (264, Outcome::Refused, "empty payload (RS384)"),
    (268, Outcome::Refused, "empty payload (RS512)"),
    (272, Outcome::Refused, "empty payload (PS256)"),
    (320, Outcome::Refused, "empty payload (PS384)"),
    (325, Outcome::Refused, "empty payload (PS512)"),
    // ES512 (P-521) is not among the supported algorithms: its keys are refused at start-up.
    (347, Outcome::KeyRefused, "ES512 / P-521 is not supported"),
    (351, Outcome::KeyRefused, "ES512 / P-521 is not supported"),
    // The JWK says PS256, the token PS384: a key verifies only its own algorithm (RFC 8725 §3.1).
    (346, Outcome::Refused, "PS384 token for a PS256 key"),
    (350, Outcome::Refused, "PS384 token for a PS256 key"),
    // These two "invalid" vectors are byte for byte the "valid" tcId 357 (their padding was
    // lost upstream); the test below checks that they are indeed identical.
    (367, Outcome::Verified, "identical to tcId 357"),
    (370, Outcome::Verified, "identical to tcId 357"),
    // Wycheproof calls these "valid" for decoders that skip characters outside base64url;
    // this crate's base64url is strict and refuses them.
    (372, Outcome::Refused, "a '?' inside the header's base64url"),
    (373, Outcome::Refused, "a '?' inside the payload's base64url"),
];

/// JWK-set vectors where this crate differs (marked "Ambiguous" by Wycheproof, or not detected).
const KEY_DIFFERENCES: &[(u64, Outcome, &str)] = &[
    // An HMAC key and an EC key side by side is allowed: each key verifies only its own
    // algorithm (RFC 8725 §3.1), so the mix cannot be confused.
    (1, Outcome::Verified, "HMAC and EC keys in one configuration are allowed (key-bound algorithms)"),
    // ROCA (CVE-2017-15361) weak RSA moduli are not detected.
    (7, Outcome::Verified, "ROCA-vulnerable RSA modulus is not detected"),
];

async fn me(Claims(claims): Claims<Value>) -> Json<Value> {
    Json((*claims).clone())
}

struct Server {
    base: String,
    client: reqwest::Client,
}

async fn serve(auth: JwtAuth) -> Server {
    let app = Router::new().route("/me", get(me)).route_layer(auth.layer::<Value>());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server { base: format!("http://{addr}"), client: reqwest::Client::new() }
}

impl Server {
    async fn outcome(&self, token: &str) -> Result<Outcome, String> {
        let request = self.client.get(format!("{}/me", self.base));
        let request = match reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")) {
            Ok(value) => request.header("authorization", value),
            Err(_) => return Ok(Outcome::Refused), // not even sendable as a header value
        };
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match (status, body["error"].as_str()) {
            (200, _) => Ok(Outcome::Verified),
            (401, Some(PAST_SIGNATURE)) => Ok(Outcome::Verified),
            (400 | 401, Some(_)) => Ok(Outcome::Refused),
            _ => Err(format!("unclean answer {status} {body}")),
        }
    }
}

/// A configuration with `keys`, or `None` when a key (or the set) is refused at build time.
/// No registered claim is required: Wycheproof payloads are not claims sets.
fn configure(keys: &[Value]) -> Option<JwtAuth> {
    // The precise reason tells a refusal past the signature (`PAST_SIGNATURE`) from one before.
    let mut builder = JwtAuth::builder().require([]).cache_capacity(0).expose_error_details(true);
    for key in keys {
        builder = builder.key(VerificationKey::from_jwk(&key.to_string(), None).ok()?);
    }
    builder.build().ok()
}

fn expected(result: &str) -> Outcome {
    match result {
        "valid" => Outcome::Verified,
        "invalid" => Outcome::Refused,
        other => panic!("unknown result {other}"),
    }
}

/// Plays every compact vector of `file`, the keys of each group given by `group_keys`.
async fn play(
    file: &str,
    group_keys: impl Fn(&Value) -> Vec<Value>,
    differences: &[(u64, Outcome, &str)],
) -> (usize, Vec<String>) {
    let file: Value = serde_json::from_str(file).unwrap();
    let differences: BTreeMap<u64, (Outcome, &str)> =
        differences.iter().map(|(id, outcome, why)| (*id, (*outcome, *why))).collect();
    let mut played = 0;
    let mut wrong = Vec::new();
    for group in file["testGroups"].as_array().unwrap() {
        let auth = configure(&group_keys(group));
        let server = match &auth {
            Some(auth) => Some(serve(auth.clone()).await),
            None => None,
        };
        for test in group["tests"].as_array().unwrap() {
            let Some(token) = test["jws"].as_str() else { continue }; // JSON serialization: not ours
            played += 1;
            let id = test["tcId"].as_u64().unwrap();
            let got = match &server {
                Some(server) => match server.outcome(token).await {
                    Ok(outcome) => outcome,
                    Err(unclean) => {
                        wrong.push(format!("tcId {id}: {unclean}"));
                        continue;
                    }
                },
                None => Outcome::KeyRefused,
            };
            let want = expected(test["result"].as_str().unwrap());
            let ok = match differences.get(&id) {
                Some((documented, _)) => got == *documented,
                // An invalid vector may be refused at the request or with its key.
                None => got == want || (want == Outcome::Refused && got == Outcome::KeyRefused),
            };
            if !ok {
                let comment = test["comment"].as_str().unwrap_or_default();
                let documented = differences.get(&id).map(|(o, why)| format!(" (documented: {o:?}, {why})"));
                wrong.push(format!(
                    "tcId {id} {comment} [{}]: expected {want:?}, got {got:?}{}",
                    group["comment"].as_str().unwrap_or_default(),
                    documented.unwrap_or_default()
                ));
            }
        }
    }
    (played, wrong)
}

#[tokio::test]
async fn json_web_signature_vectors() {
    // A group's verification key is its public JWK, or its secret for HMAC.
    let keys = |group: &Value| vec![group.get("public").unwrap_or(&group["private"]).clone()];
    let (played, wrong) = play(SIGNATURES, keys, DIFFERENCES).await;
    assert!(wrong.is_empty(), "{} of {played} vectors misbehaved:\n{}", wrong.len(), wrong.join("\n"));
    assert_eq!(played, 401, "every vector of the file is played (JSON serializations as tokens too)");
    let file: Value = serde_json::from_str(SIGNATURES).unwrap();
    let jws_of = |id: u64| {
        file["testGroups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|group| group["tests"].as_array().unwrap())
            .find(|test| test["tcId"] == id)
            .map(|test| test["jws"].clone())
            .unwrap()
    };
    assert_eq!(jws_of(367), jws_of(357));
    assert_eq!(jws_of(370), jws_of(357));
}

#[tokio::test]
async fn json_web_key_vectors() {
    // A group's keys are a JWK set (with private members, which are ignored).
    let keys = |group: &Value| group["private"]["keys"].as_array().cloned().unwrap_or_default();
    let (played, wrong) = play(KEYS, keys, KEY_DIFFERENCES).await;
    assert!(wrong.is_empty(), "{} of {played} vectors misbehaved:\n{}", wrong.len(), wrong.join("\n"));
    assert_eq!(played, 26, "every vector of the file is played");
}

#[cfg(feature = "jwe")]
mod encryption {
    //! The Wycheproof JWE vectors. Each group's private JWK becomes a decryption key for each
    //! supported content encryption it fits (a key is bound to one `alg` / `enc` pair; a key
    //! none fits counts as refused at start-up), accepting a bare
    //! payload (`require_nested_jws(false)`: the vectors' plaintexts are not signed JWTs). A
    //! vector "decrypted" when the request is refused only for its payload, which is not a
    //! claims set ("the token claims are malformed", said only after decryption).

    use super::*;
    use tower_jwt_guard::jwe::{ContentEncryption, DecryptionKey};

    const ENCRYPTIONS: &str = include_str!("data/wycheproof/json_web_encryption_test.json");

    /// Valid vectors this crate refuses on purpose.
    const REFUSED_VALID: &[(u64, Outcome, &str)] = &[
        // RSA1_5 (RSAES-PKCS1-v1_5): Bleichenbacher's padding oracle; its keys are refused.
        (100, Outcome::KeyRefused, "RSA1_5"),
        (101, Outcome::KeyRefused, "RSA1_5"),
        (102, Outcome::KeyRefused, "RSA1_5"),
        (103, Outcome::KeyRefused, "RSA1_5"),
        (104, Outcome::KeyRefused, "RSA1_5"),
        (105, Outcome::KeyRefused, "RSA1_5"),
        (112, Outcome::KeyRefused, "RSA1_5"),
        (128, Outcome::KeyRefused, "RSA1_5 (RFC 7520 figure 81)"),
        // The AES-192 algorithms are not offered (keys or enc).
        (28, Outcome::Refused, "A192GCM"),
        (31, Outcome::Refused, "A192CBC-HS384"),
        (53, Outcome::Refused, "A192GCM"),
        (56, Outcome::Refused, "A192CBC-HS384"),
        (60, Outcome::KeyRefused, "ECDH-ES+A192KW"),
        (61, Outcome::KeyRefused, "ECDH-ES+A192KW"),
        (70, Outcome::KeyRefused, "A192KW"),
        (72, Outcome::KeyRefused, "A192GCMKW"),
        (77, Outcome::Refused, "A192GCM"),
        (80, Outcome::Refused, "A192CBC-HS384"),
        (83, Outcome::Refused, "A192GCM"),
        (86, Outcome::Refused, "A192CBC-HS384"),
        (89, Outcome::Refused, "A192GCM"),
        (92, Outcome::Refused, "A192CBC-HS384"),
        // Compressed payloads (zip: DEF): a decompression bomb is one token away.
        (135, Outcome::Refused, "zip"),
    ];

    const ENCS: [ContentEncryption; 4] = [
        ContentEncryption::A128Gcm,
        ContentEncryption::A256Gcm,
        ContentEncryption::A128CbcHs256,
        ContentEncryption::A256CbcHs512,
    ];

    /// The group's key for every supported `enc`, or `None` when the key is refused.
    fn configure(jwk: &Value) -> Option<JwtAuth> {
        let mut builder = JwtAuth::builder()
            .hmac_secret([7u8; 32])
            .require([])
            .cache_capacity(0)
            .expose_error_details(true);
        let keys: Vec<DecryptionKey> = ENCS
            .iter()
            .filter_map(|enc| DecryptionKey::from_jwk(&jwk.to_string(), None, *enc).ok())
            .collect();
        if keys.is_empty() {
            return None;
        }
        for key in keys {
            builder = builder.decryption_key(key.require_nested_jws(false));
        }
        Some(builder.build().expect("a configuration of valid keys builds"))
    }

    #[tokio::test]
    async fn json_web_encryption_vectors() {
        let file: Value = serde_json::from_str(ENCRYPTIONS).unwrap();
        let refused: BTreeMap<u64, (Outcome, &str)> =
            REFUSED_VALID.iter().map(|(id, outcome, why)| (*id, (*outcome, *why))).collect();
        let (mut played, mut decrypted, mut wrong) = (0, 0, Vec::new());
        for group in file["testGroups"].as_array().unwrap() {
            let server = match configure(&group["private"]) {
                Some(auth) => Some(serve(auth).await),
                None => None,
            };
            for test in group["tests"].as_array().unwrap() {
                // A JSON serialization is sent as it is: never a compact token.
                let token = match &test["jwe"] {
                    Value::String(token) => token.clone(),
                    other => other.to_string(),
                };
                played += 1;
                let id = test["tcId"].as_u64().unwrap();
                let got = match &server {
                    Some(server) => match server.outcome(&token).await {
                        Ok(outcome) => outcome,
                        Err(unclean) => {
                            wrong.push(format!("tcId {id}: {unclean}"));
                            continue;
                        }
                    },
                    None => Outcome::KeyRefused,
                };
                let valid = test["result"] == "valid";
                decrypted += usize::from(got == Outcome::Verified);
                let ok = match (valid, refused.get(&id)) {
                    (true, Some((documented, _))) => got == *documented,
                    (true, None) => got == Outcome::Verified,
                    // No invalid vector ever decrypts.
                    (false, documented) => documented.is_none() && got != Outcome::Verified,
                };
                if !ok {
                    let comment = test["comment"].as_str().unwrap_or_default();
                    wrong.push(format!("tcId {id} {comment} (valid: {valid}): got {got:?}"));
                }
            }
        }
        assert!(wrong.is_empty(), "{} of {played} vectors misbehaved:\n{}", wrong.len(), wrong.join("\n"));
        assert_eq!(played, 139, "every vector of the file is played");
        assert_eq!(decrypted, 65 - REFUSED_VALID.len(), "every valid vector not refused on purpose decrypts");
    }
}
