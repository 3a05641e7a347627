//! [`DpopKey`]: the client side of DPoP (RFC 9449) — a key only this client holds, its RFC
//! 7638 thumbprint (the `cnf.jkt` of the tokens bound to it), and a fresh proof per request.
//!
//! [`ServiceTokens`](crate::ServiceTokens) with a key
//! ([`ServiceTokensBuilder::dpop_key`](crate::ServiceTokensBuilder::dpop_key)) binds its tokens
//! to it and signs a proof for each outgoing request (method, URI, `ath`, the last nonce the
//! server sent: [`remember_nonce`](DpopKey::remember_nonce)).
//!
//! ```
//! use tower_jwt_guard::issue::DpopKey;
//!
//! let key = DpopKey::generate_es256()?;
//! let uri: http::Uri = "https://api.example.com/orders?page=2".parse().unwrap();
//! let proof = key.proof(&http::Method::GET, &uri, Some("the-access-token"))?;
//! assert_eq!(proof.split('.').count(), 3);
//! assert_eq!(key.jkt().len(), 43);
//! # Ok::<(), tower_jwt_guard::issue::IssueError>(())
//! ```

use std::fmt;
use std::sync::Mutex;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::{Method, Uri};
use serde_json::json;

use crate::guard::clock;
use crate::issue::IssueError;

enum Signer {
    Es256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A client's DPoP key (ES256 or EdDSA), ready to sign proofs.
pub struct DpopKey {
    signer: Signer,
    /// The proof header, base64url: it is the same for every proof.
    header: String,
    jkt: String,
    nonce: Mutex<Option<String>>,
}

impl fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopKey").field("jkt", &self.jkt).field("key", &"REDACTED").finish()
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl DpopKey {
    /// A fresh P-256 key (ES256).
    pub fn generate_es256() -> Result<Self, IssueError> {
        let pair =
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| IssueError::Signing)?;
        Ok(DpopKey::new(Signer::Es256(pair)))
    }

    /// A fresh Ed25519 key (EdDSA).
    pub fn generate_ed25519() -> Result<Self, IssueError> {
        let pair = Ed25519KeyPair::generate().map_err(|_| IssueError::Signing)?;
        Ok(DpopKey::new(Signer::Ed25519(pair)))
    }

    /// A key from its PKCS#8 DER: P-256 (ES256) or Ed25519 (EdDSA).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, IssueError> {
        if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der) {
            return Ok(DpopKey::new(Signer::Es256(pair)));
        }
        Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map(|pair| DpopKey::new(Signer::Ed25519(pair)))
            .map_err(|_| IssueError::Signing)
    }

    fn new(signer: Signer) -> Self {
        let (alg, jwk, canonical) = match &signer {
            Signer::Es256(pair) => {
                let point = pair.public_key().as_ref();
                let (x, y) = (b64(&point[1..33]), b64(&point[33..65]));
                let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
                ("ES256", json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y }), canonical)
            }
            Signer::Ed25519(pair) => {
                let x = b64(pair.public_key().as_ref());
                let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
                ("EdDSA", json!({ "kty": "OKP", "crv": "Ed25519", "x": x }), canonical)
            }
        };
        let jkt = b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()));
        let header = b64(json!({ "typ": "dpop+jwt", "alg": alg, "jwk": jwk }).to_string());
        DpopKey { signer, header, jkt, nonce: Mutex::new(None) }
    }

    /// The RFC 7638 thumbprint of the public key (base64url): the `cnf.jkt` of bound tokens.
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// Uses `nonce` (a server's `DPoP-Nonce`) in the next proofs.
    pub fn remember_nonce(&self, nonce: impl Into<String>) {
        *self.nonce.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(nonce.into());
    }

    /// A fresh proof for a request `method` `uri` (its query and fragment are left out of
    /// `htu`), with `ath` when it carries `access_token`, and the last nonce remembered.
    pub fn proof(
        &self,
        method: &Method,
        uri: &Uri,
        access_token: Option<&str>,
    ) -> Result<String, IssueError> {
        let htu = format!(
            "{}://{}{}",
            uri.scheme_str().unwrap_or("https"),
            uri.authority().map_or("", |a| a.as_str()),
            uri.path()
        );
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).map_err(|_| IssueError::Signing)?;
        let mut claims = json!({ "jti": b64(jti), "htm": method.as_str(), "htu": htu, "iat": clock::now() });
        if let Some(token) = access_token {
            claims["ath"] =
                json!(b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes())));
        }
        if let Some(nonce) = self.nonce.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone() {
            claims["nonce"] = json!(nonce);
        }
        let input = format!("{}.{}", self.header, b64(claims.to_string()));
        let signature = match &self.signer {
            Signer::Es256(pair) => {
                pair.sign(&SystemRandom::new(), input.as_bytes()).map_err(|_| IssueError::Signing)?
            }
            Signer::Ed25519(pair) => pair.sign(input.as_bytes()),
        };
        Ok(format!("{input}.{}", b64(signature.as_ref())))
    }
}
