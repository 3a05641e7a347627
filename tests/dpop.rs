//! DPoP (RFC 9449) end to end: real clients over loopback, proofs made by hand with aws-lc-rs
//! (`dpop_support`), every §4.3 check refused with its challenge, the nonce flow, modes, gRPC.

mod dpop_support;
mod harness;

use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;
use dpop_support::{jti, ProofKey, Spec};
use harness::{answer, client, now, Answer, TestKey};
use serde_json::{json, Value};
use tower_jwt_guard::binding::{Dpop, DpopNonces};
use tower_jwt_guard::{Algorithm, Claims, JwtAuth};

const SECRET: &[u8] = b"dpop-tests-secret-of-32-bytes!!!!";

async fn me(Claims(claims): Claims<Value>) -> String {
    claims["sub"].as_str().unwrap_or_default().to_owned()
}

/// A guarded service (`GET /me`, `POST /me`) with `dpop`, at `http://127.0.0.1:<port>`.
async fn start(dpop: impl FnOnce(String) -> Dpop) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let auth = JwtAuth::builder().hmac_secret(SECRET).dpop(dpop(base.clone())).build().unwrap();
    let app = Router::new().route("/me", get(me).post(me)).route_layer(auth.layer::<Value>());
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    base
}

/// A token for alice, bound to `jkt` when given.
fn token(jkt: Option<&str>) -> String {
    let mut claims = harness::claims("alice");
    if let Some(jkt) = jkt {
        claims["cnf"] = json!({ "jkt": jkt });
    }
    TestKey::hmac(Algorithm::HS256, SECRET).sign(&claims)
}

/// `GET {base}/me` with `Authorization: <scheme> <token>` and these `DPoP` headers.
async fn call(base: &str, scheme: &str, token: &str, proofs: &[&str]) -> Answer {
    let mut request = client().get(format!("{base}/me")).header("authorization", format!("{scheme} {token}"));
    for proof in proofs {
        request = request.header("dpop", *proof);
    }
    answer(request).await
}

