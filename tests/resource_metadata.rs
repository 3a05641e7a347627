//! Protected Resource Metadata (RFC 9728) and the resource as audience (RFC 8707), over
//! loopback: the document field by field, where it is served, the `resource_metadata`
//! attribute on every refusal path, and tokens for another resource refused.

mod harness;

use axum::routing::get;
use axum::Router;
use harness::{answer, client, now, serve, TestKey};
use serde_json::{json, Value};
use tower_jwt_guard::{
    Algorithm, JwtAuth, JwtAuthBuilder, ProtectedResource, RequireMfaLayer, RequireScopeLayer, TokenSource,
};

const SECRET: &[u8] = b"resource-metadata-test-secret-32b!";
const ISSUER: &str = "https://as.example.com";

fn key() -> TestKey {
    TestKey::hmac(Algorithm::HS256, SECRET)
}

fn token(aud: Value, extra: Value) -> String {
    let mut claims = json!({ "sub": "alice", "iss": ISSUER, "aud": aud, "exp": now() + 60 });
    claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    key().sign(&claims)
}

/// A service for `resource` (its path served at `/api`, `/scoped`, `/admin`) with its metadata.
async fn server(resource: &str, configure: impl FnOnce(JwtAuthBuilder) -> JwtAuthBuilder) -> String {
    let metadata = ProtectedResource::new(resource).unwrap().scopes_supported(["read", "write"]);
    let builder = JwtAuth::builder().hmac_secret(SECRET).issuer(ISSUER).resource(resource);
    let auth = configure(builder.protected_resource(metadata)).build().unwrap();
    let app = Router::new()
        .route("/scoped", get(|| async { "scoped" }).route_layer(RequireScopeLayer::new("write")))
        .route("/admin", get(|| async { "admin" }).route_layer(RequireMfaLayer::new()))
        .route("/api", get(|| async { "api" }))
        .route_layer(auth.layer::<Value>())
        .merge(auth.resource_metadata_router());
    format!("http://{}", serve(app).await)
}

#[tokio::test]
async fn the_document_field_by_field() {
    let base = server("https://API.example.com:443/mcp", |builder| {
        builder.sources([TokenSource::Bearer, TokenSource::Query("access_token".into())])
    })
    .await;
    let http = client();
    let response = answer(http.get(format!("{base}/.well-known/oauth-protected-resource/mcp"))).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.headers["content-type"], "application/json");
    assert_eq!(response.headers["cache-control"], "public, max-age=3600");
    assert_eq!(response.headers["access-control-allow-origin"], "*");
    // §2: exactly these members, the resource normalised, the rest derived from the layer.
    assert_eq!(
        response.body,
        json!({
            "resource": "https://api.example.com/mcp",
            "authorization_servers": [ISSUER],
            "scopes_supported": ["read", "write"],
            "bearer_methods_supported": ["header", "query"],
        })
    );

    // Browser clients: the preflight is answered, without a token.
    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("{base}/.well-known/oauth-protected-resource/mcp"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    assert!(preflight.headers()["access-control-allow-methods"].to_str().unwrap().contains("GET"));
    // Only the resource's own path: the bare well-known path describes another resource.
    assert_eq!(
        http.get(format!("{base}/.well-known/oauth-protected-resource")).send().await.unwrap().status(),
        404
    );
}

#[tokio::test]
async fn the_dpop_fields_come_from_the_dpop_policy() {
    use tower_jwt_guard::binding::Dpop;
    let base = server("https://api.example.com/mcp", |builder| {
        builder.dpop(
            Dpop::required()
                .public_url("https://api.example.com")
                .algorithms([Algorithm::ES256, Algorithm::EdDSA]),
        )
    })
    .await;
    let document = answer(client().get(format!("{base}/.well-known/oauth-protected-resource/mcp"))).await;
    assert_eq!(document.status, 200);
    assert_eq!(document.body["dpop_signing_alg_values_supported"], json!(["ES256", "EdDSA"]));
    assert_eq!(document.body["dpop_bound_access_tokens_required"], json!(true));

    // Allowed, not required: bearer tokens still pass, and the document says so.
    let base = server("https://api.example.com/mcp", |builder| {
        builder.dpop(Dpop::allowed().public_url("https://api.example.com"))
    })
    .await;
    let document = answer(client().get(format!("{base}/.well-known/oauth-protected-resource/mcp"))).await;
    assert_eq!(document.body["dpop_bound_access_tokens_required"], json!(false));
    assert!(document.body["dpop_signing_alg_values_supported"]
        .as_array()
        .is_some_and(|algs| !algs.is_empty()));
}

#[tokio::test]
async fn every_optional_field_is_published_as_set() {
    let metadata = ProtectedResource::new("https://api.example.com")
        .unwrap()
        .authorization_server("https://login.example.com")
        .authorization_server("https://login2.example.com")
        .bearer_methods_supported(["header"])
        .resource_signing_alg_values_supported([Algorithm::PS256])
        .resource_name("Example API")
        .resource_documentation("https://docs.example.com")
        .resource_policy_uri("https://example.com/policy")
        .resource_tos_uri("https://example.com/tos")
        .tls_client_certificate_bound_access_tokens(true)
        .dpop_signing_alg_values_supported([Algorithm::ES256, Algorithm::EdDSA])
        .dpop_bound_access_tokens_required(false);
    let auth =
        JwtAuth::builder().hmac_secret(SECRET).issuer(ISSUER).protected_resource(metadata).build().unwrap();
    let base = format!("http://{}", serve(auth.resource_metadata_router()).await);
    // A resource without a path is described at the bare well-known path.
    let response = answer(client().get(format!("{base}/.well-known/oauth-protected-resource"))).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.body,
        json!({
            "resource": "https://api.example.com",
            "authorization_servers": ["https://login.example.com", "https://login2.example.com"],
            "bearer_methods_supported": ["header"],
            "resource_signing_alg_values_supported": ["PS256"],
            "resource_name": "Example API",
            "resource_documentation": "https://docs.example.com",
            "resource_policy_uri": "https://example.com/policy",
            "resource_tos_uri": "https://example.com/tos",
            "tls_client_certificate_bound_access_tokens": true,
            "dpop_signing_alg_values_supported": ["ES256", "EdDSA"],
            "dpop_bound_access_tokens_required": false,
        })
    );
}

