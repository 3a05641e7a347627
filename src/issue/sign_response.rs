//! [`SignResponseLayer`]: every response signed with an HTTP message signature (RFC 9421).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body::Frame;
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::guard::binding::message_signature::{
    component, parse_origin, ContentDigest, Message, MessageSigner, SignatureParams, Signed,
    DEFAULT_DIGEST_BODY_LIMIT,
};
use crate::guard::binding::RequestHead;
use crate::primitives::error::ConfigError;

use super::bounded_body::{Collect, CollectError};
use super::signing_service::signing_service;

/// The default label of the response signatures.
const DEFAULT_LABEL: &str = "sig";

/// Signs every response of the service it wraps (RFC 9421 §2.4): the signature covers
/// `@status`, the `content-digest` of the body (computed here and added, RFC 9530, `sha-256`),
/// and the request it answers with `;req`: `@method;req`, `@target-uri;req`, and
/// `"signature";req;key="<label>"` for each signature the request carried, so the client knows
/// the answer is to *its* signed request. `created` is the time of signing; `keyid` the
/// signer's; a configured `tag` is added.
///
/// Put it outside [`JwtLayer`](crate::JwtLayer) to sign the guard's refusals too (a 401 with its
/// challenge is signed like a 200).
///
/// The body is read whole (to hash it before the headers leave), up to a limit (default
/// 1 MiB). A response longer than the limit is **not** sent unsigned nor signed without its
/// digest: it is replaced by a signed `500` (`{"code":"RESPONSE_NOT_SIGNED"}`) and an error
/// event names the limit to raise. The same happens when the inner body fails. Trailers are
/// kept, not covered. `HEAD` answers and `204`/`304` carry no content, and no `content-digest`.
/// A streamed answer (server-sent events, a gRPC stream) is held until it ends: leave such
/// routes out of this layer.
///
/// ```
/// use axum::{routing::get, Router};
/// use tower_jwt_guard::binding::MessageSigner;
/// use tower_jwt_guard::SignResponseLayer;
///
/// let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n";
/// let signer = MessageSigner::from_pem(pem)?.keyid("api-2026");
/// let app: Router = Router::new()
///     .route("/me", get(|| async { "hello" }))
///     .layer(SignResponseLayer::new(signer).tag("orders-api").public_url("https://api.example.com"));
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct SignResponseLayer {
    config: Arc<Config>,
}

#[derive(Clone)]
struct Config {
    signer: MessageSigner,
    label: String,
    tag: Option<String>,
    limit: u64,
    origin: Option<String>,
}

impl fmt::Debug for SignResponseLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignResponseLayer")
            .field("signer", &self.config.signer)
            .field("label", &self.config.label)
            .field("tag", &self.config.tag)
            .field("limit", &self.config.limit)
            .field("public_url", &self.config.origin)
            .finish()
    }
}

impl SignResponseLayer {
    /// Signs responses with `signer`, label `sig`, bodies up to 1 MiB.
    pub fn new(signer: MessageSigner) -> Self {
        SignResponseLayer {
            config: Arc::new(Config {
                signer,
                label: DEFAULT_LABEL.into(),
                tag: None,
                limit: DEFAULT_DIGEST_BODY_LIMIT,
                origin: None,
            }),
        }
    }

    fn with(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = Arc::unwrap_or_clone(self.config);
        change(&mut config);
        SignResponseLayer { config: Arc::new(config) }
    }

    /// The label of the signatures (an RFC 9651 key).
    ///
    /// ```
    /// # use tower_jwt_guard::{binding::MessageSigner, SignResponseLayer};
    /// let layer = SignResponseLayer::new(MessageSigner::hmac_sha256([7u8; 32])?);
    /// assert!(layer.clone().label("reqres").is_ok());
    /// assert!(layer.label("Not a key").is_err());
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn label(self, label: &str) -> Result<Self, ConfigError> {
        SignatureParams::new(label, [] as [&str; 0])?;
        Ok(self.with(|config| config.label = label.to_owned()))
    }

    /// The `tag` parameter of the signatures.
    pub fn tag(self, tag: impl Into<String>) -> Self {
        let tag = tag.into();
        self.with(|config| config.tag = Some(tag))
    }

    /// The longest body signed (default 1 MiB); see the type's documentation for a longer one.
    pub fn limit(self, bytes: u64) -> Self {
        self.with(|config| config.limit = bytes)
    }

    /// The service's external origin (`https://api.example.com`) for `@target-uri;req`, as
    /// [`MessageSignature::public_url`](crate::binding::MessageSignature::public_url) checks it.
    /// Without it, the request's URI, else its `Host` and the connection's scheme.
    pub fn public_url(self, url: &str) -> Self {
        let url = url.to_owned();
        self.with(|config| config.origin = Some(url))
    }
}

signing_service! {
    /// The service of [`SignResponseLayer`].
    SignResponseLayer => SignResponse, "service"
}

