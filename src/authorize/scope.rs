//! Scopes required per route: [`RequireScopeLayer`] for any service (axum `route_layer`,
//! tonic, hyper), and with the `axum` feature the [`Scoped<T>`] extractor.
//!
//! The token's scopes are its `scope` and `scp` claims, each a space-separated string (Entra ID
//! writes `"scp": "User.Read Mail.Read"`) or an array of strings (one scope per item). A token without a required scope is refused with
//! `INSUFFICIENT_SCOPE`: HTTP 403 with the RFC 6750 challenge
//! (`error="insufficient_scope", scope="read:orders"`), or gRPC status 7 PERMISSION_DENIED.
//!
//! Like [`RequireMfaLayer`](crate::RequireMfaLayer), the layer sits *inside*
//! [`JwtLayer`](crate::JwtLayer) and reads the [`AuthContext`] the latter put into the request.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::authorize::check::{self, CheckFuture};
use crate::guard::context::AuthContext;
use crate::primitives::body::JwtBody;
use crate::primitives::error::AuthError;

/// Which scopes a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Needed {
    All(Vec<String>),
    Any(Vec<String>),
}

impl Needed {
    fn scopes(&self) -> &[String] {
        match self {
            Needed::All(scopes) | Needed::Any(scopes) => scopes,
        }
    }

    fn satisfied_by(&self, context: &AuthContext) -> bool {
        match self {
            Needed::All(scopes) => scopes.iter().all(|scope| context.has_scope(scope)),
            Needed::Any(scopes) => scopes.iter().any(|scope| context.has_scope(scope)),
        }
    }

    /// The RFC 6750 rejection: `scope` lists what the route needs, space-separated.
    fn rejection(&self) -> AuthError {
        AuthError::insufficient_scope(self.scopes().join(" "))
    }
}

/// A tower layer that lets a request through only when its token carries the required
/// scope(s); otherwise `INSUFFICIENT_SCOPE` (HTTP 403 with `error="insufficient_scope"` and the
/// `scope` attribute, or gRPC status 7).
///
/// In axum, put it on the routes that need the scope with `route_layer`, *before* (inside) the
/// [`JwtLayer`](crate::JwtLayer):
///
/// ```
/// use axum::{routing::get, Router};
/// use tower::ServiceExt;
/// use tower_jwt_guard::{issue::SigningKey, Algorithm, JwtAuth, RequireScopeLayer, TokenIssuer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let auth = JwtAuth::builder().hmac_secret([7u8; 32]).build()?;
/// let orders = Router::new()
///     .route("/orders", get(|| async { "orders" }))
///     .route_layer(RequireScopeLayer::new("read:orders"));
/// let app: Router = Router::new()
///     .merge(orders)
///     .route("/me", get(|| async { "me" }))
///     .route_layer(auth.layer::<serde_json::Value>());
///
/// let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [7u8; 32])?).build();
/// let call = |path: &str, scope: &str| {
///     let token = issuer.mint("alice", &serde_json::json!({ "scope": scope })).unwrap().token;
///     http::Request::get(path).header("authorization", format!("Bearer {token}")).body(axum::body::Body::empty()).unwrap()
/// };
///
/// let allowed = app.clone().oneshot(call("/orders", "profile read:orders")).await?;
/// assert_eq!(allowed.status(), 200);
/// let refused = app.clone().oneshot(call("/orders", "profile")).await?;
/// assert_eq!(refused.status(), 403);
/// assert!(refused.headers()["www-authenticate"].to_str()?.contains(r#"scope="read:orders""#));
/// // Routes without the scope layer need only a valid token.
/// assert_eq!(app.oneshot(call("/me", "profile")).await?.status(), 200);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct RequireScopeLayer {
    needed: Arc<Needed>,
}

impl RequireScopeLayer {
    /// Requests need `scope`.
    ///
    /// ```
    /// let layer = tower_jwt_guard::RequireScopeLayer::new("read:orders");
    /// # let _ = layer;
    /// ```
    pub fn new(scope: impl Into<String>) -> Self {
        RequireScopeLayer { needed: Arc::new(Needed::All(vec![scope.into()])) }
    }

    /// Requests need every one of `scopes`.
    ///
    /// ```
    /// let layer = tower_jwt_guard::RequireScopeLayer::all(["read:orders", "write:orders"]);
    /// # let _ = layer;
    /// ```
    pub fn all<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RequireScopeLayer { needed: Arc::new(Needed::All(scopes.into_iter().map(Into::into).collect())) }
    }

    /// Requests need at least one of `scopes` (none given: every request is refused).
    ///
    /// ```
    /// let layer = tower_jwt_guard::RequireScopeLayer::any(["orders:admin", "read:orders"]);
    /// # let _ = layer;
    /// ```
    pub fn any<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RequireScopeLayer { needed: Arc::new(Needed::Any(scopes.into_iter().map(Into::into).collect())) }
    }
}

