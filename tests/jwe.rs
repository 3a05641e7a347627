//! Encrypted tokens (JWE, feature `jwe`) through the real layer over HTTP: the JWT guide's
//! A256KW / A256GCM claims sets and nested sign-then-encrypt tokens (RSA-OAEP-256,
//! ECDH-ES+A256KW), made by the crate's own issuer and by panva's `jose` under node (and read
//! back by it); then the attacks: tampering, truncation, foreign and missing signatures,
//! refused algorithms and headers, invalid-curve points, header/claims mismatches.
#![cfg(feature = "jwe")]

mod harness;

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::agreement;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeySize, PrivateDecryptingKey};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use harness::{answer, b64, b64_decode, client, now, serve, Answer, TestKey};
use serde_json::{json, Value};
use tower_jwt_guard::issue::{SigningKey, TokenIssuer};
use tower_jwt_guard::jwe::{ContentEncryption, DecryptionKey, EncryptionKey, KeyManagement};
use tower_jwt_guard::{Algorithm, Claims, JwtAuth, JwtLayer};

const ISSUER: &str = "https://auth.example.com";
const AUDIENCE: &str = "api";
/// The guide's shared secret: 32 bytes of text.
const SECRET: &str = "a-string-secret-at-least-256-bit";
/// The key of crafted `dir` tokens (any header, encrypted right).
const DIR_KEY: [u8; 32] = [0x5a; 32];

fn pem(label: &str, der: &[u8]) -> String {
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", STANDARD.encode(der))
}

/// The recipient's keys and the issuer's signing key.
struct Keys {
    signing: TestKey,
    rsa_private: String,
    rsa_public: String,
    ec_private: String,
    ec_public: String,
}

impl Keys {
    fn generate() -> Keys {
        let rsa = PrivateDecryptingKey::generate(KeySize::Rsa2048).unwrap();
        let rsa_public: PublicKeyX509Der = rsa.public_key().as_der().unwrap();
        let rsa_private: Pkcs8V1Der = rsa.as_der().unwrap();
        let ec = agreement::PrivateKey::generate(&agreement::ECDH_P256).unwrap();
        let ec_public: PublicKeyX509Der = ec.compute_public_key().unwrap().as_der().unwrap();
        let ec_private: Pkcs8V1Der = ec.as_der().unwrap();
        Keys {
            signing: TestKey::generate(Algorithm::ES256),
            rsa_private: pem("PRIVATE KEY", rsa_private.as_ref()),
            rsa_public: pem("PUBLIC KEY", rsa_public.as_ref()),
            ec_private: pem("PRIVATE KEY", ec_private.as_ref()),
            ec_public: pem("PUBLIC KEY", ec_public.as_ref()),
        }
    }

    fn auth(&self, expose: bool) -> JwtAuth {
        let gcm = ContentEncryption::A256Gcm;
        JwtAuth::builder()
            .key(self.signing.verification_key())
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .expose_error_details(expose)
            .decryption_key(DecryptionKey::secret(KeyManagement::A256Kw, gcm, SECRET).unwrap())
            .decryption_key(DecryptionKey::secret(KeyManagement::Dir, gcm, DIR_KEY).unwrap().with_kid("dir"))
            .decryption_key(
                DecryptionKey::from_pem(KeyManagement::RsaOaep256, gcm, self.rsa_private.as_bytes()).unwrap(),
            )
            .decryption_key(
                DecryptionKey::from_pem(KeyManagement::EcdhEsA256Kw, gcm, self.ec_private.as_bytes())
                    .unwrap(),
            )
            .build()
            .unwrap()
    }

    /// The issuer's signing key as a PKCS#8 PEM.
    fn signing_pem(&self) -> String {
        pem("PRIVATE KEY", &self.signing.private_pkcs8().unwrap())
    }

