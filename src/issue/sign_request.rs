//! [`SignRequestLayer`]: the calling side of HTTP message signatures (RFC 9421): outgoing
//! requests signed, and optionally the answers' signatures checked.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response};
use http_body::Body;
use http_body_util::Full;
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::guard::binding::message_signature::{
    component, message_of, origin_of, parse_origin, ContentDigest, Message, MessageSigner, ResponsePolicy,
    SignatureKey, SignatureParams, Signed, DEFAULT_DIGEST_BODY_LIMIT, DEFAULT_SIGNATURE_LEEWAY,
    DEFAULT_SIGNATURE_MAX_AGE,
};
use crate::guard::binding::RequestHead;
use crate::guard::content_digest::DigestBody;
use crate::primitives::clock;
use crate::primitives::error::ConfigError;

use super::bounded_body::{Collect, CollectError};
use super::sign_response::has_content;
use super::signing_service::signing_service;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a request was not sent, or its answer not accepted.
#[derive(Debug)]
struct SigningFailed(&'static str);

impl fmt::Display for SigningFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for SigningFailed {}

/// A tower layer for HTTP clients: every request leaves signed (RFC 9421), covering
/// `@method`, `@target-uri`, `authorization` and `dpop` when present, and the body's
/// `content-digest` (RFC 9530, `sha-256`, computed here and added) when there is a body; with
/// `created`, a random `nonce`, the signer's `keyid`, and a configured `tag`.
///
/// It composes with [`ServiceTokenLayer`](crate::ServiceTokenLayer): put the token layer
/// outside, so the token is added first and then signed. The body is read whole before the
/// request leaves (to hash it), up to a limit (default 1 MiB): a longer body is an error, the
/// request is not sent.
///
/// With [`verify_responses`](Self::verify_responses), each answer must carry a signature by
/// the server's key, recent, covering `@status`, `content-digest` (except `HEAD`, `204`, `304`),
/// `@method;req`, `@target-uri;req` and this request's own signature (`"signature";req;key=..`);
/// otherwise the call fails. The answer's body is then checked against its `Content-Digest`
/// as it is read: a changed body ends in an error.
///
/// ```
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
/// use tower_jwt_guard::binding::MessageSigner;
/// use tower_jwt_guard::SignRequestLayer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tower_jwt_guard::BoxError> {
/// let signer = MessageSigner::hmac_sha256([7u8; 32])?.keyid("gateway");
/// // Any tower HTTP client; here a stand-in that answers with the signature it received.
/// let client = ServiceBuilder::new().layer(SignRequestLayer::new(signer)).service(service_fn(
///     |request: http::Request<http_body_util::Full<bytes::Bytes>>| async move {
///         let input = request.headers()["signature-input"].to_str().unwrap().to_owned();
///         Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::from(input))))
///     },
/// ));
/// let request = http::Request::post("https://orders.internal/orders").body(http_body_util::Full::new(bytes::Bytes::from("{}")))?;
/// let response = client.oneshot(request).await?;
/// # use http_body_util::BodyExt as _;
/// let input = String::from_utf8(response.into_body().collect().await?.to_bytes().to_vec())?;
/// assert!(input.starts_with(r#"sig=("@method" "@target-uri" "content-digest");created="#));
/// assert!(input.contains(r#"keyid="gateway";nonce=""#));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SignRequestLayer {
    config: Arc<Config>,
}

#[derive(Clone)]
struct Config {
    signer: MessageSigner,
    label: String,
    tag: Option<String>,
    expires_in: Option<Duration>,
    limit: u64,
    origin: Option<(String, String)>,
    verify: Option<ResponsePolicy>,
    response_limit: u64,
}

impl fmt::Debug for SignRequestLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignRequestLayer")
            .field("signer", &self.config.signer)
            .field("label", &self.config.label)
            .field("tag", &self.config.tag)
            .field("limit", &self.config.limit)
            .field("verify_responses", &self.config.verify.is_some())
            .finish_non_exhaustive()
    }
}

impl SignRequestLayer {
    /// Signs requests with `signer`, label `sig`, bodies up to 1 MiB; answers not checked.
    pub fn new(signer: MessageSigner) -> Self {
        SignRequestLayer {
            config: Arc::new(Config {
                signer,
                label: "sig".into(),
                tag: None,
                expires_in: None,
                limit: DEFAULT_DIGEST_BODY_LIMIT,
                origin: None,
                verify: None,
                response_limit: DEFAULT_DIGEST_BODY_LIMIT,
            }),
        }
    }