/// What the response signature needs of the request, kept while the inner service answers.
struct RequestFacts {
    method: Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    /// `(scheme, authority)`, when known.
    origin: Option<(String, String)>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SignResponse<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes>,
{
    type Response = Response<SignedBody>;
    type Error = S::Error;
    type Future = SignResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let configured = self.config.origin.as_deref().and_then(parse_origin);
        let origin = crate::guard::binding::message_signature::origin_of(
            configured.as_ref(),
            &RequestHead::of(&request),
        );
        let request_facts = RequestFacts {
            method: request.method().clone(),
            uri: request.uri().clone(),
            headers: request.headers().clone(),
            origin,
        };
        SignResponseFuture {
            kind: Kind::Inner { future: self.inner.call(request) },
            config: Arc::clone(&self.config),
            request: request_facts,
        }
    }
}

pin_project! {
    /// The future of [`SignResponse`]: the inner service's answer, its body read (up to the
    /// limit), then the answer signed.
    pub struct SignResponseFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
        config: Arc<Config>,
        request: RequestFacts,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Inner { #[pin] future: F },
        Reading {
            #[pin]
            body: Collect<B>,
            parts: Option<http::response::Parts>,
        },
        Done,
    }
}

impl<F, B> fmt::Debug for SignResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.kind {
            Kind::Inner { .. } => "Inner",
            Kind::Reading { .. } => "Reading",
            Kind::Done => "Done",
        };
        f.debug_struct("SignResponseFuture").field("state", &state).finish()
    }
}

/// The body of the answer, or why it cannot be signed.
type Read = Result<(Bytes, Option<http::HeaderMap>), &'static str>;

impl<F, B, E> Future for SignResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body<Data = Bytes>,
{
    type Output = Result<Response<SignedBody>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        const TOO_LONG: &str = "the response body is longer than the signing limit";
        loop {
            let this = self.as_mut().project();
            let limit = this.config.limit;
            let (parts, read): (http::response::Parts, Read) = match this.kind.project() {
                KindProj::Inner { future } => {
                    let (parts, body) = ready!(future.poll(cx))?.into_parts();
                    let reading = Kind::Reading { body: Collect::new(body, limit), parts: Some(parts) };
                    self.as_mut().project().kind.set(reading);
                    continue;
                }
                KindProj::Reading { body, parts } => {
                    let read = match ready!(body.poll(cx)) {
                        Ok(collected) => Ok((collected.data, collected.trailers)),
                        Err(CollectError::TooLong) => Err(TOO_LONG),
                        Err(CollectError::Body(_)) => Err("the response body failed"),
                    };
                    (parts.take().expect("read once"), read)
                }
                KindProj::Done => panic!("SignResponseFuture polled after completion"),
            };
            let this = self.as_mut().project();
            let response = finish(this.config, this.request, parts, read);
            self.as_mut().project().kind.set(Kind::Done);
            return Poll::Ready(Ok(response));
        }
    }
}

/// Whether a response to `method` with `status` has content to digest (not to `HEAD`, not a
/// `204` or a `304`).
pub(super) fn has_content(method: &Method, status: StatusCode) -> bool {
    method != Method::HEAD && status != StatusCode::NO_CONTENT && status != StatusCode::NOT_MODIFIED
}

/// The answer signed, or the signed `500` that replaces it.
fn finish(
    config: &Config,
    request: &RequestFacts,
    mut parts: http::response::Parts,
    read: Read,
) -> Response<SignedBody> {
    let (bytes, trailers) = match read {
        Ok(read) => read,
        Err(reason) => {
            tracing::error!(target: "tower_jwt_guard", reason, limit = config.limit, "response not signed: answered 500 instead");
            return not_signed(config, request);
        }
    };
    if has_content(&request.method, parts.status) {
        let digest = ContentDigest::header_value_sha256(&bytes);
        if let Ok(value) = HeaderValue::try_from(digest) {
            parts.headers.insert("content-digest", value);
        }
    } else {
        parts.headers.remove("content-digest");
    }
    match signature_headers(config, request, parts.status, &parts.headers) {
        Ok(fields) => {
            for (name, value) in fields {
                parts.headers.append(name, value);
            }
            Response::from_parts(parts, SignedBody { data: Some(bytes), trailers })
        }
        Err(reason) => {
            tracing::error!(target: "tower_jwt_guard", reason, "response not signed: answered 500 instead");
            not_signed(config, request)
        }
    }
}