/// §3.3: the `resource` in the document is the URL the client derived the well-known URL from.
#[tokio::test]
async fn the_resource_is_the_url_the_document_was_fetched_for() {
    // The resource names the very address the server listens on.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resource = format!("http://{addr}/tools/mcp");
    let metadata = ProtectedResource::new(&resource).unwrap();
    let auth = JwtAuth::builder().hmac_secret(SECRET).protected_resource(metadata).build().unwrap();
    let app = auth.resource_metadata_router::<()>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let url = auth.resource_metadata().unwrap().metadata_url();
    assert_eq!(url, format!("http://{addr}/.well-known/oauth-protected-resource/tools/mcp"));
    let response = answer(client().get(&url)).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body["resource"], resource);
}

#[tokio::test]
async fn every_refusal_names_the_metadata() {
    let base = server("https://api.example.com/mcp", |builder| builder).await;
    let attribute = r#"resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/mcp""#;
    let http = client();
    let aud = json!("https://api.example.com/mcp");
    let cases = [
        ("missing token", "/api", None, 401, "MISSING_TOKEN"),
        ("invalid token", "/api", Some("not.a.token".to_owned()), 401, "INVALID_TOKEN"),
        (
            "expired token",
            "/api",
            Some(token(aud.clone(), json!({ "exp": now() - 3600 }))),
            401,
            "TOKEN_EXPIRED",
        ),
        (
            "insufficient scope",
            "/scoped",
            Some(token(aud.clone(), json!({ "scope": "read" }))),
            403,
            "INSUFFICIENT_SCOPE",
        ),
        ("step-up", "/admin", Some(token(aud.clone(), json!({ "amr": ["pwd"] }))), 401, "MFA_REQUIRED"),
    ];
    for (what, path, bearer, status, code) in cases {
        let mut request = http.get(format!("{base}{path}"));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let refused = answer(request).await;
        assert_eq!((refused.status, refused.code()), (status, code), "{what}");
        let challenge = refused.challenge.unwrap_or_default();
        assert!(challenge.starts_with("Bearer realm=\"api\""), "{what}: {challenge}");
        assert!(challenge.ends_with(attribute), "{what}: {challenge}");
    }
    // The scope refusal keeps its own attributes beside it.
    let scoped = answer(http.get(format!("{base}/scoped")).bearer_auth(token(aud.clone(), json!({})))).await;
    let challenge = scoped.challenge.unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#) && challenge.contains(r#"scope="write""#),
        "{challenge}"
    );
    // And a token for this resource passes every layer.
    let good = token(aud, json!({ "scope": "write", "amr": ["pwd", "otp"] }));
    for path in ["/api", "/scoped", "/admin"] {
        assert_eq!(answer(http.get(format!("{base}{path}")).bearer_auth(&good)).await.status, 200, "{path}");
    }
}

#[tokio::test]
async fn a_token_for_another_resource_is_refused() {
    let base = server("https://api.example.com/mcp", |builder| builder).await;
    let http = client();
    let call = |aud: Value| {
        let http = http.clone();
        let url = format!("{base}/api");
        async move { answer(http.get(url).bearer_auth(token(aud, json!({})))).await }
    };
    // Another spelling of the same URL names the same resource.
    for aud in [json!("https://api.example.com/mcp"), json!(["other", "HTTPS://api.example.COM:443/mcp"])] {
        assert_eq!(call(aud.clone()).await.status, 200, "{aud}");
    }
    for aud in [
        json!("https://api.example.com/other"),
        json!("https://evil.example.com/mcp"),
        json!("https://api.example.com/mcp/"),
        json!("https://api.example.com:8443/mcp"),
        json!("http://api.example.com/mcp"),
        json!([]),
    ] {
        let refused = call(aud.clone()).await;
        assert_eq!((refused.status, refused.code()), (401, "INVALID_TOKEN"), "{aud}");
    }
    // Without an aud at all.
    let no_aud = key().sign(&json!({ "sub": "alice", "iss": ISSUER, "exp": now() + 60 }));
    assert_eq!(answer(http.get(format!("{base}/api")).bearer_auth(no_aud)).await.status, 401);
}

#[test]
fn the_metadata_and_the_audience_must_name_one_resource() {
    let err = JwtAuth::builder()
        .hmac_secret(SECRET)
        .resource("https://api.example.com/mcp")
        .protected_resource(ProtectedResource::new("https://api.example.com/other").unwrap())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("different resources"), "{err}");
    // Two spellings of one URL are one resource.
    JwtAuth::builder()
        .hmac_secret(SECRET)
        .resource("https://API.example.com:443/mcp")
        .protected_resource(ProtectedResource::new("https://api.example.com/mcp").unwrap())
        .build()
        .unwrap();
}