    fn with(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = Arc::unwrap_or_clone(self.config);
        change(&mut config);
        SignRequestLayer { config: Arc::new(config) }
    }

    /// The label of the signatures (an RFC 9651 key).
    pub fn label(self, label: &str) -> Result<Self, ConfigError> {
        SignatureParams::new(label, [] as [&str; 0])?;
        Ok(self.with(|config| config.label = label.to_owned()))
    }

    /// The `tag` parameter of the signatures (what the server may require).
    pub fn tag(self, tag: impl Into<String>) -> Self {
        let tag = tag.into();
        self.with(|config| config.tag = Some(tag))
    }

    /// An `expires` parameter this long after `created`.
    pub fn expires_in(self, lifetime: Duration) -> Self {
        self.with(|config| config.expires_in = Some(lifetime))
    }

    /// The longest request body signed (default 1 MiB); a longer one is not sent.
    pub fn limit(self, bytes: u64) -> Self {
        self.with(|config| config.limit = bytes)
    }

    /// The target's origin (`https://orders.internal:8443`) for a request whose URI is
    /// relative (a tonic `Channel`'s): `@target-uri` is this origin plus the path.
    ///
    /// ```
    /// # use tower_jwt_guard::{binding::MessageSigner, SignRequestLayer};
    /// let layer = SignRequestLayer::new(MessageSigner::hmac_sha256([7u8; 32])?);
    /// assert!(layer.clone().origin("https://orders.internal:8443").is_ok());
    /// assert!(layer.origin("/relative").is_err());
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn origin(self, url: &str) -> Result<Self, ConfigError> {
        let origin =
            parse_origin(url).ok_or(ConfigError::Invalid("the target's origin must be an absolute URL"))?;
        Ok(self.with(|config| config.origin = Some(origin)))
    }

    /// Checks every answer's signature with the server's key (see the type's documentation):
    /// an answer without a valid one fails the call.
    pub fn verify_responses(self, server: SignatureKey) -> Self {
        self.with(|config| {
            config.verify = Some(ResponsePolicy {
                key: server,
                required: Vec::new(),
                tag: None,
                label: None,
                max_age: DEFAULT_SIGNATURE_MAX_AGE.as_secs() as i64,
                leeway: DEFAULT_SIGNATURE_LEEWAY.as_secs() as i64,
            })
        })
    }

    /// Only an answer's signature with this `tag` counts (with
    /// [`verify_responses`](Self::verify_responses)).
    pub fn response_tag(self, tag: impl Into<String>) -> Self {
        let tag = tag.into();
        self.with(|config| {
            if let Some(policy) = &mut config.verify {
                policy.tag = Some(tag);
            }
        })
    }
}

signing_service! {
    /// The client service of [`SignRequestLayer`].
    SignRequestLayer => SignRequest, "client"
}

/// The signed request's head, kept to check the answer against.
struct Sent {
    method: Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    scheme: String,
    authority: String,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SignRequest<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Clone,
    S::Error: Into<BoxError>,
    ReqBody: Body<Data = Bytes>,
    ReqBody::Error: Into<BoxError>,
{
    type Response = Response<DigestBody<ResBody>>;
    type Error = BoxError;
    type Future = SignRequestFuture<S, S::Future, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The ready service is the one called; a clone takes its place.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let config = Arc::clone(&self.config);
        let (parts, body) = request.into_parts();
        let body = Collect::new(body, config.limit);
        let kind = Kind::Reading { body, parts: Some(parts), inner: Some(inner) };
        SignRequestFuture { kind, config }
    }
}

const TOO_LONG: &str = "the request body is longer than the signing limit";

pin_project! {
    /// The future of [`SignRequest`]: the body read (up to the limit) and signed, the request
    /// sent, the answer checked.
    pub struct SignRequestFuture<S, F, B> {
        #[pin]
        kind: Kind<S, F, B>,
        config: Arc<Config>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, F, B> {
        Reading {
            #[pin]
            body: Collect<B>,
            parts: Option<http::request::Parts>,
            inner: Option<S>,
        },
        Calling { #[pin] future: F, sent: Sent },
    }
}

impl<S, F, B> fmt::Debug for SignRequestFuture<S, F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.kind {
            Kind::Reading { .. } => "Reading",
            Kind::Calling { .. } => "Calling",
        };
        f.debug_struct("SignRequestFuture").field("state", &state).finish()
    }
}

