//! Binding policies end to end: a token minted by `TokenIssuer` for one request (over HTTP, on
//! loopback) is accepted by the layer from the same client and refused from another.

mod harness;

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use harness::{answer, client, serve, Answer, TestKey};
use serde_json::{json, Value};
use tower_jwt_guard::binding::{
    BindingPolicy, ClientIpBinding, CookieFingerprint, DeviceFingerprint, ForwardedHeader, TrustedProxies,
};
use tower_jwt_guard::issue::{SigningKey, TokenIssuer};
use tower_jwt_guard::{Algorithm, Claims, JwtAuth};

const SECRET: &[u8] = b"binding-tests-secret-of-32-bytes!!";

/// Mints a token bound to the request: `{"access_token": ..}` plus the policy's cookies.
async fn login(State(issuer): State<TokenIssuer>, parts: Parts) -> Response {
    match issuer.mint_for(&parts, "alice", &json!({ "role": "user" })).await {
        Ok(minted) => {
            let mut response = Json(json!({ "access_token": minted.token })).into_response();
            for cookie in minted.set_cookies {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(err) => (StatusCode::BAD_REQUEST, err.to_string()).into_response(),
    }
}

async fn me(Claims(claims): Claims<Value>) -> Json<Value> {
    Json((*claims).clone())
}

/// The layer and the issuer share `policy`; `/login` is open, `/me` is guarded.
fn app(policy: impl BindingPolicy) -> Router {
    let auth = JwtAuth::builder().hmac_secret(SECRET).binding(policy).build().unwrap();
    let issuer =
        TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap()).bindings_of(&auth).build();
    Router::new()
        .route("/me", get(me))
        .route_layer(auth.layer::<Value>())
        .route("/login", post(login))
        .with_state(issuer)
}

async fn start(policy: impl BindingPolicy) -> String {
    format!("http://{}", serve(app(policy)).await)
}

/// Serves on `addr` (an IPv6 or dual-stack address) with the peer address as connect info.
async fn start_on(addr: &str, policy: impl BindingPolicy) -> u16 {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = app(policy);
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    port
}

/// Logs in with `headers`; returns the token and the `Set-Cookie` values.
async fn log_in(base: &str, headers: &[(&str, &str)]) -> (String, Vec<String>) {
    let mut request = client().post(format!("{base}/login"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "login refused");
    let cookies =
        response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    let body: Value = response.json().await.unwrap();
    (body["access_token"].as_str().unwrap().to_string(), cookies)
}

async fn me_with(base: &str, token: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = client().get(format!("{base}/me")).bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    answer(request).await
}

/// The token's `cnf` claims (read without verification: test data).
fn cnf(token: &str) -> Value {
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap());
    let payload: Value = serde_json::from_slice(&payload.unwrap()).unwrap();
    payload["cnf"].clone()
}

fn assert_mismatch(answer: &Answer, binding: &str) {
    assert_eq!((answer.status, answer.code()), (401, "BINDING_MISMATCH"), "{:?}", answer.body);
    assert_eq!(answer.body["binding"], binding);
    assert!(answer.challenge.as_deref().unwrap_or("").contains("invalid_token"));
}

#[tokio::test]
async fn device_fingerprint_round_trip_and_copied_token_from_another_device() {
    let base = start(DeviceFingerprint::new()).await;
    let laptop = [("user-agent", "Firefox/140"), ("accept-language", "de-CH"), ("accept-encoding", "gzip")];
    let (token, cookies) = log_in(&base, &laptop).await;
    assert!(cookies.is_empty());
    let fingerprint = cnf(&token)["dfp"].as_str().unwrap().to_string();
    assert_eq!(fingerprint.len(), 43);

    let ok = me_with(&base, &token, &laptop).await;
    assert_eq!((ok.status, ok.body["sub"].as_str()), (200, Some("alice")));
    // Twice: the second request is a cache hit, and the binding is still checked.
    assert_eq!(me_with(&base, &token, &laptop).await.status, 200);

    let other_agent = [("user-agent", "curl/8.5"), ("accept-language", "de-CH"), ("accept-encoding", "gzip")];
    let refused = me_with(&base, &token, &other_agent).await;
    assert_mismatch(&refused, "device_fingerprint");
    // The body names the binding, never the expected value.
    assert!(!refused.body.to_string().contains(&fingerprint));

    let other_language =
        [("user-agent", "Firefox/140"), ("accept-language", "en-US"), ("accept-encoding", "gzip")];
    assert_mismatch(&me_with(&base, &token, &other_language).await, "device_fingerprint");
    // Headers outside the fingerprint do not matter.
    let mut extra = laptop.to_vec();
    extra.push(("x-request-id", "42"));
    assert_eq!(me_with(&base, &token, &extra).await.status, 200);
}

#[tokio::test]
async fn cookie_fingerprint_round_trip_and_token_without_its_cookie() {
    let base = start(CookieFingerprint::new()).await;
    let (token, cookies) = log_in(&base, &[]).await;
    assert_eq!(cookies.len(), 1);
    let set_cookie = &cookies[0];
    for attribute in
        ["__Secure-Fgp=", "; Path=/", "; HttpOnly", "; Secure", "; SameSite=Strict", "; Max-Age=900"]
    {
        assert!(set_cookie.contains(attribute), "{set_cookie} lacks {attribute}");
    }
    let pair = set_cookie.split(';').next().unwrap().to_string();
    let value = pair.split_once('=').unwrap().1.to_string();
    // The token holds the cookie's hash, not the cookie.
    let claim = cnf(&token)["cfp"].as_str().unwrap().to_string();
    assert!(!token.contains(&value) && claim != value);

    let ok = me_with(&base, &token, &[("cookie", &format!("theme=dark; {pair}"))]).await;
    assert_eq!(ok.status, 200);

    // The token alone (stolen by a script that cannot read the HttpOnly cookie) is refused.
    let refused = me_with(&base, &token, &[]).await;
    assert_mismatch(&refused, "cookie_fingerprint");
    assert!(!refused.body.to_string().contains(&claim));
    // Another session's cookie does not fit this token.
    let (_, other_cookies) = log_in(&base, &[]).await;
    let other_pair = other_cookies[0].split(';').next().unwrap().to_string();
    assert_mismatch(&me_with(&base, &token, &[("cookie", &other_pair)]).await, "cookie_fingerprint");
    // A tampered value neither.
    let last = if value.ends_with('A') { 'B' } else { 'A' };
    let tampered = format!("__Secure-Fgp={}{last}", &value[..value.len() - 1]);
    assert_mismatch(&me_with(&base, &token, &[("cookie", &tampered)]).await, "cookie_fingerprint");
}

#[tokio::test]
async fn client_ip_behind_a_trusted_proxy() {
    let proxies = TrustedProxies::parse("127.0.0.1/32").unwrap();
    let base = start(ClientIpBinding::new().trusted_proxies(proxies)).await;
    let (token, _) = log_in(&base, &[("x-forwarded-for", "198.51.100.7")]).await;
    assert_eq!(cnf(&token)["cip"], "198.51.100.7");

    assert_eq!(me_with(&base, &token, &[("x-forwarded-for", "198.51.100.7")]).await.status, 200);
    // What the client wrote left of its real address is ignored.
    let chained = [("x-forwarded-for", "203.0.113.66, 198.51.100.7")];
    assert_eq!(me_with(&base, &token, &chained).await.status, 200);
    // The same token from another address.
    let refused = me_with(&base, &token, &[("x-forwarded-for", "198.51.100.8")]).await;
    assert_mismatch(&refused, "client_ip");
    assert!(!refused.body.to_string().contains("198.51.100.7"));
    // A hop the proxy could not identify: fail closed.
    assert_mismatch(&me_with(&base, &token, &[("x-forwarded-for", "unknown")]).await, "client_ip");
    // IPv4-mapped IPv6 is the same IPv4 client.
    assert_eq!(me_with(&base, &token, &[("x-forwarded-for", "::ffff:198.51.100.7")]).await.status, 200);
}

#[tokio::test]
async fn forwarded_header_behind_a_trusted_proxy() {
    let proxies = TrustedProxies::parse("127.0.0.1").unwrap().header(ForwardedHeader::Forwarded);
    let base = start(ClientIpBinding::new().trusted_proxies(proxies)).await;
    let (token, _) = log_in(&base, &[("forwarded", "for=\"[2001:db8:cafe::17]:4711\";proto=https")]).await;
    assert_eq!(cnf(&token)["cip"], "2001:db8:cafe::17");
    assert_eq!(me_with(&base, &token, &[("forwarded", "for=\"[2001:db8:cafe::17]\"")]).await.status, 200);
    assert_mismatch(&me_with(&base, &token, &[("forwarded", "for=192.0.2.1")]).await, "client_ip");
    // X-Forwarded-For is not the configured header: a client sending it changes nothing.
    let spoof = [("x-forwarded-for", "2001:db8:cafe::17")];
    assert_mismatch(&me_with(&base, &token, &spoof).await, "client_ip");
}

#[tokio::test]
async fn x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let base = start(ClientIpBinding::new()).await;
    // The client claims to be 198.51.100.7; it is bound to its real address.
    let (token, _) = log_in(&base, &[("x-forwarded-for", "198.51.100.7")]).await;
    assert_eq!(cnf(&token)["cip"], "127.0.0.1");
    assert_eq!(me_with(&base, &token, &[("x-forwarded-for", "203.0.113.1")]).await.status, 200);

    // A token really issued to 198.51.100.7, replayed with a spoofed header: refused.
    let key = TestKey::hmac(Algorithm::HS256, SECRET);
    let now = harness::now();
    let stolen =
        key.sign(&json!({ "sub": "victim", "exp": now + 600, "iat": now, "cnf": { "cip": "198.51.100.7" } }));
    let refused = me_with(&base, &stolen, &[("x-forwarded-for", "198.51.100.7")]).await;
    assert_mismatch(&refused, "client_ip");
    let forwarded = [("forwarded", "for=198.51.100.7")];
    assert_mismatch(&me_with(&base, &stolen, &forwarded).await, "client_ip");
}

