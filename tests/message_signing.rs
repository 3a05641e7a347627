//! The signing side of HTTP Message Signatures (RFC 9421): the RFC's vectors signed by our
//! signer (B.2.5 and B.2.6 byte for byte; the response bases of B.2.4 and §2.4 reproduced), then
//! over loopback: signed responses ([`SignResponseLayer`]) and the signing client
//! ([`SignRequestLayer`] under [`ServiceTokenLayer`]) against our own server, each tampering with
//! an answer detected by the client; and the other implementations: the npm
//! `http-message-signatures` verifies our answers and our requests, the PyPI one (pyauth) too.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use serde_json::{json, Value};
use tower::{ServiceBuilder, ServiceExt as _};
use tower_jwt_guard::binding::{
    MessageSignature, MessageSigner, RequestHead, SignatureAlgorithm, SignatureKey, SignatureParams,
};
use tower_jwt_guard::{
    ContentDigestLayer, JwtAuth, ServiceTokenLayer, ServiceTokens, SignRequestLayer, SignResponseLayer,
};

use common::message_signature::{data, npm_httpsig, python_httpsig, vector, vector_request};

/// RFC 9421 Appendix B.1.3, test-key-ecc-p256 (the private JWK).
const TEST_KEY_ECC_P256: &str = r#"{"kty":"EC","crv":"P-256","kid":"test-key-ecc-p256",
  "x":"qIVYZVLCrPZHGHjP17CTW0_-D9Lfw0EkjqF7xB4FivA","y":"Mc4nN9LTDOBhfoUeg8Ye9WedFRhnZXZJA12Qp0zZ6F0",
  "d":"UpuF81l-kOxbjf7T4mNSv0r5tN67Gim7rnf6EFpcYDs"}"#;
const CREATED: i64 = 1_618_884_473;

/// B.2.5 (hmac-sha256) and B.2.6 (ed25519, deterministic) as our signer writes them: the same
/// `Signature-Input`, the same base, the same signature bytes.
#[test]
fn rfc_9421_b25_and_b26_are_signed_byte_for_byte_by_our_signer() {
    let secret =
        base64::engine::general_purpose::STANDARD.decode(data("test-shared-secret.b64").trim()).unwrap();
    let cases = [
        (
            "B.2.5",
            MessageSigner::hmac_sha256(secret).unwrap().keyid("test-shared-secret"),
            vec!["date", "@authority", "content-type"],
        ),
        (
            "B.2.6",
            MessageSigner::from_pem(&data("test-key-ed25519.pem")).unwrap().keyid("test-key-ed25519"),
            vec!["date", "@method", "@path", "@authority", "content-type", "content-length"],
        ),
    ];
    for (section, signer, components) in cases {
        let vector = vector(section);
        let request = vector_request(&vector).body(()).unwrap();
        let params =
            SignatureParams::new(vector["label"].as_str().unwrap(), components).unwrap().created(CREATED);
        let signed = signer.sign_request(&RequestHead::of(&request), &params).unwrap();
        assert_eq!(signed.input(), vector["signature_input"].as_str().unwrap(), "{section}");
        assert_eq!(signed.base(), vector["signature_base"].as_str().unwrap(), "{section}");
        assert_eq!(signed.signature(), vector["signature"].as_str().unwrap(), "{section}");
        // The verifier accepts what the signer made.
        let mut request = request;
        signed.apply(request.headers_mut()).unwrap();
        let policy = MessageSignature::allowed()
            .cover(Vec::<String>::new())
            .key(signer.keyid_value().unwrap(), signer.verifying_key());
        policy.check_at(&RequestHead::of(&request), None, CREATED as u64 + 1).unwrap();
    }
}

/// Checks an ECDSA P-256 signature (r || s) of `base` with the RFC's test-key-ecc-p256.
fn p256_verifies(base: &str, signature_member: &str) -> bool {
    let jwk: Value = serde_json::from_str(TEST_KEY_ECC_P256).unwrap();
    let decode = |name: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap()
    };
    let mut point = vec![4u8];
    point.extend(decode("x"));
    point.extend(decode("y"));
    let encoded = signature_member.split_once("=:").unwrap().1.trim_end_matches(':');
    let signature = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED, point)
        .verify(base.as_bytes(), &signature)
        .is_ok()
}

