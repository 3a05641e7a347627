//! FAPI 2.0 against a real authorization server: panva's oidc-provider with its FAPI 2.0 profile
//! (`tests/interop/fapi_provider.mjs`), which issues RFC 9068 JWT access tokens (PS256 and ES256)
//! by the client_credentials grant with `private_key_jwt`: DPoP-bound (its proofs made by panva's
//! `dpop`), certificate-bound (RFC 8705), and plain bearer ones; and answers introspection with
//! signed JWTs (RFC 9701), encrypted ones for a client that registered an encryption key.
//!
//! - The quickstart with `PROFILE=fapi2`, its keys found by OIDC discovery from the provider,
//!   over HTTPS: each bound token passes with its proof or its certificate, and the provider's
//!   bearer token is refused with the `DPoP` and `Bearer` challenges. With
//!   `JWT_INTROSPECTION_URL`, it introspects the provider's opaque tokens, asking for signed
//!   answers (the profile requires them) verified with the keys of the issuer's JWKS.
//! - Introspection of the provider's opaque tokens, its signed answers verified with the keys of
//!   its JWKS; its encrypted answers decrypted; its answers tampered with, unsigned, or for another
//!   client (through a relay in the test) refused.
//!
//! Needs node and `npm ci --prefix tests/interop`: skipped with a message without them, except in
//! CI (`CI` set), where the test fails instead.

#![cfg(all(feature = "jwks", feature = "introspection", feature = "rustls", feature = "jwe"))]

mod example_process;
mod harness;
#[path = "common/node_script.rs"]
#[allow(dead_code)]
mod node_script;
#[path = "common/pki.rs"]
#[allow(dead_code)]
mod pki;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use harness::{answer, Answer, TestKey};
use node_script::NodeScript;
use pki::{leaf, Identity, TestCa};
use rcgen::ExtendedKeyUsagePurpose;
use serde_json::{json, Value};
use tower_jwt_guard::binding::Dpop;
use tower_jwt_guard::issue::SigningKey;
use tower_jwt_guard::jwe::{ContentEncryption, DecryptionKey};
use tower_jwt_guard::keys::introspection::ClientAssertionKey;
use tower_jwt_guard::keys::{Introspector, JwksKeys};
use tower_jwt_guard::{Algorithm, Claims, JwtAuth, FAPI2_ALGORITHMS};

/// The resource the provider issues JWT access tokens for (their `aud`).
const RESOURCE: &str = "https://api.example.com/";

/// A CA, the quickstart's server certificate (signed by it), and two self-signed client
/// certificates (the quickstart without `TLS_CLIENT_CA` binds any certificate, RFC 8705 §2.2).
struct Pki {
    ca_pem: String,
    server: Identity,
    client: Identity,
    other: Identity,
}

fn pki() -> Pki {
    let ca = TestCa::new("fapi test CA");
    use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    Pki {
        ca_pem: ca.pem.clone(),
        server: leaf(&["localhost", "127.0.0.1"], ServerAuth, Some(&ca)),
        client: leaf(&["mtls-client"], ClientAuth, None),
        other: leaf(&["someone-else"], ClientAuth, None),
    }
}

/// An HTTPS client trusting the test CA, presenting `identity` when given.
fn tls_client(pki: &Pki, identity: Option<&Identity>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap();
    let mut builder = reqwest::Client::builder().tls_certs_only([ca]);
    if let Some(identity) = identity {
        builder = builder.identity(identity.reqwest());
    }
    builder.build().unwrap()
}

/// The authorization server: `tests/interop/fapi_provider.mjs` under node.
struct Provider {
    issuer: String,
    /// The private ECDH-ES key (JWK) of the client `api-enc`, for its encrypted answers.
    decryption_jwk: Value,
    node: NodeScript,
}

impl Provider {
    async fn start(interop: &Path, client_cert: &Path, rs_public_pem: &str) -> Provider {
        let env = [("CLIENT_CERT", client_cert.as_os_str()), ("RS_PUBLIC_KEY", OsStr::new(rs_public_pem))];
        let mut node = NodeScript::start(interop, "fapi_provider.mjs", &env);
        let started = node.next().await;
        Provider {
            issuer: started["issuer"].as_str().unwrap().to_owned(),
            decryption_jwk: started["decryption_jwk"].clone(),
            node,
        }
    }

