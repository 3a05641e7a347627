//! What the layer puts into the request besides the claims: the [`AuthContext`] (who, which
//! token, until when, how strongly authenticated), which consults the configured
//! [`MfaPolicy`]; or, for a request let through without a token, the mark [`Anonymous`].

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::guard::mfa_policy::MfaPolicy;
use crate::guard::rejection::Responder;
use crate::primitives::claims::TokenFacts;

/// Marks a request the layer let through without a token (optional mode).
#[derive(Debug, Clone)]
pub(crate) struct Anonymous(pub(crate) Arc<ContextPolicy>);

/// Who the request is authenticated as, with which token, and how strongly.
///
/// The layer inserts it into the request's extensions next to [`Claims<C>`](crate::Claims); with the
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
        self.policy.mfa.is_satisfied(&self.facts, crate::primitives::clock::now())
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
