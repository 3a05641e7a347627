//! DPoP proofs made by hand with aws-lc-rs (an oracle independent of the crate), in every shape
//! a client — or an attacker — can send.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tower_jwt_guard::Algorithm;

use crate::harness::{b64, now, TestKey};

/// A client's DPoP key and its public JWK.
pub struct ProofKey {
    pub key: TestKey,
    pub jwk: Value,
}

/// The fields of one proof; [`Spec::new`] makes a valid one, tests break one field at a time.
#[derive(Clone)]
pub struct Spec {
    pub typ: String,
    pub alg: String,
    pub jwk: Option<Value>,
    pub htm: String,
    pub htu: String,
    pub iat: u64,
    pub jti: String,
    pub ath: Option<String>,
    pub nonce: Option<String>,
}

/// A fresh random `jti`.
pub fn jti() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    b64(bytes)
}

/// `ath`: base64url SHA-256 of the access token.
pub fn ath(token: &str) -> String {
    b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()))
}

impl Spec {
    pub fn new(key: &ProofKey, htm: &str, htu: &str, token: Option<&str>) -> Spec {
        Spec {
            typ: "dpop+jwt".into(),
            alg: format!("{:?}", key.key.alg),
            jwk: None,
            htm: htm.into(),
            htu: htu.into(),
            iat: now(),
            jti: jti(),
            ath: token.map(ath),
            nonce: None,
        }
    }
}

/// Reads `SEQUENCE { INTEGER n, INTEGER e }` (PKCS#1 RSAPublicKey, short and long lengths).
fn rsa_components(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    fn read(der: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = der[0];
        let (len, start) = if der[1] < 0x80 {
            (der[1] as usize, 2)
        } else {
            let n = (der[1] & 0x7f) as usize;
            (der[2..2 + n].iter().fold(0usize, |acc, b| acc << 8 | *b as usize), 2 + n)
        };
        (tag, &der[start..start + len], &der[start + len..])
    }
    let (_, body, _) = read(der);
    let (_, n, rest) = read(body);
    let (_, e, _) = read(rest);
    let strip = |v: &[u8]| v.iter().skip_while(|b| **b == 0).copied().collect::<Vec<u8>>();
    (strip(n), strip(e))
}

impl ProofKey {
    pub fn generate(alg: Algorithm) -> ProofKey {
        let key = TestKey::generate(alg);
        let raw = &key.public_raw;
        let jwk = match alg {
            Algorithm::ES256 | Algorithm::ES384 => {
                let len = (raw.len() - 1) / 2;
                let crv = if alg == Algorithm::ES256 { "P-256" } else { "P-384" };
                json!({ "kty": "EC", "crv": crv, "x": b64(&raw[1..1 + len]), "y": b64(&raw[1 + len..]) })
            }
            Algorithm::EdDSA => json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(raw) }),
            _ => {
                let (n, e) = rsa_components(raw);
                json!({ "kty": "RSA", "n": b64(n), "e": b64(e) })
            }
        };
        ProofKey { key, jwk }
    }

    /// RFC 7638: SHA-256 of the required members, sorted, in compact JSON.
    pub fn jkt(&self) -> String {
        let required: &[&str] = match self.jwk["kty"].as_str().unwrap() {
            "EC" => &["crv", "kty", "x", "y"],
            "OKP" => &["crv", "kty", "x"],
            _ => &["e", "kty", "n"],
        };
        let members: BTreeMap<&str, &Value> = required.iter().map(|name| (*name, &self.jwk[*name])).collect();
        let canonical = serde_json::to_string(&members).unwrap();
        b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()))
    }

    /// The proof `spec` describes, signed with this key (or with `signer` when given).
    pub fn sign(&self, spec: &Spec) -> String {
        self.sign_with(spec, &self.key)
    }

    pub fn sign_with(&self, spec: &Spec, signer: &TestKey) -> String {
        let header =
            json!({ "typ": spec.typ, "alg": spec.alg, "jwk": spec.jwk.clone().unwrap_or(self.jwk.clone()) });
        let mut claims = json!({ "jti": spec.jti, "htm": spec.htm, "htu": spec.htu, "iat": spec.iat });
        if let Some(ath) = &spec.ath {
            claims["ath"] = json!(ath);
        }
        if let Some(nonce) = &spec.nonce {
            claims["nonce"] = json!(nonce);
        }
        signer.sign_parts(&b64(header.to_string()), &b64(claims.to_string()))
    }

    /// A valid proof for `htm` `htu`, carrying `ath` of `token`.
    pub fn proof(&self, htm: &str, htu: &str, token: Option<&str>) -> String {
        self.sign(&Spec::new(self, htm, htu, token))
    }
}

/// `tests/interop`, when node and panva's npm `dpop` package are there to run its scripts. In CI
/// (`CI` set) they must be; elsewhere the caller skips, and this says so.
pub fn npm_dpop() -> Option<std::path::PathBuf> {
    let interop = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let why = match std::process::Command::new("node").arg("--version").output() {
        Ok(output) if output.status.success() => {
            if interop.join("node_modules/dpop/package.json").exists() {
                return Some(interop);
            }
            "dpop is not installed: run `npm ci --prefix tests/interop`"
        }
        _ => "node is not installed",
    };
    assert!(std::env::var_os("CI").is_none(), "CI is set but {why}");
    println!("skipped: {why}");
    None
}
