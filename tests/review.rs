//! Findings of the security review of the RFC 9421 and RFC 9701 work, each over loopback: a
//! request whose signature covers only one member of `Content-Digest` while the body is swapped
//! under another member.

mod harness;

use std::net::SocketAddr;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use axum::Router;
use base64::Engine as _;
use harness::{answer, client, now};
use serde_json::{json, Value};
use tower_jwt_guard::binding::{ContentDigest, MessageSignature, SignatureKey};
use tower_jwt_guard::{Claims, ContentDigestLayer, JwtAuth};

const SECRET: [u8; 32] = *b"a review test secret, 32 bytes!!";

async fn sub(Claims(claims): Claims<Value>) -> String {
    claims["sub"].as_str().unwrap_or_default().to_owned()
}

/// An HS256 token for alice, signed by hand.
fn token() -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &SECRET);
    let header = harness::b64(json!({ "alg": "HS256", "typ": "JWT" }).to_string());
    let claims = harness::b64(json!({ "sub": "alice", "iat": now(), "exp": now() + 600 }).to_string());
    let input = format!("{header}.{claims}");
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", harness::b64(tag.as_ref()))
}

/// `Signature-Input` and `Signature` of an Ed25519 signature over `(identifier, value)` lines,
/// the base written out by hand (RFC 9421 §2.5). Identifiers are given serialized.
fn sign(pair: &Ed25519KeyPair, components: &[(&str, &str)], params: &str) -> (String, String) {
    let list = components.iter().map(|(id, _)| *id).collect::<Vec<_>>().join(" ");
    let params = format!("({list}){params}");
    let mut base = String::new();
    for (id, value) in components {
        base.push_str(&format!("{id}: {value}\n"));
    }
    base.push_str(&format!("\"@signature-params\": {params}"));
    let signature = pair.sign(base.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(signature.as_ref());
    (format!("sig={params}"), format!("sig=:{signature}:"))
}

/// A signature covering only the `sha-256` member of `Content-Digest` (`;key="sha-256"`) does
/// not cover `content-digest`: else a `sha-512` member added in transit, which the digest layer
/// checks first, lets the body be swapped under a valid signature.
#[tokio::test]
async fn a_signature_over_one_digest_member_does_not_cover_content_digest() {
    let pair = Ed25519KeyPair::generate().unwrap();
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
    let key = SignatureKey::from_jwk(&json!({ "kty": "OKP", "crv": "Ed25519", "x": x }).to_string()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let policy = MessageSignature::required()
        .key("client-1", key)
        .cover(["@method", "@target-uri", "authorization", "content-digest"])
        .public_url(&format!("http://{addr}"));
    let auth = JwtAuth::builder().hmac_secret(SECRET).binding(policy).build().unwrap();
    let app = Router::new()
        .route("/echo", axum::routing::post(|_: Claims<Value>, body: String| async move { body }))
        .route("/me", axum::routing::get(sub))
        .route_layer(auth.layer::<Value>())
        .layer(ContentDigestLayer::new().required(true));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let token = token();
    let authorization = format!("Bearer {token}");
    let uri = format!("http://{addr}/echo");
    let (body, swapped) = ("{\"amount\": 10}", "{\"amount\": 99999}");
    let sha256 = ContentDigest::header_value_sha256(body.as_bytes());
    let member = sha256.strip_prefix("sha-256=").unwrap().to_owned();
    let send = |input: String, signature: String, digest: String, body: &'static str| {
        let request = client()
            .post(&uri)
            .header("authorization", &authorization)
            .header("signature-input", input)
            .header("signature", signature)
            .header("content-digest", digest)
            .body(body);
        answer(request)
    };

    // The whole field covered: passes (the policy and the signer agree).
    let params = |nonce: &str| format!(";created={};keyid=\"client-1\";nonce=\"{nonce}\"", now());
    let whole = [
        ("\"@method\"", "POST"),
        ("\"@target-uri\"", uri.as_str()),
        ("\"authorization\"", authorization.as_str()),
        ("\"content-digest\"", sha256.as_str()),
    ];
    let (input, signature) = sign(&pair, &whole, &params("whole"));
    let passed = send(input, signature, sha256.clone(), body).await;
    assert_eq!((passed.status, passed.body.clone()), (200, json!({ "amount": 10 })));

    // Only the sha-256 member covered; in transit a sha-512 member of another body is added
    // and the body swapped: refused, the handler never runs.
    let one_member = [
        ("\"@method\"", "POST"),
        ("\"@target-uri\"", uri.as_str()),
        ("\"authorization\"", authorization.as_str()),
        ("\"content-digest\";key=\"sha-256\"", member.as_str()),
    ];
    let (input, signature) = sign(&pair, &one_member, &params("member"));
    let injected = format!("{sha256}, {}", ContentDigest::header_value_sha512(swapped.as_bytes()));
    let refused = send(input, signature, injected, swapped).await;
    assert_eq!((refused.status, refused.code()), (401, "INVALID_SIGNATURE"), "{:?}", refused.body);
}