impl<S, F, B, R, E> Future for SignRequestFuture<S, F, B>
where
    S: Service<Request<Full<Bytes>>, Future = F>,
    F: Future<Output = Result<Response<R>, E>>,
    E: Into<BoxError>,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<DigestBody<R>>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let this = self.as_mut().project();
            let config = Arc::clone(this.config);
            match this.kind.project() {
                KindProj::Reading { body, parts, inner } => {
                    // Request trailers are not signed, nor sent.
                    let data = match ready!(body.poll(cx)) {
                        Ok(collected) => collected.data,
                        Err(CollectError::TooLong) => {
                            return Poll::Ready(Err(Box::new(SigningFailed(TOO_LONG))))
                        }
                        Err(CollectError::Body(err)) => return Poll::Ready(Err(err.into())),
                    };
                    let (Some(parts), Some(mut inner)) = (parts.take(), inner.take()) else {
                        panic!("SignRequestFuture polled after completion")
                    };
                    let (request, sent) = match sign(&config, parts, data) {
                        Ok(signed) => signed,
                        Err(err) => return Poll::Ready(Err(err)),
                    };
                    let future = inner.call(request);
                    self.as_mut().project().kind.set(Kind::Calling { future, sent });
                }
                KindProj::Calling { future, sent } => {
                    let response = ready!(future.poll(cx)).map_err(Into::into)?;
                    return Poll::Ready(check(&config, sent, response));
                }
            }
        }
    }
}

/// The request signed: its `content-digest` (when it has a body) and signature added.
fn sign(
    config: &Config,
    mut parts: http::request::Parts,
    bytes: Bytes,
) -> Result<(Request<Full<Bytes>>, Sent), BoxError> {
    let mut params = SignatureParams::new(&config.label, ["@method", "@target-uri"])?.random_nonce();
    for name in ["authorization", "dpop"] {
        if parts.headers.contains_key(name) {
            params.push(component(name)?)?;
        }
    }
    if !bytes.is_empty() {
        let digest = HeaderValue::try_from(ContentDigest::header_value_sha256(&bytes))?;
        parts.headers.insert("content-digest", digest);
        params.push(component("content-digest")?)?;
    }
    if let Some(tag) = &config.tag {
        params = params.tag(tag.clone());
    }
    if let Some(lifetime) = config.expires_in {
        params = params.expires_in(lifetime);
    }
    let request = Request::from_parts(parts, ());
    let head = RequestHead::of(&request);
    let origin = origin_of(config.origin.as_ref(), &head)
        .ok_or(SigningFailed("the request's target is not known: give its origin"))?;
    let fields =
        config.signer.sign_message(&Signed::Request(message_of(&head, &origin)), params.items(), &params)?;
    let (scheme, authority) = origin;
    let (mut parts, ()) = request.into_parts();
    fields.apply(&mut parts.headers)?;
    let sent = Sent {
        method: parts.method.clone(),
        uri: parts.uri.clone(),
        headers: if config.verify.is_some() { parts.headers.clone() } else { http::HeaderMap::new() },
        scheme,
        authority,
    };
    Ok((Request::from_parts(parts, Full::new(bytes)), sent))
}

fn check<B>(
    config: &Config,
    sent: &Sent,
    response: Response<B>,
) -> Result<Response<DigestBody<B>>, BoxError> {
    let Some(policy) = &config.verify else {
        return Ok(response.map(DigestBody::unchecked));
    };
    let status = response.status();
    let content = has_content(&sent.method, status);
    let mut policy = policy.clone();
    let mut required = vec!["@status", "\"@method\";req", "\"@target-uri\";req"];
    if content {
        required.push("content-digest");
    }
    let own = format!("\"signature\";req;key=\"{}\"", config.label);
    required.push(&own);
    policy.required = required.into_iter().map(component).collect::<Result<_, _>>()?;
    let request = Message {
        method: &sent.method,
        uri: &sent.uri,
        headers: &sent.headers,
        scheme: &sent.scheme,
        authority: &sent.authority,
    };
    let now = i64::try_from(clock::now()).unwrap_or(i64::MAX);
    if let Err(reason) = policy.check(status, response.headers(), request, now) {
        tracing::warn!(target: "tower_jwt_guard", reason, "response signature refused");
        return Err(Box::new(SigningFailed("the response's signature is not valid")));
    }
    let limit = config.response_limit;
    let (parts, body) = response.into_parts();
    let body = DigestBody::checked(body, &parts.headers, limit, content);
    Ok(Response::from_parts(parts, body))
}
