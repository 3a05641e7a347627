//! [`JwtLayer`], [`JwtService`] and their [`ResponseFuture`]: the tower plumbing around the
//! request path of [`pipeline`](super::pipeline).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Request, Response};
use pin_project_lite::pin_project;
use serde::de::DeserializeOwned;
use tower_layer::Layer;
use tower_service::Service;

use crate::guard::config::JwtAuth;
use crate::guard::pipeline::{Decision, Guard, Outcome};
use crate::guard::rejection::Protocol;
use crate::guard::verify::{CacheStats, TokenCache};
use crate::primitives::authorization;
use crate::primitives::body::RejectionBody;
use crate::primitives::claims::TokenFacts;
use crate::primitives::error::AuthError;

/// A tower layer that lets a request through only with a valid bearer JWT, and puts the
/// verified [`Claims<C>`](crate::Claims) and [`AuthContext`](crate::AuthContext) into its extensions.
///
/// ```
/// use axum::{routing::get, Router};
/// use tower_jwt_guard::{Claims, JwtAuth};
///
/// #[derive(serde::Deserialize)]
/// struct MyClaims { sub: String }
///
/// async fn me(claims: Claims<MyClaims>) -> String {
///     claims.sub.clone()
/// }
///
/// let auth = JwtAuth::builder().hmac_secret([7u8; 32]).build()?;
/// let app: Router = Router::new()
///     .route("/me", get(me))
///     .route_layer(auth.layer::<MyClaims>());
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
pub struct JwtLayer<C> {
    guard: Arc<Guard<C>>,
}

impl<C> Clone for JwtLayer<C> {
    fn clone(&self) -> Self {
        JwtLayer { guard: Arc::clone(&self.guard) }
    }
}

impl<C> fmt::Debug for JwtLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtLayer")
            .field("auth", &JwtAuth { shared: Arc::clone(&self.guard.shared) })
            .field("checks", &self.guard.checks.len())
            .finish()
    }
}

impl<C> JwtLayer<C>
where
    C: DeserializeOwned + Send + Sync + 'static,
{
    /// A layer for `auth`, decoding claims into `C`.
    pub fn new(auth: JwtAuth) -> Self {
        JwtLayer { guard: Arc::new(Guard::new(auth.shared, Vec::new())) }
    }

    /// Adds a check over the decoded claims, run on every request after the signature and
    /// the registered claims. Its error is the rejection.
    ///
    /// ```
    /// use tower_jwt_guard::{AuthError, ErrorKind, JwtAuth};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct MyClaims { tenant: String }
    ///
    /// let auth = JwtAuth::builder().hmac_secret([7u8; 32]).build()?;
    /// let layer = auth.layer::<MyClaims>().with_check(|claims, _facts| {
    ///     if claims.tenant == "acme" { Ok(()) } else {
    ///         Err(AuthError::with_detail(ErrorKind::InvalidToken, "wrong tenant"))
    ///     }
    /// });
    /// # let _ = layer;
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn with_check<F>(self, check: F) -> Self
    where
        F: Fn(&C, &TokenFacts) -> Result<(), AuthError> + Send + Sync + 'static,
    {
        let guard = &self.guard;
        let mut checks = guard.checks.clone();
        checks.push(Arc::new(check));
        JwtLayer { guard: Arc::new(Guard::new(Arc::clone(&guard.shared), checks)) }
    }

    /// Hit and miss counts of the verified-token cache (`None` when the cache is off).
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.guard.cache.as_ref().map(TokenCache::stats)
    }
}

impl<S, C> Layer<S> for JwtLayer<C> {
    type Service = JwtService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        JwtService { inner, guard: Arc::clone(&self.guard) }
    }
}

/// The service made by [`JwtLayer`].
pub struct JwtService<S, C> {
    inner: S,
    guard: Arc<Guard<C>>,
}

impl<S: Clone, C> Clone for JwtService<S, C> {
    fn clone(&self) -> Self {
        JwtService { inner: self.inner.clone(), guard: Arc::clone(&self.guard) }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for JwtService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtService").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl<S, C, ReqBody, ResBody> Service<Request<ReqBody>> for JwtService<S, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    ReqBody: Send + 'static,
    ResBody: RejectionBody,
    C: DeserializeOwned + Send + Sync + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let private = self.guard.shared.sources.token_in_query(request.uri());
        let span = authentication_span();
        let entered = span.enter();
        match self.guard.authenticate(&mut request) {
            Outcome::Ready(decision) => {
                let admitted = admit(&self.guard, &mut request, decision, &span);
                // The inner service runs outside the layer's span.
                drop(entered);
                match admitted {
                    Ok(()) => {
                        let nonce = next_nonce(&self.guard, &request);
                        ResponseFuture::inner(self.inner.call(request), private, nonce)
                    }
                    Err(response) => ResponseFuture::rejected(response),
                }
            }
            Outcome::Suspended(suspension) => {
                drop(entered);
                // The ready service is the one that will be called; a clone takes its place.
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                ResponseFuture {
                    kind: Kind::Authenticating {
                        check: Arc::clone(&self.guard).resume(request, suspension),
                        inner: Some(ready),
                        guard: Arc::clone(&self.guard),
                        private,
                        span,
                    },
                }
            }
        }
    }
}

/// RFC 9449 §8.2: the nonce for the next proofs, on the answer to an admitted DPoP request when
/// server nonces are on (`None`, and no work, when they are off).
fn next_nonce<B, C>(guard: &Guard<C>, request: &Request<B>) -> Option<http::HeaderValue> {
    let nonces = guard.shared.dpop.as_ref()?.nonces.as_ref()?;
    if !authorization::uses_dpop_scheme(request.headers()) {
        return None;
    }
    nonces.header(crate::primitives::clock::fast_now())
}