/// The response examples: B.2.4 (a response signed with ecdsa-p256-sha256) and §2.4 (a 503
/// covering the request's components with `;req`). ECDSA is not deterministic: the bases are
/// reproduced exactly, the RFC's signatures verify over our bases, and ours over the same.
#[test]
fn rfc_9421_response_bases_b24_and_section_2_4_are_reproduced() {
    let signer = MessageSigner::from_jwk(TEST_KEY_ECC_P256).unwrap();
    assert_eq!(signer.algorithm(), SignatureAlgorithm::EcdsaP256Sha256);

    let mut headers = http::HeaderMap::new();
    headers.insert("date", "Tue, 20 Apr 2021 02:07:56 GMT".parse().unwrap());
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.insert(
        "content-digest",
        "sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:"
            .parse()
            .unwrap(),
    );
    headers.insert("content-length", "23".parse().unwrap());
    // RFC 9530: the digest is the body's ({"message": "good dog"}).
    assert_eq!(
        tower_jwt_guard::binding::ContentDigest::header_value_sha512(br#"{"message": "good dog"}"#),
        headers["content-digest"]
    );
    let params =
        SignatureParams::new("sig-b24", ["@status", "content-type", "content-digest", "content-length"])
            .unwrap()
            .created(CREATED);
    let signed = signer.sign_response(http::StatusCode::OK, &headers, None, &params).unwrap();
    let b24_base = "\"@status\": 200\n\"content-type\": application/json\n\"content-digest\": sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ41QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:\n\"content-length\": 23\n\"@signature-params\": (\"@status\" \"content-type\" \"content-digest\" \"content-length\");created=1618884473;keyid=\"test-key-ecc-p256\"";
    assert_eq!(signed.base(), b24_base);
    assert_eq!(
        signed.input(),
        r#"sig-b24=("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256""#
    );
    assert!(p256_verifies(
        b24_base,
        "sig-b24=:wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NKocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw==:"
    ));
    assert!(p256_verifies(signed.base(), signed.signature()));

    // §2.4: the test request (B.2) and the 503 that answers it.
    let request = vector_request(&vector("B.2.5")).body(()).unwrap();
    let mut headers = http::HeaderMap::new();
    headers.insert("date", "Tue, 20 Apr 2021 02:07:56 GMT".parse().unwrap());
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.insert("content-length", "62".parse().unwrap());
    headers.insert(
        "content-digest",
        "sha-512=:0Y6iCBzGg5rZtoXS95Ijz03mslf6KAMCloESHObfwnHJDbkkWWQz6PhhU9kxsTbARtY2PTBOzq24uJFpHsMuAg==:"
            .parse()
            .unwrap(),
    );
    let params = SignatureParams::new(
        "reqres",
        [
            "@status",
            "content-digest",
            "content-type",
            "\"@authority\";req",
            "\"@method\";req",
            "\"@path\";req",
            "\"content-digest\";req",
        ],
    )
    .unwrap()
    .created(1_618_884_479);
    let signed = signer
        .sign_response(
            http::StatusCode::SERVICE_UNAVAILABLE,
            &headers,
            Some(&RequestHead::of(&request)),
            &params,
        )
        .unwrap();
    let reqres_base = "\"@status\": 503\n\"content-digest\": sha-512=:0Y6iCBzGg5rZtoXS95Ijz03mslf6KAMCloESHObfwnHJDbkkWWQz6PhhU9kxsTbARtY2PTBOzq24uJFpHsMuAg==:\n\"content-type\": application/json\n\"@authority\";req: example.com\n\"@method\";req: POST\n\"@path\";req: /foo\n\"content-digest\";req: sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:\n\"@signature-params\": (\"@status\" \"content-digest\" \"content-type\" \"@authority\";req \"@method\";req \"@path\";req \"content-digest\";req);created=1618884479;keyid=\"test-key-ecc-p256\"";
    assert_eq!(signed.base(), reqres_base);
    assert!(p256_verifies(
        reqres_base,
        "reqres=:dMT/A/76ehrdBTD/2Xx8QuKV6FoyzEP/I9hdzKN8LQJLNgzU4W767HK05rx1i8meNQQgQPgQp8wq2ive3tV5Ag==:"
    ));
    assert!(p256_verifies(signed.base(), signed.signature()));

    // `;req` without the request, `@status` in a request, a request component without `;req`
    // in a response: refused.
    assert!(signer.sign_response(http::StatusCode::OK, &headers, None, &params).is_err());
    let status = SignatureParams::new("sig", ["@status"]).unwrap();
    assert!(signer.sign_request(&RequestHead::of(&request), &status).is_err());
    let method = SignatureParams::new("sig", ["@method"]).unwrap();
    assert!(signer
        .sign_response(http::StatusCode::OK, &headers, Some(&RequestHead::of(&request)), &method)
        .is_err());
}

#[test]
fn keys_load_from_pem_and_jwk_and_never_show_in_debug() {
    let ed = MessageSigner::from_pem(&data("test-key-ed25519.pem")).unwrap();
    assert_eq!(ed.algorithm(), SignatureAlgorithm::Ed25519);
    // The default keyid is the RFC 7638 thumbprint of the public key.
    assert_eq!(ed.keyid_value(), ed.verifying_key().thumbprint());
    let rendered = format!("{ed:?}");
    assert!(rendered.contains("REDACTED") && !rendered.contains("n+DYvh"), "{rendered}");
    for (pem, algorithm) in [
        (
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
            SignatureAlgorithm::EcdsaP256Sha256,
        ),
        (
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
            SignatureAlgorithm::EcdsaP384Sha384,
        ),
        (rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(), SignatureAlgorithm::Ed25519),
    ] {
        let signer = MessageSigner::from_pem(&pem.serialize_pem()).unwrap();
        assert_eq!(signer.algorithm(), algorithm);
        // Its own signatures verify with its public key.
        let request = http::Request::get("https://api.example.com/orders").body(()).unwrap();
        let params = SignatureParams::new("sig", ["@method", "@target-uri"]).unwrap();
        let signed = signer.sign_request(&RequestHead::of(&request), &params).unwrap();
        let mut request = request;
        signed.apply(request.headers_mut()).unwrap();
        let key = SignatureKey::from_jwk(&signer.public_jwk().unwrap().to_string()).unwrap();
        MessageSignature::required()
            .key(signer.keyid_value().unwrap(), key)
            .check_at(&RequestHead::of(&request), None, common::now())
            .unwrap();
    }
    use aws_lc_rs::encoding::AsDer as _;
    let rsa = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der: aws_lc_rs::encoding::Pkcs8V1Der = rsa.as_der().unwrap();
    let signer = MessageSigner::from_pkcs8_der(der.as_ref()).unwrap();
    assert_eq!(signer.algorithm(), SignatureAlgorithm::RsaPssSha512);
    assert!(MessageSigner::from_pem("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\n-----END PUBLIC KEY-----\n").is_err());
    assert!(MessageSigner::from_jwk(r#"{"kty":"oct","k":"c2hvcnQ"}"#).is_err(), "a short secret");
}

// ---- loopback ----

/// The server: `/orders` (GET answers the subject, POST echoes the body) behind the guard
/// (every request signed by `client`, covering `@method`, `@target-uri`, `authorization`; the
/// body checked against its `content-digest`), every answer signed by `server`.
async fn server(server: MessageSigner, client: SignatureKey) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let origin = format!("http://{addr}");
    let signatures = MessageSignature::required()
        .key("gateway", client)
        .cover(["@method", "@target-uri", "authorization"])
        .public_url(&origin);
    let auth = JwtAuth::builder().hmac_secret(common::SECRET).binding(signatures).build().unwrap();
    let app = Router::new()
        .route("/orders", get(common::me).post(|body: String| async move { body }))
        .route_layer(auth.layer::<common::User>())
        .layer(ContentDigestLayer::new())
        .layer(SignResponseLayer::new(server).tag("orders-api").public_url(&origin));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn tokens() -> ServiceTokens {
    ServiceTokens::builder(common::issuer(), "gateway").build().unwrap()
}

type Http =
    hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn http() -> Http {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

fn signers() -> (MessageSigner, MessageSigner) {
    let server = MessageSigner::from_pem(
        &rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap().serialize_pem(),
    )
    .unwrap();
    let client =
        MessageSigner::from_pem(&rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap().serialize_pem())
            .unwrap()
            .keyid("gateway");
    (server, client)
}

#[tokio::test]
async fn our_client_and_our_server_sign_both_ways() {
    let (server_signer, client_signer) = signers();
    let addr = server(server_signer.clone(), client_signer.verifying_key()).await;
    let client = ServiceBuilder::new()
        .layer(ServiceTokenLayer::new(tokens()))
        .layer(SignRequestLayer::new(client_signer.clone()).verify_responses(server_signer.verifying_key()))
        .service(http());
    let url = format!("http://{addr}/orders");

    // A GET: the server verified the request's signature (required), the client the answer's.
    let response =
        client.clone().oneshot(http::Request::get(&url).body(String::new()).unwrap()).await.unwrap();
    assert_eq!(response.status(), 200);
    let input = response.headers()["signature-input"].to_str().unwrap().to_owned();
    assert!(
        input.starts_with(r#"sig=("@status" "content-digest" "@method";req "@target-uri";req "signature";req;key="sig");created="#),
        "{input}"
    );
    assert!(input.ends_with(r#";tag="orders-api""#), "{input}");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "gateway");

    // A POST with a body: its content-digest computed, signed, checked by the server.
    let request = http::Request::post(&url).body("{\"hello\": \"world\"}".to_owned()).unwrap();
    let response = client.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.into_body().collect().await.unwrap().to_bytes(), "{\"hello\": \"world\"}");

    // The guard's refusal is signed too: a signed request without a token.
    let bare = ServiceBuilder::new()
        .layer(SignRequestLayer::new(client_signer).verify_responses(server_signer.verifying_key()))
        .service(http());
    let response = bare.oneshot(http::Request::get(&url).body(String::new()).unwrap()).await.unwrap();
    assert_eq!(response.status(), 401);
    let body: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["code"], "MISSING_TOKEN");

    // A request signed by another key: the server refuses it (and signs the refusal).
    let (_, stranger) = signers();
    let other = ServiceBuilder::new()
        .layer(ServiceTokenLayer::new(tokens()))
        .layer(SignRequestLayer::new(stranger).verify_responses(server_signer.verifying_key()))
        .service(http());
    let response = other.oneshot(http::Request::get(&url).body(String::new()).unwrap()).await.unwrap();
    assert_eq!(response.status(), 401);
}

/// What the man in the middle does to the answer.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Tamper {
    Nothing,
    Status,
    Body,
    DropDigest,
    DropSignature,
    /// The first answer kept and served again for a later request.
    Replay,
}

#[tokio::test]
async fn the_client_detects_each_tampering_with_a_signed_answer() {
    let (server_signer, client_signer) = signers();
    let addr = server(server_signer.clone(), client_signer.verifying_key()).await;
    let mode = Arc::new(Mutex::new(Tamper::Nothing));
    let kept: Arc<Mutex<Option<(http::response::Parts, Bytes)>>> = Arc::default();
    let (mode_in, kept_in) = (Arc::clone(&mode), Arc::clone(&kept));
    let middle = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
        let (mode, kept) = (*mode_in.lock().unwrap(), Arc::clone(&kept_in));
        async move {
            let response = http().request(request).await?;
            let (mut parts, body) = response.into_parts();
            let mut body = body.collect().await?.to_bytes();
            if kept.lock().unwrap().is_none() {
                *kept.lock().unwrap() = Some((parts.clone(), body.clone()));
            }
            match mode {
                Tamper::Nothing => {}
                Tamper::Status => parts.status = http::StatusCode::CREATED,
                Tamper::Body => body = Bytes::from_static(b"mallory"),
                Tamper::DropDigest => drop(parts.headers.remove("content-digest")),
                Tamper::DropSignature => drop(parts.headers.remove("signature")),
                Tamper::Replay => (parts, body) = kept.lock().unwrap().clone().unwrap(),
            }
            Ok::<_, tower_jwt_guard::BoxError>(http::Response::from_parts(parts, Full::new(body)))
        }
    });
    let client = ServiceBuilder::new()
        .layer(ServiceTokenLayer::new(tokens()))
        .layer(SignRequestLayer::new(client_signer).verify_responses(server_signer.verifying_key()))
        .service(middle);
    let url = format!("http://{addr}/orders");
    let call = |tamper: Tamper| {
        *mode.lock().unwrap() = tamper;
        let client = client.clone();
        let request = http::Request::get(&url).body(String::new()).unwrap();
        async move {
            let response = client.oneshot(request).await?;
            response.into_body().collect().await.map(|body| body.to_bytes())
        }
    };
    assert_eq!(call(Tamper::Nothing).await.unwrap(), "gateway");
    for tamper in [Tamper::Status, Tamper::Body, Tamper::DropDigest, Tamper::DropSignature, Tamper::Replay] {
        assert!(call(tamper).await.is_err(), "{tamper:?} went unnoticed");
    }
    assert_eq!(call(Tamper::Nothing).await.unwrap(), "gateway", "untouched answers still pass");
}

// ---- interop ----

/// A server whose guard accepts unsigned bearer tokens (a token bound to a key, `cnf.jwk`,
/// needs a signature by it), every answer signed by `server`.
async fn open_server(server: MessageSigner) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let origin = format!("http://{addr}");
    let signatures =
        MessageSignature::allowed().cover(["@method", "@target-uri", "authorization"]).public_url(&origin);
    let auth = JwtAuth::builder().hmac_secret(common::SECRET).binding(signatures).build().unwrap();
    let app = Router::new()
        .route("/orders", get(common::me).post(|body: String| async move { body }))
        .route_layer(auth.layer::<common::User>())
        .layer(SignResponseLayer::new(server).public_url(&origin));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn the_npm_library_verifies_our_signed_answers() {
    let Some(interop) = npm_httpsig() else { return };
    let (server_signer, _) = signers();
    let addr = open_server(server_signer.clone()).await;
    let jwk = server_signer.public_jwk().unwrap().to_string();
    let url = format!("http://{addr}/orders");
    let secret = std::str::from_utf8(common::SECRET).unwrap().to_owned();
    let output = tokio::process::Command::new("node")
        .current_dir(&interop)
        .args(["httpsig_verify.mjs", "responses", &url, &secret, &jwk])
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "node failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    let cases: Vec<Value> = stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let find =
        |name: &str| cases.iter().find(|case| case["case"] == name).unwrap_or_else(|| panic!("{stdout}"));
    for (name, status) in [("unsigned", 200), ("signed", 200), ("post", 200), ("refused", 401)] {
        let case = find(name);
        assert_eq!(case["status"], status, "{case}");
        assert_eq!((case["verified"].clone(), case["digest"].clone()), (json!(true), json!(true)), "{case}");
    }
    assert!(
        find("signed")["signatureInput"].as_str().unwrap().contains(r#""signature";req;key="sig""#),
        "the answer to a signed request covers its signature"
    );
    assert_eq!(find("tampered")["verified"], false, "a changed status must not verify");
}

#[tokio::test]
async fn the_npm_library_verifies_our_signed_requests() {
    use tokio::io::AsyncBufReadExt as _;
    let Some(interop) = npm_httpsig() else { return };
    let (_, client_signer) = signers();
    let jwk = client_signer.public_jwk().unwrap().to_string();
    let mut node = tokio::process::Command::new("node")
        .current_dir(&interop)
        .args(["httpsig_verify.mjs", "serve", &jwk])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = tokio::io::BufReader::new(node.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    let url = format!("http://127.0.0.1:{}/orders?id=7", first["port"]);

    let tampered = Arc::new(Mutex::new(false));
    let flag = Arc::clone(&tampered);
    let middle = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
        let tamper = *flag.lock().unwrap();
        async move {
            let request = if tamper {
                request.map(|_| Full::new(Bytes::from_static(b"{\"hello\": \"mallory\"}")))
            } else {
                request
            };
            http().request(request).await
        }
    });
    let client = ServiceBuilder::new()
        .layer(ServiceTokenLayer::new(tokens()))
        .layer(SignRequestLayer::new(client_signer))
        .service(middle);
    let send = |body: &str| {
        let request = http::Request::post(&url).body(body.to_owned()).unwrap();
        let client = client.clone();
        async move {
            let response = client.oneshot(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status.as_u16(), serde_json::from_slice::<Value>(&body).unwrap())
        }
    };
    let (status, body) = send("{\"hello\": \"world\"}").await;
    assert_eq!((status, &body["verified"]), (200, &json!(true)), "{body}");
    let (status, body) = send("").await;
    assert_eq!(status, 200, "a request without a body: {body}");
    *tampered.lock().unwrap() = true;
    let (status, body) = send("{\"hello\": \"world\"}").await;
    assert_eq!(status, 401, "the body changed after signing: {body}");
}

fn pairs(headers: &http::HeaderMap) -> Value {
    headers.iter().map(|(name, value)| json!([name.as_str(), value.to_str().unwrap()])).collect()
}

#[tokio::test]
async fn the_python_library_verifies_our_signed_request_and_answer() {
    let Some(python) = python_httpsig() else { return };
    let (server_signer, client_signer) = signers();
    let addr = server(server_signer.clone(), client_signer.verifying_key()).await;
    let url = format!("http://{addr}/orders");

    // A signed request, as it leaves our client (captured instead of sent).
    let captured: Arc<Mutex<Option<http::Request<Bytes>>>> = Arc::default();
    let keep = Arc::clone(&captured);
    let capture = tower::service_fn(move |request: http::Request<Full<Bytes>>| {
        let keep = Arc::clone(&keep);
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            *keep.lock().unwrap() = Some(http::Request::from_parts(parts, body));
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
        }
    });
    let client = ServiceBuilder::new()
        .layer(ServiceTokenLayer::new(tokens()))
        .layer(SignRequestLayer::new(client_signer.clone()))
        .service(capture);
    client
        .oneshot(http::Request::post(&url).body("{\"hello\": \"world\"}".to_owned()).unwrap())
        .await
        .unwrap();
    let request = captured.lock().unwrap().take().unwrap();

    // A signed answer from our server, to a request signed by our client.
    let http_client = ServiceBuilder::new()
        .layer(ServiceTokenLayer::new(tokens()))
        .layer(SignRequestLayer::new(client_signer.clone()))
        .service(tower::service_fn(|request: http::Request<Full<Bytes>>| async move {
            // The answer remembers the request as it was sent (signed).
            let (parts, body) = request.into_parts();
            let response = http().request(http::Request::from_parts(parts.clone(), body)).await?;
            let (mut response_parts, body) = response.into_parts();
            response_parts.extensions.insert(parts);
            Ok::<_, tower_jwt_guard::BoxError>(http::Response::from_parts(response_parts, body))
        }));
    let response = http_client.oneshot(http::Request::get(&url).body(String::new()).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    let sent = parts.extensions.get::<http::request::Parts>().unwrap().clone();
    let body = body.collect().await.unwrap().to_bytes();

    let client_jwk = client_signer.public_jwk().unwrap();
    let server_jwk = server_signer.public_jwk().unwrap();
    let request_case = |name: &str, body: &str| {
        json!({
            "name": name, "kind": "request", "jwk": client_jwk,
            "require": ["@method", "@target-uri", "authorization", "content-digest"],
            "method": request.method().as_str(), "url": request.uri().to_string(),
            "headers": pairs(request.headers()), "body": body,
        })
    };
    let response_case = |name: &str, status: u16| {
        json!({
            "name": name, "kind": "response", "jwk": server_jwk,
            "require": ["@status", "content-digest", "\"@method\";req", "\"@target-uri\";req"],
            "status": status, "headers": pairs(&parts.headers), "body": std::str::from_utf8(&body).unwrap(),
            "request": {"method": sent.method.as_str(), "url": sent.uri.to_string(), "headers": pairs(&sent.headers)},
        })
    };
    let cases = [
        request_case("request", "{\"hello\": \"world\"}"),
        request_case("request with another body", "{\"hello\": \"mallory\"}"),
        response_case("response", parts.status.as_u16()),
        response_case("response with another status", 201),
    ];
    let input: String = cases.iter().map(|case| format!("{case}\n")).collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/httpsig_sign_check.py");
    let mut child = tokio::process::Command::new(&python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncWriteExt as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).await.unwrap();
    }
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "python failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    let results: Vec<Value> = stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let verified: Vec<(String, bool)> = results
        .iter()
        .map(|result| (result["name"].as_str().unwrap().to_owned(), result["verified"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        verified,
        [
            ("request".to_owned(), true),
            ("request with another body".to_owned(), false),
            ("response".to_owned(), true),
            ("response with another status".to_owned(), false),
        ],
        "{stdout}"
    );
}

/// A body over the signing limit is never sent unsigned nor signed without its digest: the
/// answer becomes a signed 500 (`RESPONSE_NOT_SIGNED`), which the client still verifies.
#[tokio::test]
async fn an_answer_over_the_signing_limit_becomes_a_signed_500() {
    let (server_signer, client_signer) = signers();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/small", get(|| async { "tiny" }))
        .route("/large", get(|| async { "x".repeat(100) }))
        .layer(SignResponseLayer::new(server_signer.clone()).limit(64));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = ServiceBuilder::new()
        .layer(SignRequestLayer::new(client_signer).verify_responses(server_signer.verifying_key()))
        .service(http());
    let get = |path: &str| {
        let request = http::Request::get(format!("http://{addr}{path}")).body(String::new()).unwrap();
        let client = client.clone();
        async move {
            let response = client.oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            (status, response.into_body().collect().await.unwrap().to_bytes())
        }
    };
    assert_eq!(get("/small").await, (200, Bytes::from_static(b"tiny")));
    let (status, body) = get("/large").await;
    assert_eq!(status, 500);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], "RESPONSE_NOT_SIGNED");
}

mod round_trip {
    use proptest::prelude::*;
    use tower_jwt_guard::binding::BindingPolicy as _;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

        /// What the signer signs, the verifier accepts (one signature base for both); the same
        /// request with one covered field changed is refused. Arbitrary request signature fields
        /// never make the response signer panic.
        #[test]
        fn what_we_sign_we_verify(
            value in "[ -~]{0,40}",
            other in "[ -~]{1,40}",
            path in "/[a-z0-9/]{0,12}",
            query in proptest::option::of("[a-z0-9=&]{1,12}"),
            covered in proptest::sample::subsequence(vec!["@method", "@target-uri", "@authority", "@path", "@query", "x-data"], 0..6),
            signature in "[ -~]{0,40}",
        ) {
            let signer = MessageSigner::hmac_sha256([9u8; 32]).unwrap().keyid("k");
            let uri = format!("https://api.example.com{path}{}", query.map(|q| format!("?{q}")).unwrap_or_default());
            let build = |data: &str| http::Request::put(&uri).header("x-data", data).body(()).unwrap();
            let request = build(&value);
            let params = SignatureParams::new("sig", &covered).unwrap();
            let signed = signer.sign_request(&RequestHead::of(&request), &params).unwrap();
            let policy = MessageSignature::required().cover(Vec::<String>::new()).key("k", signer.verifying_key());
            let mut accepted = request;
            signed.apply(accepted.headers_mut()).unwrap();
            prop_assert!(policy.check(&RequestHead::of(&accepted), None).is_ok());
            if covered.contains(&"x-data") && other.trim() != value.trim() {
                let mut changed = build(&other);
                signed.apply(changed.headers_mut()).unwrap();
                prop_assert!(policy.check(&RequestHead::of(&changed), None).is_err());
            }
            // The response signer with whatever the request's Signature field holds.
            if let Ok(field) = http::HeaderValue::from_str(&signature) {
                let mut head = build(&value);
                head.headers_mut().insert("signature", field);
                let params = SignatureParams::new("sig", ["@status", "\"@method\";req"]).unwrap();
                let response = signer.sign_response(http::StatusCode::OK, &http::HeaderMap::new(), Some(&RequestHead::of(&head)), &params);
                prop_assert!(response.is_ok());
            }
        }
    }
}
