//! Certificate-bound tokens (RFC 8705) over real TLS on loopback: certificates made here with
//! rcgen (a CA, two client certificates it signed, a self-signed one); axum and hyper servers over
//! tokio-rustls (the connection's certificate put into each request with
//! `ClientCertificate::from_rustls`), a tonic server with TLS (tonic's `TlsConnectInfo`); reqwest,
//! hyper and tonic clients with client identities; the RFC 9440 `Client-Cert` header of a trusted
//! proxy; and the quickstart example run as a process with its TLS configuration.

#![cfg(feature = "rustls")]

mod dpop_support;
mod example_process;
mod harness;
#[path = "common/pki.rs"]
#[allow(dead_code)]
mod pki;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use bytes::Bytes;
use harness::{answer, Answer};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use pki::{leaf, Identity, TestCa};
use rcgen::ExtendedKeyUsagePurpose;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde_json::{json, Value};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_jwt_guard::binding::{ClientCertificate, ConnectionScheme, Dpop, PeerAddr, TrustedProxies};
use tower_jwt_guard::issue::SigningKey;
use tower_jwt_guard::{Algorithm, CertificateBound, Claims, JwtAuth, TokenIssuer};

const SECRET: &str = "certificate-binding-secret-32-bytes!!";

impl Identity {
    fn certificate(&self) -> ClientCertificate {
        ClientCertificate::from_der(self.der.clone())
    }

    fn tonic(&self) -> tonic::transport::Identity {
        tonic::transport::Identity::from_pem(&self.cert_pem, &self.key_pem)
    }

    /// The RFC 9440 `Client-Cert` value: `:base64(DER):`.
    fn client_cert_header(&self) -> String {
        format!(":{}:", base64::engine::general_purpose::STANDARD.encode(&self.der))
    }
}

/// The test PKI: a CA, a server certificate for `localhost` / `127.0.0.1`, two client
/// certificates signed by the CA, and a self-signed client certificate.
struct Pki {
    ca_pem: String,
    server: Identity,
    alice: Identity,
    bob: Identity,
    self_signed: Identity,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca = TestCa::new("test client and server CA");
        use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
        Pki {
            ca_pem: ca.pem.clone(),
            server: leaf(&["localhost", "127.0.0.1"], ServerAuth, Some(&ca)),
            alice: leaf(&["alice.client"], ClientAuth, Some(&ca)),
            bob: leaf(&["bob.client"], ClientAuth, Some(&ca)),
            self_signed: leaf(&["self-signed.client"], ClientAuth, None),
        }
    })
}

/// A rustls server configuration: the test server certificate, client certificates optional and
/// verified against the test CA.
fn server_config() -> Arc<ServerConfig> {
    let pki = pki();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap()).unwrap();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
        .allow_unauthenticated()
        .build()
        .unwrap();
    let chain = vec![CertificateDer::from_pem_slice(pki.server.cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(pki.server.key_pem.as_bytes()).unwrap();
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Serves `service` over TLS on an ephemeral loopback port, as a hyper-util server over
/// tokio-rustls does: each request carries its connection's peer address and client certificate.
async fn serve_tls<S, B>(service: S) -> SocketAddr
where
    S: Service<http::Request<Incoming>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config());
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = listener.accept().await.unwrap();
            let (acceptor, service) = (acceptor.clone(), service.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                // The helper under test: the leaf of the handshake's peer certificates.
                let certificate = ClientCertificate::from_rustls(tls.get_ref().1);
                let per_request = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
                    request.extensions_mut().insert(PeerAddr(peer));
                    // An HTTP/1.1 request names no scheme: the connection's is https.
                    request.extensions_mut().insert(ConnectionScheme::HTTPS);
                    if let Some(certificate) = &certificate {
                        request.extensions_mut().insert(certificate.clone());
                    }
                    service.clone().oneshot(request)
                });
                let builder =
                    hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(tls), per_request).await;
            });
        }
    });
    addr
}

/// A reqwest client that trusts the test CA, presenting `identity` when given.
fn client(identity: Option<&Identity>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(pki().ca_pem.as_bytes()).unwrap();
    let mut builder = reqwest::Client::builder().tls_certs_only([ca]);
    if let Some(identity) = identity {
        builder = builder.identity(identity.reqwest());
    }
    builder.build().unwrap()
}

/// A token issuer that binds to the token request's certificate (`x5t#S256`).
fn bound_issuer() -> TokenIssuer {
    TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap())
        .binding(CertificateBound::required())
        .build()
}

