//! The quickstart example, run as a user runs it, over loopback.

mod example_process;
mod harness;
#[cfg(feature = "jwks")]
#[path = "common/jwks_server.rs"]
mod jwks_server;

use example_process::{expect_exit, Example};
use harness::{answer, claims, client, now, TestKey};
use serde_json::json;
use tower_jwt_guard::Algorithm;

const SECRET: &str = "quickstart-test-secret-of-32-bytes!!";

/// The bearer tokens of the `count` printed `curl` lines that carry one, in order.
fn printed_tokens(example: &mut Example, count: usize) -> Vec<String> {
    let mut tokens = Vec::new();
    while tokens.len() < count {
        let line = example.next_line();
        if let Some(rest) = line.split("Bearer ").nth(1) {
            tokens.push(rest.split('\'').next().unwrap().to_string());
        }
    }
    tokens
}

/// Runs the quickstart with `env` until it exits: its exit code and standard error.
fn run_to_exit(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = expect_exit("quickstart", env);
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test]
async fn quickstart_with_a_configured_secret() {
    let running = Example::start("quickstart", &[("JWT_SECRET", SECRET)]);
    let base = running.url();
    let http = client();
    let key = TestKey::hmac(Algorithm::HS256, SECRET.as_bytes());

    assert_eq!(http.get(format!("{base}/health")).send().await.unwrap().status(), 200);
    let missing = answer(http.get(format!("{base}/me"))).await;
    assert_eq!((missing.status, missing.code()), (401, "MISSING_TOKEN"));

    let me = answer(http.get(format!("{base}/me")).bearer_auth(key.sign(&claims("alice")))).await;
    assert_eq!((me.status, me.body["sub"].clone()), (200, json!("alice")));

    let admin = answer(http.get(format!("{base}/admin")).bearer_auth(key.sign(&claims("alice")))).await;
    assert_eq!((admin.status, admin.code()), (401, "MFA_REQUIRED"));
    assert!(admin.challenge.unwrap().contains("insufficient_user_authentication"));

    let t = now();
    let mfa = key.sign(&json!({ "sub": "alice", "exp": t + 60, "amr": ["pwd", "otp"] }));
    let admin = answer(http.get(format!("{base}/admin")).bearer_auth(mfa)).await;
    assert_eq!(admin.status, 200);
    assert_eq!(admin.body["sub"], "alice");
}

#[tokio::test]
async fn quickstart_without_configuration_prints_working_commands() {
    let mut running = Example::start("quickstart", &[]);
    let base = running.url();
    let tokens = printed_tokens(&mut running, 3);
    let http = client();
    let me = answer(http.get(format!("{base}/me")).bearer_auth(&tokens[0])).await;
    assert_eq!(me.status, 200);
    let step_up = answer(http.get(format!("{base}/admin")).bearer_auth(&tokens[1])).await;
    assert_eq!(step_up.code(), "MFA_REQUIRED");
    let admin = answer(http.get(format!("{base}/admin")).bearer_auth(&tokens[2])).await;
    assert_eq!(admin.status, 200);
    // The random secret is not one anybody else knows.
    let guess = TestKey::hmac(Algorithm::HS256, SECRET.as_bytes());
    let refused = answer(http.get(format!("{base}/me")).bearer_auth(guess.sign(&claims("mallory")))).await;
    assert_eq!(refused.code(), "INVALID_TOKEN");
}

