//! Step 4 of the request path: has this token, or every token of its subject, been revoked?
//!
//! The layer asks its [`RevocationStore`] on every request. A store that cannot answer makes
//! the request fail closed (503 `AUTH_UNAVAILABLE`) unless fail-open was chosen explicitly.

use futures_util::future::BoxFuture;

use crate::context::TokenFacts;

/// The answer of a [`RevocationStore`] for one token.
#[non_exhaustive]
pub enum RevocationCheck {
    /// Not revoked.
    Valid,
    /// Revoked (by `jti`, or all tokens of the subject issued before a point in time).
    Revoked,
    /// The store cannot answer now.
    Unavailable,
    /// The store must ask a remote server.
    Pending(BoxFuture<'static, RevocationCheck>),
}

impl std::fmt::Debug for RevocationCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RevocationCheck::Valid => "Valid",
            RevocationCheck::Revoked => "Revoked",
            RevocationCheck::Unavailable => "Unavailable",
            RevocationCheck::Pending(_) => "Pending",
        })
    }
}

/// Where revocations live. `check` runs on the hot path: answer from memory when possible.
///
/// ```
/// use tower_jwt_guard::revocation::{RevocationCheck, RevocationStore};
/// use tower_jwt_guard::TokenFacts;
///
/// /// Refuses every token of one subject.
/// struct Banned(&'static str);
///
/// impl RevocationStore for Banned {
///     fn check(&self, token: &TokenFacts) -> RevocationCheck {
///         if token.subject.as_deref() == Some(self.0) { RevocationCheck::Revoked } else { RevocationCheck::Valid }
///     }
/// }
/// ```
pub trait RevocationStore: Send + Sync + 'static {
    /// Whether the token described by `token` is revoked.
    fn check(&self, token: &TokenFacts) -> RevocationCheck;
}