    fn to_rsa(&self) -> EncryptionKey {
        EncryptionKey::from_pem(
            KeyManagement::RsaOaep256,
            ContentEncryption::A256Gcm,
            self.rsa_public.as_bytes(),
        )
        .unwrap()
    }

    fn to_ec(&self) -> EncryptionKey {
        EncryptionKey::from_pem(
            KeyManagement::EcdhEsA256Kw,
            ContentEncryption::A256Gcm,
            self.ec_public.as_bytes(),
        )
        .unwrap()
    }

    fn shared(&self) -> EncryptionKey {
        EncryptionKey::secret(KeyManagement::A256Kw, ContentEncryption::A256Gcm, SECRET).unwrap()
    }

    /// An ES256 JWS of `claims`, signed by the issuer's key.
    fn signed(&self, claims: &Value) -> String {
        self.signing.sign(claims)
    }
}

fn claims(sub: &str) -> Value {
    let now = now();
    json!({ "sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 7200 })
}

async fn me(Claims(claims): Claims<Value>) -> Json<Value> {
    Json((*claims).clone())
}

struct Server {
    base: String,
    layer: JwtLayer<Value>,
}

async fn start(auth: &JwtAuth) -> Server {
    let layer = auth.layer::<Value>();
    let app = Router::new().route("/me", get(me)).route_layer(layer.clone());
    Server { base: format!("http://{}", serve(app).await), layer }
}

impl Server {
    async fn call(&self, token: &str) -> Answer {
        answer(client().get(format!("{}/me", self.base)).bearer_auth(token)).await
    }

    /// The refusal's precise reason (the server exposes it).
    async fn reason(&self, token: &str) -> String {
        let answer = self.call(token).await;
        assert_eq!(answer.status, 401, "{}", answer.body);
        answer.body["error"].as_str().unwrap_or_default().to_owned()
    }
}

/// A `dir` / A256GCM token under [`DIR_KEY`] with any header: correctly encrypted, so only the
/// header's content can be what refuses it.
fn craft(header: Value, plaintext: &[u8]) -> String {
    let header = b64(serde_json::to_vec(&header).unwrap());
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &DIR_KEY).unwrap());
    let iv = [3u8; 12];
    let mut ciphertext = plaintext.to_vec();
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(header.as_bytes()),
            &mut ciphertext,
        )
        .unwrap();
    format!("{header}..{}.{}.{}", b64(iv), b64(&ciphertext), b64(tag.as_ref()))
}

/// The token with one byte of part `index` changed.
fn tamper(token: &str, index: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut bytes = b64_decode(&parts[index]);
    bytes[0] ^= 0x01;
    parts[index] = b64(bytes);
    parts.join(".")
}

#[tokio::test]
async fn shared_secret_and_nested_tokens_verify_end_to_end_and_are_cached() {
    let keys = Keys::generate();
    let server = start(&keys.auth(false)).await;
    let es256 = SigningKey::from_pem(Algorithm::ES256, keys.signing_pem().as_bytes()).unwrap();
    let issuer = |encryption: EncryptionKey| {
        TokenIssuer::builder(es256.clone()).issuer(ISSUER).audience(AUDIENCE).encrypt_to(encryption).build()
    };
    for (kind, encryption) in
        [("A256KW", keys.shared()), ("RSA-OAEP-256", keys.to_rsa()), ("ECDH-ES+A256KW", keys.to_ec())]
    {
        let token = issuer(encryption).mint("alice", &json!({ "role": "admin" })).unwrap().token;
        assert_eq!(token.split('.').count(), 5, "{kind}");
        let before = server.layer.cache_stats().unwrap();
        for _ in 0..2 {
            let answer = server.call(&token).await;
            assert_eq!(answer.status, 200, "{kind}: {}", answer.body);
            assert_eq!(
                (answer.body["sub"].as_str(), answer.body["role"].as_str()),
                (Some("alice"), Some("admin"))
            );
        }
        // The second request is a cache hit: no second decryption.
        let after = server.layer.cache_stats().unwrap();
        assert_eq!((after.misses - before.misses, after.hits - before.hits), (1, 1), "{kind}");
    }
    // The claim rules apply to encrypted claims as to signed ones.
    let expired = json!({ "sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": now() - 3600 });
    let token = keys.shared().encrypt(expired.to_string().as_bytes(), false).unwrap();
    assert_eq!(server.call(&token).await.code(), "TOKEN_EXPIRED");
    let mut other_audience = claims("alice");
    other_audience["aud"] = json!("other");
    let token = keys.shared().encrypt(other_audience.to_string().as_bytes(), false).unwrap();
    assert_eq!(server.call(&token).await.code(), "INVALID_TOKEN");
}

