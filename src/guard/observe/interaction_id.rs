//! [`InteractionIdLayer`]: the `x-fapi-interaction-id` of FAPI 2.0 (§6.2.1 of the FAPI 1.0
//! baseline it keeps): one id per request, shared by every service that handles it.
//!
//! The layer takes the client's value when it is a UUID (RFC 9562 text form) and otherwise makes
//! one (a random, version 4 UUID); it refuses nothing for this header. The id is put into the
//! request (the header, for the services behind, and the extensions as an [`InteractionId`],
//! which the [audit events](crate::audit) carry as `interaction_id`), into a `tracing` span
//! around the request, and into the response's header, rejections included when the layer is
//! outside the [`JwtLayer`](crate::JwtLayer). A value that is not a UUID is never reflected.
//!
//! While the request is handled (each poll of its future, like a `tracing` span), the id is
//! also [`InteractionId::current`], which the client layer
//! [`ServiceTokenLayer`](crate::ServiceTokenLayer) puts on the handler's outgoing calls: one id
//! across services.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderName, HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;
use tracing::instrument::Instrumented;
use tracing::Instrument as _;

/// The header name, `x-fapi-interaction-id`.
pub const INTERACTION_ID: HeaderName = HeaderName::from_static("x-fapi-interaction-id");

thread_local! {
    /// The id of the request whose future this thread is polling (see [`InteractionId::current`]).
    static CURRENT: RefCell<Option<InteractionId>> = const { RefCell::new(None) };
}

/// A request's interaction id: a UUID in its lowercase text form (shared: a clone is cheap).
///
/// ```
/// use tower_jwt_guard::InteractionId;
///
/// let id = InteractionId::parse("C0FFEE00-1234-4abc-8def-0123456789ab").unwrap();
/// assert_eq!(id.as_str(), "c0ffee00-1234-4abc-8def-0123456789ab");
/// assert!(InteractionId::parse("not-a-uuid").is_none());
/// assert_eq!(InteractionId::generate().as_str().len(), 36);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct InteractionId(Arc<str>);

impl fmt::Debug for InteractionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("InteractionId").field(&self.0).finish()
    }
}

impl fmt::Display for InteractionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl InteractionId {
    /// `text` when it is a UUID (`8-4-4-4-12` hex digits), lowercased; `None` otherwise.
    pub fn parse(text: &str) -> Option<InteractionId> {
        let bytes = text.as_bytes();
        let well_formed = bytes.len() == 36
            && bytes.iter().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => *b == b'-',
                _ => b.is_ascii_hexdigit(),
            });
        well_formed.then(|| InteractionId(text.to_ascii_lowercase().into()))
    }

    /// A fresh random (version 4) UUID.
    pub fn generate() -> InteractionId {
        let mut bytes = [0u8; 16];
        if aws_lc_rs::rand::fill(&mut bytes).is_err() {
            // No randomness: a nil-like id rather than a panic; it still names the request.
            bytes = [0u8; 16];
        }
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let text = format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]);
        InteractionId(text.into())
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the request being handled here and now: set by [`InteractionIdLayer`] while it
    /// polls the request's future (the handler, and the calls it makes, in that future; a task
    /// it spawns does not inherit it, as it does not inherit the request's `tracing` span: give
    /// such a task the id, and put it in its outgoing request's extensions). `None` outside.
    ///
    /// ```
    /// use tower::{ServiceBuilder, ServiceExt};
    /// use tower_jwt_guard::{InteractionId, InteractionIdLayer};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let service = ServiceBuilder::new().layer(InteractionIdLayer::new()).service_fn(
    ///     |_request: http::Request<String>| async move {
    ///         // In the handler: the request's id, for the calls it makes.
    ///         let id = InteractionId::current().map(|id| id.to_string()).unwrap_or_default();
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(id))
    ///     },
    /// );
    /// let id = "0b4f4d6e-6f2a-4c1e-9d3b-5a6c7d8e9f00";
    /// let request = http::Request::builder().header("x-fapi-interaction-id", id).body(String::new())?;
    /// let response = tokio::runtime::Builder::new_current_thread().build()?.block_on(service.oneshot(request))?;
    /// assert_eq!(response.body(), id);
    /// assert!(InteractionId::current().is_none(), "outside the request");
    /// # Ok(())
    /// # }
    /// ```
    pub fn current() -> Option<InteractionId> {
        CURRENT.with(|current| current.borrow().clone())
    }

    /// The client's id from `request`'s header when it is a UUID, else a fresh one.
    fn of<B>(request: &Request<B>) -> InteractionId {
        request
            .headers()
            .get(&INTERACTION_ID)
            .and_then(|value| value.to_str().ok())
            .and_then(InteractionId::parse)
            .unwrap_or_else(InteractionId::generate)
    }
}

