//! What a verified token says: your typed [`Claims<C>`], its registered and authentication
//! claims ([`TokenFacts`]) and its `cnf` binding claims ([`Confirmation`]).

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// The verified claims of the request's token, decoded once into your type `C`.
///
/// Cheap to clone (an `Arc`), dereferences to `C`. The layer puts it in the request's
/// extensions; with the `axum` feature it is also an extractor, and the pattern
/// `Claims(user): Claims<User>` gives the handler an `Arc<User>`.
///
/// ```
/// use tower_jwt_guard::Claims;
///
/// #[derive(serde::Deserialize)]
/// struct MyClaims { sub: String }
///
/// let claims = Claims::new(MyClaims { sub: "alice".into() });
/// let copy = claims.clone();
/// assert_eq!(copy.sub, "alice");
/// ```
pub struct Claims<C>(pub Arc<C>);

impl<C> Claims<C> {
    /// Wraps decoded claims (useful in tests of handlers).
    pub fn new(claims: C) -> Self {
        Claims(Arc::new(claims))
    }

    /// The shared claims.
    pub fn as_arc(&self) -> &Arc<C> {
        &self.0
    }
}

impl<C> Clone for Claims<C> {
    fn clone(&self) -> Self {
        Claims(Arc::clone(&self.0))
    }
}

impl<C> Deref for Claims<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.0
    }
}

impl<C: fmt::Debug> fmt::Debug for Claims<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Claims").field(&self.0).finish()
    }
}

/// The binding claims a token carries under `cnf` (RFC 7800 confirmation).
#[derive(Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[non_exhaustive]
pub struct Confirmation {
    /// SHA-256 (base64url) of the device fingerprint taken from request headers.
    #[serde(default, rename = "dfp", skip_serializing_if = "Option::is_none")]
    pub device_fingerprint: Option<String>,
    /// SHA-256 (base64url) of the hardened fingerprint cookie's value.
    #[serde(default, rename = "cfp", skip_serializing_if = "Option::is_none")]
    pub cookie_fingerprint: Option<String>,
    /// The client address (or network, for prefix binding) the token was issued to.
    #[serde(default, rename = "cip", skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
    /// RFC 9449 DPoP: SHA-256 thumbprint of the client's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
    /// RFC 8705 mutual-TLS: SHA-256 thumbprint of the client certificate.
    #[serde(default, rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    pub certificate_thumbprint: Option<String>,
}

impl Confirmation {
    /// The `cnf` members present, by their claim names.
    pub fn members(&self) -> impl Iterator<Item = &'static str> + '_ {
        [
            ("dfp", self.device_fingerprint.is_some()),
            ("cfp", self.cookie_fingerprint.is_some()),
            ("cip", self.client_ip.is_some()),
            ("jkt", self.jkt.is_some()),
            ("x5t#S256", self.certificate_thumbprint.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
    }
}

impl fmt::Debug for Confirmation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |v: &Option<String>| v.as_ref().map(|_| "REDACTED");
        f.debug_struct("Confirmation")
            .field("device_fingerprint", &shown(&self.device_fingerprint))
            .field("cookie_fingerprint", &shown(&self.cookie_fingerprint))
            .field("client_ip", &shown(&self.client_ip))
            .field("jkt", &shown(&self.jkt))
            .field("certificate_thumbprint", &shown(&self.certificate_thumbprint))
            .finish()
    }
}

/// The registered and authentication claims of a verified token.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TokenFacts {
    /// `sub`
    pub subject: Option<String>,
    /// `jti`
    pub jti: Option<String>,
    /// `iss`
    pub issuer: Option<String>,
    /// `aud` (a single string becomes a one-element list)
    pub audience: Vec<String>,
    /// `exp`, seconds since the epoch
    pub expires_at: Option<u64>,
    /// `nbf`, seconds since the epoch
    pub not_before: Option<u64>,
    /// `iat`, seconds since the epoch
    pub issued_at: Option<u64>,
    /// `amr` (RFC 8176 authentication methods)
    pub amr: Vec<String>,
    /// `acr`
    pub acr: Option<String>,
    /// `auth_time`, seconds since the epoch
    pub auth_time: Option<u64>,
    /// `mfa_verified` (a JSON boolean)
    pub mfa_verified: Option<bool>,
    /// `scope` (space-separated string) or `scp` (array), as a list
    pub scopes: Vec<String>,
    /// `cnf`: binding claims
    pub confirmation: Option<Confirmation>,
    /// the header's `typ`
    pub token_type: Option<String>,
    /// the name of the accepted [`TokenKind`](crate::TokenKind) the token is (when the
    /// configuration [`accept`](crate::JwtAuthBuilder::accept)s kinds)
    pub kind: Option<Arc<str>>,
}