fn challenges(answer: &Answer) -> Vec<String> {
    answer.headers.get_all("www-authenticate").iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn proofs_of_every_algorithm_are_accepted() {
    let base = start(|base| Dpop::allowed().public_url(base)).await;
    for alg in [Algorithm::ES256, Algorithm::PS256, Algorithm::RS256, Algorithm::EdDSA] {
        let key = ProofKey::generate(alg);
        let bound = token(Some(&key.jkt()));
        let token = bound.as_str();
        let proof = key.proof("GET", &format!("{base}/me"), Some(token));
        let answer = call(&base, "DPoP", token, &[&proof]).await;
        assert_eq!((answer.status, answer.body.clone()), (200, json!("alice")), "{alg:?}");
        // The same proof again: a replay.
        let again = call(&base, "DPoP", token, &[&proof]).await;
        assert_eq!((again.status, again.code()), (401, "INVALID_DPOP_PROOF"), "{alg:?}");
    }
}

#[tokio::test]
async fn every_section_4_3_violation_is_refused_with_its_challenge() {
    let base = start(|base| Dpop::allowed().public_url(base)).await;
    let key = ProofKey::generate(Algorithm::ES256);
    let other = ProofKey::generate(Algorithm::ES256);
    let bound = token(Some(&key.jkt()));
    let token = bound.as_str();
    let htu = format!("{base}/me");
    let valid = || Spec::new(&key, "GET", &htu, Some(token));
    let hmac = TestKey::hmac(Algorithm::HS256, SECRET);

    // The control: the valid proof passes (so each refusal below is the change it makes).
    assert_eq!(call(&base, "DPoP", token, &[&key.sign(&valid())]).await.status, 200);

    let mut private_jwk = key.jwk.clone();
    private_jwk["d"] = json!("AAAA");
    let cases: Vec<(&str, String, &str)> = vec![
        ("wrong htm", key.sign(&Spec { htm: "POST".into(), ..valid() }), "INVALID_DPOP_PROOF"),
        ("wrong htu", key.sign(&Spec { htu: format!("{base}/other"), ..valid() }), "INVALID_DPOP_PROOF"),
        (
            "other host",
            key.sign(&Spec { htu: "http://evil.example/me".into(), ..valid() }),
            "INVALID_DPOP_PROOF",
        ),
        ("stale iat", key.sign(&Spec { iat: now() - 600, ..valid() }), "INVALID_DPOP_PROOF"),
        ("future iat", key.sign(&Spec { iat: now() + 600, ..valid() }), "INVALID_DPOP_PROOF"),
        (
            "wrong ath",
            key.sign(&Spec { ath: Some(dpop_support::ath("another token")), ..valid() }),
            "INVALID_DPOP_PROOF",
        ),
        ("no ath", key.sign(&Spec { ath: None, ..valid() }), "INVALID_DPOP_PROOF"),
        ("another key", other.proof("GET", &htu, Some(token)), "INVALID_TOKEN"),
        ("signed by another key", key.sign_with(&valid(), &other.key), "INVALID_DPOP_PROOF"),
        ("private jwk", key.sign(&Spec { jwk: Some(private_jwk), ..valid() }), "INVALID_DPOP_PROOF"),
        (
            "alg none",
            {
                let proof = key.sign(&Spec { alg: "none".into(), ..valid() });
                format!("{}.", proof.rsplit_once('.').unwrap().0)
            },
            "INVALID_DPOP_PROOF",
        ),
        ("alg HS256", key.sign_with(&Spec { alg: "HS256".into(), ..valid() }, &hmac), "INVALID_DPOP_PROOF"),
        ("wrong typ", key.sign(&Spec { typ: "JWT".into(), ..valid() }), "INVALID_DPOP_PROOF"),
        ("empty jti", key.sign(&Spec { jti: String::new(), ..valid() }), "INVALID_DPOP_PROOF"),
        ("not a JWS", "a.b".into(), "INVALID_DPOP_PROOF"),
    ];
    for (case, proof, code) in cases {
        let answer = call(&base, "DPoP", token, &[&proof]).await;
        assert_eq!((answer.status, answer.code()), (401, code), "{case}: {:?}", answer.body);
        let challenges = challenges(&answer);
        let error = if code == "INVALID_TOKEN" { "invalid_token" } else { "invalid_dpop_proof" };
        assert!(
            challenges.iter().any(|c| c.starts_with("DPoP algs=\"ES256 ES384 PS256 RS256 EdDSA Ed25519\"")
                && c.contains(&format!("error=\"{error}\""))),
            "{case}: {challenges:?}"
        );
        // Bearer is allowed too: its challenge is there, without the error.
        assert!(challenges.iter().any(|c| c == "Bearer realm=\"api\""), "{case}: {challenges:?}");
    }

    // Two DPoP headers, no DPoP header.
    let (a, b) = (key.sign(&valid()), key.sign(&valid()));
    assert_eq!(call(&base, "DPoP", token, &[&a, &b]).await.code(), "INVALID_DPOP_PROOF");
    assert_eq!(call(&base, "DPoP", token, &[]).await.code(), "INVALID_DPOP_PROOF");
    // The bound token as a bearer token (§7.2), with or without a proof.
    let bearer = call(&base, "Bearer", token, &[&key.sign(&valid())]).await;
    assert_eq!((bearer.status, bearer.code()), (401, "INVALID_TOKEN"));
    assert!(challenges(&bearer).iter().any(|c| c.starts_with("DPoP ") && c.contains("invalid_token")));
    // A token without cnf.jkt sent with the DPoP scheme.
    let plain = self::token(None);
    let answer = call(&base, "DPoP", &plain, &[&key.proof("GET", &htu, Some(&plain))]).await;
    assert_eq!(answer.code(), "INVALID_TOKEN");
}

#[tokio::test]
async fn allowed_mode_lets_bearer_tokens_through_required_mode_does_not() {
    let allowed = start(|base| Dpop::allowed().public_url(base)).await;
    assert_eq!(call(&allowed, "Bearer", &token(None), &[]).await.status, 200);
    let missing = answer(client().get(format!("{allowed}/me"))).await;
    assert_eq!(
        challenges(&missing),
        ["Bearer realm=\"api\"", "DPoP algs=\"ES256 ES384 PS256 RS256 EdDSA Ed25519\", realm=\"api\""]
    );

    let required = start(|base| Dpop::required().public_url(base)).await;
    let refused = call(&required, "Bearer", &token(None), &[]).await;
    assert_eq!((refused.status, refused.code()), (401, "INVALID_TOKEN"));
    let only = challenges(&refused);
    assert_eq!(only.len(), 1, "{only:?}");
    assert!(only[0].starts_with("DPoP algs=") && only[0].contains("error=\"invalid_token\""), "{only:?}");
    let key = ProofKey::generate(Algorithm::EdDSA);
    let bound = token(Some(&key.jkt()));
    let proof = key.proof("GET", &format!("{required}/me"), Some(&bound));
    assert_eq!(call(&required, "DPoP", &bound, &[&proof]).await.status, 200);
}

#[tokio::test]
async fn without_dpop_configured_bound_tokens_are_refused() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let auth = JwtAuth::builder().hmac_secret(SECRET).build().unwrap();
    let app = Router::new().route("/me", get(me)).route_layer(auth.layer::<Value>());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let key = ProofKey::generate(Algorithm::ES256);
    let bound = token(Some(&key.jkt()));
    let proof = key.proof("GET", &format!("{base}/me"), Some(&bound));
    assert_eq!(call(&base, "Bearer", &bound, &[&proof]).await.code(), "BINDING_MISMATCH");
    assert_eq!(call(&base, "DPoP", &bound, &[&proof]).await.code(), "MISSING_TOKEN");
}