/// Gives every request an [`InteractionId`] and every response its `x-fapi-interaction-id`.
/// Put it outside the [`JwtLayer`](crate::JwtLayer) so that rejections carry it too.
///
/// ```
/// use tower::{ServiceBuilder, ServiceExt};
/// use tower_jwt_guard::{InteractionId, InteractionIdLayer};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let service = ServiceBuilder::new().layer(InteractionIdLayer::new()).service_fn(
///     |request: http::Request<String>| async move {
///         let id = request.extensions().get::<InteractionId>().map(|id| id.to_string());
///         Ok::<_, std::convert::Infallible>(http::Response::new(id.unwrap_or_default()))
///     },
/// );
/// let id = "0b4f4d6e-6f2a-4c1e-9d3b-5a6c7d8e9f00";
/// let request = http::Request::builder().header("x-fapi-interaction-id", id).body(String::new())?;
/// let response = tokio::runtime::Builder::new_current_thread().build()?.block_on(service.oneshot(request))?;
/// assert_eq!(response.headers()["x-fapi-interaction-id"], id);
/// assert_eq!(response.body(), id);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct InteractionIdLayer {
    _private: (),
}

impl InteractionIdLayer {
    /// The layer.
    pub fn new() -> Self {
        InteractionIdLayer::default()
    }
}

impl<S> Layer<S> for InteractionIdLayer {
    type Service = InteractionIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InteractionIdService { inner }
    }
}

/// The service of [`InteractionIdLayer`].
#[derive(Debug, Clone)]
pub struct InteractionIdService<S> {
    inner: S,
}

impl<S, B, R> Service<Request<B>> for InteractionIdService<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = InteractionIdFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let id = InteractionId::of(&request);
        // A UUID is always a valid header value.
        let value = HeaderValue::from_str(id.as_str()).ok();
        if let Some(value) = &value {
            request.headers_mut().insert(INTERACTION_ID, value.clone());
        }
        let span =
            tracing::info_span!(target: "tower_jwt_guard::audit", "fapi_interaction", interaction_id = %id);
        request.extensions_mut().insert(id.clone());
        // Set while the inner service is called too: a service that calls out from `call`.
        let inner = Scope::enter(Some(id)).run(|| self.inner.call(request));
        InteractionIdFuture { inner: inner.0.instrument(span), value, id: inner.1 }
    }
}

pin_project! {
    /// The response future of [`InteractionIdService`].
    pub struct InteractionIdFuture<F> {
        #[pin]
        inner: Instrumented<F>,
        value: Option<HeaderValue>,
        // The id, made current while the inner future is polled.
        id: Option<InteractionId>,
    }
}

/// The id made [`InteractionId::current`] for a while, and the one it replaced, restored when
/// the scope ends (on a panic too).
struct Scope {
    previous: Option<InteractionId>,
    restored: bool,
}

impl Scope {
    fn enter(id: Option<InteractionId>) -> Scope {
        Scope { previous: CURRENT.with(|current| current.replace(id)), restored: false }
    }

    /// Runs `f` in the scope; returns what it returned and the id, taken back.
    fn run<T>(mut self, f: impl FnOnce() -> T) -> (T, Option<InteractionId>) {
        let out = f();
        let previous = self.previous.take();
        let id = CURRENT.with(|current| current.replace(previous));
        self.restored = true;
        (out, id)
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if !self.restored {
            let previous = self.previous.take();
            CURRENT.with(|current| *current.borrow_mut() = previous);
        }
    }
}

impl<F, R, E> Future for InteractionIdFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = Result<Response<R>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let inner = this.inner;
        let (polled, id) = Scope::enter(this.id.take()).run(|| inner.poll(cx));
        *this.id = id;
        let mut response = match polled {
            Poll::Ready(Ok(response)) => response,
            other => return other,
        };
        if let Some(value) = this.value.take() {
            response.headers_mut().insert(INTERACTION_ID, value);
        }
        Poll::Ready(Ok(response))
    }
}

impl<F> fmt::Debug for InteractionIdFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InteractionIdFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_uuids_are_taken() {
        assert!(InteractionId::parse("0b4f4d6e-6f2a-4c1e-9d3b-5a6c7d8e9f00").is_some());
        for bad in ["", "0b4f4d6e6f2a4c1e9d3b5a6c7d8e9f00", "0b4f4d6e-6f2a-4c1e-9d3b-5a6c7d8e9f0g", "x\r\ny"]
        {
            assert!(InteractionId::parse(bad).is_none(), "{bad:?}");
        }
        let a = InteractionId::generate();
        assert!(InteractionId::parse(a.as_str()).is_some());
        assert_eq!(&a.as_str()[14..15], "4");
        assert_ne!(a, InteractionId::generate());
    }
}