#[tokio::test]
async fn token_without_the_binding_claim_is_refused() {
    let key = TestKey::hmac(Algorithm::HS256, SECRET);
    let now = harness::now();
    let unbound = key.sign(&json!({ "sub": "alice", "exp": now + 600, "iat": now }));
    let other_claims = key.sign(&json!({ "sub": "alice", "exp": now + 600, "cnf": { "jkt": "abc" } }));
    let routers = [
        (app(DeviceFingerprint::new()), "device_fingerprint"),
        (app(CookieFingerprint::new()), "cookie_fingerprint"),
        (app(ClientIpBinding::new()), "client_ip"),
    ];
    for (router, name) in routers {
        let base = format!("http://{}", serve(router).await);
        assert_mismatch(&me_with(&base, &unbound, &[]).await, name);
        assert_mismatch(&me_with(&base, &other_claims, &[]).await, name);
    }
}

#[tokio::test]
async fn ipv6_and_ipv4_mapped_peers() {
    // A dual-stack listener sees an IPv4 client as ::ffff:127.0.0.1; the token says 127.0.0.1.
    let port = start_on("[::]:0", ClientIpBinding::new()).await;
    let v4 = format!("http://127.0.0.1:{port}");
    let (token, _) = log_in(&v4, &[]).await;
    assert_eq!(cnf(&token)["cip"], "127.0.0.1");
    assert_eq!(me_with(&v4, &token, &[]).await.status, 200);
    // The same token over IPv6 loopback comes from ::1: another client.
    let v6 = format!("http://[::1]:{port}");
    assert_mismatch(&me_with(&v6, &token, &[]).await, "client_ip");
    let (token6, _) = log_in(&v6, &[]).await;
    assert_eq!(cnf(&token6)["cip"], "::1");
    assert_eq!(me_with(&v6, &token6, &[]).await.status, 200);
    assert_mismatch(&me_with(&v4, &token6, &[]).await, "client_ip");
}

