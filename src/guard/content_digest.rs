//! [`ContentDigestLayer`]: checks a request body against its `Content-Digest` (RFC 9530), so
//! that a message signature covering `content-digest` covers the body. Two modes:
//! - streaming (the default): the body is hashed as the handler reads it, nothing is held, and a
//!   wrong digest ends the body in an error before its last chunk reaches the handler;
//! - [`buffered`](ContentDigestLayer::buffered): the body is read and checked (up to the limit)
//!   before the inner service is called, and a wrong digest is refused with a response, so a
//!   handler that never reads the body (a `GET`, a proxy) is protected too.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::guard::binding::message_signature::{ContentDigest, DEFAULT_DIGEST_BODY_LIMIT};
use crate::guard::rejection::{render, Protocol};
use crate::primitives::body::RejectionBody;
use crate::primitives::error::{AuthError, ErrorKind};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Checks each request body against its `Content-Digest`: a body that does not match, that
/// passes the size limit, or (when [`required`](Self::required)) that has no `Content-Digest`,
/// is refused.
///
/// Streaming (the default): the body is wrapped in a [`DigestBody`] whose chunks are hashed as
/// the handler reads them (nothing is buffered); a failing body ends in an error before its last
/// chunk reaches the handler (an extractor that reads the body answers 400).
///
/// ```
/// use axum::{routing::post, Router};
/// use tower_jwt_guard::ContentDigestLayer;
///
/// let app: Router = Router::new()
///     .route("/orders", post(|body: String| async move { body }))
///     .layer(ContentDigestLayer::new().required(true).limit(64 * 1024));
/// ```
///
/// [Buffered](Self::buffered): the body is checked before the inner service is called.
#[derive(Debug, Clone, Copy)]
pub struct ContentDigestLayer {
    limit: u64,
    required: bool,
    buffered: bool,
}

impl Default for ContentDigestLayer {
    fn default() -> Self {
        ContentDigestLayer::new()
    }
}

