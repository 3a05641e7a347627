//! What a handler receives: the typed [`Claims<C>`] and the [`AuthContext`] (who, which token,
//! until when, how strongly authenticated).

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::mfa::MfaPolicy;
use crate::rejection::Responder;

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

/// Marks a request the layer let through without a token (optional mode).
#[derive(Debug, Clone)]
pub(crate) struct Anonymous(pub(crate) Arc<ContextPolicy>);

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

/// Who the request is authenticated as, with which token, and how strongly.
///
/// The layer inserts it into the request's extensions next to [`Claims<C>`]; with the
/// `axum` feature it is an extractor. It dereferences to [`TokenFacts`].
///
/// ```
/// use tower_jwt_guard::AuthContext;
///
/// fn audit(ctx: &AuthContext) -> String {
///     format!("{} via {}", ctx.subject().unwrap_or("?"), ctx.jti().unwrap_or("-"))
/// }
/// ```
#[derive(Clone)]
pub struct AuthContext {
    facts: Arc<TokenFacts>,
    policy: Arc<ContextPolicy>,
}

/// The parts of the configuration that extractors need after the layer ran.
#[derive(Debug, Default)]
pub(crate) struct ContextPolicy {
    pub(crate) mfa: MfaPolicy,
    pub(crate) responder: Responder,
}

impl fmt::Debug for AuthContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthContext")
            .field("issuer", &self.facts.issuer)
            .field("subject", &self.facts.subject)
            .field("jti", &self.facts.jti)
            .field("expires_at", &self.facts.expires_at)
            .field("amr", &self.facts.amr)
            .field("acr", &self.facts.acr)
            .finish_non_exhaustive()
    }
}

impl Deref for AuthContext {
    type Target = TokenFacts;
    fn deref(&self) -> &TokenFacts {
        &self.facts
    }
}

impl AuthContext {
    pub(crate) fn new(facts: Arc<TokenFacts>, policy: Arc<ContextPolicy>) -> Self {
        AuthContext { facts, policy }
    }

    /// The token's subject (`sub`).
    pub fn subject(&self) -> Option<&str> {
        self.facts.subject.as_deref()
    }

    /// The token's issuer (`iss`): with several trusted issuers, the one whose keys and rules
    /// verified it. Identifiers (`sub`, `jti`) are unique per issuer, not globally: key what you
    /// store about a caller by issuer and subject.
    ///
    /// ```
    /// use tower_jwt_guard::AuthContext;
    ///
    /// fn tenant_user(ctx: &AuthContext) -> (Option<&str>, Option<&str>) {
    ///     (ctx.issuer(), ctx.subject())
    /// }
    /// # let _ = tenant_user;
    /// ```
    pub fn issuer(&self) -> Option<&str> {
        self.facts.issuer.as_deref()
    }

    /// The token's id (`jti`).
    pub fn jti(&self) -> Option<&str> {
        self.facts.jti.as_deref()
    }

    /// When the token expires.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.facts.expires_at.map(|s| UNIX_EPOCH + Duration::from_secs(s))
    }

    /// The shared facts.
    pub fn facts(&self) -> &Arc<TokenFacts> {
        &self.facts
    }

    /// Whether the token satisfies the configured multi-factor policy now.
    pub fn mfa_satisfied(&self) -> bool {
        self.policy.mfa.is_satisfied(&self.facts, crate::clock::now())
    }

    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.facts.scopes.iter().any(|s| s == scope)
    }

    pub(crate) fn policy(&self) -> &ContextPolicy {
        &self.policy
    }

    #[cfg(feature = "axum")]
    pub(crate) fn policy_arc(&self) -> &Arc<ContextPolicy> {
        &self.policy
    }
}