#[tokio::test]
async fn without_decryption_keys_encrypted_tokens_are_refused() {
    let keys = Keys::generate();
    let auth =
        JwtAuth::builder().key(keys.signing.verification_key()).expose_error_details(true).build().unwrap();
    let server = start(&auth).await;
    let token = keys.shared().encrypt(claims("alice").to_string().as_bytes(), false).unwrap();
    assert_eq!(server.reason(&token).await, "encrypted tokens (JWE) are not accepted");
}

#[tokio::test]
async fn attacks_are_refused_with_one_answer() {
    let keys = Keys::generate();
    let server = start(&keys.auth(true)).await;
    let reason = |token: String| {
        let server = &server;
        async move { server.reason(&token).await }
    };
    let undecryptable = "the token could not be decrypted";
    let direct = keys.shared().encrypt(claims("alice").to_string().as_bytes(), false).unwrap();
    let nested = keys.to_rsa().encrypt(keys.signed(&claims("alice")).as_bytes(), true).unwrap();
    assert_eq!(server.call(&direct).await.status, 200);
    assert_eq!(server.call(&nested).await.status, 200);
    // Tampering with the encrypted key, IV, ciphertext or tag: the same refusal.
    for token in [&direct, &nested] {
        for part in 1..5 {
            assert_eq!(reason(tamper(token, part)).await, undecryptable, "part {part}");
        }
    }
    // Truncated tokens.
    let parts: Vec<&str> = direct.split('.').collect();
    assert_eq!(reason(parts[..4].join(".")).await, "the token is not a compact JWS");
    assert_eq!(reason(format!("{}.", parts[..4].join("."))).await, "the token is not a compact JWE");
    let tag = b64_decode(parts[4]);
    let short_tag = format!("{}.{}", parts[..4].join("."), b64(&tag[..tag.len() - 3]));
    assert_eq!(reason(short_tag).await, undecryptable);
    // A wrong shared secret and a wrong tag: the same refusal.
    let foreign =
        EncryptionKey::secret(KeyManagement::A256Kw, ContentEncryption::A256Gcm, [9u8; 32]).unwrap();
    assert_eq!(
        reason(foreign.encrypt(claims("alice").to_string().as_bytes(), false).unwrap()).await,
        undecryptable
    );
    // Under a public key anyone can encrypt: a nested JWS signed by an unknown key, an
    // unsigned nested token, or a bare claims set are refused.
    let stranger = TestKey::generate(Algorithm::ES256);
    let unknown_signer = keys.to_rsa().encrypt(stranger.sign(&claims("alice")).as_bytes(), true).unwrap();
    assert_eq!(reason(unknown_signer).await, "the token signature is invalid");
    let unsigned = format!("{}.{}.", b64(br#"{"alg":"none"}"#), b64(claims("alice").to_string()));
    assert_eq!(
        reason(keys.to_rsa().encrypt(unsigned.as_bytes(), true).unwrap()).await,
        "the token is not signed"
    );
    let none_signed = format!("{unsigned}c2ln");
    let token = keys.to_rsa().encrypt(none_signed.as_bytes(), true).unwrap();
    assert_eq!(reason(token).await, "the token's algorithm is not allowed");
    let bare = keys.to_ec().encrypt(claims("alice").to_string().as_bytes(), false).unwrap();
    assert_eq!(reason(bare).await, "this decryption key accepts only a nested signed JWT (cty JWT)");
    // Refused algorithms and headers, even on a token that decrypts.
    let plain = claims("alice").to_string();
    let plain = plain.as_bytes();
    let crafted = craft(json!({"alg": "dir", "enc": "A256GCM", "kid": "dir"}), plain);
    assert_eq!(server.call(&crafted).await.status, 200, "the crafted token itself is sound");
    for (header, why) in [
        (
            json!({"alg": "dir", "enc": "A256GCM", "kid": "dir", "zip": "DEF"}),
            "compressed encrypted tokens (zip) are refused",
        ),
        (
            json!({"alg": "dir", "enc": "A256GCM", "kid": "dir", "crit": ["exp"], "exp": 1}),
            "the token uses a critical extension this server does not support",
        ),
        (
            json!({"alg": "PBES2-HS512+A256KW", "enc": "A256GCM", "p2s": "c2FsdA", "p2c": 2_000_000_000u64}),
            "PBES2 encrypted tokens are refused (password-based, token-chosen cost)",
        ),
        (json!({"alg": "RSA1_5", "enc": "A256GCM"}), "RSA1_5 encrypted tokens are refused (padding oracle)"),
        (
            json!({"alg": "dir", "enc": "A128GCM", "kid": "dir"}),
            "no decryption key is known for this token's kid, alg and enc",
        ),
        (
            json!({"alg": "dir", "enc": "A256GCM", "kid": "dir", "cty": "JWT"}),
            "the encrypted token does not hold a signed JWT",
        ),
    ] {
        assert_eq!(reason(craft(header.clone(), plain)).await, why, "{header}");
    }
    // A nested token whose outer header replicates another issuer than its claims'.
    let signed = keys.signed(&claims("alice"));
    let header =
        json!({"alg": "dir", "enc": "A256GCM", "kid": "dir", "cty": "JWT", "iss": "https://evil.example"});
    assert_eq!(
        reason(craft(header, signed.as_bytes())).await,
        "the encrypted token's header does not match its claims"
    );
    let header =
        json!({"alg": "dir", "enc": "A256GCM", "kid": "dir", "cty": "jwt", "iss": ISSUER, "sub": "alice"});
    assert_eq!(server.call(&craft(header, signed.as_bytes())).await.status, 200, "cty is case-insensitive");
    // An encrypted token inside an encrypted token.
    let inner = keys.to_rsa().encrypt(signed.as_bytes(), true).unwrap();
    let header = json!({"alg": "dir", "enc": "A256GCM", "kid": "dir", "cty": "JWT"});
    assert_eq!(reason(craft(header, inner.as_bytes())).await, "encrypted tokens (JWE) are not accepted");
    // An ephemeral key off the curve (an invalid-curve attack) never reaches the private key.
    let ecdh = keys.to_ec().encrypt(signed.as_bytes(), true).unwrap();
    let (header, rest) = ecdh.split_once('.').unwrap();
    let mut header: Value = serde_json::from_slice(&b64_decode(header)).unwrap();
    let mut y = b64_decode(header["epk"]["y"].as_str().unwrap());
    y[0] ^= 0x01;
    header["epk"]["y"] = b64(y).into();
    let token = format!("{}.{rest}", b64(serde_json::to_vec(&header).unwrap()));
    assert_eq!(reason(token).await, "the token's ephemeral key is not a valid point");
}

/// Without exposed details, a wrong key, a wrong tag and a refused algorithm answer alike.
#[tokio::test]
async fn clients_cannot_tell_refusals_apart() {
    let keys = Keys::generate();
    let server = start(&keys.auth(false)).await;
    let direct = keys.shared().encrypt(claims("alice").to_string().as_bytes(), false).unwrap();
    let foreign =
        EncryptionKey::secret(KeyManagement::A256Kw, ContentEncryption::A256Gcm, [9u8; 32]).unwrap();
    let refusals = [
        tamper(&direct, 4),
        tamper(&direct, 1),
        foreign.encrypt(claims("alice").to_string().as_bytes(), false).unwrap(),
        craft(json!({"alg": "RSA1_5", "enc": "A256GCM"}), b"{}"),
    ];
    let mut answers = Vec::new();
    for token in &refusals {
        let answer = server.call(token).await;
        answers.push((answer.status, answer.challenge, answer.body));
    }
    assert!(answers.iter().all(|answer| *answer == answers[0]), "{answers:?}");
    assert_eq!(answers[0].0, 401);
}

/// Another JOSE implementation, run as a process: `program args.. <config.json> <mode>`.
struct Implementation {
    name: &'static str,
    program: String,
    script: &'static str,
}

impl Implementation {
    /// panva's `jose` under node, or `None` (with the reason) when it is not installed.
    fn node() -> Result<Implementation, &'static str> {
        let interop = interop_dir();
        match Command::new("node").arg("--version").output() {
            Ok(output) if output.status.success() => {}
            _ => return Err("node is not installed"),
        }
        if !interop.join("node_modules/jose/package.json").exists() {
            return Err("jose is not installed: run `npm ci --prefix tests/interop`");
        }
        Ok(Implementation { name: "jose (node)", program: "node".into(), script: "jwe.mjs" })
    }

    /// joserfc under Python (`PYTHON`, default `python3`), or `None` when it is not installed.
    fn python() -> Result<Implementation, &'static str> {
        let program = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        match Command::new(&program).args(["-c", "import joserfc"]).output() {
            Ok(output) if output.status.success() => {
                Ok(Implementation { name: "joserfc (python)", program, script: "jwe.py" })
            }
            _ => Err("joserfc is not importable: `pip install joserfc==1.8.0` (or set PYTHON to an interpreter that has it)"),
        }
    }

    async fn run(&self, config: &std::path::Path, mode: &'static str, input: String) -> Vec<Value> {
        let (program, script, config) = (self.program.clone(), self.script, config.to_owned());
        tokio::task::spawn_blocking(move || {
            let mut child = Command::new(program)
                .current_dir(interop_dir())
                .arg(script)
                .arg(&config)
                .arg(mode)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the interpreter runs");
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
            let output = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            assert!(
                output.status.success(),
                "{script} failed: {stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            );
            stdout.lines().map(|line| serde_json::from_str::<Value>(line).unwrap()).collect::<Vec<_>>()
        })
        .await
        .unwrap()
    }
}

fn interop_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// The implementation, or a skip outside CI (in CI a missing tool fails the test).
fn required(implementation: Result<Implementation, &'static str>) -> Option<Implementation> {
    match implementation {
        Ok(implementation) => Some(implementation),
        Err(why) => {
            assert!(std::env::var_os("CI").is_none(), "CI is set but {why}");
            println!("skipped: {why}");
            None
        }
    }
}

/// Tokens made by `implementation` are accepted by the layer (and refused once tampered with);
/// tokens the crate's issuer encrypts are read by it: A256KW / A256GCM claims sets, and nested
/// ES256 JWTs under RSA-OAEP-256 and ECDH-ES+A256KW.
async fn interop(implementation: Implementation) {
    let keys = Keys::generate();
    let server = start(&keys.auth(false)).await;
    let config = json!({
        "secret": SECRET, "issuer": ISSUER, "audience": AUDIENCE,
        "rsaPublic": keys.rsa_public, "rsaPrivate": keys.rsa_private,
        "ecPublic": keys.ec_public, "ecPrivate": keys.ec_private,
        "signingPrivate": keys.signing_pem(), "signingPublic": keys.signing.public_pem,
    });
    let dir = std::env::temp_dir().join(format!(
        "tower-jwt-guard-jwe-{}-{}",
        implementation.script,
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let name = implementation.name;
    // theirs → the layer
    let made = implementation.run(&config_path, "encrypt", String::new()).await;
    assert_eq!(made.len(), 3, "{name}");
    for line in &made {
        let (kind, token) = (&line["kind"], line["token"].as_str().unwrap());
        let answer = server.call(token).await;
        assert_eq!(answer.status, 200, "{name} {kind}: {}", answer.body);
        let sub = if kind == "A256KW" { "alice" } else { "bob" };
        assert_eq!(answer.body["sub"], sub, "{name} {kind}");
        assert_eq!(server.call(&tamper(token, 4)).await.code(), "INVALID_TOKEN", "{name} {kind}");
    }
    // the crate's issuer → theirs
    let es256 = SigningKey::from_pem(Algorithm::ES256, keys.signing_pem().as_bytes()).unwrap();
    let mut lines = String::new();
    for (kind, encryption) in
        [("A256KW", keys.shared()), ("RSA-OAEP-256", keys.to_rsa()), ("ECDH-ES+A256KW", keys.to_ec())]
    {
        let issuer = TokenIssuer::builder(es256.clone())
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .ttl(Duration::from_secs(7200))
            .encrypt_to(encryption)
            .build();
        let token = issuer.mint("carol", &json!({})).unwrap().token;
        lines.push_str(&format!("{}\n", json!({ "kind": kind, "token": token })));
    }
    let read = implementation.run(&config_path, "decrypt", lines).await;
    assert_eq!(read.len(), 3, "{name}");
    for line in read {
        assert_eq!(
            (line["claims"]["sub"].as_str(), line["claims"]["iss"].as_str()),
            (Some("carol"), Some(ISSUER)),
            "{name} {line}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Interop with panva's `jose` 6.2 (node), the library of the JWT guide's example.
#[tokio::test]
async fn tokens_of_the_npm_jose_package_are_accepted_and_ours_are_read_by_it() {
    if let Some(node) = required(Implementation::node()) {
        interop(node).await;
    }
}

/// Interop with joserfc 1.8 (Python).
#[tokio::test]
async fn tokens_of_python_joserfc_are_accepted_and_ours_are_read_by_it() {
    if let Some(python) = required(Implementation::python()) {
        interop(python).await;
    }
}

/// With several trusted issuers, a shared decryption key that accepts claims sets is bound to
/// one issuer: its claims sets must name it.
#[tokio::test]
async fn a_shared_key_speaks_for_its_issuer_only() {
    use tower_jwt_guard::{Issuer, VerificationKey};
    let (a, b) = ("https://a.example", "https://b.example");
    let builder = || {
        JwtAuth::builder()
            .trust(Issuer::new(a).key(VerificationKey::hmac(Algorithm::HS256, [1u8; 32]).unwrap()))
            .trust(Issuer::new(b).key(VerificationKey::hmac(Algorithm::HS256, [2u8; 32]).unwrap()))
            .expose_error_details(true)
    };
    let key = || DecryptionKey::secret(KeyManagement::A256Kw, ContentEncryption::A256Gcm, SECRET).unwrap();
    assert!(builder().decryption_key(key()).build().is_err(), "unbound: refused at build time");
    assert!(builder().decryption_key(key().require_nested_jws(true)).build().is_ok());
    let server = start(&builder().decryption_key(key().for_issuer(a)).build().unwrap()).await;
    let shared = EncryptionKey::secret(KeyManagement::A256Kw, ContentEncryption::A256Gcm, SECRET).unwrap();
    let t = now();
    let from = |iss: &str| json!({ "sub": "alice", "iss": iss, "iat": t, "exp": t + 60 }).to_string();
    assert_eq!(server.call(&shared.encrypt(from(a).as_bytes(), false).unwrap()).await.status, 200);
    let forged = shared.encrypt(from(b).as_bytes(), false).unwrap();
    assert_eq!(server.reason(&forged).await, "the claims set's issuer is not its decryption key's");
}

/// One tenant pattern is an issuer per tenant: an unbound shared key would speak for all of
/// them, and is refused as with several issuers.
#[cfg(feature = "jwks")]
#[test]
fn with_a_tenant_pattern_an_unbound_shared_key_is_refused() {
    use tower_jwt_guard::keys::TenantKeys;
    use tower_jwt_guard::Issuer;
    let builder = || {
        let tenants = TenantKeys::builder("https://login.example.com/{tenant}/v2.0")
            .allow(["contoso", "fabrikam"])
            .build()
            .unwrap();
        JwtAuth::builder().trust(Issuer::tenants(tenants).algorithms([Algorithm::RS256]))
    };
    let key = || DecryptionKey::secret(KeyManagement::A256Kw, ContentEncryption::A256Gcm, SECRET).unwrap();
    assert!(builder().decryption_key(key()).build().is_err(), "unbound: refused at build time");
    assert!(builder().decryption_key(key().require_nested_jws(true)).build().is_ok());
    let contoso = "https://login.example.com/contoso/v2.0";
    assert!(builder().decryption_key(key().for_issuer(contoso)).build().is_ok());
}

/// The audit event carries the precise reason of a refused encrypted token (the client reads
/// only "the token is not valid") and names the subject of an accepted one; no part of an
/// encrypted token, nor its secret claims, is in any event (what the audit log prints). The log
/// itself is checked in tests/audit.rs, alone in its binary (tracing's per-thread subscribers).
#[tokio::test]
async fn refusals_are_audited_precisely_and_nothing_secret_is_logged() {
    use std::sync::{Arc, Mutex};
    let keys = Keys::generate();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let auth = JwtAuth::builder()
        .key(keys.signing.verification_key())
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .decryption_key(
            DecryptionKey::secret(KeyManagement::A256Kw, ContentEncryption::A256Gcm, SECRET).unwrap(),
        )
        .on_audit(move |event| {
            let entry = (event.code, event.reason.map(str::to_owned), event.subject.map(str::to_owned));
            sink.lock().unwrap().push((entry, format!("{event:?}")));
        })
        .build()
        .unwrap();
    let server = start(&auth).await;
    let mut secret_claims = claims("alice");
    secret_claims["salary"] = json!("secret-salary-figure");
    let good = keys.shared().encrypt(secret_claims.to_string().as_bytes(), false).unwrap();
    let rsa1_5 = craft(json!({"alg": "RSA1_5", "enc": "A256GCM"}), b"{}");
    let tampered = tamper(&good, 4);
    assert_eq!(server.call(&good).await.status, 200);
    let refused = server.call(&rsa1_5).await;
    assert_eq!(
        (refused.code(), refused.body["error"].as_str()),
        ("INVALID_TOKEN", Some("the token is not valid"))
    );
    assert_eq!(server.call(&tampered).await.code(), "INVALID_TOKEN");
    let seen = seen.lock().unwrap().clone();
    let reason = |text: &str| Some(text.to_owned());
    assert_eq!(
        seen.iter().map(|(entry, _)| entry.clone()).collect::<Vec<_>>(),
        [
            ("OK", None, Some("alice".to_owned())),
            ("INVALID_TOKEN", reason("RSA1_5 encrypted tokens are refused (padding oracle)"), None),
            ("INVALID_TOKEN", reason("the token could not be decrypted"), None),
        ]
    );
    let events: String = seen.iter().map(|(_, printed)| printed.as_str()).collect();
    for token in [&good, &rsa1_5, &tampered] {
        for part in token.split('.').filter(|part| part.len() > 4) {
            assert!(!events.contains(part), "a token part is in an audit event:\n{events}");
        }
    }
    assert!(!events.contains("secret-salary-figure"), "{events}");
}
