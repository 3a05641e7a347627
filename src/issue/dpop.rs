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

use crate::guard::binding::BindingUnavailable;
use crate::issue::IssueError;
use crate::primitives::clock;

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

    /// Uses `nonce` (a server's `DPoP-Nonce`) in the next proofs. A value that is not an RFC 9449
    /// nonce (`1*NQCHAR`: visible ASCII but `"` and `\`), or longer than
    /// [`MAX_NONCE_LEN`](Self::MAX_NONCE_LEN), is ignored: a server cannot make the next proofs
    /// too large to send. One key keeps one nonce, the last one seen: give each server its own
    /// key (one `ServiceTokens` per audience does).
    ///
    /// ```
    /// use tower_jwt_guard::issue::DpopKey;
    ///
    /// let key = DpopKey::generate_es256().unwrap();
    /// key.remember_nonce("eyJ7S_zG.eyJH0-Z.HX4w-7v");
    /// key.remember_nonce("a \"quoted\" value"); // not a nonce: ignored
    /// key.remember_nonce("n".repeat(DpopKey::MAX_NONCE_LEN + 1)); // too long: ignored
    /// ```
    pub fn remember_nonce(&self, nonce: impl Into<String>) {
        let nonce = nonce.into();
        let nqchar = |b: u8| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b);
        if nonce.is_empty() || nonce.len() > Self::MAX_NONCE_LEN || !nonce.bytes().all(nqchar) {
            tracing::debug!(target: "tower_jwt_guard", "a DPoP-Nonce that is not a nonce was ignored");
            return;
        }
        *self.nonce.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(nonce);
    }

    /// The longest server nonce kept (bytes).
    pub const MAX_NONCE_LEN: usize = 512;

    /// A fresh proof for a request `method` `uri` (its query and fragment are left out of
    /// `htu`), with `ath` when it carries `access_token`, and the last nonce remembered.
    ///
    /// `uri` must be absolute: a relative one (`/pkg.Svc/Method`, what a tonic `Channel` sees
    /// before it adds its origin) names no host, and is refused
    /// ([`ServiceTokenLayer::origin`](crate::ServiceTokenLayer::origin) gives the layer its target).
    ///
    /// ```
    /// # use tower_jwt_guard::issue::DpopKey;
    /// let key = DpopKey::generate_es256()?;
    /// assert!(key.proof(&http::Method::GET, &http::Uri::from_static("/pkg.Svc/M"), None).is_err());
    /// # Ok::<(), tower_jwt_guard::issue::IssueError>(())
    /// ```
    pub fn proof(
        &self,
        method: &Method,
        uri: &Uri,
        access_token: Option<&str>,
    ) -> Result<String, IssueError> {
        let Some(authority) = uri.authority() else {
            return Err(IssueError::Binding(BindingUnavailable::new(
                "dpop",
                "the request URI names no host: give the client layer its target's origin",
            )));
        };
        let htu = format!("{}://{}{}", uri.scheme_str().unwrap_or("https"), authority, uri.path());
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

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    /// The `nonce` claim of a fresh proof.
    fn nonce_of(key: &DpopKey) -> Option<String> {
        let proof =
            key.proof(&Method::GET, &Uri::from_static("https://api.example.com/orders"), None).unwrap();
        let payload = proof.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap(),
        )
        .unwrap();
        claims.get("nonce").and_then(|nonce| nonce.as_str()).map(str::to_owned)
    }

    #[test]
    fn only_rfc_9449_nonces_are_kept() {
        let key = DpopKey::generate_es256().unwrap();
        assert_eq!(nonce_of(&key), None);
        key.remember_nonce("eyJ7S_zG.eyJH0-Z.HX4w-7v");
        assert_eq!(nonce_of(&key).as_deref(), Some("eyJ7S_zG.eyJH0-Z.HX4w-7v"));
        for refused in ["", "a b", "a\"b", "a\\b", "é", &"n".repeat(DpopKey::MAX_NONCE_LEN + 1)] {
            key.remember_nonce(refused);
            assert_eq!(nonce_of(&key).as_deref(), Some("eyJ7S_zG.eyJH0-Z.HX4w-7v"), "{refused:?}");
        }
        key.remember_nonce("n".repeat(DpopKey::MAX_NONCE_LEN));
        assert_eq!(nonce_of(&key).map(|nonce| nonce.len()), Some(DpopKey::MAX_NONCE_LEN));
    }
}
