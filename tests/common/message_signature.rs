//! Shared pieces of the HTTP Message Signatures tests (RFC 9421): the RFC's data files, an
//! independent Ed25519 signer (the signature base written out by hand from the RFC's rules), a
//! request sender over loopback, and the locators of the npm and PyPI implementations.

use std::net::SocketAddr;
use std::path::PathBuf;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};
use tower_jwt_guard::binding::SignatureKey;

/// The RFC 9421 test data (keys, vectors).
pub const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rfc9421/");

/// A file of [`DATA`].
pub fn data(name: &str) -> String {
    std::fs::read_to_string(format!("{DATA}{name}")).unwrap()
}

/// The RFC's examples (`vectors.json`): each with its `section`, `request`, `label`,
/// `signature_input`, `signature_base` and `signature`.
pub fn vectors() -> Vec<Value> {
    let file: Value = serde_json::from_str(&data("vectors.json")).unwrap();
    file["vectors"].as_array().unwrap().clone()
}

/// The example of `section` (`B.2.5`).
pub fn vector(section: &str) -> Value {
    vectors().into_iter().find(|vector| vector["section"] == section).unwrap()
}

/// The request of an example, its signature fields aside.
pub fn vector_request(vector: &Value) -> http::request::Builder {
    let request = &vector["request"];
    let mut builder = http::Request::builder()
        .method(request["method"].as_str().unwrap())
        .uri(request["url"].as_str().unwrap());
    for pair in request["headers"].as_array().unwrap() {
        builder = builder.header(pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
    }
    builder
}

/// A client's Ed25519 key and its JWK (with a `kid` when it has one).
pub struct Client {
    pub pair: Ed25519KeyPair,
    kid: Option<String>,
}

impl Client {
    /// A new key whose JWK carries `kid`.
    pub fn new(kid: &str) -> Self {
        Client { pair: Ed25519KeyPair::generate().unwrap(), kid: Some(kid.to_owned()) }
    }

    /// A new key whose JWK has no `kid`.
    pub fn without_kid() -> Self {
        Client { pair: Ed25519KeyPair::generate().unwrap(), kid: None }
    }

    /// The JWK's `kid` (empty without one).
    pub fn kid(&self) -> &str {
        self.kid.as_deref().unwrap_or_default()
    }

    pub fn public(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    pub fn jwk(&self) -> Value {
        let x = URL_SAFE_NO_PAD.encode(self.public());
        match &self.kid {
            Some(kid) => json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": x}),
            None => json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
        }
    }

    pub fn key(&self) -> SignatureKey {
        SignatureKey::from_jwk(&self.jwk().to_string()).unwrap()
    }

    /// Signs `components` (`(identifier, value)` lines) under label `sig` with `params` after the
    /// inner list: the base written out by hand from the RFC's rules.
    pub fn sign(&self, components: &[(&str, &str)], params: &str) -> Signed {
        let (input, base) = base(components, params);
        let signature = self.pair.sign(base.as_bytes());
        Signed { input, signature: format!("sig=:{}:", STANDARD.encode(signature.as_ref())) }
    }
}

/// The `Signature-Input` value and the signature base.
pub fn base(components: &[(&str, &str)], params: &str) -> (String, String) {
    let list = components.iter().map(|(name, _)| format!("\"{name}\"")).collect::<Vec<_>>().join(" ");
    let params = format!("({list}){params}");
    let mut base = String::new();
    for (name, value) in components {
        base.push_str(&format!("\"{name}\": {value}\n"));
    }
    base.push_str(&format!("\"@signature-params\": {params}"));
    (format!("sig={params}"), base)
}

/// The `Signature-Input` and `Signature` values of a signed request.
pub struct Signed {
    pub input: String,
    pub signature: String,
}

/// What the server answered: status, the JSON body's `code`, the `Accept-Signature` field.
pub struct Reply {
    pub status: u16,
    pub code: Option<String>,
    pub accept_signature: Option<String>,
}

/// Sends a request with a bearer `token`, the signature fields of `signed`, the extra `headers`
/// and `body`.
pub async fn send(
    method: reqwest::Method,
    addr: SocketAddr,
    path: &str,
    token: &str,
    signed: Option<&Signed>,
    headers: &[(&str, &str)],
    body: Option<&'static str>,
) -> Reply {
    let mut request = reqwest::Client::new()
        .request(method, format!("http://{addr}{path}"))
        .header("authorization", format!("Bearer {token}"));
    if let Some(signed) = signed {
        request = request.header("signature-input", &signed.input).header("signature", &signed.signature);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let accept_signature =
        response.headers().get("accept-signature").map(|value| value.to_str().unwrap().to_owned());
    let body: Value = response.json().await.unwrap_or(Value::Null);
    Reply { status, code: body["code"].as_str().map(str::to_owned), accept_signature }
}

/// The interop directory when node and the npm `http-message-signatures` are installed; skips
/// with a message otherwise (and fails under `CI`).
pub fn npm_httpsig() -> Option<PathBuf> {
    let interop = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let why = match std::process::Command::new("node").arg("--version").output() {
        Ok(output) if output.status.success() => {
            if interop.join("node_modules/http-message-signatures/package.json").exists() {
                return Some(interop);
            }
            "http-message-signatures is not installed: run `npm ci --prefix tests/interop`"
        }
        _ => "node is not installed",
    };
    assert!(std::env::var_os("CI").is_none(), "CI is set but {why}");
    println!("skipped: {why}");
    None
}

/// The Python interpreter with the PyPI `http-message-signatures` (pyauth): `PYTHON` (as
/// `.ci/run` sets it), else the venv `.ci/run` makes (`target/interop-venv`); skips with a
/// message otherwise (and fails under `CI`).
pub fn python_httpsig() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("PYTHON").map(PathBuf::from),
        Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop-venv/bin/python")),
    ];
    for python in candidates.into_iter().flatten() {
        let found = std::process::Command::new(&python)
            .args(["-c", "import http_message_signatures"])
            .output()
            .is_ok_and(|output| output.status.success());
        if found {
            return Some(python);
        }
    }
    let why = "python with http-message-signatures is not installed (see .ci/run: target/interop-venv)";
    assert!(std::env::var_os("CI").is_none(), "CI is set but {why}");
    println!("skipped: {why}");
    None
}
