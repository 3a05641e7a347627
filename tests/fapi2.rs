//! The FAPI 2.0 profile (`JwtAuthBuilder::fapi2`) over loopback: a router built with the profile
//! takes DPoP-bound PS256 and ES256 tokens (with `typ` `at+jwt`), refuses bearer tokens with the
//! `DPoP` and `Bearer` challenges, accepts `nbf` 5 s ahead and refuses 20 s ahead; the settings
//! that break the profile are refused at build, naming the rule; `x-fapi-interaction-id` is echoed
//! or made, audited, and carried to the next service by `ServiceTokenLayer`.

mod dpop_support;
mod example_process;
mod harness;

use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;
use dpop_support::ProofKey;
use example_process::{expect_exit, Example};
use harness::{answer, client, now, Answer, TestKey};
use serde_json::{json, Value};
use tower_jwt_guard::binding::Dpop;
use tower_jwt_guard::{Algorithm, Claims, ConfigError, InteractionIdLayer, JwtAuth, FAPI2_ALGORITHMS};

const ISSUER: &str = "https://as.example.com";

async fn me(Claims(claims): Claims<Value>) -> String {
    claims["sub"].as_str().unwrap_or_default().to_owned()
}

/// A FAPI 2.0 resource server trusting `keys`, at `http://127.0.0.1:<port>`.
async fn start(keys: &[&TestKey]) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut builder = JwtAuth::builder().fapi2();
    for (i, key) in keys.iter().enumerate() {
        builder = builder.key(key.verification_key().with_kid(format!("k{i}")));
    }
    let dpop = Dpop::allowed().public_url(&base).algorithms(FAPI2_ALGORITHMS);
    let auth = builder.issuer(ISSUER).audience("api").dpop(dpop).build().unwrap();
    let app = Router::new().route("/me", get(me)).route_layer(auth.layer::<Value>());
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    base
}

/// An RFC 9068 access token for alice from `key` (kid `kid`), bound to `jkt` when given.
fn token(key: &TestKey, kid: &str, jkt: Option<&str>, nbf_ahead: Option<u64>) -> String {
    let mut claims = harness::claims("alice");
    claims["iss"] = json!(ISSUER);
    claims["aud"] = json!("api");
    if let Some(jkt) = jkt {
        claims["cnf"] = json!({ "jkt": jkt });
    }
    if let Some(ahead) = nbf_ahead {
        claims["nbf"] = json!(now() + ahead);
    }
    key.sign_with_header(json!({ "typ": "at+jwt", "kid": kid }), &claims)
}

async fn call(base: &str, scheme: &str, token: &str, proof: Option<&str>) -> Answer {
    let mut request = client().get(format!("{base}/me")).header("authorization", format!("{scheme} {token}"));
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    answer(request).await
}

