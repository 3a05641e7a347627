//! The response bodies of the layers: [`RejectionBody`], a body type a refusal can be written
//! in (the [`JwtLayer`](crate::JwtLayer) keeps the inner service's body type), and [`JwtBody`],
//! either the inner service's body or a refusal's (the checks after the guard, and any body
//! type without a [`RejectionBody`] implementation).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::{BoxBody, UnsyncBoxBody};
use http_body_util::{BodyExt as _, Full};
use pin_project_lite::pin_project;

/// A response body type that a refusal can be written in: the [`JwtLayer`](crate::JwtLayer)
/// answers in the inner service's own body type rather than wrapping it, so that a server that
/// erases body types (axum's routes, tonic's server) need not box the body once more on every
/// request.
///
/// Implemented for axum's `Body` (feature `axum`), tonic's `Body` (feature `tonic`),
/// `http_body_util`'s `Full<Bytes>`, `BoxBody` and `UnsyncBoxBody`, `String`, and [`JwtBody`].
/// For any other body type, map the inner service's responses into a [`JwtBody`] first
/// (`response.map(JwtBody::inner)`), as the checks after the guard do.
///
/// ```
/// use bytes::Bytes;
/// use http_body::Body;
/// use http_body_util::Full;
/// use tower_jwt_guard::RejectionBody;
///
/// let refusal = Bytes::from_static(br#"{"error":"invalid_token"}"#);
/// let body = <Full<Bytes> as RejectionBody>::rejection(refusal.clone());
/// assert_eq!(body.size_hint().exact(), Some(refusal.len() as u64));
/// ```
pub trait RejectionBody: Sized {
    /// A complete body holding a refusal's `data` (its JSON; nothing for a gRPC refusal).
    fn rejection(data: Bytes) -> Self;
}

impl<B> RejectionBody for JwtBody<B> {
    fn rejection(data: Bytes) -> Self {
        JwtBody::full(data)
    }
}

impl RejectionBody for Full<Bytes> {
    fn rejection(data: Bytes) -> Self {
        Full::new(data)
    }
}

impl<E: 'static> RejectionBody for BoxBody<Bytes, E> {
    fn rejection(data: Bytes) -> Self {
        Full::new(data).map_err(|never| match never {}).boxed()
    }
}

impl<E: 'static> RejectionBody for UnsyncBoxBody<Bytes, E> {
    fn rejection(data: Bytes) -> Self {
        Full::new(data).map_err(|never| match never {}).boxed_unsync()
    }
}

/// A refusal's body is JSON (UTF-8) or empty.
impl RejectionBody for String {
    fn rejection(data: Bytes) -> Self {
        String::from_utf8_lossy(&data).into_owned()
    }
}

#[cfg(feature = "axum")]
impl RejectionBody for axum_core::body::Body {
    fn rejection(data: Bytes) -> Self {
        axum_core::body::Body::from(data)
    }
}

#[cfg(feature = "tonic")]
impl RejectionBody for tonic::body::Body {
    fn rejection(data: Bytes) -> Self {
        tonic::body::Body::new(Full::new(data))
    }
}

pin_project! {
    /// The response body of the checks after the guard ([`RequireMfaLayer`](crate::RequireMfaLayer),
    /// [`RequireScopeLayer`](crate::RequireScopeLayer), ..): the inner service's body, or the
    /// (small, complete) body of a rejection; also the way to put the [`JwtLayer`](crate::JwtLayer)
    /// in front of a body type that has no [`RejectionBody`] implementation. It keeps the inner
    /// body's error type, so a layer never changes `S::Error`.
    ///
    /// ```
    /// use http_body::Body;
    /// use tower_jwt_guard::JwtBody;
    ///
    /// let body: JwtBody<String> = JwtBody::full("{}".into());
    /// assert_eq!(body.size_hint().exact(), Some(2));
    /// let inner = JwtBody::inner(String::from("hello"));
    /// assert_eq!(inner.size_hint().exact(), Some(5));
    /// ```
    pub struct JwtBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Full { data: Option<Bytes> },
    }
}

impl<B> JwtBody<B> {
    /// Wraps the inner service's body.
    pub fn inner(body: B) -> Self {
        JwtBody { kind: Kind::Inner { body } }
    }

    /// A complete body made of `data`.
    pub fn full(data: Bytes) -> Self {
        JwtBody { kind: Kind::Full { data: (!data.is_empty()).then_some(data) } }
    }
}

impl<B: std::fmt::Debug> std::fmt::Debug for JwtBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Inner { body } => f.debug_tuple("JwtBody").field(body).finish(),
            Kind::Full { data } => {
                f.debug_struct("JwtBody").field("len", &data.as_ref().map_or(0, Bytes::len)).finish()
            }
        }
    }
}

impl<B> Body for JwtBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Full { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Full { data } => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
        }
    }
}