#[tokio::test]
async fn the_nonce_flow() {
    let nonces = DpopNonces::new([9u8; 32]).unwrap();
    let base = start(|base| Dpop::allowed().public_url(base).nonces(nonces)).await;
    let key = ProofKey::generate(Algorithm::ES256);
    let bound = token(Some(&key.jkt()));
    let token = bound.as_str();
    let htu = format!("{base}/me");
    // No nonce: 401 use_dpop_nonce, with one to use.
    let first = call(&base, "DPoP", token, &[&key.proof("GET", &htu, Some(token))]).await;
    assert_eq!((first.status, first.code()), (401, "USE_DPOP_NONCE"));
    assert!(
        challenges(&first).iter().any(|c| c.contains("error=\"use_dpop_nonce\"")),
        "{:?}",
        challenges(&first)
    );
    let nonce = first.headers["dpop-nonce"].to_str().unwrap().to_owned();
    // With it: accepted.
    let spec = Spec { nonce: Some(nonce.clone()), ..Spec::new(&key, "GET", &htu, Some(token)) };
    let accepted = call(&base, "DPoP", token, &[&key.sign(&spec)]).await;
    assert_eq!(accepted.status, 200);
    // §8.2: the success carries the nonce for the next proofs, and it is accepted.
    let next = accepted.headers["dpop-nonce"].to_str().unwrap().to_owned();
    let with_next = Spec { nonce: Some(next), jti: jti(), ..spec.clone() };
    assert_eq!(call(&base, "DPoP", token, &[&key.sign(&with_next)]).await.status, 200);
    // A forged nonce: refused again, with a fresh one.
    let forged = Spec { nonce: Some(format!("{nonce}x")), jti: jti(), ..spec.clone() };
    let answer = call(&base, "DPoP", token, &[&key.sign(&forged)]).await;
    assert_eq!(answer.code(), "USE_DPOP_NONCE");
    assert!(answer.headers.contains_key("dpop-nonce"));
    // Another service's nonce (another secret): refused.
    let foreign = DpopNonces::random().issue(now());
    let answer =
        call(&base, "DPoP", token, &[&key.sign(&Spec { nonce: Some(foreign), jti: jti(), ..spec })]).await;
    assert_eq!(answer.code(), "USE_DPOP_NONCE");
}

#[tokio::test]
async fn htu_is_normalised_and_behind_a_proxy_comes_from_the_public_url() {
    // The service is reached on 127.0.0.1, clients know it as https://API.example.com/api.
    let base = start(|_| Dpop::allowed().public_url("https://API.example.com:443/api/")).await;
    let key = ProofKey::generate(Algorithm::ES256);
    let bound = token(Some(&key.jkt()));
    let token = bound.as_str();
    for htu in [
        "https://api.example.com/api/me",
        "HTTPS://api.EXAMPLE.com/api/%6De",
        "https://api.example.com:443/api/./me",
    ] {
        assert_eq!(
            call(&base, "DPoP", token, &[&key.proof("GET", htu, Some(token))]).await.status,
            200,
            "{htu}"
        );
    }
    let internal = format!("{base}/me");
    assert_eq!(call(&base, "DPoP", token, &[&key.proof("GET", &internal, Some(token))]).await.status, 401);
}

