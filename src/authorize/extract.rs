//! axum extractors (feature `axum`, built on `axum-core`): [`Claims<C>`], `Option<Claims<C>>`,
//! [`AuthContext`] and [`RequireMfa`].
//!
//! Using one on a route without the layer is a wiring bug: the answer is a 500 that says so.

use std::sync::Arc;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

use crate::guard::context::{AuthContext, ContextPolicy};
use crate::guard::rejection::{Protocol, Responder};
use crate::primitives::authorization;
use crate::primitives::body::JwtBody;
use crate::primitives::claims::Claims;
use crate::primitives::error::{AuthError, ErrorKind};

pub(crate) use crate::guard::context::Anonymous;

/// The rejection of the extractors: an [`AuthError`] rendered like the layer renders it.
#[derive(Debug)]
pub struct ExtractRejection {
    error: AuthError,
    policy: Option<Arc<ContextPolicy>>,
    protocol: Protocol,
}

impl ExtractRejection {
    fn new(error: AuthError, parts: &Parts, policy: Option<Arc<ContextPolicy>>) -> Self {
        // RFC 9449 §7.1: the error goes on the scheme the request used.
        let error =
            if authorization::uses_dpop_scheme(&parts.headers) { error.on_dpop_request() } else { error };
        ExtractRejection { error, policy, protocol: Protocol::of(parts.version, &parts.headers) }
    }

    /// A rejection rendered with the configuration of the layer that authenticated `context`.
    pub(crate) fn for_context(error: AuthError, parts: &Parts, context: &AuthContext) -> Self {
        ExtractRejection::new(error, parts, Some(Arc::clone(context.policy_arc())))
    }

    /// The underlying error.
    pub fn error(&self) -> &AuthError {
        &self.error
    }
}

impl std::fmt::Display for ExtractRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for ExtractRejection {}

impl IntoResponse for ExtractRejection {
    fn into_response(self) -> Response {
        let response = match &self.policy {
            Some(policy) => policy.responder.respond(&self.error, self.protocol),
            None => Responder::default().respond(&self.error, self.protocol),
        };
        response.map(|body| axum_core::body::Body::new(JwtBody::<axum_core::body::Body>::full(body)))
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        ExtractRejection { error: self, policy: None, protocol: Protocol::Http }.into_response()
    }
}

/// Why there is nothing in the extensions: an anonymous request, or no layer at all.
fn absent(parts: &Parts) -> ExtractRejection {
    match parts.extensions.get::<Anonymous>() {
        Some(anonymous) => {
            let policy = Some(Arc::clone(&anonymous.0));
            ExtractRejection::new(AuthError::new(ErrorKind::MissingToken), parts, policy)
        }
        None => {
            tracing::error!(target: "tower_jwt_guard", path = parts.uri.path(), "extractor used on a route without JwtLayer");
            ExtractRejection::new(AuthError::new(ErrorKind::MissingLayer), parts, None)
        }
    }
}

impl<S, C> FromRequestParts<S> for Claims<C>
where
    S: Send + Sync,
    C: Send + Sync + 'static,
{
    type Rejection = ExtractRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Claims<C>>().cloned().ok_or_else(|| absent(parts))
    }
}

/// `Option<Claims<C>>`: `None` for a request without a token in optional mode; a bad token
/// was already refused by the layer.
impl<S, C> OptionalFromRequestParts<S> for Claims<C>
where
    S: Send + Sync,
    C: Send + Sync + 'static,
{
    type Rejection = ExtractRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        match parts.extensions.get::<Claims<C>>() {
            Some(claims) => Ok(Some(claims.clone())),
            None if parts.extensions.get::<Anonymous>().is_some() => Ok(None),
            None => Err(absent(parts)),
        }
    }
}

impl<S> FromRequestParts<S> for AuthContext
where
    S: Send + Sync,
{
    type Rejection = ExtractRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<AuthContext>().cloned().ok_or_else(|| absent(parts))
    }
}

impl<S> OptionalFromRequestParts<S> for AuthContext
where
    S: Send + Sync,
{
    type Rejection = ExtractRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        match parts.extensions.get::<AuthContext>() {
            Some(context) => Ok(Some(context.clone())),
            None if parts.extensions.get::<Anonymous>().is_some() => Ok(None),
            None => Err(absent(parts)),
        }
    }
}

/// Demands a multi-factor authenticated token (see [`MfaPolicy`](crate::MfaPolicy)); without
/// one, the answer is 401 with the RFC 9470 step-up challenge
/// (`error="insufficient_user_authentication"`, plus `acr_values` / `max_age` when configured).
///
/// ```
/// use axum::{routing::get, Router};
/// use tower_jwt_guard::{JwtAuth, RequireMfa};
///
/// async fn admin(RequireMfa(ctx): RequireMfa) -> String {
///     format!("hello {}", ctx.subject().unwrap_or("?"))
/// }
///
/// let auth = JwtAuth::builder().hmac_secret([7u8; 32]).build()?;
/// let app: Router = Router::new()
///     .route("/admin", get(admin))
///     .route_layer(auth.layer::<serde_json::Value>());
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RequireMfa(pub AuthContext);

impl<S> FromRequestParts<S> for RequireMfa
where
    S: Send + Sync,
{
    type Rejection = ExtractRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let context = parts.extensions.get::<AuthContext>().cloned().ok_or_else(|| absent(parts))?;
        if context.mfa_satisfied() {
            Ok(RequireMfa(context))
        } else {
            let policy = context.policy();
            let error = policy.mfa.challenge();
            Err(ExtractRejection::new(error, parts, Some(Arc::clone(context.policy_arc()))))
        }
    }
}

/// Demands a scope (RFC 6750 `insufficient_scope`, 403, when missing): `RequireScope::check(&ctx, "read:orders")`.
///
/// ```
/// use tower_jwt_guard::{AuthContext, RequireScope};
///
/// fn orders(ctx: &AuthContext) -> Result<(), tower_jwt_guard::AuthError> {
///     RequireScope::check(ctx, "read:orders")
/// }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RequireScope;

impl RequireScope {
    /// `Ok` when `context` carries `scope`, the RFC 6750 rejection otherwise.
    pub fn check(context: &AuthContext, scope: &str) -> Result<(), AuthError> {
        if context.has_scope(scope) {
            Ok(())
        } else {
            Err(AuthError::insufficient_scope(scope))
        }
    }
}