    async fn ask(&mut self, command: &str) -> Value {
        self.node.send(command).await;
        let answer = self.node.next().await;
        assert!(answer.get("error").is_none(), "{command}: {answer}");
        answer
    }

    /// An access token of `client` from the token endpoint (client_credentials,
    /// private_key_jwt): a JWT for [`RESOURCE`], or opaque.
    async fn token(&mut self, client: &str, opaque: bool) -> (String, String) {
        let format = if opaque { "opaque" } else { "jwt" };
        let answer = self.ask(&format!("token {client} {format}")).await;
        (answer["token"].as_str().unwrap().to_owned(), answer["token_type"].as_str().unwrap().to_owned())
    }

    /// A DPoP proof by `dpop-client`'s key for `method url`, bound to `token` (`ath`).
    async fn proof(&mut self, method: &str, url: &str, token: &str) -> String {
        self.ask(&format!("proof {method} {url} {token}")).await["proof"].as_str().unwrap().to_owned()
    }
}

/// The interop directory, or why the test cannot run (node or the npm packages missing).
fn interop() -> Result<PathBuf, String> {
    let interop = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    match std::process::Command::new("node").arg("--version").output() {
        Ok(output) if output.status.success() => {}
        _ => return Err("node is not installed".into()),
    }
    if !interop.join("node_modules/oidc-provider/package.json").exists() {
        return Err("oidc-provider is not installed: run `npm ci --prefix tests/interop`".into());
    }
    Ok(interop)
}

/// The test's files (certificates, keys) in a fresh directory, removed on drop.
struct Files(PathBuf);

impl Files {
    fn new(tag: &str) -> Files {
        let mut nonce = [0u8; 8];
        aws_lc_rs::rand::fill(&mut nonce).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "tjg-fapi-{tag}-{}-{}",
            std::process::id(),
            u64::from_le_bytes(nonce)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Files(dir)
    }

