//! Readiness: can the layer answer now, and if not, why.
//!
//! A load balancer should send traffic only to an instance that can decide on it. The layer
//! cannot while its key source holds no usable keys (a JWKS endpoint down at start: every token
//! would get 503) or while its revocation store cannot answer from what it knows (the Redis
//! invalidation subscription down), or while a binding policy has never loaded its remote keys
//! (a message signature's JWKS URL). Each part says so itself ([`KeySource::readiness`],
//! [`RevocationStore::readiness`], [`BindingPolicy::readiness`]); [`JwtAuth::readiness`]
//! gathers them, and
//! [`JwtAuth::ready_service`] answers a `/ready` probe with 200 or 503 and the reasons as JSON.
//!
//! Asking is cheap (no network) and may start what a first request would start: a JWKS source
//! begins fetching when asked, so a probe at start-up loads the keys before the first request.
//!
//! ```
//! use axum::{body::Body, Router};
//! use tower::ServiceExt;
//! use tower_jwt_guard::JwtAuth;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = JwtAuth::builder().hmac_secret([7u8; 32]).build()?;
//! assert!(auth.readiness().is_ready());
//! let app: Router = Router::new().route_service("/ready", auth.ready_service());
//! let response = app.oneshot(http::Request::get("/ready").body(Body::empty())?).await?;
//! assert_eq!(response.status(), 200);
//! # Ok(())
//! # }
//! ```
//!
//! [`KeySource::readiness`]: crate::guard::keys::KeySource::readiness
//! [`RevocationStore::readiness`]: crate::guard::revocation::RevocationStore::readiness
//! [`BindingPolicy::readiness`]: crate::guard::binding::BindingPolicy::readiness
//! [`JwtAuth::readiness`]: crate::JwtAuth::readiness
//! [`JwtAuth::ready_service`]: crate::JwtAuth::ready_service

use std::borrow::Cow;
use std::convert::Infallible;
use std::fmt;
use std::future::{ready, Ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use tower_service::Service;

/// Whether one part of the layer (a key source, a revocation store) can answer now.
///
/// ```
/// use tower_jwt_guard::Readiness;
///
/// assert!(Readiness::Ready.is_ready());
/// let down = Readiness::not_ready("no keys fetched yet");
/// assert_eq!(down.reason(), Some("no keys fetched yet"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Readiness {
    /// It can answer.
    Ready,
    /// It cannot, for this reason: a short text for operators, without secrets or URLs.
    NotReady(Cow<'static, str>),
}

impl Readiness {
    /// Not ready, because of `reason`.
    pub fn not_ready(reason: impl Into<Cow<'static, str>>) -> Self {
        Readiness::NotReady(reason.into())
    }

    /// Whether it can answer.
    pub fn is_ready(&self) -> bool {
        matches!(self, Readiness::Ready)
    }

    /// Why not, when not ready.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Readiness::Ready => None,
            Readiness::NotReady(reason) => Some(reason),
        }
    }
}

/// Whether the whole layer can answer now ([`JwtAuth::readiness`]): ready when every part is.
///
/// [`JwtAuth::readiness`]: crate::JwtAuth::readiness
///
/// ```
/// let auth = tower_jwt_guard::JwtAuth::builder().hmac_secret([7u8; 32]).build()?;
/// let report = auth.readiness();
/// assert!(report.is_ready());
/// assert_eq!(report.to_json(), r#"{"ready":true,"reasons":[]}"#);
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessReport {
    reasons: Vec<(&'static str, Cow<'static, str>)>,
}

impl ReadinessReport {
    /// The report over the parts' answers (`"keys"`, `"revocation"`): the ones not ready, with
    /// their reasons.
    pub(crate) fn of(parts: impl IntoIterator<Item = (&'static str, Readiness)>) -> Self {
        let reasons = parts
            .into_iter()
            .filter_map(|(part, readiness)| match readiness {
                Readiness::Ready => None,
                Readiness::NotReady(reason) => Some((part, reason)),
            })
            .collect();
        ReadinessReport { reasons }
    }

    /// Whether the layer can answer now.
    pub fn is_ready(&self) -> bool {
        self.reasons.is_empty()
    }

    /// The parts that cannot answer (`"keys"`, `"revocation"`) and why.
    pub fn reasons(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        self.reasons.iter().map(|(part, reason)| (*part, &**reason))
    }

    /// `{"ready":false,"reasons":[{"component":"keys","reason":"…"}]}`.
    pub fn to_json(&self) -> String {
        let reasons: Vec<serde_json::Value> = self
            .reasons()
            .map(|(component, reason)| serde_json::json!({ "component": component, "reason": reason }))
            .collect();
        serde_json::json!({ "ready": self.is_ready(), "reasons": reasons }).to_string()
    }

    /// The probe's answer: 200 when ready, else 503; the JSON of [`to_json`](Self::to_json),
    /// never cached.
    pub fn to_response(&self) -> Response<Full<Bytes>> {
        let status = if self.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
        let mut response = Response::new(Full::new(Bytes::from(self.to_json())));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// The `/ready` probe of a configuration ([`JwtAuth::ready_service`]).
///
/// [`JwtAuth::ready_service`]: crate::JwtAuth::ready_service
#[derive(Clone)]
pub struct ReadyService {
    report: Arc<dyn Fn() -> ReadinessReport + Send + Sync>,
}

impl ReadyService {
    /// A probe that answers with what `report` says at each request.
    pub(crate) fn new(report: impl Fn() -> ReadinessReport + Send + Sync + 'static) -> Self {
        ReadyService { report: Arc::new(report) }
    }
}

impl fmt::Debug for ReadyService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadyService").finish_non_exhaustive()
    }
}

impl<B> Service<Request<B>> for ReadyService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<B>) -> Self::Future {
        ready(Ok((self.report)().to_response()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_not_ready_makes_the_report_not_ready() {
        assert!(ReadinessReport::of([("keys", Readiness::Ready)]).is_ready());
        let report = ReadinessReport::of([
            ("keys", Readiness::Ready),
            ("revocation", Readiness::not_ready("subscription down")),
        ]);
        assert!(!report.is_ready());
        assert_eq!(report.reasons().collect::<Vec<_>>(), [("revocation", "subscription down")]);
        let response = report.to_response();
        assert_eq!(response.status(), 503);
        assert_eq!(
            report.to_json(),
            r#"{"ready":false,"reasons":[{"component":"revocation","reason":"subscription down"}]}"#
        );
    }
}