impl ContentDigestLayer {
    /// Checks bodies that carry a `Content-Digest`, up to [`DEFAULT_DIGEST_BODY_LIMIT`], as they
    /// stream.
    pub fn new() -> Self {
        ContentDigestLayer { limit: DEFAULT_DIGEST_BODY_LIMIT, required: false, buffered: false }
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

    /// Whether the body is read and checked before the inner service is called (default: no,
    /// checked as it streams).
    ///
    /// Buffered, a body that carries a `Content-Digest` (or any non-empty body, when
    /// [`required`](Self::required)) is read whole, up to the [`limit`](Self::limit), before the
    /// inner service sees the request; the inner service gets it from memory. A body that does
    /// not match its digest, passes the limit (refused as soon as it does, the rest unread), or
    /// lacks a required digest, and a malformed `Content-Digest`, are refused with
    /// `INVALID_SIGNATURE` (401, the [`rejection`](crate::rejection) table's answer, gRPC status
    /// 16, with `Want-Content-Digest: sha-256=10, sha-512=10`, RFC 9530 §4), and the inner
    /// service is not called: a handler that never reads the body (a `GET`
    /// route, a proxy that forwards it) is covered too. A body without a digest that is not
    /// required streams through unread.
    ///
    /// It holds up to `limit` bytes per request: put it inside the [`JwtLayer`](crate::JwtLayer)
    /// (an earlier `route_layer`), so that only authenticated requests are read.
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use tower_jwt_guard::{ContentDigestLayer, JwtAuth};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct MyClaims { sub: String }
    ///
    /// let auth = JwtAuth::builder().hmac_secret([7u8; 32]).build()?;
    /// let app: Router = Router::new()
    ///     .route("/me", get(|| async { "ok" }))
    ///     // Runs after the guard: the body is read only for a verified request.
    ///     .route_layer(ContentDigestLayer::new().buffered(true).limit(64 * 1024))
    ///     .route_layer(auth.layer::<MyClaims>());
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn buffered(mut self, buffered: bool) -> Self {
        self.buffered = buffered;
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

impl<S, B, ResBody> Service<Request<B>> for ContentDigestService<S>
where
    S: Service<Request<DigestBody<B>>, Response = Response<ResBody>> + Clone,
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
    ResBody: RejectionBody,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ContentDigestFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (parts, body) = request.into_parts();
        let ContentDigestLayer { limit, required, buffered } = self.config;
        if !buffered {
            let body = DigestBody::checked(body, &parts.headers, limit, required);
            return ContentDigestFuture::inner(self.inner.call(Request::from_parts(parts, body)));
        }
        let check = match ContentDigest::from_headers(&parts.headers, limit) {
            Ok(Some(check)) => Check::Digest(Box::new(check)),
            Ok(None) if required && !body.is_end_stream() => Check::Missing,
            Ok(None) => {
                let body = DigestBody::unchecked(body);
                return ContentDigestFuture::inner(self.inner.call(Request::from_parts(parts, body)));
            }
            Err(err) => return ContentDigestFuture::rejected(refusal(&parts, &err)),
        };
        if body.size_hint().lower() > limit {
            let err = refuse("the body is longer than the digest limit");
            return ContentDigestFuture::rejected(refusal(&parts, &err));
        }
        // The ready service is the one that will be called; a clone takes its place.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        // The announced length, up to 64 KiB: memory beyond that is taken as the data comes.
        let capacity = usize::try_from(body.size_hint().lower().min(64 * 1024)).unwrap_or(0);
        ContentDigestFuture {
            kind: Kind::Reading {
                reading: Some(Reading {
                    parts,
                    body,
                    check,
                    data: BytesMut::with_capacity(capacity),
                    trailers: None,
                    inner: ready,
                }),
            },
        }
    }
}

/// What a buffered body is checked against.
enum Check {
    Digest(Box<ContentDigest>),
    /// Required, and absent: refused at the first data.
    Missing,
}

/// A buffered request being read: the request, its body so far, and the service to call.
struct Reading<S, B> {
    parts: Parts,
    body: B,
    check: Check,
    data: BytesMut,
    trailers: Option<HeaderMap>,
    inner: S,
}

fn refuse(reason: &'static str) -> AuthError {
    AuthError::signature(ErrorKind::InvalidSignature, reason, None)
}

/// The answer to a refused body (the default rendering, realm `api`), with an audit event and
/// `Want-Content-Digest` (RFC 9530 §4) naming the algorithms checked.
fn refusal<B: RejectionBody>(parts: &Parts, error: &AuthError) -> Response<B> {
    tracing::event!(
        target: "tower_jwt_guard::audit",
        tracing::Level::INFO,
        outcome = "refused",
        code = error.code(),
        reason = error.detail(),
        method = %parts.method,
        path = ?parts.uri.path(),
        "request refused"
    );
    let mut response = render(error, Protocol::of(parts.version, &parts.headers), b"api");
    response
        .headers_mut()
        .insert("want-content-digest", http::HeaderValue::from_static("sha-256=10, sha-512=10"));
    response.map(B::rejection)
}

pin_project! {
    /// The future of [`ContentDigestService`]: the inner service's, or (buffered) the body being
    /// read first, or a refusal.
    pub struct ContentDigestFuture<S, B>
    where
        S: Service<Request<DigestBody<B>>>,
    {
        #[pin]
        kind: Kind<S, B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, B>
    where
        S: Service<Request<DigestBody<B>>>,
    {
        Reading { reading: Option<Reading<S, B>> },
        Future { #[pin] future: S::Future },
        Rejected { response: Option<S::Response> },
    }
}

impl<S, B> std::fmt::Debug for ContentDigestFuture<S, B>
where
    S: Service<Request<DigestBody<B>>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentDigestFuture").finish_non_exhaustive()
    }
}

impl<S, B> ContentDigestFuture<S, B>
where
    S: Service<Request<DigestBody<B>>>,
{
    fn inner(future: S::Future) -> Self {
        ContentDigestFuture { kind: Kind::Future { future } }
    }

    fn rejected(response: S::Response) -> Self {
        ContentDigestFuture { kind: Kind::Rejected { response: Some(response) } }
    }
}

impl<S, B, ResBody> Future for ContentDigestFuture<S, B>
where
    S: Service<Request<DigestBody<B>>, Response = Response<ResBody>>,
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
    ResBody: RejectionBody,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let future = match self.as_mut().project().kind.project() {
                KindProj::Future { future } => return future.poll(cx),
                KindProj::Rejected { response } => {
                    return Poll::Ready(Ok(response.take().expect("polled after completion")));
                }
                KindProj::Reading { reading } => {
                    let state = reading.as_mut().expect("polled after completion");
                    match ready!(read(state, cx)) {
                        Ok(()) => {
                            let Reading { parts, data, trailers, mut inner, .. } =
                                reading.take().expect("polled after completion");
                            let body = DigestBody::buffered(data.freeze(), trailers);
                            inner.call(Request::from_parts(parts, body))
                        }
                        Err(err) => {
                            let Reading { parts, .. } = reading.take().expect("polled after completion");
                            let response = refusal(&parts, &err);
                            self.as_mut().project().kind.set(Kind::Rejected { response: Some(response) });
                            continue;
                        }
                    }
                }
            };
            self.as_mut().project().kind.set(Kind::Future { future });
        }
    }
}