    fn write(&self, name: &str, content: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, content).unwrap();
        path.to_string_lossy().into_owned()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts the provider, or returns `None` (and says why) where the test may be skipped.
async fn provider(files: &Files, pki: &Pki, rs_key: &TestKey) -> Option<Provider> {
    let interop = match interop() {
        Ok(interop) => interop,
        Err(why) => {
            // In CI the interop test must run; elsewhere it may be skipped, and says so.
            assert!(std::env::var_os("CI").is_none(), "CI is set but {why}");
            println!("skipped: {why}");
            return None;
        }
    };
    let cert = files.write("client.pem", &pki.client.cert_pem);
    Some(Provider::start(&interop, Path::new(&cert), &rs_key.public_pem).await)
}

fn challenges(answer: &Answer) -> Vec<String> {
    answer.headers.get_all("www-authenticate").iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

/// `PROFILE=fapi2 cargo run --example quickstart` with its keys from the provider (OIDC
/// discovery), over HTTPS: the DPoP-bound token passes with a proof by its key (made by panva's
/// `dpop`), the certificate-bound one with its certificate; each is refused without, and the
/// provider's bearer token is refused with the challenges for DPoP and for bearer tokens.
#[tokio::test]
async fn the_fapi2_quickstart_takes_the_providers_dpop_and_certificate_bound_tokens_and_refuses_its_bearer_tokens(
) {
    let pki = pki();
    let files = Files::new("quickstart");
    let rs_key = TestKey::generate(Algorithm::ES256);
    let Some(mut provider) = provider(&files, &pki, &rs_key).await else { return };
    let example = example_process::Example::start(
        "quickstart",
        &[
            ("PROFILE", "fapi2"),
            ("JWT_OIDC_ISSUER", &provider.issuer),
            ("JWT_AUDIENCE", RESOURCE),
            ("TLS_CERT", &files.write("server.pem", &pki.server.cert_pem)),
            ("TLS_KEY", &files.write("server-key.pem", &pki.server.key_pem)),
        ],
    );
    assert_eq!(example.scheme, "https", "{}", example.banner);
    let me = format!("https://127.0.0.1:{}/me", example.addr.port());
    let anonymous = tls_client(&pki, None);

    // DPoP (RFC 9449): a PS256 access token bound to the client's key, a proof for this request.
    let (dpop_token, token_type) = provider.token("dpop-client", false).await;
    assert_eq!(token_type, "DPoP");
    let proof = provider.proof("GET", &me, &dpop_token).await;
    let request = anonymous.get(&me).header("authorization", format!("DPoP {dpop_token}"));
    let accepted = answer(request.header("dpop", &proof)).await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.body);
    assert_eq!(
        (accepted.body["sub"].clone(), accepted.body["aud"].clone()),
        (json!("dpop-client"), json!(RESOURCE))
    );
    // Without its proof, or with a proof for another URL, it is refused.
    let bare = answer(anonymous.get(&me).bearer_auth(&dpop_token)).await;
    assert_eq!(bare.status, 401, "{:?}", bare.body);
    let elsewhere =
        provider.proof("GET", &format!("https://127.0.0.1:{}/admin", example.addr.port()), &dpop_token).await;
    let request = anonymous.get(&me).header("authorization", format!("DPoP {dpop_token}"));
    let misdirected = answer(request.header("dpop", elsewhere)).await;
    assert_eq!((misdirected.status, misdirected.code()), (401, "INVALID_DPOP_PROOF"));

    // Certificate-bound (RFC 8705): an ES256 token bound to the client's certificate.
    let (mtls_token, token_type) = provider.token("mtls-client", false).await;
    assert_eq!(token_type, "Bearer");
    let with_cert = answer(tls_client(&pki, Some(&pki.client)).get(&me).bearer_auth(&mtls_token)).await;
    assert_eq!(with_cert.status, 200, "{:?}", with_cert.body);
    assert_eq!(with_cert.body["sub"], "mtls-client");
    for client in [anonymous.clone(), tls_client(&pki, Some(&pki.other))] {
        let refused = answer(client.get(&me).bearer_auth(&mtls_token)).await;
        assert_eq!((refused.status, refused.code()), (401, "BINDING_MISMATCH"));
    }

    // The same provider's bearer token: refused, telling the client how to bind it.
    let (bearer, token_type) = provider.token("bearer-client", false).await;
    assert_eq!(token_type, "Bearer");
    for client in [anonymous.clone(), tls_client(&pki, Some(&pki.client))] {
        let refused = answer(client.get(&me).bearer_auth(&bearer)).await;
        assert_eq!((refused.status, refused.code()), (401, "BINDING_MISMATCH"), "{:?}", refused.body);
        let challenges = challenges(&refused);
        assert!(challenges.iter().any(|c| c.starts_with("Bearer ")), "{challenges:?}");
        assert!(challenges.iter().any(|c| c.starts_with("DPoP ") && c.contains("ES256")), "{challenges:?}");
        assert!(refused.headers.contains_key("x-fapi-interaction-id"));
    }
}

/// The quickstart with `PROFILE=fapi2` and `JWT_INTROSPECTION_URL`: it asks the provider for
/// signed answers and verifies them with the keys of the issuer's JWKS; the provider's opaque
/// DPoP-bound token passes with a proof, its opaque bearer token is refused.
#[tokio::test]
async fn the_fapi2_quickstart_introspects_the_providers_opaque_tokens_with_signed_answers() {
    let pki = pki();
    let files = Files::new("quickstart-introspection");
    let rs_key = TestKey::generate(Algorithm::ES256);
    let Some(mut provider) = provider(&files, &pki, &rs_key).await else { return };
    let introspection = format!("{}/token/introspection", provider.issuer);
    let example = example_process::Example::start(
        "quickstart",
        &[
            ("PROFILE", "fapi2"),
            ("JWT_OIDC_ISSUER", &provider.issuer),
            ("JWT_INTROSPECTION_URL", &introspection),
            ("JWT_INTROSPECTION_CLIENT_ID", "api-basic"),
            ("JWT_INTROSPECTION_CLIENT_SECRET", "api-basic-secret"),
        ],
    );
    let me = format!("{}/me", example.url());
    let (token, token_type) = provider.token("dpop-client", true).await;
    assert_eq!((token.split('.').count(), token_type.as_str()), (1, "DPoP"), "an opaque token");
    let proof = provider.proof("GET", &me, &token).await;
    let request = harness::client().get(&me).header("authorization", format!("DPoP {token}"));
    let accepted = answer(request.header("dpop", proof)).await;
    assert_eq!(accepted.status, 200, "{:?}", accepted.body);
    assert_eq!(accepted.body["sub"], "dpop-client");
    let (bearer, _) = provider.token("bearer-client", true).await;
    let refused = answer(harness::client().get(&me).bearer_auth(&bearer)).await;
    assert_eq!((refused.status, refused.code()), (401, "BINDING_MISMATCH"), "{:?}", refused.body);

    // Without the profile's issuer the signed answers cannot be checked: exit 2, naming it.
    let output = example_process::expect_exit(
        "quickstart",
        &[
            ("PROFILE", "fapi2"),
            ("JWT_PUBLIC_KEY", &files.write("rs.pub.pem", &rs_key.public_pem)),
            ("JWT_INTROSPECTION_URL", &introspection),
            ("JWT_INTROSPECTION_CLIENT_ID", "api-basic"),
            ("JWT_INTROSPECTION_CLIENT_SECRET", "api-basic-secret"),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("JWT_ISSUER"), "{stderr}");
}

/// The token's `client_id` (an introspected client_credentials token has no `sub`).
async fn client_id(Claims(claims): Claims<Value>) -> String {
    claims["client_id"].as_str().unwrap_or_default().to_owned()
}

/// The resource server's `private_key_jwt` key (kid `rs`, registered with the provider).
fn assertion_key(rs_key: &TestKey) -> SigningKey {
    SigningKey::from_der(Algorithm::ES256, &rs_key.private_pkcs8().unwrap()).unwrap().with_kid("rs")
}

/// A FAPI 2.0 resource server for the provider's opaque tokens, introspected as `client` with
/// signed answers verified with the keys of the provider's JWKS (and decrypted with `decryption`).
async fn introspecting_server(
    provider: &Provider,
    rs_key: &TestKey,
    client: &str,
    decryption: Option<DecryptionKey>,
) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let jwks = JwksKeys::discover(&provider.issuer).build().unwrap();
    let mut introspector = Introspector::discover(&provider.issuer)
        .private_key_jwt(client, assertion_key(rs_key))
        .signed_responses_from(&provider.issuer, jwks)
        .cache_ttl(Duration::ZERO);
    if let Some(key) = decryption {
        introspector = introspector.decryption_key(key);
    }
    let auth = JwtAuth::builder()
        .fapi2()
        .introspection(introspector.build().unwrap())
        .dpop(Dpop::allowed().public_url(&base).algorithms(FAPI2_ALGORITHMS))
        .build()
        .unwrap();
    let app = Router::new().route("/me", get(client_id)).route_layer(auth.layer::<Value>());
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .await
            .unwrap();
    });
    base
}