/// A token for `sub` bound to `identity`'s certificate, minted for a token request made over a
/// connection with that certificate.
async fn bound_token(sub: &str, identity: &Identity) -> String {
    let mut token_request = http::Request::new(());
    token_request.extensions_mut().insert(identity.certificate());
    bound_issuer().mint_for(&token_request, sub, &json!({})).await.unwrap().token
}

/// An unbound token, with `edit` applied to its claims.
fn token_with(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap())
        .build()
        .mint_with("carol", &json!({}), edit)
        .unwrap()
        .token
}

fn bearer_token() -> String {
    token_with(|_| {})
}

async fn me(Claims(claims): Claims<Value>) -> String {
    claims["sub"].as_str().unwrap_or_default().to_owned()
}

/// An axum app whose `/me` needs a token bound by `policy`.
fn app(policy: CertificateBound) -> Router {
    let auth = JwtAuth::builder().hmac_secret(SECRET).binding(policy).build().unwrap();
    Router::new().route("/me", get(me)).route_layer(auth.layer::<Value>())
}

/// `token` at `url`: accepted as `sub` over a connection with `holder`'s certificate, refused
/// (`BINDING_MISMATCH`) over one with `other`'s.
async fn assert_bound(url: &str, token: &str, sub: &str, holder: &Identity, other: &Identity) {
    let ok = answer(client(Some(holder)).get(url).bearer_auth(token)).await;
    assert_eq!((ok.status, ok.body["sub"].clone()), (200, json!(sub)), "{:?}", ok.body);
    assert_mismatch(&answer(client(Some(other)).get(url).bearer_auth(token)).await);
}

fn assert_mismatch(answer: &Answer) {
    assert_eq!((answer.status, answer.code()), (401, "BINDING_MISMATCH"), "{:?}", answer.body);
    assert_eq!(answer.body["binding"], "certificate", "{:?}", answer.body);
}

#[tokio::test]
async fn axum_over_tls_accepts_the_bound_token_only_with_its_certificate() {
    let pki = pki();
    let url = format!("https://127.0.0.1:{}/me", serve_tls(app(CertificateBound::required())).await.port());
    let alice = bound_token("alice", &pki.alice).await;

    let ok = answer(client(Some(&pki.alice)).get(&url).bearer_auth(&alice)).await;
    assert_eq!((ok.status, ok.body.clone()), (200, json!("alice")));

    // Stolen: the same token over another certificate, or over none.
    assert_mismatch(&answer(client(Some(&pki.bob)).get(&url).bearer_auth(&alice)).await);
    assert_mismatch(&answer(client(None).get(&url).bearer_auth(&alice)).await);
    // Required: an unbound token is refused even with a certificate.
    assert_mismatch(&answer(client(Some(&pki.alice)).get(&url).bearer_auth(bearer_token())).await);
    // A certificate the CA did not sign never gets through the handshake.
    assert!(client(Some(&pki.self_signed)).get(&url).bearer_auth(&alice).send().await.is_err());
}

#[tokio::test]
async fn allowed_lets_bearer_tokens_through_and_still_checks_bound_ones() {
    let pki = pki();
    let url = format!("https://127.0.0.1:{}/me", serve_tls(app(CertificateBound::allowed())).await.port());
    let plain = answer(client(None).get(&url).bearer_auth(bearer_token())).await;
    assert_eq!(plain.status, 200);
    let bob = bound_token("bob", &pki.bob).await;
    assert_eq!(answer(client(Some(&pki.bob)).get(&url).bearer_auth(&bob)).await.status, 200);
    assert_mismatch(&answer(client(Some(&pki.alice)).get(&url).bearer_auth(&bob)).await);
    assert_mismatch(&answer(client(None).get(&url).bearer_auth(&bob)).await);
}

#[tokio::test]
async fn without_the_policy_a_certificate_bound_token_is_refused() {
    let pki = pki();
    let auth = JwtAuth::builder().hmac_secret(SECRET).build().unwrap();
    let app = Router::new().route("/me", get(me)).route_layer(auth.layer::<Value>());
    let url = format!("https://127.0.0.1:{}/me", serve_tls(app).await.port());
    let refused =
        answer(client(Some(&pki.alice)).get(&url).bearer_auth(bound_token("alice", &pki.alice).await)).await;
    assert_eq!((refused.status, refused.code()), (401, "BINDING_MISMATCH"));
    assert_eq!(refused.body["binding"], "x5t#S256");
}