/// Reads the rest of the body into `state`, checking it: `Ok` when it all came and matches.
fn read<S, B>(state: &mut Reading<S, B>, cx: &mut Context<'_>) -> Poll<Result<(), AuthError>>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    loop {
        match ready!(Pin::new(&mut state.body).poll_frame(cx)) {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    match &mut state.check {
                        Check::Digest(check) => check.update(&data)?,
                        Check::Missing if !data.is_empty() => {
                            return Poll::Ready(Err(refuse("the body has no Content-Digest")));
                        }
                        Check::Missing => {}
                    }
                    state.data.extend_from_slice(&data);
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        match &mut state.trailers {
                            Some(all) => all.extend(trailers),
                            None => state.trailers = Some(trailers),
                        }
                    }
                }
            },
            // The client's body broke off: it cannot be the one its digest names.
            Some(Err(_)) => return Poll::Ready(Err(refuse("the body could not be read"))),
            None => {
                return Poll::Ready(match std::mem::replace(&mut state.check, Check::Missing) {
                    Check::Digest(check) => check.finish(),
                    Check::Missing => Ok(()),
                })
            }
        }
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
        DigestBody { inner: Inner::Streaming(inner), state }
    }

    /// `inner`, not checked.
    pub(crate) fn unchecked(inner: B) -> Self {
        DigestBody { inner: Inner::Streaming(inner), state: State::Passing }
    }

    /// A body already read and checked: its data, then its trailers.
    fn buffered(data: Bytes, trailers: Option<HeaderMap>) -> Self {
        let data = (!data.is_empty()).then_some(data);
        DigestBody { inner: Inner::Buffered { data, trailers }, state: State::Passing }
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

/// Where the body's frames come from.
enum Inner<B> {
    /// The client's body, as it streams.
    Streaming(B),
    /// A body read (and checked) before the inner service was called.
    Buffered { data: Option<Bytes>, trailers: Option<HeaderMap> },
}

/// A request body checked against its `Content-Digest`; see [`ContentDigestLayer`].
pub struct DigestBody<B> {
    inner: Inner<B>,
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
        let inner = match &mut this.inner {
            Inner::Streaming(inner) => inner,
            Inner::Buffered { data, trailers } => {
                let frame = match data.take() {
                    Some(data) => Some(Frame::data(data)),
                    None => trailers.take().map(Frame::trailers),
                };
                return Poll::Ready(frame.map(Ok));
            }
        };
        let frame = match Pin::new(inner).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(frame) => frame,
        };
        match frame {
            Some(Ok(frame)) => {
                let failure = match (&mut this.state, frame.data_ref()) {
                    (State::Checking(check), Some(data)) => check.update(data).err(),
                    (State::Missing, Some(data)) if !data.is_empty() => {
                        Some(refuse("the body has no Content-Digest"))
                    }
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
        match &self.inner {
            Inner::Buffered { data, trailers } => data.is_none() && trailers.is_none(),
            // A pending check ends only by being polled to the end.
            Inner::Streaming(inner) => {
                matches!(self.state, State::Done | State::Passing) && inner.is_end_stream()
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Streaming(inner) => inner.size_hint(),
            Inner::Buffered { data, .. } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |data| data.len() as u64))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use http_body_util::{BodyExt as _, Full, StreamBody};
    use tower::{service_fn, ServiceExt as _};

    use super::*;

    const BODY: &[u8] = b"{\"hello\": \"world\"}\n";

    /// A buffered layer over a handler that counts its calls and echoes the body it reads.
    async fn call<B>(layer: ContentDigestLayer, request: Request<B>) -> (Response<Full<Bytes>>, usize)
    where
        B: Body<Data = Bytes> + Unpin + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let handler = service_fn(move |request: Request<DigestBody<B>>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                let body = match request.into_body().collect().await {
                    Ok(body) => body.to_bytes(),
                    Err(_) => Bytes::from_static(b"the body failed"),
                };
                Ok::<_, Infallible>(Response::new(Full::new(body)))
            }
        });
        let response = layer.layer(handler).oneshot(request).await.unwrap();
        (response, calls.load(Ordering::SeqCst))
    }

    fn post(digest: Option<&str>, body: &'static [u8]) -> Request<Full<Bytes>> {
        let mut request = Request::post("/orders");
        if let Some(digest) = digest {
            request = request.header("content-digest", digest);
        }
        request.body(Full::new(Bytes::from_static(body))).unwrap()
    }

    async fn text(response: Response<Full<Bytes>>) -> String {
        String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    }

    fn buffered() -> ContentDigestLayer {
        ContentDigestLayer::new().buffered(true)
    }

    #[tokio::test]
    async fn buffered_a_matching_body_reaches_the_handler_whole() {
        let digest = ContentDigest::header_value_sha256(BODY);
        let (response, calls) = call(buffered(), post(Some(&digest), BODY)).await;
        assert_eq!((response.status().as_u16(), calls), (200, 1));
        assert_eq!(text(response).await.as_bytes(), BODY);
        let digest = ContentDigest::header_value_sha512(BODY);
        let (response, calls) = call(buffered(), post(Some(&digest), BODY)).await;
        assert_eq!((response.status().as_u16(), calls), (200, 1));
    }

    #[tokio::test]
    async fn buffered_a_wrong_body_is_refused_before_the_handler() {
        let digest = ContentDigest::header_value_sha256(BODY);
        let (response, calls) = call(buffered(), post(Some(&digest), b"{\"hello\": \"World\"}\n")).await;
        assert_eq!((response.status().as_u16(), calls), (401, 0));
        assert!(response.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
        assert_eq!(response.headers()["want-content-digest"], "sha-256=10, sha-512=10");
        assert!(text(response).await.contains("INVALID_SIGNATURE"));
        // Streaming, the same request reaches the handler, whose read fails.
        let (response, calls) =
            call(ContentDigestLayer::new(), post(Some(&digest), b"{\"hello\": \"World\"}\n")).await;
        assert_eq!((response.status().as_u16(), calls), (200, 1));
        assert_eq!(text(response).await, "the body failed");
    }

    #[tokio::test]
    async fn buffered_malformed_missing_and_oversized_digests_are_refused() {
        for field in ["sha-256=:", "md5=:AAAA:", "sha-256=\"text\""] {
            let (response, calls) = call(buffered(), post(Some(field), BODY)).await;
            assert_eq!((response.status().as_u16(), calls), (401, 0), "{field}");
        }
        // Required: a non-empty body without a digest is refused, an empty one passes.
        let (response, calls) = call(buffered().required(true), post(None, BODY)).await;
        assert_eq!((response.status().as_u16(), calls), (401, 0));
        let (response, calls) = call(buffered().required(true), post(None, b"")).await;
        assert_eq!((response.status().as_u16(), calls), (200, 1));
        // Not required: a body without a digest streams through.
        let (response, calls) = call(buffered(), post(None, BODY)).await;
        assert_eq!((response.status().as_u16(), calls), (200, 1));
        assert_eq!(text(response).await.as_bytes(), BODY);
        // Over the limit, by its announced size or as it streams.
        let digest = ContentDigest::header_value_sha256(BODY);
        let (response, calls) = call(buffered().limit(8), post(Some(&digest), BODY)).await;
        assert_eq!((response.status().as_u16(), calls), (401, 0));
        let chunks = || {
            let chunks =
                BODY.chunks(4).map(|chunk| Ok::<_, Infallible>(Frame::data(Bytes::copy_from_slice(chunk))));
            StreamBody::new(futures_util::stream::iter(chunks.collect::<Vec<_>>()))
        };
        let request = |limit| {
            let request = Request::post("/orders").header("content-digest", &digest).body(chunks()).unwrap();
            (buffered().limit(limit), request)
        };
        let (layer, over) = request(8);
        let (response, calls) = call(layer, over).await;
        assert_eq!((response.status().as_u16(), calls), (401, 0));
        let (layer, within) = request(BODY.len() as u64);
        let (response, calls) = call(layer, within).await;
        assert_eq!((response.status().as_u16(), calls), (200, 1));
        assert_eq!(text(response).await.as_bytes(), BODY);
    }

    #[tokio::test]
    async fn buffered_refusals_answer_grpc_in_grpc() {
        let mut request = post(Some("sha-256=:AAAA:"), BODY);
        *request.version_mut() = http::Version::HTTP_2;
        request.headers_mut().insert("content-type", "application/grpc".parse().unwrap());
        let (response, calls) = call(buffered(), request).await;
        assert_eq!((response.status().as_u16(), calls), (200, 0));
        assert_eq!(response.headers()["grpc-status"], "16");
    }
}