/// The provider's introspection answers, signed (ES256) and signed then encrypted (PS256 in
/// ECDH-ES / A256GCM), verified with the keys of its JWKS: its DPoP-bound opaque token passes
/// with a proof (the `cnf` of the answer binds it), its bearer opaque token is refused by the
/// profile.
#[tokio::test]
async fn the_providers_signed_and_encrypted_introspection_answers_pass() {
    let pki = pki();
    let files = Files::new("introspection");
    let rs_key = TestKey::generate(Algorithm::ES256);
    let Some(mut provider) = provider(&files, &pki, &rs_key).await else { return };
    let decryption =
        DecryptionKey::from_jwk(&provider.decryption_jwk.to_string(), None, ContentEncryption::A256Gcm)
            .unwrap();
    for (client, decryption) in [("api", None), ("api-enc", Some(decryption))] {
        let base = introspecting_server(&provider, &rs_key, client, decryption).await;
        let me = format!("{base}/me");
        let (token, token_type) = provider.token("dpop-client", true).await;
        assert_eq!((token.split('.').count(), token_type.as_str()), (1, "DPoP"), "an opaque token");
        let proof = provider.proof("GET", &me, &token).await;
        let request = harness::client().get(&me).header("authorization", format!("DPoP {token}"));
        let accepted = answer(request.header("dpop", proof)).await;
        assert_eq!((accepted.status, accepted.body.clone()), (200, json!("dpop-client")), "{client}");
        let (bearer, _) = provider.token("bearer-client", true).await;
        let refused = answer(harness::client().get(&me).bearer_auth(&bearer)).await;
        assert_eq!((refused.status, refused.code()), (401, "BINDING_MISMATCH"), "{client}");
    }
}