/// DPoP with the origin taken from the request, on an in-process TLS server over HTTP/1.1 (whose
/// requests name no scheme): `htu` is `https://…`, the connection's scheme, with or without a
/// client certificate; an `http://` proof is refused.
#[tokio::test]
async fn dpop_over_tls_and_http_1_1_signs_https() {
    let pki = pki();
    let auth =
        JwtAuth::builder().hmac_secret(SECRET).dpop(Dpop::allowed().origin_from_request()).build().unwrap();
    let app = Router::new().route("/me", get(me)).route_layer(auth.layer::<Value>());
    let port = serve_tls(app).await.port();
    let key = dpop_support::ProofKey::generate(Algorithm::ES256);
    let token = token_with(|claims| {
        claims.insert("cnf".into(), json!({ "jkt": key.jkt() }));
    });
    let url = format!("https://127.0.0.1:{port}/me");
    for identity in [None, Some(&pki.alice)] {
        let http1 = |htu: &str| {
            let ca = reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap();
            let mut builder = reqwest::Client::builder().tls_certs_only([ca]).http1_only();
            if let Some(identity) = identity {
                builder = builder.identity(identity.reqwest());
            }
            builder
                .build()
                .unwrap()
                .get(&url)
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", key.proof("GET", htu, Some(&token)))
        };
        let accepted = answer(http1(&url)).await;
        assert_eq!(accepted.status, 200, "{:?}", accepted.body);
        let plain = answer(http1(&format!("http://127.0.0.1:{port}/me"))).await;
        assert_eq!((plain.status, plain.code()), (401, "INVALID_DPOP_PROOF"));
    }
}

#[tokio::test]
async fn plain_tcp_has_no_certificate() {
    let pki = pki();
    let addr = harness::serve(app(CertificateBound::required())).await;
    let url = format!("http://{addr}/me");
    let refused =
        answer(harness::client().get(&url).bearer_auth(bound_token("alice", &pki.alice).await)).await;
    assert_mismatch(&refused);
    // A Client-Cert header from a peer that is no trusted proxy is ignored, even a true one.
    let spoofed = harness::client()
        .get(&url)
        .bearer_auth(bound_token("alice", &pki.alice).await)
        .header("client-cert", pki.alice.client_cert_header());
    assert_mismatch(&answer(spoofed).await);
}

#[tokio::test]
async fn hyper_over_tls_with_a_hyper_client() {
    let pki = pki();
    let auth = JwtAuth::builder().hmac_secret(SECRET).binding(CertificateBound::required()).build().unwrap();
    let service =
        ServiceBuilder::new().layer(auth.layer::<Value>()).service_fn(|_: http::Request<Incoming>| async {
            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"hello"))))
        });
    let addr = serve_tls(service).await;

    // A hyper HTTP/1.1 client over tokio-rustls, with or without a client identity.
    let call = |identity: Option<&'static Identity>, token: String| async move {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).unwrap()).unwrap();
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        let config = match identity {
            Some(identity) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(identity.cert_pem.as_bytes()).unwrap()],
                    PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.unwrap();
        tokio::spawn(connection);
        let request = http::Request::get("/me")
            .header("host", "localhost")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null))
    };
    let token = bound_token("alice", &pki.alice).await;
    assert_eq!(call(Some(&pki.alice), token.clone()).await.0, 200);
    let (status, body) = call(Some(&pki.bob), token.clone()).await;
    assert_eq!(
        (status, body["code"].as_str(), body["binding"].as_str()),
        (401, Some("BINDING_MISMATCH"), Some("certificate"))
    );
    assert_eq!(call(None, token).await.0, 401);
}

