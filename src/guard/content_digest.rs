//! [`ContentDigestLayer`]: checks a request body against its `Content-Digest` (RFC 9530) as it
//! streams, so that a message signature covering `content-digest` covers the body.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Request;
use http_body::{Body, Frame, SizeHint};
use tower_layer::Layer;
use tower_service::Service;

use crate::guard::binding::message_signature::{ContentDigest, DEFAULT_DIGEST_BODY_LIMIT};
use crate::primitives::error::{AuthError, ErrorKind};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Wraps each request body in a [`DigestBody`]: the body's chunks are hashed as the handler
/// reads them (nothing is buffered), and a body that does not match its `Content-Digest`, that
/// passes the size limit, or (when required) that has no `Content-Digest`, ends in an error
/// before its last chunk reaches the handler (an extractor that reads the body answers 400).
///
/// ```
/// use axum::{routing::post, Router};
/// use tower_jwt_guard::ContentDigestLayer;
///
/// let app: Router = Router::new()
///     .route("/orders", post(|body: String| async move { body }))
///     .layer(ContentDigestLayer::new().required(true).limit(64 * 1024));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ContentDigestLayer {
    limit: u64,
    required: bool,
}

impl Default for ContentDigestLayer {
    fn default() -> Self {
        ContentDigestLayer::new()
    }
}

impl ContentDigestLayer {
    /// Checks bodies that carry a `Content-Digest`, up to [`DEFAULT_DIGEST_BODY_LIMIT`].
    pub fn new() -> Self {
        ContentDigestLayer { limit: DEFAULT_DIGEST_BODY_LIMIT, required: false }
    }

    /// The largest body checked; a longer one fails.
    pub fn limit(mut self, limit: u64) -> Self {
        self.limit = limit;
        self
    }

    /// Whether a non-empty body without `Content-Digest` fails.
    pub fn required(mut self, required: bool) -> Self {
        self.required = required;
        self
    }
}

impl<S> Layer<S> for ContentDigestLayer {
    type Service = ContentDigestService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ContentDigestService { inner, config: *self }
    }
}

/// The service of [`ContentDigestLayer`].
#[derive(Debug, Clone)]
pub struct ContentDigestService<S> {
    inner: S,
    config: ContentDigestLayer,
}

impl<S, B> Service<Request<B>> for ContentDigestService<S>
where
    S: Service<Request<DigestBody<B>>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (parts, body) = request.into_parts();
        let body = DigestBody::checked(body, &parts.headers, self.config.limit, self.config.required);
        self.inner.call(Request::from_parts(parts, body))
    }
}

impl<B> DigestBody<B> {
    /// `inner` checked against the `Content-Digest` of `headers` (a request's or a response's).
    pub(crate) fn checked(inner: B, headers: &http::HeaderMap, limit: u64, required: bool) -> Self {
        let state = match ContentDigest::from_headers(headers, limit) {
            Ok(Some(check)) => State::Checking(Box::new(check)),
            Ok(None) if required => State::Missing,
            Ok(None) => State::Passing,
            Err(err) => State::Failed(Some(err)),
        };
        DigestBody { inner, state }
    }

    /// `inner`, not checked.
    pub(crate) fn unchecked(inner: B) -> Self {
        DigestBody { inner, state: State::Passing }
    }
}

enum State {
    /// No digest to check.
    Passing,
    /// Required, and absent: fails at the first data.
    Missing,
    Checking(Box<ContentDigest>),
    Failed(Option<AuthError>),
    Done,
}

/// A request body checked against its `Content-Digest`; see [`ContentDigestLayer`].
pub struct DigestBody<B> {
    inner: B,
    state: State,
}

impl<B> std::fmt::Debug for DigestBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestBody").finish_non_exhaustive()
    }
}

impl<B> Body for DigestBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let State::Failed(err) = &mut this.state {
            return Poll::Ready(err.take().map(|err| Err(Box::new(err) as BoxError)));
        }
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(frame) => frame,
        };
        match frame {
            Some(Ok(frame)) => {
                let failure = match (&mut this.state, frame.data_ref()) {
                    (State::Checking(check), Some(data)) => check.update(data).err(),
                    (State::Missing, Some(data)) if !data.is_empty() => Some(AuthError::signature(
                        ErrorKind::InvalidSignature,
                        "the body has no Content-Digest",
                        None,
                    )),
                    _ => None,
                };
                match failure {
                    Some(err) => {
                        this.state = State::Failed(None);
                        Poll::Ready(Some(Err(Box::new(err))))
                    }
                    None => Poll::Ready(Some(Ok(frame))),
                }
            }
            Some(Err(err)) => Poll::Ready(Some(Err(err.into()))),
            None => match std::mem::replace(&mut this.state, State::Done) {
                State::Checking(check) => match check.finish() {
                    Ok(()) => Poll::Ready(None),
                    Err(err) => {
                        this.state = State::Failed(None);
                        Poll::Ready(Some(Err(Box::new(err))))
                    }
                },
                _ => Poll::Ready(None),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        // A pending check ends only by being polled to the end.
        matches!(self.state, State::Done | State::Passing) && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