fn challenges(answer: &Answer) -> Vec<String> {
    answer.headers.get_all("www-authenticate").iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn dpop_bound_ps256_and_es256_tokens_pass_and_bearer_tokens_are_refused_with_both_challenges() {
    let ps256 = TestKey::generate(Algorithm::PS256);
    let es256 = TestKey::generate(Algorithm::ES256);
    let base = start(&[&ps256, &es256]).await;
    for (kid, key) in [("k0", &ps256), ("k1", &es256)] {
        let client_key = ProofKey::generate(Algorithm::ES256);
        let bound = token(key, kid, Some(&client_key.jkt()), None);
        let proof = client_key.proof("GET", &format!("{base}/me"), Some(&bound));
        let accepted = call(&base, "DPoP", &bound, Some(&proof)).await;
        assert_eq!((accepted.status, accepted.body.clone()), (200, json!("alice")), "{kid}");

        // The same key's unbound token: a bearer token, refused, telling how to bind it.
        let bearer = token(key, kid, None, None);
        let refused = call(&base, "Bearer", &bearer, None).await;
        assert_eq!((refused.status, refused.code()), (401, "BINDING_MISMATCH"), "{kid}");
        let challenges = challenges(&refused);
        assert!(challenges.iter().any(|c| c.starts_with("Bearer ")), "{challenges:?}");
        assert!(challenges.iter().any(|c| c.starts_with("DPoP ") && c.contains("algs=")), "{challenges:?}");
        // Sent under the DPoP scheme without a binding, too.
        let proof = client_key.proof("GET", &format!("{base}/me"), Some(&bearer));
        assert_eq!(call(&base, "DPoP", &bearer, Some(&proof)).await.status, 401, "{kid}");
    }
}

#[tokio::test]
async fn nbf_up_to_10_seconds_ahead_is_accepted_and_more_is_refused() {
    let key = TestKey::generate(Algorithm::ES256);
    let base = start(&[&key]).await;
    for (ahead, status) in [(5, 200), (20, 401)] {
        let client_key = ProofKey::generate(Algorithm::EdDSA);
        let bound = token(&key, "k0", Some(&client_key.jkt()), Some(ahead));
        let proof = client_key.proof("GET", &format!("{base}/me"), Some(&bound));
        assert_eq!(call(&base, "DPoP", &bound, Some(&proof)).await.status, status, "nbf {ahead} s ahead");
    }
}

#[test]
fn hs256_rs256_and_a_bearer_only_service_are_refused_at_build() {
    let dpop = || Dpop::allowed().public_url("https://api.example.com").algorithms(FAPI2_ALGORITHMS);
    let rule = |result: Result<JwtAuth, ConfigError>| match result {
        Err(ConfigError::Profile { rule, .. }) => rule,
        other => panic!("expected a profile error, got {other:?}"),
    };
    let hs256 = JwtAuth::builder().fapi2().hmac_secret([7u8; 32]).dpop(dpop());
    assert_eq!(rule(hs256.build()), "fapi2/algorithms");
    let rs256 = TestKey::generate(Algorithm::RS256).verification_key();
    assert_eq!(rule(JwtAuth::builder().fapi2().key(rs256).dpop(dpop()).build()), "fapi2/algorithms");
    let es256 = TestKey::generate(Algorithm::ES256).verification_key();
    assert_eq!(rule(JwtAuth::builder().fapi2().key(es256.clone()).build()), "fapi2/sender-constrained");
    // Without the profile the same settings build: the profile is what refuses them.
    assert!(JwtAuth::builder().key(es256).build().is_ok());
}

/// The quickstart with `PROFILE=fapi2`: a DPoP-bound ES256 token passes, a bearer token is
/// refused with both challenges; a setting that breaks the profile exits with code 2 naming the
/// rule.
#[tokio::test]
async fn the_quickstart_with_profile_fapi2() {
    let dir = std::env::temp_dir().join(format!("tjg-fapi2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = TestKey::generate(Algorithm::ES256);
    let path = dir.join("es256.pem");
    std::fs::write(&path, &key.public_pem).unwrap();
    let path = path.to_str().unwrap();
    let running = Example::start("quickstart", &[("PROFILE", "fapi2"), ("JWT_PUBLIC_KEY", path)]);
    let base = running.url();
    let client_key = ProofKey::generate(Algorithm::PS256);
    let mut claims = harness::claims("alice");
    claims["cnf"] = json!({ "jkt": client_key.jkt() });
    let bound = key.sign_with_header(json!({ "typ": "at+jwt" }), &claims);
    let proof = client_key.proof("GET", &format!("{base}/me"), Some(&bound));
    let accepted = call(&base, "DPoP", &bound, Some(&proof)).await;
    assert_eq!((accepted.status, accepted.body["sub"].clone()), (200, json!("alice")));
    let bearer = key.sign(&harness::claims("alice"));
    let refused = call(&base, "Bearer", &bearer, None).await;
    assert_eq!((refused.status, refused.code()), (401, "BINDING_MISMATCH"));
    let challenges = challenges(&refused);
    assert!(challenges.iter().any(|c| c.starts_with("Bearer ")), "{challenges:?}");
    assert!(challenges.iter().any(|c| c.starts_with("DPoP ")), "{challenges:?}");
    assert!(refused.headers.contains_key("x-fapi-interaction-id"));
    drop(running);

    // The default HS256 secret, and an RSA key read as RS256: the algorithm rule.
    let rsa = TestKey::generate(Algorithm::PS256);
    let rsa_path = dir.join("rsa.pem");
    std::fs::write(&rsa_path, &rsa.public_pem).unwrap();
    let rsa_path = rsa_path.to_str().unwrap();
    for env in [vec![("PROFILE", "fapi2")], vec![("PROFILE", "fapi2"), ("JWT_PUBLIC_KEY", rsa_path)]] {
        let output = expect_exit("quickstart", &env);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{env:?}: {stderr}");
        assert!(stderr.contains("fapi2/algorithms"), "{env:?}: {stderr}");
    }
    // With JWT_ALG=PS256 the same RSA key meets the profile.
    let running = Example::start(
        "quickstart",
        &[("PROFILE", "fapi2"), ("JWT_PUBLIC_KEY", rsa_path), ("JWT_ALG", "PS256")],
    );
    drop(running);
    let output = expect_exit("quickstart", &[("PROFILE", "fapi1")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("PROFILE"));
    std::fs::remove_dir_all(&dir).ok();
}

/// `x-fapi-interaction-id`: a client's UUID is echoed (on a rejection too) and reaches the audit
/// event; a missing or malformed one is replaced by a fresh UUID, never reflected.
#[tokio::test]
async fn the_interaction_id_is_echoed_or_generated_and_audited() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let key = TestKey::generate(Algorithm::ES256);
    let audited = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&audited);
    let auth = JwtAuth::builder()
        .fapi2()
        .key(key.verification_key())
        .audience("api")
        .dpop(Dpop::allowed().public_url(&base).algorithms(FAPI2_ALGORITHMS))
        .on_audit(move |event| sink.lock().unwrap().push(event.interaction_id.map(str::to_owned)))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/me", get(me))
        .route_layer(auth.layer::<Value>())
        .route(
            "/echo",
            get(|headers: axum::http::HeaderMap| async move {
                format!("{:?}", headers.get("x-fapi-interaction-id"))
            }),
        )
        .layer(InteractionIdLayer::new());
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    let id_of = |answer: &Answer| answer.headers["x-fapi-interaction-id"].to_str().unwrap().to_owned();
    let uuid = "0b4f4d6e-6f2a-4c1e-9d3b-5a6c7d8e9f00";

    // Refused (no token): the client's id comes back, and is in the audit event.
    let refused = answer(client().get(format!("{base}/me")).header("x-fapi-interaction-id", uuid)).await;
    assert_eq!(refused.status, 401);
    assert_eq!(id_of(&refused), uuid);
    assert_eq!(audited.lock().unwrap().last().cloned(), Some(Some(uuid.to_owned())));

    // Accepted: echoed too; the service behind sees the same id.
    let client_key = ProofKey::generate(Algorithm::ES256);
    let mut claims = harness::claims("alice");
    claims["aud"] = json!("api");
    claims["cnf"] = json!({ "jkt": client_key.jkt() });
    let bound = key.sign(&claims);
    let proof = client_key.proof("GET", &format!("{base}/me"), Some(&bound));
    let accepted = answer(
        client()
            .get(format!("{base}/me"))
            .header("authorization", format!("DPoP {bound}"))
            .header("dpop", proof)
            .header("x-fapi-interaction-id", uuid),
    )
    .await;
    assert_eq!((accepted.status, id_of(&accepted)), (200, uuid.to_owned()));
    let behind = answer(client().get(format!("{base}/echo")).header("x-fapi-interaction-id", uuid)).await;
    assert!(behind.body.as_str().unwrap().contains(uuid), "{:?}", behind.body);

    // Not a UUID: replaced, never reflected; none: generated. Each a fresh UUID.
    let forged = answer(client().get(format!("{base}/me")).header("x-fapi-interaction-id", "<script>")).await;
    let none = answer(client().get(format!("{base}/me"))).await;
    let (forged, none) = (id_of(&forged), id_of(&none));
    for id in [&forged, &none] {
        assert_eq!(id.len(), 36, "{id}");
        assert!(tower_jwt_guard::InteractionId::parse(id).is_some(), "{id}");
        assert_ne!(id, uuid);
    }
    assert_ne!(forged, none);
    assert_eq!(audited.lock().unwrap().last().cloned(), Some(Some(none)));
}

/// RFC 9701: the introspector asks for a signed answer and takes only a valid one; tampered,
/// unsigned, mistyped, other-issuer and other-audience answers give no answer (503).
#[cfg(feature = "introspection")]
#[tokio::test]
async fn signed_introspection_answers_are_verified() {
    use std::sync::{Arc, Mutex};
    use tower_jwt_guard::keys::Introspector;

    type Reply = (String, String);
    let reply: Arc<Mutex<Reply>> = Arc::new(Mutex::new((String::new(), String::new())));
    let asked: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let (r, a) = (Arc::clone(&reply), Arc::clone(&asked));
    let endpoint = Router::new().route(
        "/introspect",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let (r, a) = (Arc::clone(&r), Arc::clone(&a));
            async move {
                let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or_default();
                a.lock().unwrap().push(accept.to_owned());
                let (content_type, body) = r.lock().unwrap().clone();
                ([("content-type", content_type)], body)
            }
        }),
    );
    let endpoint = harness::serve(endpoint).await;
    let as_key = TestKey::generate(Algorithm::ES256);
    let introspector = Introspector::builder(format!("http://{endpoint}/introspect"))
        .client_secret_basic("api", "secret")
        .signed_responses(ISSUER, [as_key.verification_key()])
        .cache_ttl(std::time::Duration::ZERO)
        .build()
        .unwrap();
    let auth = JwtAuth::builder().introspection(introspector).issuer(ISSUER).build().unwrap();
    let app = Router::new().route("/me", get(me)).route_layer(auth.layer::<Value>());
    let base = format!("http://{}", harness::serve(app).await);

    let answer_claims = |aud: &str, iss: &str| {
        json!({
            "iss": iss, "aud": aud, "iat": now(),
            "token_introspection": { "active": true, "sub": "alice", "iss": ISSUER, "exp": now() + 600 }
        })
    };
    let typ = json!({ "typ": "token-introspection+jwt" });
    let good = as_key.sign_with_header(typ.clone(), &answer_claims("api", ISSUER));
    let tampered = {
        let parts: Vec<&str> = good.split('.').collect();
        let mut claims = answer_claims("api", ISSUER);
        claims["token_introspection"]["sub"] = json!("mallory");
        format!("{}.{}.{}", parts[0], harness::b64(claims.to_string()), parts[2])
    };
    let jwt = "application/token-introspection+jwt";
    let cases: Vec<(&str, &str, String, u16)> = vec![
        ("valid", jwt, good, 200),
        ("tampered", jwt, tampered, 503),
        ("unsigned", "application/json", r#"{"active":true,"sub":"alice"}"#.to_owned(), 503),
        ("other audience", jwt, as_key.sign_with_header(typ.clone(), &answer_claims("other", ISSUER)), 503),
        (
            "other issuer",
            jwt,
            as_key.sign_with_header(typ.clone(), &answer_claims("api", "https://evil")),
            503,
        ),
        ("typ JWT", jwt, as_key.sign(&answer_claims("api", ISSUER)), 503),
        (
            "another key",
            jwt,
            TestKey::generate(Algorithm::ES256).sign_with_header(typ.clone(), &answer_claims("api", ISSUER)),
            503,
        ),
    ];
    for (i, (what, content_type, body, status)) in cases.into_iter().enumerate() {
        *reply.lock().unwrap() = (content_type.to_owned(), body);
        let got = answer(client().get(format!("{base}/me")).bearer_auth(format!("opaque-{i}"))).await;
        assert_eq!(got.status, status, "{what}: {:?}", got.body);
        if status == 200 {
            assert_eq!(got.body, json!("alice"));
        }
    }
    assert!(asked.lock().unwrap().iter().all(|accept| accept == "application/token-introspection+jwt"));

    // The profile requires signed answers of an introspector.
    let unsigned = Introspector::builder(format!("http://{endpoint}/introspect"))
        .client_secret_basic("api", "secret")
        .build()
        .unwrap();
    let dpop = Dpop::allowed().public_url("https://api.example.com").algorithms(FAPI2_ALGORITHMS);
    let refused = JwtAuth::builder().fapi2().introspection(unsigned).issuer(ISSUER).dpop(dpop).build();
    assert!(
        matches!(refused, Err(ConfigError::Profile { rule: "fapi2/signed-introspection", .. })),
        "{refused:?}"
    );
}

/// `ServiceTokenLayer` carries `x-fapi-interaction-id` to the next service: the id of the
/// request being handled (behind `InteractionIdLayer`: the client's UUID, or the one made for
/// it), or the one in the outgoing request's extensions; none when there is none.
#[tokio::test]
async fn service_token_layer_forwards_the_interaction_id_downstream() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use tower::{ServiceBuilder, ServiceExt};
    use tower_jwt_guard::issue::SigningKey;
    use tower_jwt_guard::{InteractionId, ServiceTokenLayer, ServiceTokens, TokenIssuer};

    // The next service: answers the id it received.
    let seen = |headers: axum::http::HeaderMap| async move {
        headers.get("x-fapi-interaction-id").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
    };
    let downstream = harness::serve(Router::new().route("/orders", get(seen))).await;
    let orders = format!("http://{downstream}/orders");
    let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [7u8; 32]).unwrap()).build();
    let tokens = ServiceTokens::builder(issuer, "gateway").build().unwrap();
    let http = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let outgoing = ServiceBuilder::new().layer(ServiceTokenLayer::new(tokens)).service(http);
    let call = {
        let outgoing = outgoing.clone();
        move |request: http::Request<Empty<Bytes>>| {
            let outgoing = outgoing.clone();
            async move {
                let response = outgoing.oneshot(request).await.unwrap();
                String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
            }
        }
    };
    // The gateway: its handler calls the next service through the layer.
    let gateway = Router::new()
        .route(
            "/call",
            get({
                let (call, orders) = (call.clone(), orders.clone());
                move || call(http::Request::get(orders.as_str()).body(Empty::new()).unwrap())
            }),
        )
        .layer(InteractionIdLayer::new());
    let gateway = format!("http://{}/call", harness::serve(gateway).await);
    let uuid = "0b4f4d6e-6f2a-4c1e-9d3b-5a6c7d8e9f00";

    // The client's UUID reaches the next service.
    let echoed = answer(client().get(&gateway).header("x-fapi-interaction-id", uuid)).await;
    assert_eq!((echoed.status, echoed.body.clone()), (200, json!(uuid)));
    // None, or not a UUID: the one made for the request, which the client gets back too.
    for sent in [None, Some("<script>")] {
        let mut request = client().get(&gateway);
        if let Some(sent) = sent {
            request = request.header("x-fapi-interaction-id", sent);
        }
        let made = answer(request).await;
        let id = made.headers["x-fapi-interaction-id"].to_str().unwrap().to_owned();
        assert!(InteractionId::parse(&id).is_some() && id != uuid, "{id}");
        assert_eq!(made.body, json!(id), "{sent:?}");
    }

    // Outside a request: the id in the outgoing request's extensions, else none.
    let id = InteractionId::generate();
    let mut request = http::Request::get(orders.as_str()).body(Empty::new()).unwrap();
    request.extensions_mut().insert(id.clone());
    assert_eq!(call(request).await, id.as_str());
    assert_eq!(call(http::Request::get(orders.as_str()).body(Empty::new()).unwrap()).await, "");
    // One the caller set is kept.
    let request =
        http::Request::get(orders.as_str()).header("x-fapi-interaction-id", uuid).body(Empty::new());
    assert_eq!(call(request.unwrap()).await, uuid);
}