#[tokio::test]
async fn client_cert_header_binds_only_from_a_trusted_proxy() {
    let pki = pki();
    // Behind a TLS-terminating proxy on loopback: the proxy's Client-Cert header is the certificate.
    let proxies = TrustedProxies::parse("127.0.0.1").unwrap();
    let addr = harness::serve(app(CertificateBound::required().trusted_proxies(proxies))).await;
    let url = format!("http://{addr}/me");
    let alice = bound_token("alice", &pki.alice).await;
    let via_proxy = |header: Option<String>| {
        let request = harness::client().get(&url).bearer_auth(&alice);
        match header {
            Some(value) => request.header("client-cert", value),
            None => request,
        }
    };
    let ok = answer(via_proxy(Some(pki.alice.client_cert_header()))).await;
    assert_eq!((ok.status, ok.body.clone()), (200, json!("alice")));
    // Without padding (RFC 8941 parsers accept it) and with surrounding spaces.
    let unpadded = format!(" {} ", pki.alice.client_cert_header().replace('=', ""));
    assert_eq!(answer(via_proxy(Some(unpadded))).await.status, 200);
    assert_mismatch(&answer(via_proxy(Some(pki.bob.client_cert_header()))).await);
    assert_mismatch(&answer(via_proxy(None)).await);
    // Malformed values: a clean refusal with a code, never a 500.
    for malformed in ["", "MIIB", ":not base64!:", ":aGVsbG8=:", "::", ":MA==:"] {
        assert_mismatch(&answer(via_proxy(Some(malformed.to_owned()))).await);
    }
    let twice = harness::client()
        .get(&url)
        .bearer_auth(&alice)
        .header("client-cert", pki.alice.client_cert_header())
        .header("client-cert", pki.alice.client_cert_header());
    assert_mismatch(&answer(twice).await);

    // From a peer that is not a trusted proxy the header is ignored: the TLS connection counts.
    let elsewhere = TrustedProxies::parse("10.0.0.0/8").unwrap();
    let tls_url = format!(
        "https://127.0.0.1:{}/me",
        serve_tls(app(CertificateBound::required().trusted_proxies(elsewhere))).await.port()
    );
    let bob = bound_token("bob", &pki.bob).await;
    let lie = client(Some(&pki.alice))
        .get(&tls_url)
        .bearer_auth(&bob)
        .header("client-cert", pki.bob.client_cert_header());
    assert_mismatch(&answer(lie).await);
    let truth = client(Some(&pki.alice))
        .get(&tls_url)
        .bearer_auth(&alice)
        .header("client-cert", pki.bob.client_cert_header());
    assert_eq!(answer(truth).await.status, 200);
}

#[tokio::test]
async fn malformed_thumbprint_claims_are_refused_cleanly() {
    let pki = pki();
    let url = format!("https://127.0.0.1:{}/me", serve_tls(app(CertificateBound::allowed())).await.port());
    let thumbprint = harness::b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &pki.alice.der));
    // The right thumbprint, written by hand: passes (the oracle for the crate's encoding).
    let by_hand = token_with(|claims| {
        claims.insert("cnf".into(), json!({ "x5t#S256": thumbprint }));
    });
    assert_eq!(answer(client(Some(&pki.alice)).get(&url).bearer_auth(by_hand)).await.status, 200);
    let padded = format!("{thumbprint}=");
    let standard = base64::engine::general_purpose::STANDARD.encode(harness::b64_decode(&thumbprint));
    for bad in [
        json!(""),
        json!("abc"),
        json!(padded),
        json!(standard),
        json!(harness::b64([0u8; 31])),
        json!(harness::b64([0u8; 48])),
    ] {
        let token = token_with(|claims| {
            claims.insert("cnf".into(), json!({ "x5t#S256": bad }));
        });
        let refused = answer(client(Some(&pki.alice)).get(&url).bearer_auth(token)).await;
        assert_eq!(refused.status, 401, "{bad}: {:?}", refused.body);
        assert!(["INVALID_TOKEN", "BINDING_MISMATCH"].contains(&refused.code()), "{bad}: {:?}", refused.body);
    }
    for wrong_type in [json!(5), json!(null), json!(["a"])] {
        let token = token_with(|claims| {
            claims.insert("cnf".into(), json!({ "x5t#S256": wrong_type }));
        });
        let refused = answer(client(Some(&pki.alice)).get(&url).bearer_auth(token)).await;
        assert_eq!((refused.status, refused.code()), (401, "INVALID_TOKEN"), "{wrong_type}");
    }
}

#[tokio::test]
async fn the_issuer_binds_only_with_a_certificate() {
    // Required: no certificate on the token request, no token.
    let refused = bound_issuer().mint_for(&http::Request::new(()), "alice", &json!({})).await.unwrap_err();
    assert!(refused.to_string().contains("certificate"), "{refused}");
    // Allowed: a bearer token without `cnf`, and a bound one with a certificate.
    let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap())
        .binding(CertificateBound::allowed())
        .build();
    let unbound = issuer.mint_for(&http::Request::new(()), "alice", &json!({})).await.unwrap().token;
    assert!(!payload(&unbound).as_object().unwrap().contains_key("cnf"));
    let bound = bound_token("alice", &pki().alice).await;
    let expected = harness::b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &pki().alice.der));
    assert_eq!(payload(&bound)["cnf"], json!({ "x5t#S256": expected }));
}

