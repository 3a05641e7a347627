//! The per-request cost of certificate binding (RFC 8705): the `CertificateBound` check with the
//! certificate from the TLS connection (a `ClientCertificate` extension, its thumbprint computed
//! once per connection) and from a trusted proxy's RFC 9440 `Client-Cert` header (decoded and
//! hashed on every request), against the SHA-256 of the certificate alone; and a whole request
//! through an axum route with the layer (a cache hit), bound and checked against unbound.
//!
//! The certificate is a real one (rcgen, ECDSA P-256), the size of a typical client certificate.
//!
//! `cargo bench --bench certificate`

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use tower::ServiceExt;
use tower_jwt_guard::binding::{
    BindingPolicy, ClientCertificate, NewBinding, PeerAddr, RequestHead, TrustedProxies,
};
use tower_jwt_guard::issue::SigningKey;
use tower_jwt_guard::{Algorithm, CertificateBound, JwtAuth, TokenIssuer};

const SECRET: &[u8] = b"certificate-bench-secret-of-32-bytes!";

fn certificate_der() -> Vec<u8> {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["client.example.com".to_string()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "client.example.com");
    params.extended_key_usages.push(rcgen::ExtendedKeyUsagePurpose::ClientAuth);
    params.self_signed(&key).unwrap().der().to_vec()
}

fn certificate(c: &mut Criterion) {
    let der = certificate_der();
    let certificate = ClientCertificate::from_der(der.clone());
    let peer: SocketAddr = "10.0.0.5:443".parse().unwrap();

    // Over the TLS connection: the extension a server inserts per connection.
    let mut over_tls = http::Request::new(());
    over_tls.extensions_mut().insert(PeerAddr(peer));
    over_tls.extensions_mut().insert(certificate.clone());
    let direct = CertificateBound::required();
    let mut binding = NewBinding::default();
    direct.bind(&RequestHead::of(&over_tls), &mut binding).unwrap();
    let cnf = binding.confirmation().clone();
    direct.check(&RequestHead::of(&over_tls), Some(&cnf)).unwrap();

    // Behind a trusted TLS-terminating proxy: the Client-Cert header.
    let header = format!(":{}:", base64::engine::general_purpose::STANDARD.encode(&der));
    let mut via_proxy = http::Request::builder().header("client-cert", header).body(()).unwrap();
    via_proxy.extensions_mut().insert(PeerAddr(peer));
    let behind_proxy =
        CertificateBound::required().trusted_proxies(TrustedProxies::parse("10.0.0.0/8").unwrap());
    behind_proxy.check(&RequestHead::of(&via_proxy), Some(&cnf)).unwrap();

    let mut group = c.benchmark_group("certificate");
    group.measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    group.bench_function(format!("SHA-256 of the certificate alone ({} bytes)", der.len()), |b| {
        b.iter(|| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, black_box(&der)))
    });
    group.bench_function("check, certificate of the TLS connection", |b| {
        b.iter(|| direct.check(&RequestHead::of(black_box(&over_tls)), Some(&cnf)).unwrap())
    });
    group.bench_function("check, Client-Cert header of a trusted proxy", |b| {
        b.iter(|| behind_proxy.check(&RequestHead::of(black_box(&via_proxy)), Some(&cnf)).unwrap())
    });
    group.finish();

    // A whole request through the layer (verified-token cache hit): bound vs plain bearer.
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let route =
        |auth: JwtAuth| Router::new().route("/me", get(|| async { "ok" })).route_layer(auth.layer::<Value>());
    let plain_router = route(JwtAuth::builder().hmac_secret(SECRET).build().unwrap());
    let bound_router =
        route(JwtAuth::builder().hmac_secret(SECRET).binding(CertificateBound::required()).build().unwrap());
    let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap());
    let plain_token = issuer.build().mint("alice", &json!({})).unwrap().token;
    let bound_issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap())
        .binding(CertificateBound::required())
        .build();
    let bound_token = runtime.block_on(bound_issuer.mint_for(&over_tls, "alice", &json!({}))).unwrap().token;
    let request = |token: &str| {
        let mut request = http::Request::get("/me")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap();
        request.extensions_mut().insert(PeerAddr(peer));
        request.extensions_mut().insert(certificate.clone());
        request
    };
    for (router, token) in [(&plain_router, &plain_token), (&bound_router, &bound_token)] {
        let status = runtime.block_on(router.clone().oneshot(request(token))).unwrap().status();
        assert_eq!(status, 200);
    }
    let mut group = c.benchmark_group("certificate layer");
    group.measurement_time(Duration::from_secs(5)).warm_up_time(Duration::from_secs(1));
    group.bench_function("bearer token (cache hit)", |b| {
        b.to_async(&runtime).iter(|| plain_router.clone().oneshot(request(&plain_token)))
    });
    group.bench_function("certificate-bound token (cache hit + check)", |b| {
        b.to_async(&runtime).iter(|| bound_router.clone().oneshot(request(&bound_token)))
    });
    group.finish();
}

criterion_group!(benches, certificate);
criterion_main!(benches);