#[tokio::test]
async fn quickstart_with_a_public_key_file() {
    let key = TestKey::generate(Algorithm::ES256);
    let dir = std::env::temp_dir().join(format!("tjg-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("public.pem");
    std::fs::write(&path, &key.public_pem).unwrap();
    let running = Example::start("quickstart", &[("JWT_PUBLIC_KEY", path.to_str().unwrap())]);
    let base = running.url();
    let me = answer(client().get(format!("{base}/me")).bearer_auth(key.sign(&claims("pk")))).await;
    assert_eq!(me.status, 200);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_configuration_exits_with_code_2_naming_the_variable() {
    let (code, stderr) = run_to_exit(&[("JWT_SECRET", "short")]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("JWT_SECRET"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let (code, stderr) = run_to_exit(&[("BIND", "not-an-address")]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("BIND"), "{stderr}");

    let (code, stderr) = run_to_exit(&[("JWT_PUBLIC_KEY", "/nonexistent/key.pem")]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("JWT_PUBLIC_KEY"), "{stderr}");

    let (code, stderr) = run_to_exit(&[("JWT_SECRET", SECRET), ("JWT_ALG", "RS999")]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("JWT_ALG"), "{stderr}");
}

#[tokio::test]
async fn quickstart_with_public_keys_of_every_family() {
    let dir = std::env::temp_dir().join(format!("tjg-quickstart-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let http = client();
    // (the key's algorithm, JWT_ALG when the key type alone does not decide it)
    for (alg, jwt_alg) in [
        (Algorithm::RS256, None),
        (Algorithm::PS256, Some("PS256")),
        (Algorithm::ES256, None),
        (Algorithm::ES384, None),
        (Algorithm::EdDSA, None),
    ] {
        let key = TestKey::generate(alg);
        let path = dir.join(format!("{alg:?}.pem"));
        std::fs::write(&path, &key.public_pem).unwrap();
        let mut env = vec![("JWT_PUBLIC_KEY", path.to_str().unwrap())];
        env.extend(jwt_alg.map(|alg| ("JWT_ALG", alg)));
        let running = Example::start("quickstart", &env);
        let base = running.url();
        let me = answer(http.get(format!("{base}/me")).bearer_auth(key.sign(&claims("pk")))).await;
        assert_eq!((me.status, me.body["sub"].clone()), (200, json!("pk")), "{alg:?}");
        let other = TestKey::generate(alg);
        let forged = answer(http.get(format!("{base}/me")).bearer_auth(other.sign(&claims("pk")))).await;
        assert_eq!((forged.status, forged.code()), (401, "INVALID_TOKEN"), "{alg:?}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// An ES256 key as a JWK with this `kid`.
#[cfg(feature = "jwks")]
fn jwk(key: &TestKey, kid: &str) -> serde_json::Value {
    let point = &key.public_raw;
    json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
        "x": harness::b64(&point[1..33]), "y": harness::b64(&point[33..65]),
    })
}

/// A token of `iss` for `sub`, signed by `key` under `kid`.
#[cfg(feature = "jwks")]
fn token_of(iss: &str, key: &TestKey, kid: &str, sub: &str) -> String {
    let mut body = claims(sub);
    body["iss"] = json!(iss);
    key.sign_with_header(json!({ "kid": kid }), &body)
}

/// Two issuers' servers on loopback, each publishing its own key (`a1`, `b1`).
#[cfg(feature = "jwks")]
async fn two_providers() -> ([jwks_server::JwksServer; 2], [TestKey; 2]) {
    let servers = [jwks_server::JwksServer::start().await, jwks_server::JwksServer::start().await];
    let keys = [TestKey::generate(Algorithm::ES256), TestKey::generate(Algorithm::ES256)];
    servers[0].serve(vec![jwk(&keys[0], "a1")]);
    servers[1].serve(vec![jwk(&keys[1], "b1")]);
    (servers, keys)
}

/// Each issuer's own tokens pass; a token claiming one issuer signed with the other's key (under
/// either kid) and a token of an unknown issuer are refused.
#[cfg(feature = "jwks")]
async fn accepts_each_issuer_only_with_its_own_keys(base: &str, issuers: [&str; 2], keys: &[TestKey; 2]) {
    let http = client();
    let me = |token: String| answer(http.get(format!("{base}/me")).bearer_auth(token));
    let a = me(token_of(issuers[0], &keys[0], "a1", "alice")).await;
    assert_eq!((a.status, a.body["sub"].clone()), (200, json!("alice")), "{}", a.body);
    let b = me(token_of(issuers[1], &keys[1], "b1", "bob")).await;
    assert_eq!((b.status, b.body["sub"].clone()), (200, json!("bob")), "{}", b.body);
    for (kid, what) in [("b1", "B's key under B's kid"), ("a1", "B's key under A's kid")] {
        let cross = me(token_of(issuers[0], &keys[1], kid, "mallory")).await;
        assert_eq!((cross.status, cross.code()), (401, "INVALID_TOKEN"), "A's iss, {what}");
    }
    let cross = me(token_of(issuers[1], &keys[0], "a1", "mallory")).await;
    assert_eq!((cross.status, cross.code()), (401, "INVALID_TOKEN"), "B's iss, A's key");
    let unknown = me(token_of("https://evil.example.com", &keys[0], "a1", "mallory")).await;
    assert_eq!((unknown.status, unknown.code()), (401, "INVALID_TOKEN"), "an unknown issuer");
}

#[cfg(feature = "jwks")]
#[tokio::test]
async fn quickstart_accepts_two_oidc_providers_at_once() {
    let (servers, keys) = two_providers().await;
    let (a, b) = (servers[0].issuer(), servers[1].issuer());
    let running = Example::start("quickstart", &[("JWT_OIDC_ISSUER", &format!("{a}, {b}"))]);
    assert!(running.banner.contains("2 issuers"), "{}", running.banner);
    accepts_each_issuer_only_with_its_own_keys(&running.url(), [&a, &b], &keys).await;
    // Each issuer's keys were found by its own discovery.
    assert!(servers.iter().all(|server| server.discovery_requests() >= 1));
}

#[cfg(feature = "jwks")]
#[tokio::test]
async fn quickstart_pairs_jwks_urls_with_issuers_in_order() {
    let (servers, keys) = two_providers().await;
    let urls = format!("{},{}", servers[0].jwks_url(), servers[1].jwks_url());
    let (a, b) = ("https://a.example.com", "https://b.example.com");
    let issuers = format!("{a},{b}");
    let running = Example::start("quickstart", &[("JWT_JWKS_URL", &urls), ("JWT_ISSUER", &issuers)]);
    accepts_each_issuer_only_with_its_own_keys(&running.url(), [a, b], &keys).await;
}

#[cfg(feature = "jwks")]
#[test]
fn mismatched_issuer_lists_exit_with_code_2_naming_the_variable() {
    let urls = "http://127.0.0.1:9/a.json,http://127.0.0.1:9/b.json";
    for env in [
        vec![("JWT_JWKS_URL", urls), ("JWT_ISSUER", "https://a.example.com")],
        vec![("JWT_JWKS_URL", urls)],
        vec![
            ("JWT_JWKS_URL", "http://127.0.0.1:9/a.json"),
            ("JWT_ISSUER", "https://a.example.com,https://b.example.com"),
        ],
        vec![
            ("JWT_OIDC_ISSUER", "http://127.0.0.1:9/a,http://127.0.0.1:9/b"),
            ("JWT_ISSUER", "http://127.0.0.1:9/a"),
        ],
    ] {
        let (code, stderr) = run_to_exit(&env);
        assert_eq!(code, Some(2), "{env:?}: {stderr}");
        assert!(stderr.contains("JWT_ISSUER"), "{env:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{env:?}: {stderr}");
    }
    let (code, stderr) = run_to_exit(&[("JWT_OIDC_ISSUER", "http://127.0.0.1:9/a,ftp://b")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("JWT_OIDC_ISSUER"), "{stderr}");
}

/// `/ready` answers 200 with JSON, and `/metrics` is Prometheus text that counts the requests.
#[cfg(feature = "metrics")]
#[tokio::test]
async fn quickstart_serves_ready_and_prometheus_metrics() {
    let running = Example::start("quickstart", &[("JWT_SECRET", SECRET)]);
    let base = running.url();
    let http = client();
    let key = TestKey::hmac(Algorithm::HS256, SECRET.as_bytes());
    let ready = http.get(format!("{base}/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["ready"], true);
    assert_eq!(answer(http.get(format!("{base}/me"))).await.status, 401);
    assert_eq!(
        answer(http.get(format!("{base}/me")).bearer_auth(key.sign(&claims("alice")))).await.status,
        200
    );

    let text = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    let samples = parse_prometheus(&text);
    let decisions = |code: &str| {
        samples
            .iter()
            .find(|(name, labels, _)| {
                name == "jwt_guard_decisions" && labels.contains(&format!("code=\"{code}\""))
            })
            .map(|(.., value)| *value)
    };
    assert_eq!(decisions("MISSING_TOKEN"), Some(1.0), "{text}");
    assert_eq!(decisions("OK"), Some(1.0), "{text}");
    assert!(text.contains("# HELP jwt_guard_decisions "), "{text}");
}

/// Parses the Prometheus text format strictly enough to catch a malformed exposition: every line
/// is a comment (`# HELP name text`, `# TYPE name type`) or `name{labels} value`.
#[cfg(feature = "metrics")]
fn parse_prometheus(text: &str) -> Vec<(String, String, f64)> {
    let is_name = |name: &str| {
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    };
    let mut samples = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            assert!(matches!(kind, "HELP" | "TYPE"), "comment {line:?}");
            assert!(is_name(name), "metric name in {line:?}");
            if kind == "TYPE" {
                let ty = parts.next().unwrap_or("");
                assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&ty), "{line:?}");
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("sample {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let labels = rest.strip_suffix('}').unwrap_or_else(|| panic!("labels in {line:?}"));
                for pair in labels.split("\",").filter(|pair| !pair.is_empty()) {
                    let (label, quoted) = pair.split_once('=').unwrap_or_else(|| panic!("label in {line:?}"));
                    assert!(is_name(label) && quoted.starts_with('"'), "label {pair:?} in {line:?}");
                }
                (name, labels.to_owned())
            }
            None => (series, String::new()),
        };
        assert!(is_name(name), "metric name in {line:?}");
        samples.push((name.to_owned(), labels, value));
    }
    assert!(!samples.is_empty(), "no samples in {text:?}");
    samples
}

/// `JWE_KEY` / `JWE_ALG`: the guide's encrypted tokens (A256KW / A256GCM under a 32-byte
/// secret) are accepted, made by panva's `jose` (node) when it is installed and by the crate's
/// own encryption; the printed demo tokens are encrypted too.
#[cfg(feature = "jwe")]
#[tokio::test]
async fn quickstart_with_an_encryption_secret() {
    use tower_jwt_guard::jwe::{ContentEncryption, EncryptionKey, KeyManagement};
    const JWE_SECRET: &str = "a-string-secret-at-least-256-bit";
    let env = [
        ("JWE_KEY", JWE_SECRET),
        ("JWE_ALG", "A256KW"),
        ("JWT_ISSUER", "urn:example:issuer"),
        ("JWT_AUDIENCE", "urn:example:audience"),
    ];
    let mut running = Example::start("quickstart", &env);
    let base = running.url();
    let http = client();
    let tokens = printed_tokens(&mut running, 3);
    assert!(tokens.iter().all(|token| token.split('.').count() == 5), "the demo tokens are encrypted");
    let me = answer(http.get(format!("{base}/me")).bearer_auth(&tokens[0])).await;
    assert_eq!(me.status, 200);
    // The crate's encryption, as EncryptJWT does it: the claims set under A256KW / A256GCM.
    let key = EncryptionKey::secret(KeyManagement::A256Kw, ContentEncryption::A256Gcm, JWE_SECRET).unwrap();
    let t = now();
    let set = json!({ "sub": "bob", "iss": "urn:example:issuer", "aud": "urn:example:audience", "iat": t, "exp": t + 7200 });
    let token = key.encrypt(set.to_string().as_bytes(), false).unwrap();
    let me = answer(http.get(format!("{base}/me")).bearer_auth(&token)).await;
    assert_eq!((me.status, me.body["sub"].clone()), (200, json!("bob")));
    // Another secret: refused.
    let other = EncryptionKey::secret(KeyManagement::A256Kw, ContentEncryption::A256Gcm, [1u8; 32]).unwrap();
    let refused = answer(
        http.get(format!("{base}/me")).bearer_auth(other.encrypt(set.to_string().as_bytes(), false).unwrap()),
    )
    .await;
    assert_eq!(refused.code(), "INVALID_TOKEN");
    // The guide's node code.
    let interop = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let node = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !node || !interop.join("node_modules/jose/package.json").exists() {
        assert!(std::env::var_os("CI").is_none(), "CI is set but node or jose is missing");
        println!("skipped the node part: node or jose (npm ci --prefix tests/interop) is missing");
        return;
    }
    let dir = std::env::temp_dir().join(format!("tjg-quickstart-jwe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.json");
    let settings =
        json!({ "secret": JWE_SECRET, "issuer": "urn:example:issuer", "audience": "urn:example:audience" });
    std::fs::write(&config, settings.to_string()).unwrap();
    let output = std::process::Command::new("node")
        .current_dir(&interop)
        .arg("jwe.mjs")
        .arg(&config)
        .arg("guide")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let line: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let me = answer(http.get(format!("{base}/me")).bearer_auth(line["token"].as_str().unwrap())).await;
    assert_eq!(
        (me.status, me.body["sub"].clone(), me.body["role"].clone()),
        (200, json!("alice"), json!("admin"))
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(feature = "jwe")]
#[test]
fn quickstart_refuses_a_bad_encryption_key() {
    let (code, stderr) = run_to_exit(&[("JWE_KEY", "short"), ("JWE_ALG", "A256KW")]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("JWE_KEY"), "{stderr}");
    let (code, stderr) =
        run_to_exit(&[("JWE_KEY", "a-string-secret-at-least-256-bit"), ("JWE_ALG", "RSA1_5")]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("JWE_ALG"), "{stderr}");
}

/// `HTTP_SIGNATURES=required` with `HTTP_SIGNATURE_KEYS`: every request needs an RFC 9421
/// signature by a client key of the JWKS, covering `@method`, `@target-uri` and `authorization`.
#[tokio::test]
async fn quickstart_with_required_http_signatures() {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
    use base64::Engine as _;

    let pair = Ed25519KeyPair::generate().unwrap();
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    let jwks = json!({"keys": [{"kid": "client-1", "kty": "OKP", "crv": "Ed25519", "x": x}]});
    let path = std::env::temp_dir().join(format!("quickstart-httpsig-{}.json", std::process::id()));
    std::fs::write(&path, jwks.to_string()).unwrap();
    let running = Example::start(
        "quickstart",
        &[
            ("JWT_SECRET", SECRET),
            ("HTTP_SIGNATURES", "required"),
            ("HTTP_SIGNATURE_KEYS", path.to_str().unwrap()),
        ],
    );
    let base = running.url();
    let http = client();
    let token = TestKey::hmac(Algorithm::HS256, SECRET.as_bytes()).sign(&claims("alice"));

    let unsigned = answer(http.get(format!("{base}/me")).bearer_auth(&token)).await;
    assert_eq!((unsigned.status, unsigned.code()), (401, "SIGNATURE_REQUIRED"));

    let sign = |method: &str, path: &str, keyid: &str| {
        let params =
            format!(r#"("@method" "@target-uri" "authorization");created={};keyid="{keyid}""#, now());
        let signature_base = format!(
            "\"@method\": {method}\n\"@target-uri\": {base}{path}\n\"authorization\": Bearer {token}\n\"@signature-params\": {params}"
        );
        let signature = pair.sign(signature_base.as_bytes());
        (
            format!("sig={params}"),
            format!("sig=:{}:", base64::engine::general_purpose::STANDARD.encode(signature.as_ref())),
        )
    };
    let signed = |(input, signature): (String, String), path: &str| {
        http.get(format!("{base}{path}"))
            .bearer_auth(&token)
            .header("signature-input", input)
            .header("signature", signature)
    };
    let me = answer(signed(sign("GET", "/me", "client-1"), "/me")).await;
    assert_eq!((me.status, me.body["sub"].clone()), (200, json!("alice")));
    // Signed for another route, another method, or by an unknown key: refused.
    let other = answer(signed(sign("GET", "/admin", "client-1"), "/me")).await;
    assert_eq!((other.status, other.code()), (401, "INVALID_SIGNATURE"));
    let other = answer(signed(sign("POST", "/me", "client-1"), "/me")).await;
    assert_eq!(other.code(), "INVALID_SIGNATURE");
    let other = answer(signed(sign("GET", "/me", "client-2"), "/me")).await;
    assert_eq!(other.code(), "INVALID_SIGNATURE");
    let _ = std::fs::remove_file(&path);
}

/// `HTTP_SIGNATURE_RESPONSE_KEY`: every answer signed (RFC 9421), the guard's refusals too. Our
/// signing client (with a key of `HTTP_SIGNATURE_KEYS`) checks the answers with the public key
/// the banner prints, and the npm `http-message-signatures` verifies them (when installed).
#[tokio::test]
async fn quickstart_signs_its_answers() {
    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Full};
    use tower::ServiceExt as _;
    use tower_jwt_guard::binding::{MessageSigner, SignatureKey};
    use tower_jwt_guard::SignRequestLayer;

    let dir = std::env::temp_dir();
    let server_key = dir.join(format!("quickstart-response-key-{}.pem", std::process::id()));
    std::fs::write(&server_key, rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap().serialize_pem())
        .unwrap();
    let client = MessageSigner::from_pem(
        &rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap().serialize_pem(),
    )
    .unwrap()
    .keyid("client-1");
    let mut jwk = client.public_jwk().unwrap();
    jwk.as_object_mut().unwrap().remove("alg");
    let jwks = dir.join(format!("quickstart-response-clients-{}.json", std::process::id()));
    std::fs::write(&jwks, json!({"keys": [jwk]}).to_string()).unwrap();
    let mut running = Example::start(
        "quickstart",
        &[
            ("JWT_SECRET", SECRET),
            ("HTTP_SIGNATURE_RESPONSE_KEY", server_key.to_str().unwrap()),
            ("HTTP_SIGNATURE_KEYS", jwks.to_str().unwrap()),
        ],
    );
    let public = loop {
        let line = running.next_line();
        if let Some(jwk) = line.split("verify with the public key ").nth(1) {
            break jwk.to_owned();
        }
    };
    let server = SignatureKey::from_jwk(&public).unwrap();
    let base = running.url();
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let client = tower::ServiceBuilder::new()
        .layer(SignRequestLayer::new(client).verify_responses(server))
        .service(http);
    let token = TestKey::hmac(Algorithm::HS256, SECRET.as_bytes()).sign(&claims("alice"));
    let call = |token: Option<&str>| {
        let mut request = http::Request::get(format!("{base}/me"));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        client.clone().oneshot(request.body(String::new()).unwrap())
    };
    let me = call(Some(&token)).await.unwrap();
    assert_eq!(me.status(), 200);
    let body: serde_json::Value =
        serde_json::from_slice(&me.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["sub"], "alice");
    let refused = call(None).await.unwrap();
    assert_eq!(refused.status(), 401, "the refusal is signed and verifies");

    // The npm library verifies the answers (plain, signed by it with a bound key, refused).
    let interop = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let node = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !node || !interop.join("node_modules/http-message-signatures/package.json").exists() {
        assert!(std::env::var_os("CI").is_none(), "CI is set but node or http-message-signatures is missing");
        println!("skipped the node part: node or http-message-signatures (npm ci --prefix tests/interop) is missing");
    } else {
        let output = tokio::process::Command::new("node")
            .current_dir(&interop)
            .args(["httpsig_verify.mjs", "responses", &format!("{base}/me"), SECRET, &public])
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
        for line in stdout.lines() {
            let case: serde_json::Value = serde_json::from_str(line).unwrap();
            let expected = case["case"] != "tampered";
            assert_eq!(case["verified"], expected, "{case}");
        }
        assert_eq!(stdout.lines().count(), 5, "{stdout}");
    }
    let _ = std::fs::remove_file(&server_key);
    let _ = std::fs::remove_file(&jwks);
}

/// `HTTP_SIGNATURE_KEYS` as a URL: the clients' JWKS fetched (and refreshed) over HTTP; a body
/// must have its `content-digest` covered, and `Accept-Signature` says so.
#[cfg(feature = "jwks")]
#[tokio::test]
async fn quickstart_with_http_signature_keys_from_a_url() {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
    use base64::Engine as _;

    let pair = Ed25519KeyPair::generate().unwrap();
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    let jwks = json!({"keys": [{"kid": "client-1", "kty": "OKP", "crv": "Ed25519", "x": x}]});
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/clients.jwks.json", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/clients.jwks.json",
        axum::routing::get(move || std::future::ready(axum::Json(jwks.clone()))),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let running = Example::start(
        "quickstart",
        &[("JWT_SECRET", SECRET), ("HTTP_SIGNATURES", "required"), ("HTTP_SIGNATURE_KEYS", &url)],
    );
    let base = running.url();
    let http = client();
    let token = TestKey::hmac(Algorithm::HS256, SECRET.as_bytes()).sign(&claims("alice"));
    let sign = |components: &[(&str, String)], keyid: &str| {
        let names: Vec<String> = components.iter().map(|(name, _)| format!("\"{name}\"")).collect();
        let params = format!("({});created={};keyid=\"{keyid}\"", names.join(" "), now());
        let mut signature_base = String::new();
        for (name, value) in components {
            signature_base.push_str(&format!("\"{name}\": {value}\n"));
        }
        signature_base.push_str(&format!("\"@signature-params\": {params}"));
        let signature = pair.sign(signature_base.as_bytes());
        (
            format!("sig={params}"),
            format!("sig=:{}:", base64::engine::general_purpose::STANDARD.encode(signature.as_ref())),
        )
    };
    let components = [
        ("@method", "GET".to_owned()),
        ("@target-uri", format!("{base}/me")),
        ("authorization", format!("Bearer {token}")),
    ];
    let (input, signature) = sign(&components, "client-1");
    let me = answer(
        http.get(format!("{base}/me"))
            .bearer_auth(&token)
            .header("signature-input", &input)
            .header("signature", &signature),
    )
    .await;
    assert_eq!((me.status, me.body["sub"].clone()), (200, json!("alice")));
    // A key the JWKS does not publish: refused.
    let (input, signature) = sign(&components, "client-2");
    let other = answer(
        http.get(format!("{base}/me"))
            .bearer_auth(&token)
            .header("signature-input", input)
            .header("signature", signature),
    )
    .await;
    assert_eq!((other.status, other.code()), (401, "INVALID_SIGNATURE"));
    // A body whose digest the signature does not cover: refused, and Accept-Signature names it.
    let (input, signature) = sign(&components, "client-1");
    let response = http
        .get(format!("{base}/me"))
        .bearer_auth(&token)
        .header("signature-input", input)
        .header("signature", signature)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let accept = response.headers().get("accept-signature").unwrap().to_str().unwrap().to_owned();
    assert_eq!(accept, r#"sig=("@method" "@target-uri" "authorization" "content-digest")"#);
}