#[tokio::test]
async fn prefix_matching_for_mobile_clients() {
    let proxies = TrustedProxies::parse("127.0.0.1/32").unwrap();
    let policy = ClientIpBinding::new().trusted_proxies(proxies).prefix_len(24, 64).unwrap();
    let base = start(policy).await;

    let (token, _) = log_in(&base, &[("x-forwarded-for", "198.51.100.7")]).await;
    assert_eq!(cnf(&token)["cip"], "198.51.100.0/24");
    assert_eq!(me_with(&base, &token, &[("x-forwarded-for", "198.51.100.200")]).await.status, 200);
    assert_mismatch(&me_with(&base, &token, &[("x-forwarded-for", "198.51.101.7")]).await, "client_ip");

    let (token6, _) = log_in(&base, &[("x-forwarded-for", "2001:db8:1:2::5")]).await;
    assert_eq!(cnf(&token6)["cip"], "2001:db8:1:2::/64");
    let same_64 = [("x-forwarded-for", "2001:db8:1:2:aaaa:bbbb:cccc:dddd")];
    assert_eq!(me_with(&base, &token6, &same_64).await.status, 200);
    assert_mismatch(&me_with(&base, &token6, &[("x-forwarded-for", "2001:db8:1:3::5")]).await, "client_ip");

    // A token bound more loosely (/16) than this layer's policy is refused: the policy decides.
    let key = TestKey::hmac(Algorithm::HS256, SECRET);
    let loose =
        key.sign(&json!({ "sub": "a", "exp": harness::now() + 60, "cnf": { "cip": "198.51.0.0/16" } }));
    assert_mismatch(&me_with(&base, &loose, &[("x-forwarded-for", "198.51.100.7")]).await, "client_ip");
}