/// RFC 6750 §2.3: an answer to a request whose token was in the URI must not be stored by
/// shared caches. A `Cache-Control` the service set itself is left as it is.
fn mark_private<B>(response: &mut Response<B>) {
    if let http::header::Entry::Vacant(entry) = response.headers_mut().entry(http::header::CACHE_CONTROL) {
        entry.insert(http::HeaderValue::from_static("private"));
    }
}

/// The span of the layer's work on one request (target `tower_jwt_guard`, level `DEBUG`, name
/// `authenticate`), with the decision's `outcome` and `code` once made: a trace shows the time
/// spent authenticating, and the audit event falls inside it. Nothing is made unless a
/// subscriber wants it.
fn authentication_span() -> tracing::Span {
    tracing::debug_span!(
        target: "tower_jwt_guard",
        "authenticate",
        outcome = tracing::field::Empty,
        code = tracing::field::Empty,
    )
}

/// Step 5: the claims into the request's extensions, or the rejection's response.
// The rejection is large and moved once; boxing it would allocate on the error path.
#[allow(clippy::result_large_err)]
fn admit<B, C: Send + Sync + 'static>(
    guard: &Guard<C>,
    request: &mut Request<B>,
    decision: Decision<C>,
    span: &tracing::Span,
) -> Result<(), Response<Bytes>> {
    let verdict = match &decision {
        Ok(Some(authenticated)) => Ok(Some(&**authenticated.context.facts())),
        Ok(None) => Ok(None),
        Err(error) => Err(error),
    };
    guard.shared.audit.record(request, verdict);
    if !span.is_disabled() {
        let (outcome, code) = match &decision {
            Ok(Some(_)) => ("accepted", "OK"),
            Ok(None) => ("anonymous", "ANONYMOUS"),
            Err(error) => ("rejected", error.code()),
        };
        span.record("outcome", outcome).record("code", code);
    }
    match decision {
        Ok(Some(authenticated)) => {
            let extensions = request.extensions_mut();
            extensions.insert(authenticated.claims);
            extensions.insert(authenticated.context);
            Ok(())
        }
        Ok(None) => {
            // The policy goes with it, so later refusals use the configured realm and hook.
            request
                .extensions_mut()
                .insert(crate::guard::context::Anonymous(Arc::clone(&guard.shared.context)));
            Ok(())
        }
        Err(error) => {
            let protocol = Protocol::of_request(request);
            // RFC 9449 §7.1: a DPoP request's refusal, whatever its cause, on the DPoP challenge.
            let error = if authorization::uses_dpop_scheme(request.headers()) {
                error.on_dpop_request()
            } else {
                error
            };
            Err(guard.shared.context.responder.respond(&error, protocol))
        }
    }
}

pin_project! {
    /// The future of [`JwtService`]: the inner service's future, a rejection, or (only when a
    /// key must be fetched or the revocation store must be asked) the authentication in flight.
    pub struct ResponseFuture<S, ReqBody, C>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        kind: Kind<S, ReqBody, C>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, ReqBody, C>
    where
        S: Service<Request<ReqBody>>,
    {
        Inner { #[pin] future: S::Future, private: bool, nonce: Option<http::HeaderValue> },
        Rejected { response: Option<Response<Bytes>> },
        Authenticating {
            check: BoxFuture<'static, (Request<ReqBody>, Decision<C>)>,
            inner: Option<S>,
            guard: Arc<Guard<C>>,
            private: bool,
            span: tracing::Span,
        },
    }
}

impl<S, ReqBody, C> ResponseFuture<S, ReqBody, C>
where
    S: Service<Request<ReqBody>>,
{
    fn inner(future: S::Future, private: bool, nonce: Option<http::HeaderValue>) -> Self {
        ResponseFuture { kind: Kind::Inner { future, private, nonce } }
    }

    fn rejected(response: Response<Bytes>) -> Self {
        ResponseFuture { kind: Kind::Rejected { response: Some(response) } }
    }
}

impl<S, ReqBody, C> fmt::Debug for ResponseFuture<S, ReqBody, C>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.kind {
            Kind::Inner { .. } => "Inner",
            Kind::Rejected { .. } => "Rejected",
            Kind::Authenticating { .. } => "Authenticating",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish()
    }
}

impl<S, ReqBody, ResBody, C> Future for ResponseFuture<S, ReqBody, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: RejectionBody,
    C: Send + Sync + 'static,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let next = match self.as_mut().project().kind.project() {
                KindProj::Inner { future, private, nonce } => {
                    let private = *private;
                    let response = ready!(future.poll(cx));
                    return Poll::Ready(response.map(|mut response| {
                        if private {
                            mark_private(&mut response);
                        }
                        if let Some(nonce) = nonce.take() {
                            // The service's own nonce (a token endpoint's) stands.
                            response.headers_mut().entry("dpop-nonce").or_insert(nonce);
                        }
                        // The inner service's body as it is: a server that erases body types
                        // (axum's routes) does not box it again.
                        response
                    }));
                }
                KindProj::Rejected { response } => {
                    let response = response.take().expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok(response.map(ResBody::rejection)));
                }
                KindProj::Authenticating { check, inner, guard, private, span } => {
                    let entered = span.enter();
                    let (mut request, decision) = ready!(check.as_mut().poll(cx));
                    let admitted = admit(guard, &mut request, decision, span);
                    drop(entered);
                    match admitted {
                        Ok(()) => {
                            let mut service = inner.take().expect("ResponseFuture polled after completion");
                            let nonce = next_nonce(guard, &request);
                            Kind::Inner { future: service.call(request), private: *private, nonce }
                        }
                        Err(response) => Kind::Rejected { response: Some(response) },
                    }
                }
            };
            self.as_mut().project().kind.set(next);
        }
    }
}
