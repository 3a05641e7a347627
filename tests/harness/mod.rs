//! Test harness: keys generated with aws-lc-rs, tokens signed by hand (an oracle independent of
//! the crate's own issuer), and an axum server on an ephemeral loopback port.

#![allow(dead_code)] // each test file uses part of it

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use aws_lc_rs::{hmac, rsa};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};
use tower_jwt_guard::{Algorithm, VerificationKey};

/// base64url without padding.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A plain claim set: `sub`, `iat` now, `exp` in ten minutes.
pub fn claims(sub: &str) -> Value {
    let now = now();
    json!({ "sub": sub, "iat": now, "exp": now + 600 })
}

enum Signer {
    Hmac(Box<hmac::Key>),
    Rsa(RsaKeyPair, &'static dyn signature::RsaEncoding),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A signing key and its public half, for one algorithm.
pub struct TestKey {
    pub alg: Algorithm,
    signer: Signer,
    /// The public key in the raw form `VerificationKey::from_der` takes (HMAC: the secret).
    pub public_raw: Vec<u8>,
    /// The public key as a SubjectPublicKeyInfo PEM (empty for HMAC).
    pub public_pem: String,
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

impl TestKey {
    /// A fresh key for `alg`.
    pub fn generate(alg: Algorithm) -> TestKey {
        use Algorithm::*;
        match alg {
            HS256 | HS384 | HS512 => {
                let mut secret = vec![0u8; 64];
                aws_lc_rs::rand::fill(&mut secret).unwrap();
                TestKey::hmac(alg, &secret)
            }
            RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => {
                let pair = RsaKeyPair::generate(rsa::KeySize::Rsa2048).unwrap();
                let encoding: &'static dyn signature::RsaEncoding = match alg {
                    RS256 => &signature::RSA_PKCS1_SHA256,
                    RS384 => &signature::RSA_PKCS1_SHA384,
                    RS512 => &signature::RSA_PKCS1_SHA512,
                    PS256 => &signature::RSA_PSS_SHA256,
                    PS384 => &signature::RSA_PSS_SHA384,
                    _ => &signature::RSA_PSS_SHA512,
                };
                let public_raw = pair.public_key().as_ref().to_vec();
                let public_pem = pem("PUBLIC KEY", pair.public_key().as_der().unwrap().as_ref());
                TestKey { alg, signer: Signer::Rsa(pair, encoding), public_raw, public_pem }
            }
            ES256 | ES384 => {
                let signing = if alg == ES256 {
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING
                } else {
                    &signature::ECDSA_P384_SHA384_FIXED_SIGNING
                };
                let pair = EcdsaKeyPair::generate(signing).unwrap();
                let public_raw = pair.public_key().as_ref().to_vec();
                let public_pem = pem("PUBLIC KEY", pair.public_key().as_der().unwrap().as_ref());
                TestKey { alg, signer: Signer::Ec(pair), public_raw, public_pem }
            }
            EdDSA => {
                let pair = Ed25519KeyPair::generate().unwrap();
                let public_raw = pair.public_key().as_ref().to_vec();
                let public_pem = pem("PUBLIC KEY", pair.public_key().as_der().unwrap().as_ref());
                TestKey { alg, signer: Signer::Ed(pair), public_raw, public_pem }
            }
            other => panic!("no test key for {other:?}"),
        }
    }

    /// An HMAC key with a given secret.
    pub fn hmac(alg: Algorithm, secret: &[u8]) -> TestKey {
        let hmac_alg = match alg {
            Algorithm::HS256 => hmac::HMAC_SHA256,
            Algorithm::HS384 => hmac::HMAC_SHA384,
            _ => hmac::HMAC_SHA512,
        };
        TestKey {
            alg,
            signer: Signer::Hmac(Box::new(hmac::Key::new(hmac_alg, secret))),
            public_raw: secret.to_vec(),
            public_pem: String::new(),
        }
    }

    /// The private key as PKCS#8 DER (EC and Ed25519 only), for other JOSE libraries.
    pub fn private_pkcs8(&self) -> Option<Vec<u8>> {
        match &self.signer {
            Signer::Ec(pair) => Some(pair.to_pkcs8v1().unwrap().as_ref().to_vec()),
            Signer::Ed(pair) => Some(pair.to_pkcs8v1().unwrap().as_ref().to_vec()),
            _ => None,
        }
    }

    /// The crate's verification key for this key.
    pub fn verification_key(&self) -> VerificationKey {
        match self.signer {
            Signer::Hmac(_) => VerificationKey::hmac(self.alg, &self.public_raw).unwrap(),
            _ => VerificationKey::from_der(self.alg, &self.public_raw).unwrap(),
        }
    }

    /// The signature of `message`.
    pub fn signature(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Hmac(key) => hmac::sign(key, message).as_ref().to_vec(),
            Signer::Rsa(pair, encoding) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(*encoding, &rng, message, &mut sig).unwrap();
                sig
            }
            Signer::Ec(pair) => pair.sign(&rng, message).unwrap().as_ref().to_vec(),
            Signer::Ed(pair) => pair.sign(message).as_ref().to_vec(),
        }
    }

    /// A compact JWS over exactly these (already encoded) parts.
    pub fn sign_parts(&self, header_b64: &str, payload_b64: &str) -> String {
        let input = format!("{header_b64}.{payload_b64}");
        let sig = self.signature(input.as_bytes());
        format!("{input}.{}", b64(sig))
    }

    /// A compact JWS with header `{"alg": <alg>, "typ": "JWT"}` plus `extra_header`.
    pub fn sign_with_header(&self, extra_header: Value, claims: &Value) -> String {
        let mut header = json!({ "alg": format!("{:?}", self.alg), "typ": "JWT" });
        if let (Some(h), Some(extra)) = (header.as_object_mut(), extra_header.as_object()) {
            for (k, v) in extra {
                h.insert(k.clone(), v.clone());
            }
        }
        self.sign_parts(&b64(header.to_string()), &b64(claims.to_string()))
    }

    /// A compact JWS with the standard header.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(json!({}), claims)
    }
}

/// Serves `router` on an ephemeral loopback port (with the peer address as connect info).
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    addr
}

/// An HTTP client that never follows redirects and never pools across tests.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The status, `WWW-Authenticate` and JSON body of a response.
pub struct Answer {
    pub status: u16,
    pub challenge: Option<String>,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    /// The JSON `code`, or "" when the body has none.
    pub fn code(&self) -> &str {
        self.body.get("code").and_then(Value::as_str).unwrap_or("")
    }
}

/// Sends `request` and reads the answer.
pub async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let challenge = headers.get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
    let bytes = response.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Answer { status, challenge, body, headers }
}

/// base64url decoding (panics on bad input: test data only).
pub fn b64_decode(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}