/// What the relay does to the provider's answer.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Relay {
    /// Passes the answer for `api` on as it is.
    AsIs,
    /// Changes the `sub` in the signed answer, keeping the signature.
    Tampered,
    /// Asks the provider for JSON (`Accept: application/json`): an unsigned answer.
    Unsigned,
    /// Asks as another client, `api-other`: the answer's `aud` is that client.
    OtherAudience,
    /// Asks as `api-enc`: an encrypted answer, where a signed one was expected.
    Encrypted,
}

/// The provider's real answers, relayed to an introspector that expects signed answers for `api`
/// (the relay authenticates to the provider itself, with `private_key_jwt`): passed on as they
/// are, they pass; tampered with, unsigned, for another client, or encrypted, they are refused
/// (503: no answer is better than a wrong one).
#[tokio::test]
async fn the_providers_answers_tampered_unsigned_or_for_another_client_are_refused() {
    let pki = pki();
    let files = Files::new("relay");
    let rs_key = TestKey::generate(Algorithm::ES256);
    let Some(mut provider) = provider(&files, &pki, &rs_key).await else { return };
    let endpoint = format!("{}/token/introspection", provider.issuer);
    let mode = Arc::new(Mutex::new(Relay::AsIs));
    let relay = {
        let (mode, issuer, key) =
            (Arc::clone(&mode), provider.issuer.clone(), Arc::new(assertion_key(&rs_key)));
        Router::new().route(
            "/introspect",
            post(move |body: String| {
                let (mode, issuer, key, endpoint) = (*mode.lock().unwrap(), issuer.clone(), Arc::clone(&key), endpoint.clone());
                async move {
                    let token = body.split('&').find_map(|pair| pair.strip_prefix("token=")).unwrap_or_default().to_owned();
                    let client = match mode {
                        Relay::OtherAudience => "api-other",
                        Relay::Encrypted => "api-enc",
                        _ => "api",
                    };
                    let now = harness::now();
                    let claims = json!({ "iss": client, "sub": client, "aud": issuer, "jti": format!("{now}-{}", harness::b64(token.as_bytes())), "iat": now, "exp": now + 60 });
                    let assertion = key.sign_assertion(claims.as_object().unwrap()).unwrap();
                    let accept = if mode == Relay::Unsigned { "application/json" } else { "application/token-introspection+jwt" };
                    let response = harness::client()
                        .post(&endpoint)
                        .header("accept", accept)
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(format!(
                            "token={token}&client_id={client}&client_assertion={assertion}&client_assertion_type={}",
                            "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
                        ))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), 200, "{mode:?}");
                    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
                    let mut body = response.text().await.unwrap();
                    if mode == Relay::Tampered {
                        let parts: Vec<&str> = body.split('.').collect();
                        let mut claims: Value = serde_json::from_slice(&harness::b64_decode(parts[1])).unwrap();
                        claims["token_introspection"]["sub"] = json!("mallory");
                        body = format!("{}.{}.{}", parts[0], harness::b64(claims.to_string()), parts[2]);
                    }
                    ([("content-type", content_type)], body)
                }
            }),
        )
    };
    let relay = harness::serve(relay).await;
    let jwks = JwksKeys::discover(&provider.issuer).build().unwrap();
    let introspector = Introspector::builder(format!("http://{relay}/introspect"))
        .client_secret_basic("api", "the relay authenticates itself")
        .signed_responses_from(&provider.issuer, jwks)
        .cache_ttl(Duration::ZERO)
        .negative_cache_ttl(Duration::ZERO)
        .build()
        .unwrap();
    let auth = JwtAuth::builder().introspection(introspector).issuer(&provider.issuer).build().unwrap();
    let app = Router::new().route("/me", get(client_id)).route_layer(auth.layer::<Value>());
    let me = format!("http://{}/me", harness::serve(app).await);
    for (relay, status) in [
        (Relay::AsIs, 200),
        (Relay::Tampered, 503),
        (Relay::Unsigned, 503),
        (Relay::OtherAudience, 503),
        (Relay::Encrypted, 503),
        (Relay::AsIs, 200),
    ] {
        *mode.lock().unwrap() = relay;
        let (token, _) = provider.token("bearer-client", true).await;
        let got = answer(harness::client().get(&me).bearer_auth(&token)).await;
        assert_eq!(got.status, status, "{relay:?}: {:?}", got.body);
        if status == 200 {
            assert_eq!(got.body, json!("bearer-client"));
        } else {
            assert_eq!(got.code(), "AUTH_UNAVAILABLE", "{relay:?}");
        }
    }
}