/// RFC 9449 §4.3 (9): `htu` is compared "ignoring any query and fragment parts", of the proof
/// and of the request alike.
#[tokio::test]
async fn htu_ignores_the_query_and_fragment_on_both_sides() {
    let base = start(|base| Dpop::allowed().public_url(base)).await;
    let key = ProofKey::generate(Algorithm::ES256);
    let bound = token(Some(&key.jkt()));
    let token = bound.as_str();
    for (htu, target) in [
        (format!("{base}/me?page=2"), format!("{base}/me?page=2")),
        (format!("{base}/me"), format!("{base}/me?page=2")),
        (format!("{base}/me?other=1#top"), format!("{base}/me")),
    ] {
        let request = client()
            .get(&target)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", key.proof("GET", &htu, Some(token)));
        assert_eq!(answer(request).await.status, 200, "{htu} for {target}");
    }
    // The path still counts, wherever a query would put it.
    let request = client()
        .get(format!("{base}/me"))
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", key.proof("GET", &format!("{base}/other?/me"), Some(token)));
    assert_eq!(answer(request).await.code(), "INVALID_DPOP_PROOF");
}

/// RFC 9449 §7.1: a request that used `Authorization: DPoP` and is refused for the token itself
/// (expired, insufficient scope) gets the error on the `DPoP` challenge, the `Bearer` one bare.
#[tokio::test]
async fn a_dpop_request_refused_for_its_token_is_challenged_on_dpop() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let auth =
        JwtAuth::builder().hmac_secret(SECRET).dpop(Dpop::allowed().public_url(&base)).build().unwrap();
    let app = Router::new()
        .route("/admin", get(me))
        .route_layer(tower_jwt_guard::RequireScopeLayer::new("admin"))
        .route("/me", get(me))
        .route_layer(auth.layer::<Value>());
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    let key = ProofKey::generate(Algorithm::ES256);
    let mut claims = harness::claims("alice");
    claims["cnf"] = json!({ "jkt": key.jkt() });
    claims["exp"] = json!(now() - 3600);
    let expired = TestKey::hmac(Algorithm::HS256, SECRET).sign(&claims);
    let refused =
        call(&base, "DPoP", &expired, &[&key.proof("GET", &format!("{base}/me"), Some(&expired))]).await;
    assert_eq!((refused.status, refused.code()), (401, "TOKEN_EXPIRED"));
    let on_dpop = |challenges: &[String], error: &str| {
        let bearer = challenges.iter().find(|c| c.starts_with("Bearer ")).unwrap();
        let dpop = challenges.iter().find(|c| c.starts_with("DPoP ")).unwrap();
        assert!(!bearer.contains("error="), "{challenges:?}");
        assert!(dpop.contains(&format!("error=\"{error}\"")), "{challenges:?}");
    };
    on_dpop(&challenges(&refused), "invalid_token");
    // After the layer: a scope the token lacks.
    let bound = token(Some(&key.jkt()));
    let request = client()
        .get(format!("{base}/admin"))
        .header("authorization", format!("DPoP {bound}"))
        .header("dpop", key.proof("GET", &format!("{base}/admin"), Some(&bound)));
    let refused = answer(request).await;
    assert_eq!((refused.status, refused.code()), (403, "INSUFFICIENT_SCOPE"));
    on_dpop(&challenges(&refused), "insufficient_scope");
    // A bearer request's refusal stays on Bearer.
    let plain = token(None);
    let request = client().get(format!("{base}/admin")).header("authorization", format!("Bearer {plain}"));
    let challenges = challenges(&answer(request).await);
    assert!(
        challenges.iter().any(|c| c.starts_with("Bearer ") && c.contains("insufficient_scope")),
        "{challenges:?}"
    );
}

#[tokio::test]
async fn post_requests_and_grpc_refusals() {
    let base = start(|base| Dpop::allowed().public_url(base)).await;
    let key = ProofKey::generate(Algorithm::ES256);
    let bound = token(Some(&key.jkt()));
    let token = bound.as_str();
    let proof = key.proof("POST", &format!("{base}/me"), Some(token));
    let ok = answer(
        client()
            .post(format!("{base}/me"))
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", &proof),
    )
    .await;
    assert_eq!(ok.status, 200);
    // gRPC: a refused proof is grpc-status 16.
    let grpc = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let response = grpc
        .post(format!("{base}/me"))
        .header("content-type", "application/grpc")
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", &proof)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["grpc-status"], "16");
    assert!(response.headers()["grpc-message"].to_str().unwrap().starts_with("INVALID_DPOP_PROOF"));
}