impl<S> Layer<S> for RequireScopeLayer {
    type Service = RequireScopeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopeService { inner, needed: Arc::clone(&self.needed) }
    }
}

/// The service made by [`RequireScopeLayer`].
#[derive(Clone)]
pub struct RequireScopeService<S> {
    inner: S,
    needed: Arc<Needed>,
}

impl<S: fmt::Debug> fmt::Debug for RequireScopeService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScopeService")
            .field("inner", &self.inner)
            .field("needed", &self.needed)
            .finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireScopeService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<JwtBody<ResBody>>;
    type Error = S::Error;
    type Future = CheckFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        match rejection(&self.needed, &request) {
            None => CheckFuture::inner(self.inner.call(request)),
            Some(response) => CheckFuture::rejected(response),
        }
    }
}

/// `None` when the request's token has the scopes, the rejection's response otherwise.
fn rejection<B>(needed: &Needed, request: &Request<B>) -> Option<Response<Bytes>> {
    let (error, responder) = match check::verified_context(request, "RequireScopeLayer") {
        Ok(context) if needed.satisfied_by(context) => return None,
        Ok(context) => (needed.rejection(), context.policy().responder.clone()),
        Err(refusal) => refusal,
    };
    Some(check::refuse(request, &error, &responder))
}

/// The future of [`RequireScopeService`]: [`CheckFuture`], the one future of the checks after the guard.
#[deprecated(note = "the future of every check after the guard is `CheckFuture`")]
pub type RequireScopeFuture<F> = CheckFuture<F>;

/// The scopes a [`Scoped<T>`] extractor demands: implement it on a marker type per scope set.
///
#[cfg_attr(
    not(feature = "axum"),
    doc = "[`Scoped<T>`]: https://docs.rs/tower-jwt-guard/latest/tower_jwt_guard/struct.Scoped.html"
)]
///
/// ```
/// use tower_jwt_guard::ScopeSet;
///
/// struct ReadOrders;
/// impl ScopeSet for ReadOrders {
///     const SCOPES: &'static [&'static str] = &["read:orders"];
/// }
/// ```
pub trait ScopeSet {
    /// Every one of these scopes is required.
    const SCOPES: &'static [&'static str];
}

/// An axum extractor (feature `axum`) that demands the scopes of `T`; without them the answer
/// is 403 `insufficient_scope` with the `scope` attribute (gRPC: status 7). It holds the
/// request's [`AuthContext`].
///
/// ```
/// use axum::{routing::get, Router};
/// use tower_jwt_guard::{JwtAuth, ScopeSet, Scoped};
///
/// struct ReadOrders;
/// impl ScopeSet for ReadOrders {
///     const SCOPES: &'static [&'static str] = &["read:orders"];
/// }
///
/// async fn orders(Scoped(ctx, ..): Scoped<ReadOrders>) -> String {
///     format!("orders of {}", ctx.subject().unwrap_or("?"))
/// }
///
/// let auth = JwtAuth::builder().hmac_secret([7u8; 32]).build()?;
/// let app: Router = Router::new()
///     .route("/orders", get(orders))
///     .route_layer(auth.layer::<serde_json::Value>());
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[cfg(feature = "axum")]
pub struct Scoped<T>(pub AuthContext, pub std::marker::PhantomData<fn() -> T>);

#[cfg(feature = "axum")]
impl<T> fmt::Debug for Scoped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Scoped").field(&self.0).finish()
    }
}

#[cfg(feature = "axum")]
impl<T> Clone for Scoped<T> {
    fn clone(&self) -> Self {
        Scoped(self.0.clone(), std::marker::PhantomData)
    }
}

#[cfg(feature = "axum")]
impl<T> std::ops::Deref for Scoped<T> {
    type Target = AuthContext;
    fn deref(&self) -> &AuthContext {
        &self.0
    }
}

#[cfg(feature = "axum")]
impl<S, T> axum_core::extract::FromRequestParts<S> for Scoped<T>
where
    S: Send + Sync,
    T: ScopeSet,
{
    type Rejection = crate::authorize::extract::ExtractRejection;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let context =
            <AuthContext as axum_core::extract::FromRequestParts<S>>::from_request_parts(parts, state)
                .await?;
        let needed = Needed::All(T::SCOPES.iter().map(|scope| (*scope).to_owned()).collect());
        if needed.satisfied_by(&context) {
            Ok(Scoped(context, std::marker::PhantomData))
        } else {
            Err(crate::authorize::extract::ExtractRejection::for_context(needed.rejection(), parts, &context))
        }
    }
}