/// The signed `500` that replaces a response that cannot be signed.
fn not_signed(config: &Config, request: &RequestFacts) -> Response<SignedBody> {
    let body =
        Bytes::from_static(br#"{"error":"the response could not be signed","code":"RESPONSE_NOT_SIGNED"}"#);
    let mut response = Response::new(SignedBody { data: Some(body.clone()), trailers: None });
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::try_from(ContentDigest::header_value_sha256(&body)) {
        headers.insert("content-digest", value);
    }
    if let Ok(fields) = signature_headers(config, request, StatusCode::INTERNAL_SERVER_ERROR, headers) {
        for (name, value) in fields {
            headers.append(name, value);
        }
    }
    response
}

/// The `Signature-Input` and `Signature` field lines of the response.
fn signature_headers(
    config: &Config,
    request: &RequestFacts,
    status: StatusCode,
    headers: &http::HeaderMap,
) -> Result<[(&'static str, HeaderValue); 2], &'static str> {
    let mut params =
        SignatureParams::new(&config.label, ["@status"]).map_err(|_| "the label is not valid")?;
    if headers.contains_key("content-digest") {
        params.push(component("content-digest").map_err(|_| "no component")?).map_err(|_| "twice")?;
    }
    params.push(component("\"@method\";req").map_err(|_| "no component")?).map_err(|_| "twice")?;
    if request.origin.is_some() {
        params.push(component("\"@target-uri\";req").map_err(|_| "no component")?).map_err(|_| "twice")?;
    }
    for label in request_labels(&request.headers) {
        if let Ok(item) = component(&format!("\"signature\";req;key=\"{label}\"")) {
            let _ = params.push(item);
        }
    }
    if let Some(tag) = &config.tag {
        params = params.tag(tag.clone());
    }
    let (scheme, authority) = request.origin.clone().unwrap_or_default();
    let message = Message {
        method: &request.method,
        uri: &request.uri,
        headers: &request.headers,
        scheme: &scheme,
        authority: &authority,
    };
    let signed = Signed::Response { status, headers, request: Some(message) };
    let fields = config.signer.sign_message(&signed, params.items(), &params).map_err(|err| err.reason())?;
    let value =
        |text: &str| HeaderValue::try_from(text).map_err(|_| "a signature field is not a header value");
    Ok([("signature-input", value(fields.input())?), ("signature", value(fields.signature())?)])
}

/// The labels of the request's signatures (none when its `Signature` field is malformed:
/// a request refused for it still gets a signed answer, which then does not cover it).
fn request_labels(headers: &http::HeaderMap) -> Vec<String> {
    crate::guard::binding::message_signature::signature_labels(headers)
}

/// The body of a signed response: the bytes that were hashed and signed, then the inner body's
/// trailers (not covered by the signature).
#[derive(Default)]
pub struct SignedBody {
    data: Option<Bytes>,
    trailers: Option<http::HeaderMap>,
}

/// The sizes only: a body (a token endpoint's answer) may hold tokens.
impl fmt::Debug for SignedBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedBody")
            .field("data_len", &self.data.as_ref().map(Bytes::len))
            .field("trailers", &self.trailers.as_ref().map(http::HeaderMap::len))
            .finish()
    }
}

impl Body for SignedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(data) = self.data.take().filter(|data| !data.is_empty()) {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        Poll::Ready(self.trailers.take().map(|trailers| Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.as_ref().is_none_or(Bytes::is_empty) && self.trailers.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let length = self.data.as_ref().map_or(0, |data| data.len() as u64);
        if self.trailers.is_none() {
            return http_body::SizeHint::with_exact(length);
        }
        // Trailers follow: no exact length (HTTP/1.1 sends them only chunked).
        let mut hint = http_body::SizeHint::new();
        hint.set_lower(length);
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    use tower_layer::Layer as _;

    #[test]
    fn head_answers_204_and_304_have_no_content() {
        assert!(has_content(&Method::GET, StatusCode::OK));
        assert!(has_content(&Method::POST, StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!has_content(&Method::HEAD, StatusCode::OK));
        assert!(!has_content(&Method::GET, StatusCode::NO_CONTENT));
        assert!(!has_content(&Method::GET, StatusCode::NOT_MODIFIED));
    }

    #[tokio::test]
    async fn the_body_is_signed_and_its_trailers_kept() {
        let signer = MessageSigner::hmac_sha256([7u8; 32]).unwrap().keyid("k");
        let service = SignResponseLayer::new(signer).layer(tower::service_fn(|_: Request<()>| async {
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from_static("0"));
            let body = http_body_util::Full::new(Bytes::from_static(b"hi"))
                .with_trailers(async move { Some(Ok::<_, std::convert::Infallible>(trailers)) });
            Ok::<_, std::convert::Infallible>(Response::new(body))
        }));
        let request = Request::get("https://api.example.com/x").body(()).unwrap();
        let response = service.oneshot(request).await.unwrap();
        let input = response.headers()["signature-input"].to_str().unwrap().to_owned();
        assert!(
            input.starts_with(r#"sig=("@status" "content-digest" "@method";req "@target-uri";req);created="#)
        );
        let collected = response.into_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap()["grpc-status"], "0");
        assert_eq!(collected.to_bytes(), "hi");
    }
}