#[cfg(feature = "redis")]
#[allow(dead_code)]
#[path = "common/redis_server.rs"]
mod redis_server;

/// Two instances share one Redis: a proof used on one is refused on the other; Redis down → 503.
#[cfg(feature = "redis")]
#[tokio::test]
async fn the_redis_replay_store_is_shared_between_instances() {
    use tower_jwt_guard::revocation::RedisReplayStore;
    let Some(mut server) =
        redis_server::Redis::local_for_test("the_redis_replay_store_is_shared_between_instances")
    else {
        return;
    };
    let url = server.url();
    let prefix = redis_server::unique_prefix("dpop");
    // Both instances accept the same public URL (behind one load balancer).
    let public = "https://api.example.com";
    let store = |url: &str| {
        RedisReplayStore::with_options(url, &prefix, std::time::Duration::from_millis(300)).unwrap()
    };
    let a = start(|_| Dpop::allowed().public_url(public).replay_store(store(&url))).await;
    let b = start(|_| Dpop::allowed().public_url(public).replay_store(store(&url))).await;
    let key = ProofKey::generate(Algorithm::ES256);
    let bound = token(Some(&key.jkt()));
    let token = bound.as_str();
    let proof = key.proof("GET", "https://api.example.com/me", Some(token));
    assert_eq!(call(&a, "DPoP", token, &[&proof]).await.status, 200);
    let replayed = call(&b, "DPoP", token, &[&proof]).await;
    assert_eq!((replayed.status, replayed.code()), (401, "INVALID_DPOP_PROOF"));
    let fresh = key.proof("GET", "https://api.example.com/me", Some(token));
    assert_eq!(call(&b, "DPoP", token, &[&fresh]).await.status, 200);
    // Redis down: fail closed.
    server.stop();
    let down = call(&a, "DPoP", token, &[&key.proof("GET", "https://api.example.com/me", Some(token))]).await;
    assert_eq!((down.status, down.code()), (503, "AUTH_UNAVAILABLE"));
}

/// RFC 9449 §5: the token endpoint binds the token to the proof's key; the client then uses it.
#[tokio::test]
async fn the_issuer_binds_cnf_jkt_from_the_token_request_proof() {
    use tower_jwt_guard::issue::{SigningKey, TokenIssuer};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let auth =
        JwtAuth::builder().hmac_secret(SECRET).dpop(Dpop::allowed().public_url(&base)).build().unwrap();
    let issuer =
        TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap()).bindings_of(&auth).build();
    let login = move |parts: axum::http::request::Parts| {
        let issuer = issuer.clone();
        async move {
            match issuer.mint_for(&parts, "alice", &json!({})).await {
                Ok(minted) => {
                    axum::Json(json!({ "access_token": minted.token, "token_type": minted.token_type }))
                }
                Err(err) => axum::Json(json!({ "error": err.to_string() })),
            }
        }
    };
    let app = Router::new()
        .route("/me", get(me))
        .route_layer(auth.layer::<Value>())
        .route("/token", axum::routing::post(login));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let key = ProofKey::generate(Algorithm::ES256);
    let proof = key.proof("POST", &format!("{base}/token"), None);
    let issued = answer(client().post(format!("{base}/token")).header("dpop", proof)).await.body;
    assert_eq!(issued["token_type"], "DPoP", "{issued}");
    let token = issued["access_token"].as_str().unwrap();
    let claims: Value =
        serde_json::from_slice(&harness::b64_decode(token.split('.').nth(1).unwrap())).unwrap();
    assert_eq!(claims["cnf"]["jkt"], key.jkt());
    let proof = key.proof("GET", &format!("{base}/me"), Some(token));
    assert_eq!(call(&base, "DPoP", token, &[&proof]).await.status, 200);
    // Without a proof: a plain bearer token (DPoP is only allowed).
    let plain = answer(client().post(format!("{base}/token"))).await.body;
    assert_eq!(plain["token_type"], "Bearer");
    // A bad proof at the token endpoint: no token.
    let bad = key.proof("GET", &format!("{base}/token"), None);
    let refused = answer(client().post(format!("{base}/token")).header("dpop", bad)).await.body;
    assert!(refused["error"].as_str().unwrap().contains("dpop"), "{refused}");
}