fn payload(token: &str) -> Value {
    serde_json::from_slice(&harness::b64_decode(token.split('.').nth(1).unwrap())).unwrap()
}

/// tonic with TLS: the certificate comes from tonic's own `TlsConnectInfo`.
#[cfg(feature = "tonic")]
mod grpc {
    use super::*;

    use tonic::transport::server::TcpIncoming;
    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Server, ServerTlsConfig};
    use tonic::Code;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;

    async fn health_server() -> SocketAddr {
        let pki = pki();
        let auth =
            JwtAuth::builder().hmac_secret(SECRET).binding(CertificateBound::required()).build().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tls = ServerTlsConfig::new()
            .identity(pki.server.tonic())
            .client_ca_root(Certificate::from_pem(&pki.ca_pem))
            .client_auth_optional(true);
        let (_reporter, health) = tonic_health::server::health_reporter();
        let server = Server::builder()
            .tls_config(tls)
            .unwrap()
            .layer(auth.layer::<Value>())
            .add_service(health)
            .serve_with_incoming(TcpIncoming::from(listener));
        tokio::spawn(server);
        addr
    }

    pub(super) async fn check(
        addr: SocketAddr,
        identity: Option<&Identity>,
        token: &str,
    ) -> Result<(), tonic::Status> {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&pki().ca_pem))
            .domain_name("localhost");
        if let Some(identity) = identity {
            tls = tls.identity(identity.tonic());
        }
        let channel = Channel::from_shared(format!("https://{addr}"))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut request = tonic::Request::new(HealthCheckRequest { service: String::new() });
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        HealthClient::new(channel).check(request).await.map(drop)
    }

    #[tokio::test]
    async fn tonic_reads_the_certificate_of_its_tls_connection() {
        let pki = pki();
        let addr = health_server().await;
        let token = bound_token("alice", &pki.alice).await;
        check(addr, Some(&pki.alice), &token).await.unwrap();
        for identity in [Some(&pki.bob), None] {
            let status = check(addr, identity, &token).await.unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
            assert!(status.message().starts_with("BINDING_MISMATCH"), "{status:?}");
            assert!(status.message().contains("certificate"), "{status:?}");
        }
    }
}

/// The real examples, as a user runs them with `TLS_CERT`, `TLS_KEY` and `TLS_CLIENT_CA` (and
/// without `TLS_CLIENT_CA`: any client certificate, self-signed ones included).
mod examples {
    use super::*;
    use example_process::Example;

