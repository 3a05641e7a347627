//! The checks that run after the [`JwtLayer`](crate::JwtLayer) let a request through
//! ([`RequireMfaLayer`](crate::RequireMfaLayer), [`RequireScopeLayer`](crate::RequireScopeLayer)):
//! the verified context they read, their one refusal path, and [`CheckFuture`], their future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use pin_project_lite::pin_project;

use crate::guard::context::{Anonymous, AuthContext};
use crate::guard::rejection::{Protocol, Responder};
use crate::primitives::authorization;
use crate::primitives::body::JwtBody;
use crate::primitives::error::{AuthError, ErrorKind};

/// What a check after the [`JwtLayer`](crate::JwtLayer) works on: the verified token's context,
/// or the refusal when there is none — `MISSING_TOKEN` for an anonymous request (optional mode),
/// `MISSING_LAYER` when no `JwtLayer` runs in front of `layer`.
pub(crate) fn verified_context<'r, B>(
    request: &'r Request<B>,
    layer: &'static str,
) -> Result<&'r AuthContext, (AuthError, Responder)> {
    if let Some(context) = request.extensions().get::<AuthContext>() {
        return Ok(context);
    }
    match request.extensions().get::<Anonymous>() {
        Some(anonymous) => Err((AuthError::new(ErrorKind::MissingToken), anonymous.0.responder.clone())),
        None => {
            tracing::error!(
                target: "tower_jwt_guard",
                path = request.uri().path(),
                "{layer} without JwtLayer in front of it"
            );
            Err((AuthError::new(ErrorKind::MissingLayer), Responder::default()))
        }
    }
}

/// Logs a check's refusal and renders it in the request's protocol.
pub(crate) fn refuse<B>(request: &Request<B>, error: &AuthError, responder: &Responder) -> Response<Bytes> {
    tracing::info!(
        target: "tower_jwt_guard",
        code = error.code(),
        reason = error.detail(),
        method = %request.method(),
        path = request.uri().path(),
        "request rejected"
    );
    // RFC 9449 §7.1: the error goes on the scheme the request used.
    if authorization::uses_dpop_scheme(request.headers()) {
        return responder.respond(&error.clone().on_dpop_request(), Protocol::of_request(request));
    }
    responder.respond(error, Protocol::of_request(request))
}

pin_project! {
    /// The inner service's future, or the response of a rejection (a check that failed).
    ///
    /// ```
    /// use tower::{service_fn, Layer, ServiceExt};
    /// use tower_jwt_guard::RequireMfaLayer;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let inner = service_fn(|_: http::Request<String>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
    /// });
    /// // Without a JwtLayer in front, the check refuses: its CheckFuture yields the refusal.
    /// let service = RequireMfaLayer::new().layer(inner);
    /// let response = service.oneshot(http::Request::new(String::new())).await.unwrap();
    /// assert_eq!(response.status(), 500);
    /// # }
    /// ```
    pub struct CheckFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Inner { #[pin] future: F },
        Rejected { response: Option<Response<Bytes>> },
    }
}

impl<F> CheckFuture<F> {
    /// The check passed: the inner service answers.
    pub(crate) fn inner(future: F) -> Self {
        CheckFuture { kind: Kind::Inner { future } }
    }

    /// The check failed: this response answers.
    pub(crate) fn rejected(response: Response<Bytes>) -> Self {
        CheckFuture { kind: Kind::Rejected { response: Some(response) } }
    }
}

impl<F> fmt::Debug for CheckFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.kind {
            Kind::Inner { .. } => "Inner",
            Kind::Rejected { .. } => "Rejected",
        };
        f.debug_struct("CheckFuture").field("state", &state).finish()
    }
}

impl<F, ResBody, E> Future for CheckFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<JwtBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => future.poll(cx).map_ok(|response| response.map(JwtBody::inner)),
            KindProj::Rejected { response } => {
                let response = response.take().expect("CheckFuture polled after completion");
                Poll::Ready(Ok(response.map(JwtBody::full)))
            }
        }
    }
}