/// `ServiceTokens` with a DPoP key: bound tokens, a fresh proof per outgoing request.
#[tokio::test]
async fn service_tokens_sign_a_proof_per_request() {
    use std::sync::Arc;
    use tower::ServiceExt as _;
    use tower_jwt_guard::issue::{DpopKey, SigningKey, TokenIssuer};
    use tower_jwt_guard::{ServiceTokenLayer, ServiceTokens};
    let base = start(|base| Dpop::required().public_url(base)).await;
    let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap()).build();
    for key in [DpopKey::generate_es256().unwrap(), DpopKey::generate_ed25519().unwrap()] {
        let tokens =
            ServiceTokens::builder(issuer.clone(), "gateway").dpop_key(Arc::new(key)).build().unwrap();
        let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http::<String>();
        let client = tower::ServiceBuilder::new().layer(ServiceTokenLayer::new(tokens.clone())).service(http);
        for _ in 0..3 {
            let request = http::Request::get(format!("{base}/me")).body(String::new()).unwrap();
            let response = client.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), 200);
        }
        assert_eq!(tokens.minted_count(), 1);
    }
}

/// `ServiceTokens` against a service that wants nonces (RFC 9449 §8): the first call is answered
/// `use_dpop_nonce`, the client layer remembers the `DPoP-Nonce` of that answer by itself, and
/// the next call (the client's retry) passes.
#[tokio::test]
async fn service_tokens_follow_the_servers_nonce() {
    use std::sync::Arc;
    use tower::ServiceExt as _;
    use tower_jwt_guard::issue::{DpopKey, SigningKey, TokenIssuer};
    use tower_jwt_guard::{ServiceTokenLayer, ServiceTokens};
    let base = start(|base| Dpop::required().public_url(base).nonces(DpopNonces::random())).await;
    let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap()).build();
    let tokens = ServiceTokens::builder(issuer, "gateway")
        .dpop_key(Arc::new(DpopKey::generate_es256().unwrap()))
        .build()
        .unwrap();
    let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<String>();
    let client = tower::ServiceBuilder::new().layer(ServiceTokenLayer::new(tokens)).service(http);
    let call =
        || client.clone().oneshot(http::Request::get(format!("{base}/me")).body(String::new()).unwrap());
    let first = call().await.unwrap();
    assert_eq!(first.status(), 401);
    assert!(first.headers().contains_key("dpop-nonce"));
    for _ in 0..3 {
        assert_eq!(call().await.unwrap().status(), 200);
    }
}

/// Interop: proofs (and thumbprints) from panva's npm `dpop` package are accepted, once.
#[tokio::test]
async fn proofs_from_the_npm_dpop_package_are_accepted() {
    use std::process::Command;
    let Some(interop) = dpop_support::npm_dpop() else { return };
    let base = start(|base| Dpop::allowed().public_url(base)).await;
    let htu = format!("{base}/me");
    let secret = String::from_utf8(SECRET.to_vec()).unwrap();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node").current_dir(&interop).arg("dpop.mjs").arg(&htu).arg(&secret).output()
    })
    .await
    .unwrap()
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "node failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<Value> = stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.len(), 4);
    for line in lines {
        let (alg, token, proof) =
            (&line["alg"], line["token"].as_str().unwrap(), line["proof"].as_str().unwrap());
        let answer = call(&base, "DPoP", token, &[proof]).await;
        assert_eq!((answer.status, answer.body.clone()), (200, json!("alice")), "{alg}");
        assert_eq!(call(&base, "DPoP", token, &[proof]).await.code(), "INVALID_DPOP_PROOF", "{alg}: replay");
        // The thumbprint the library computed is the one the token names, and a proof by
        // another key (ours) is refused for that token.
        let ours = ProofKey::generate(Algorithm::ES256);
        let foreign = ours.proof("GET", &format!("{base}/me"), Some(token));
        assert_eq!(call(&base, "DPoP", token, &[&foreign]).await.code(), "INVALID_TOKEN", "{alg}");
    }
}

/// DPoP has one way in, `JwtAuthBuilder::dpop`: given as a plain binding policy it would be
/// checked without the layer's token sources and beside step 4, so the configuration is refused.
#[test]
fn dpop_given_as_a_binding_is_a_configuration_error() {
    let dpop = || Dpop::allowed().public_url("https://api.example.com");
    let err = JwtAuth::builder().hmac_secret([7u8; 32]).binding(dpop()).build().unwrap_err();
    assert!(err.to_string().contains("dpop(..)"), "{err}");
    assert!(JwtAuth::builder().hmac_secret([7u8; 32]).dpop(dpop()).build().is_ok());
}
