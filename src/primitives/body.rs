//! [`JwtBody`]: the response body of the layer, either the inner service's or a rejection's.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The layer's response body: the inner service's body, or the (small, complete) body of a
    /// rejection. It keeps the inner body's error type, so the layer never changes `S::Error`.
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