#[tokio::test]
async fn every_policy_at_once() {
    let auth = JwtAuth::builder()
        .hmac_secret(SECRET)
        .binding(DeviceFingerprint::new())
        .binding(CookieFingerprint::new())
        .binding(ClientIpBinding::new())
        .build()
        .unwrap();
    let issuer =
        TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap()).bindings_of(&auth).build();
    assert_eq!(issuer.binding_names(), ["device_fingerprint", "cookie_fingerprint", "client_ip"]);
    let router = Router::new()
        .route("/me", get(me))
        .route_layer(auth.layer::<Value>())
        .route("/login", post(login))
        .with_state(issuer);
    let base = format!("http://{}", serve(router).await);
    let agent = ("user-agent", "app/1.0");
    let (token, cookies) = log_in(&base, &[agent]).await;
    let claims = cnf(&token);
    for claim in ["dfp", "cfp", "cip"] {
        assert!(claims[claim].is_string(), "{claim} missing in {claims}");
    }
    let pair = cookies[0].split(';').next().unwrap().to_string();
    assert_eq!(me_with(&base, &token, &[agent, ("cookie", &pair)]).await.status, 200);
    assert_mismatch(
        &me_with(&base, &token, &[("user-agent", "other"), ("cookie", &pair)]).await,
        "device_fingerprint",
    );
    assert_mismatch(&me_with(&base, &token, &[agent]).await, "cookie_fingerprint");
}

#[tokio::test]
async fn minting_a_bound_token_needs_the_request_and_its_peer() {
    let auth = JwtAuth::builder().hmac_secret(SECRET).binding(ClientIpBinding::new()).build().unwrap();
    let issuer =
        TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap()).bindings_of(&auth).build();
    let err = issuer.mint("alice", &json!({})).unwrap_err();
    assert!(err.to_string().contains("client_ip"), "{err}");
    // No peer address in the request (a server without connect info): refused, not unbound.
    let err = issuer.mint_for(&axum::http::Request::new(()), "alice", &json!({})).await.unwrap_err();
    assert!(err.to_string().contains("peer address"), "{err}");
}

/// A tonic server (tonic-health) behind the layer: the client-IP binding reads tonic's
/// `TcpConnectInfo`.
#[tokio::test]
async fn client_ip_binding_under_tonic() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    let auth = JwtAuth::builder().hmac_secret(SECRET).binding(ClientIpBinding::new()).build().unwrap();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = futures_util::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    });
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(auth.layer::<Value>())
            .add_service(health)
            .serve_with_incoming(incoming),
    );

    let key = TestKey::hmac(Algorithm::HS256, SECRET);
    let now = harness::now();
    let here = key.sign(&json!({ "sub": "svc", "exp": now + 600, "cnf": { "cip": "127.0.0.1" } }));
    let elsewhere = key.sign(&json!({ "sub": "svc", "exp": now + 600, "cnf": { "cip": "192.0.2.1" } }));
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let check = |token: String| {
        let mut client = HealthClient::new(channel.clone());
        async move {
            let mut request = tonic::Request::new(HealthCheckRequest { service: String::new() });
            request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
            client.check(request).await
        }
    };
    let served = check(here).await.unwrap();
    assert_eq!(served.get_ref().status, ServingStatus::Serving as i32);
    let status = check(elsewhere).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    assert!(status.message().contains("BINDING_MISMATCH"), "{}", status.message());
    assert!(status.message().contains("client_ip"), "{}", status.message());
}

/// A bare hyper server that inserts [`PeerAddr`]: the binding reads it.
#[tokio::test]
async fn client_ip_binding_under_hyper_with_peer_addr() {
    use hyper::server::conn::http1;
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    use tower::{Layer as _, ServiceExt as _};
    use tower_jwt_guard::PeerAddr;

    let auth = JwtAuth::builder().hmac_secret(SECRET).binding(ClientIpBinding::new()).build().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let layer = auth.layer::<Value>();
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            let inner = tower::service_fn(|_request: hyper::Request<hyper::body::Incoming>| async {
                Ok::<_, std::convert::Infallible>(hyper::Response::new(String::from("hello")))
            });
            let guarded = layer.layer(inner);
            let service = tower::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                guarded.clone().oneshot(request)
            });
            tokio::spawn(
                http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)),
            );
        }
    });
    let base = format!("http://{addr}");
    let key = TestKey::hmac(Algorithm::HS256, SECRET);
    let now = harness::now();
    let here = key.sign(&json!({ "sub": "a", "exp": now + 600, "cnf": { "cip": "127.0.0.1" } }));
    let elsewhere = key.sign(&json!({ "sub": "a", "exp": now + 600, "cnf": { "cip": "192.0.2.1" } }));
    assert_eq!(me_with(&base, &here, &[]).await.status, 200);
    assert_mismatch(&me_with(&base, &elsewhere, &[]).await, "client_ip");
}