    /// Writes the test PKI's files into a fresh directory: (dir, path of each name).
    fn files() -> (std::path::PathBuf, impl Fn(&str) -> String) {
        let pki = pki();
        let dir = std::env::temp_dir().join(format!("tjg-mtls-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, content) in [
            ("ca.pem", &pki.ca_pem),
            ("server.pem", &pki.server.cert_pem),
            ("server-key.pem", &pki.server.key_pem),
            ("alice.pem", &pki.alice.cert_pem),
            ("alice-key.pem", &pki.alice.key_pem),
            ("bob.pem", &pki.bob.cert_pem),
            ("bob-key.pem", &pki.bob.key_pem),
            ("self-signed.pem", &pki.self_signed.cert_pem),
        ] {
            std::fs::write(dir.join(name), content).unwrap();
        }
        let base = dir.clone();
        (dir, move |name: &str| base.join(name).to_string_lossy().into_owned())
    }

    fn rand_suffix() -> u64 {
        let mut bytes = [0u8; 8];
        aws_lc_rs::rand::fill(&mut bytes).unwrap();
        u64::from_le_bytes(bytes)
    }

    /// The token of the banner's `--cert` line.
    fn printed_bound_token(example: &mut Example) -> String {
        loop {
            let line = example.next_line();
            if line.contains("--cert") {
                return line.split("Bearer ").nth(1).unwrap().split('\'').next().unwrap().to_owned();
            }
        }
    }

    #[tokio::test]
    async fn quickstart_serves_https_with_client_certificates() {
        let pki = pki();
        let (dir, path) = files();
        let mut running = Example::start(
            "quickstart",
            &[
                ("JWT_SECRET", SECRET),
                ("TLS_CERT", &path("server.pem")),
                ("TLS_KEY", &path("server-key.pem")),
                ("TLS_CLIENT_CA", &path("ca.pem")),
                ("DEMO_CLIENT_CERT", &path("alice.pem")),
            ],
        );
        assert!(running.url().starts_with("https://"), "{}", running.banner);
        let printed = printed_bound_token(&mut running);
        let me = format!("https://127.0.0.1:{}/me", running.addr.port());

        // The printed token, and one the test mints itself: each passes only with alice's certificate.
        for token in [printed, bound_token("alice", &pki.alice).await] {
            assert_bound(&me, &token, "alice", &pki.alice, &pki.bob).await;
            assert_mismatch(&answer(client(None).get(&me).bearer_auth(&token)).await);
        }
        // Plain bearer tokens still pass, with or without a certificate.
        assert_eq!(answer(client(None).get(&me).bearer_auth(bearer_token())).await.status, 200);
        assert_eq!(answer(client(Some(&pki.bob)).get(&me).bearer_auth(bearer_token())).await.status, 200);
        // TLS_CLIENT_CA: a certificate it did not sign is refused at the handshake.
        assert!(client(Some(&pki.self_signed)).get(&me).send().await.is_err());
        // DPoP (on by default) checks `htu` against the https URL it serves.
        let key = dpop_support::ProofKey::generate(Algorithm::ES256);
        let dpop_token = token_with(|claims| {
            claims.insert("cnf".into(), json!({ "jkt": key.jkt() }));
        });
        let proof = key.proof("GET", &me, Some(&dpop_token));
        let dpop =
            client(None).get(&me).header("authorization", format!("DPoP {dpop_token}")).header("dpop", proof);
        assert_eq!(answer(dpop).await.status, 200);
        drop(running);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn quickstart_without_a_client_ca_binds_self_signed_certificates() {
        let pki = pki();
        let (dir, path) = files();
        let running = Example::start(
            "quickstart",
            &[
                ("JWT_SECRET", SECRET),
                ("TLS_CERT", &path("server.pem")),
                ("TLS_KEY", &path("server-key.pem")),
            ],
        );
        let me = format!("https://127.0.0.1:{}/me", running.addr.port());
        let token = bound_token("selfie", &pki.self_signed).await;
        assert_bound(&me, &token, "selfie", &pki.self_signed, &pki.alice).await;
        drop(running);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn quickstart_refuses_half_a_tls_configuration() {
        let (dir, path) = files();
        for (env, variable) in [
            (vec![("TLS_CERT", path("server.pem"))], "TLS_KEY"),
            (vec![("TLS_KEY", path("server-key.pem"))], "TLS_CERT"),
            (vec![("TLS_CLIENT_CA", path("ca.pem"))], "TLS_CLIENT_CA"),
            (vec![("TLS_CERT", path("server-key.pem")), ("TLS_KEY", path("server-key.pem"))], "TLS_CERT"),
            (vec![("TLS_CERT", path("server.pem")), ("TLS_KEY", path("alice.pem"))], "TLS_KEY"),
        ] {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let output = example_process::expect_exit("quickstart", &env);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{env:?}: {stderr}");
            assert!(stderr.contains(variable), "{env:?}: {stderr}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn hyper_server_serves_https_with_the_certificate_of_each_connection() {
        let pki = pki();
        let (dir, path) = files();
        let running = Example::start(
            "hyper_server",
            &[
                ("JWT_SECRET", SECRET),
                ("TLS_CERT", &path("server.pem")),
                ("TLS_KEY", &path("server-key.pem")),
                ("TLS_CLIENT_CA", &path("ca.pem")),
            ],
        );
        assert!(running.url().starts_with("https://"), "{}", running.banner);
        let me = format!("https://127.0.0.1:{}/me", running.addr.port());
        let token = bound_token("alice", &pki.alice).await;
        assert_bound(&me, &token, "alice", &pki.alice, &pki.bob).await;
        assert_eq!(answer(client(None).get(&me).bearer_auth(bearer_token())).await.status, 200);
        drop(running);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Issue #25 (RFC 8705 §4): full_flow over mutual TLS binds the session to the login's
    /// certificate: the access token (`cnf.x5t#S256`) and the refresh-token family. A refresh over
    /// a connection with another certificate, or none, is refused and rotates nothing.
    #[tokio::test]
    async fn full_flow_binds_the_refresh_token_to_the_logins_certificate() {
        let pki = pki();
        let (dir, path) = files();
        let running = Example::start(
            "full_flow",
            &[
                ("JWT_SECRET", SECRET),
                ("TLS_CERT", &path("server.pem")),
                ("TLS_KEY", &path("server-key.pem")),
                ("TLS_CLIENT_CA", &path("ca.pem")),
            ],
        );
        let base = format!("https://127.0.0.1:{}", running.addr.port());
        let (alice, bob, anonymous) = (client(Some(&pki.alice)), client(Some(&pki.bob)), client(None));
        let body = json!({ "username": "alice", "password": "alice-password" });
        let login = answer(alice.post(format!("{base}/auth/login")).json(&body)).await;
        assert_eq!(login.status, 200, "{:?}", login.body);
        let token = login.body["access_token"].as_str().unwrap().to_owned();
        let thumbprint = harness::b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &pki.alice.der));
        assert_eq!(payload(&token)["cnf"]["x5t#S256"], json!(thumbprint));
        let cookie = |answer: &harness::Answer| {
            let found = answer
                .headers
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                // Over HTTPS the cookie carries the `__Host-` prefix.
                .find(|v| v.starts_with("__Host-refresh_token=") && !v.starts_with("__Host-refresh_token=;"));
            found.map(|v| v.split(';').next().unwrap().to_owned())
        };
        let refresh_cookie = cookie(&login).expect("the refresh cookie");
        let refresh = |client: &reqwest::Client, cookie: &str| {
            client.post(format!("{base}/auth/refresh")).header("cookie", cookie.to_owned())
        };
        for (who, client) in [("bob's certificate", &bob), ("no certificate", &anonymous)] {
            let refused = answer(refresh(client, &refresh_cookie)).await;
            assert_eq!(
                (refused.status, refused.code()),
                (400, "SENDER_MISMATCH"),
                "{who}: {:?}",
                refused.body
            );
            assert_eq!(cookie(&refused), None, "{who}: nothing rotated");
        }
        let renewed = answer(refresh(&alice, &refresh_cookie)).await;
        assert_eq!(renewed.status, 200, "{:?}", renewed.body);
        let renewed_token = renewed.body["access_token"].as_str().unwrap();
        assert_eq!(payload(renewed_token)["cnf"]["x5t#S256"], json!(thumbprint));
        drop(running);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[cfg(feature = "tonic")]
    #[tokio::test]
    async fn tonic_server_serves_grpc_over_tls_with_tonics_connect_info() {
        let pki = pki();
        let (dir, path) = files();
        let running = Example::start(
            "tonic_server",
            &[
                ("JWT_SECRET", SECRET),
                ("TLS_CERT", &path("server.pem")),
                ("TLS_KEY", &path("server-key.pem")),
            ],
        );
        let token = bound_token("alice", &pki.alice).await;
        grpc::check(running.addr, Some(&pki.alice), &token).await.unwrap();
        let status = grpc::check(running.addr, Some(&pki.bob), &token).await.unwrap_err();
        assert!(status.message().starts_with("BINDING_MISMATCH"), "{status:?}");
        // Without TLS_CLIENT_CA any certificate is accepted for binding: a self-signed one too.
        let selfie = bound_token("selfie", &pki.self_signed).await;
        grpc::check(running.addr, Some(&pki.self_signed), &selfie).await.unwrap();
        grpc::check(running.addr, None, &bearer_token()).await.unwrap();
        // The tonic_client example with TLS_CA and alice's identity.
        let server = format!("https://{}", running.addr);
        let env = |cert: &str| {
            vec![
                ("SERVER", server.clone()),
                ("TLS_CA", path("ca.pem")),
                ("TLS_CLIENT_CERT", path(&format!("{cert}.pem"))),
                ("TLS_CLIENT_KEY", path(&format!("{cert}-key.pem"))),
            ]
        };
        for (cert, expected) in [("alice", "SERVING"), ("bob", "BINDING_MISMATCH")] {
            let env = env(cert);
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let output = example_process::run("tonic_client", &[&token], &env);
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                stdout.contains(expected),
                "{cert}: {stdout} {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        drop(running);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// full_flow over HTTPS hands out its refresh token in a `__Host-` cookie (RFC 6265bis
    /// §4.1.3.2: `Secure`, `Path=/`, no `Domain`), which no sibling subdomain can set; a plain
    /// `refresh_token` cookie tossed beside it is another cookie, ignored.
    #[tokio::test]
    async fn full_flow_over_https_uses_a_host_cookie_that_a_tossed_cookie_cannot_shadow() {
        let (dir, path) = files();
        let running = Example::start(
            "full_flow",
            &[
                ("JWT_SECRET", SECRET),
                ("TLS_CERT", &path("server.pem")),
                ("TLS_KEY", &path("server-key.pem")),
            ],
        );
        let base = format!("https://127.0.0.1:{}", running.addr.port());
        let http = client(None);
        let login = http
            .post(format!("{base}/auth/login"))
            .json(&json!({ "username": "alice", "password": "alice-password" }));
        let login = answer(login).await;
        assert_eq!(login.status, 200, "{:?}", login.body);
        let host_cookie = |answer: &Answer| {
            let mut values = answer.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok());
            let found = values.find(|v| v.starts_with("__Host-refresh_token="));
            let set_cookie =
                found.unwrap_or_else(|| panic!("no __Host- cookie: {:?}", answer.headers)).to_owned();
            let attributes: Vec<&str> = set_cookie.split(';').skip(1).map(str::trim).collect();
            for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
                assert!(attributes.contains(&attribute), "{attribute} missing: {set_cookie}");
            }
            assert!(!attributes.iter().any(|a| a.to_ascii_lowercase().starts_with("domain")), "{set_cookie}");
            let value = set_cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned();
            assert!(value.len() > 40, "{set_cookie}");
            value
        };
        let refresh = host_cookie(&login);
        let refresh_with =
            |cookie: String| http.post(format!("{base}/auth/refresh")).header("cookie", cookie);

        // The genuine token under the unprefixed name is not the session's cookie.
        let unprefixed = answer(refresh_with(format!("refresh_token={refresh}"))).await;
        assert_eq!(unprefixed.status, 401, "{:?}", unprefixed.body);
        // A sibling's `refresh_token` beside the __Host- cookie changes nothing.
        let tossed =
            answer(refresh_with(format!("refresh_token=tossed; __Host-refresh_token={refresh}"))).await;
        assert_eq!(tossed.status, 200, "{:?}", tossed.body);
        let rotated = host_cookie(&tossed);
        assert_ne!(rotated, refresh);
        drop(running);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The issue's "done when", with the real curl: `curl --cert` with the certificate-bound token
    /// the quickstart printed passes, with another certificate it gets 401 `BINDING_MISMATCH`.
    /// Outside CI a missing curl skips the test with a message; in CI (`CI` set) it fails.
    #[tokio::test]
    async fn curl_with_the_bound_certificate_passes_and_with_another_is_refused() {
        if std::process::Command::new("curl").arg("--version").output().is_err() {
            assert!(std::env::var_os("CI").is_none(), "curl is required in CI (.ci/run installs it)");
            eprintln!("skipped: curl not found");
            return;
        }
        let (dir, path) = files();
        let mut running = Example::start(
            "quickstart",
            &[
                ("JWT_SECRET", SECRET),
                ("TLS_CERT", &path("server.pem")),
                ("TLS_KEY", &path("server-key.pem")),
                ("TLS_CLIENT_CA", &path("ca.pem")),
                ("DEMO_CLIENT_CERT", &path("alice.pem")),
            ],
        );
        let token = printed_bound_token(&mut running);
        let me = format!("https://127.0.0.1:{}/me", running.addr.port());
        let curl = |cert: &str| {
            let output = std::process::Command::new("curl")
                .args(["-s", "-w", "\n%{http_code}", "--cacert", &path("ca.pem")])
                .args(["--cert", &path(&format!("{cert}.pem")), "--key", &path(&format!("{cert}-key.pem"))])
                .args(["-H", &format!("Authorization: Bearer {token}"), &me])
                .output()
                .unwrap();
            assert!(output.status.success(), "curl failed: {}", String::from_utf8_lossy(&output.stderr));
            let text = String::from_utf8(output.stdout).unwrap();
            let (body, status) = text.rsplit_once('\n').unwrap();
            (status.to_owned(), serde_json::from_str::<Value>(body).unwrap_or(Value::Null))
        };
        let (status, body) = curl("alice");
        assert_eq!((status.as_str(), body["sub"].clone()), ("200", json!("alice")), "{body}");
        let (status, body) = curl("bob");
        assert_eq!((status.as_str(), body["code"].clone()), ("401", json!("BINDING_MISMATCH")), "{body}");
        assert_eq!(body["binding"], "certificate");
        drop(running);
        let _ = std::fs::remove_dir_all(dir);
    }
}
