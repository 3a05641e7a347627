//! Outgoing service tokens: [`ServiceTokens`] and the client layer [`ServiceTokenLayer`].

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::uri::{Authority, Scheme};
use http::{HeaderName, HeaderValue, Request, Response, Uri};
use pin_project_lite::pin_project;
use serde_json::{Map, Value};
use tower_layer::Layer;
use tower_service::Service;

use crate::guard::binding::ClientCertificate;
use crate::guard::observe::interaction_id::{InteractionId, INTERACTION_ID};
use crate::issue::{DpopKey, IssueError, TokenIssuer};
use crate::primitives::clock;
use crate::primitives::error::ConfigError;

/// The error type of [`ServiceTokenService`]: the client's error, or a token that could not
/// be minted ([`IssueError`]). The same boxed error as `tower`'s own middleware.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// The longest default renewal margin.
const MAX_DEFAULT_MARGIN: Duration = Duration::from_secs(60);

/// The current token, ready to be sent.
struct Current {
    header: HeaderValue,
    /// The token itself, for the DPoP proofs' `ath`.
    token: Arc<str>,
    renew_at: u64,
}

struct Inner {
    issuer: TokenIssuer,
    subject: String,
    claims: Map<String, Value>,
    renew_before: u64,
    current: Mutex<Option<Current>>,
    minted: AtomicU64,
    dpop: Option<Arc<DpopKey>>,
    /// The thumbprint (`x5t#S256`) of the client certificate the tokens are bound to.
    certificate: Option<String>,
}

/// Outgoing service tokens: [`ServiceTokens`] mints a service token with a
/// [`TokenIssuer`], keeps it, and mints the next one a margin before it expires;
/// [`ServiceTokenLayer`] puts it on every request of a tower HTTP client (hyper-util's client,
/// a tonic `Channel`, anything that is a `Service<http::Request<B>>`).
///
/// One [`ServiceTokens`] per target audience: the issuer says which (`aud`), and which `typ`
/// (see [`TokenKind::token_issuer`](crate::TokenKind::token_issuer)). Renewal is single-flight:
/// when the token is due, the first request mints, and requests arriving meanwhile wait for
/// that token instead of minting their own.
///
/// ```
/// use std::time::Duration;
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
/// use tower_jwt_guard::{issue::SigningKey, Algorithm, ServiceTokenLayer, ServiceTokens, TokenKind};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tower_jwt_guard::BoxError> {
/// let kind = TokenKind::new("service", "service+jwt").audience("orders");
/// let issuer = kind.token_issuer(SigningKey::hmac(Algorithm::HS256, [7u8; 32])?).ttl(Duration::from_secs(300)).build();
/// let tokens = ServiceTokens::builder(issuer, "gateway")
///     .scope("read:orders")
///     .renew_before(Duration::from_secs(60))
///     .build()?;
///
/// // Any tower HTTP client; here a stand-in that echoes the header it received.
/// let client = ServiceBuilder::new().layer(ServiceTokenLayer::new(tokens.clone())).service(service_fn(
///     |request: http::Request<String>| async move {
///         let auth = request.headers()["authorization"].clone();
///         Ok::<_, std::convert::Infallible>(http::Response::new(auth))
///     },
/// ));
/// let first = client.clone().oneshot(http::Request::new(String::new())).await?;
/// let second = client.oneshot(http::Request::new(String::new())).await?;
/// assert!(first.body().to_str()?.starts_with("Bearer "));
/// assert_eq!(first.body(), second.body(), "the token is reused until it is due");
/// assert_eq!(tokens.minted_count(), 1);
/// # Ok(()) }
/// ```
///
/// Service tokens for one target audience, minted on demand and renewed a margin before they
/// expire. Cheap to clone (shared).
#[derive(Clone)]
pub struct ServiceTokens {
    inner: Arc<Inner>,
}

impl fmt::Debug for ServiceTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTokens")
            .field("issuer", &self.inner.issuer)
            .field("subject", &self.inner.subject)
            .field("renew_before", &self.inner.renew_before)
            .field("client_certificate", &self.inner.certificate.is_some())
            .field("minted", &self.minted_count())
            .field("token", &"REDACTED")
            .finish()
    }
}

/// Builds [`ServiceTokens`].
#[must_use]
pub struct ServiceTokensBuilder {
    issuer: TokenIssuer,
    subject: String,
    claims: Map<String, Value>,
    renew_before: Option<Duration>,
    dpop: Option<Arc<DpopKey>>,
    certificate: Option<String>,
}

impl fmt::Debug for ServiceTokensBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTokensBuilder")
            .field("issuer", &self.issuer)
            .field("subject", &self.subject)
            .field("claims", &self.claims.keys().collect::<Vec<_>>())
            .field("renew_before", &self.renew_before)
            .field("client_certificate", &self.certificate.is_some())
            .finish()
    }
}

impl ServiceTokensBuilder {
    /// The `scope` claim of the tokens (space-separated, RFC 8693).
    ///
    /// ```
    /// # use tower_jwt_guard::{issue::SigningKey, Algorithm, ServiceTokens, TokenIssuer};
    /// # let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [7u8; 32])?).build();
    /// let tokens = ServiceTokens::builder(issuer, "gateway").scope("read:orders write:orders").build()?;
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn scope(self, scope: impl Into<String>) -> Self {
        self.claim("scope", scope.into())
    }

    /// Adds a claim to the tokens. The registered claims (`sub`, `aud`, `exp`, ...) are the
    /// issuer's and cannot be replaced here.
    ///
    /// ```
    /// # use tower_jwt_guard::{issue::SigningKey, Algorithm, ServiceTokens, TokenIssuer};
    /// # let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [7u8; 32])?).build();
    /// let tokens = ServiceTokens::builder(issuer, "gateway").claim("client_id", "gateway").build()?;
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.claims.insert(name.into(), value.into());
        self
    }

    /// Mint the next token once less than `margin` of the current one's lifetime is left
    /// (default: a quarter of the issuer's lifetime, at most 60 s). It must be shorter than the
    /// lifetime.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tower_jwt_guard::{issue::SigningKey, Algorithm, ServiceTokens, TokenIssuer};
    /// # let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [7u8; 32])?).ttl(Duration::from_secs(60)).build();
    /// assert!(ServiceTokens::builder(issuer.clone(), "gateway").renew_before(Duration::from_secs(10)).build().is_ok());
    /// assert!(ServiceTokens::builder(issuer, "gateway").renew_before(Duration::from_secs(60)).build().is_err());
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn renew_before(mut self, margin: Duration) -> Self {
        self.renew_before = Some(margin);
        self
    }

    /// Binds the tokens to `key` (`cnf.jkt`, RFC 9449) and sends them as `Authorization: DPoP`,
    /// each request with a fresh proof signed by `key` ([`ServiceTokenLayer`]).
    pub fn dpop_key(mut self, key: Arc<DpopKey>) -> Self {
        self.dpop = Some(key);
        self
    }

    /// Binds the tokens to the client certificate this service presents over mutual TLS
    /// (`cnf."x5t#S256"`, RFC 8705): the receiving service's
    /// [`CertificateBound`](crate::binding::CertificateBound) accepts them only over a connection
    /// with that certificate. The HTTP client under [`ServiceTokenLayer`] must present it (a rustls
    /// client identity: reqwest's `Identity::from_pem`, rustls' `with_client_auth_cert`).
    ///
    /// ```
    /// use tower_jwt_guard::binding::ClientCertificate;
    /// # use tower_jwt_guard::{issue::SigningKey, Algorithm, ServiceTokens, TokenIssuer};
    /// # let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [7u8; 32])?).build();
    /// # let der = b"the DER of the certificate of the client identity".to_vec();
    /// let tokens = ServiceTokens::builder(issuer, "gateway")
    ///     .client_certificate(&ClientCertificate::from_der(der))
    ///     .build()?;
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn client_certificate(mut self, certificate: &ClientCertificate) -> Self {
        self.certificate = Some(crate::guard::binding::base64url(certificate.thumbprint()));
        self
    }

    /// Checks the settings. No token is minted until one is needed.
    pub fn build(self) -> Result<ServiceTokens, ConfigError> {
        let ttl = self.issuer.ttl();
        let margin = self.renew_before.unwrap_or_else(|| (ttl / 4).min(MAX_DEFAULT_MARGIN));
        if ttl.as_secs() == 0 {
            return Err(ConfigError::Invalid("service tokens need a lifetime of at least one second"));
        }
        if margin >= ttl {
            return Err(ConfigError::Invalid("the renewal margin must be shorter than the tokens' lifetime"));
        }
        if self.subject.is_empty() {
            return Err(ConfigError::Invalid("service tokens need a subject"));
        }
        Ok(ServiceTokens {
            inner: Arc::new(Inner {
                issuer: self.issuer,
                subject: self.subject,
                claims: self.claims,
                renew_before: margin.as_secs(),
                current: Mutex::new(None),
                minted: AtomicU64::new(0),
                dpop: self.dpop,
                certificate: self.certificate,
            }),
        })
    }
}

impl ServiceTokens {
    /// Service tokens minted by `issuer` for the calling service `subject` (the `sub` the
    /// receiving service sees).
    pub fn builder(issuer: TokenIssuer, subject: impl Into<String>) -> ServiceTokensBuilder {
        ServiceTokensBuilder {
            issuer,
            subject: subject.into(),
            claims: Map::new(),
            renew_before: None,
            dpop: None,
            certificate: None,
        }
    }

    /// The `Authorization` value (`Bearer <token>`) to send now: the current token, or a new
    /// one when it is due. Marked sensitive (not logged by hyper or h2).
    ///
    /// ```
    /// # use tower_jwt_guard::{issue::SigningKey, Algorithm, ServiceTokens, TokenIssuer};
    /// # let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [7u8; 32])?).build();
    /// let tokens = ServiceTokens::builder(issuer, "gateway").build()?;
    /// let header = tokens.authorization()?;
    /// assert!(header.is_sensitive());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn authorization(&self) -> Result<HeaderValue, IssueError> {
        self.current().map(|(header, _)| header)
    }

    /// The `Authorization` value and the token.
    fn current(&self) -> Result<(HeaderValue, Arc<str>), IssueError> {
        let now = clock::now();
        // One lock: a request that finds the token due mints while the others wait for it
        // (single-flight). Minting is a signature, not I/O.
        let mut current = self.inner.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(token) = current.as_ref().filter(|token| now < token.renew_at) {
            return Ok((token.header.clone(), Arc::clone(&token.token)));
        }
        let dpop = self.inner.dpop.as_ref();
        let certificate = self.inner.certificate.as_ref();
        let minted = self.inner.issuer.mint_with(&self.inner.subject, &self.inner.claims, |set| {
            let mut cnf = Map::new();
            if let Some(key) = dpop {
                cnf.insert("jkt".into(), key.jkt().into());
            }
            if let Some(thumbprint) = certificate {
                cnf.insert("x5t#S256".into(), thumbprint.clone().into());
            }
            if !cnf.is_empty() {
                set.insert("cnf".into(), Value::Object(cnf));
            }
        })?;
        self.inner.minted.fetch_add(1, Ordering::Relaxed);
        let scheme = if dpop.is_some() { "DPoP" } else { "Bearer" };
        let mut header =
            HeaderValue::try_from(format!("{scheme} {}", minted.token)).map_err(|_| IssueError::Signing)?;
        header.set_sensitive(true);
        let renew_at = minted.expires_at.saturating_sub(self.inner.renew_before);
        tracing::debug!(target: "tower_jwt_guard", jti = %minted.jti, expires_in = minted.expires_in, "service token minted");
        let token: Arc<str> = minted.token.into();
        *current = Some(Current { header: header.clone(), token: Arc::clone(&token), renew_at });
        Ok((header, token))
    }

    /// How many tokens were minted so far.
    pub fn minted_count(&self) -> u64 {
        self.inner.minted.load(Ordering::Relaxed)
    }

    /// The layer that puts these tokens on a client's requests.
    pub fn layer(&self) -> ServiceTokenLayer {
        ServiceTokenLayer::new(self.clone())
    }
}

/// A tower layer for clients: every request leaves with `Authorization: Bearer <service token>`
/// from [`ServiceTokens`], replacing any `Authorization` it had (a user's token is never
/// forwarded by accident).
///
/// It also carries FAPI 2.0's `x-fapi-interaction-id` across services: a request without one
/// leaves with the [`InteractionId`] in its extensions, or else with the one of the incoming
/// request being handled ([`InteractionId::current`], behind an
/// [`InteractionIdLayer`](crate::InteractionIdLayer)). One the caller set is kept.
///
/// ```
/// use tower::ServiceBuilder;
/// use tower_jwt_guard::{issue::SigningKey, Algorithm, ServiceTokenLayer, ServiceTokens, TokenIssuer};
///
/// # fn client<B: http_body::Body + Send + Unpin + 'static>() -> Result<(), Box<dyn std::error::Error>>
/// # where B::Data: Send, B::Error: Into<Box<dyn std::error::Error + Send + Sync>> {
/// let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [7u8; 32])?).audience("orders").build();
/// let tokens = ServiceTokens::builder(issuer, "gateway").build()?;
/// let http = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
///     .build_http::<B>();
/// let orders_client = ServiceBuilder::new().layer(ServiceTokenLayer::new(tokens)).service(http);
/// # let _ = orders_client;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ServiceTokenLayer {
    tokens: ServiceTokens,
    header: HeaderName,
    origin: Option<Origin>,
}

/// The scheme and authority of a client's target.
#[derive(Clone, Debug)]
struct Origin {
    scheme: Scheme,
    authority: Authority,
}

impl Origin {
    /// `uri` (relative) on this origin.
    fn join(&self, uri: &Uri) -> Option<Uri> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(uri.path_and_query().map_or("/", |path| path.as_str()))
            .build()
            .ok()
    }
}

impl ServiceTokenLayer {
    /// Sends `tokens` in the `Authorization` header.
    pub fn new(tokens: ServiceTokens) -> Self {
        ServiceTokenLayer { tokens, header: AUTHORIZATION, origin: None }
    }

    /// The target's origin (`https://orders.internal:50051`), for DPoP proofs
    /// ([`ServiceTokensBuilder::dpop_key`]): a request whose URI is relative — every request of
    /// a tonic `Channel`, which adds its scheme and host after this layer — is signed for this
    /// origin plus its path (`htu` must be the absolute URL, RFC 9449 §4.2). A request with an
    /// absolute URI is signed for that URI. Without an origin, a relative request with a DPoP
    /// key is not sent (its proof could only be refused).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use tower_jwt_guard::{issue::{DpopKey, SigningKey}, Algorithm, ServiceTokenLayer, ServiceTokens, TokenIssuer};
    /// # let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [7u8; 32])?).build();
    /// let tokens = ServiceTokens::builder(issuer, "gateway").dpop_key(Arc::new(DpopKey::generate_es256()?)).build()?;
    /// let layer = ServiceTokenLayer::new(tokens).origin("https://orders.internal:50051")?;
    /// # let _ = layer;
    /// assert!(ServiceTokenLayer::new(ServiceTokens::builder(
    ///     TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [7u8; 32])?).build(), "gateway").build()?)
    ///     .origin("/relative").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn origin(mut self, origin: impl AsRef<str>) -> Result<Self, ConfigError> {
        const BAD: ConfigError =
            ConfigError::Invalid("the target's origin must be an absolute URL without path or query");
        let uri: Uri = origin.as_ref().parse().map_err(|_| BAD)?;
        let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned()) else {
            return Err(BAD);
        };
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(BAD);
        }
        self.origin = Some(Origin { scheme, authority });
        Ok(self)
    }

    /// Sends the token in another header (for a service that reads it there).
    ///
    /// ```
    /// # use tower_jwt_guard::{issue::SigningKey, Algorithm, ServiceTokenLayer, ServiceTokens, TokenIssuer};
    /// # let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [7u8; 32])?).build();
    /// # let tokens = ServiceTokens::builder(issuer, "gateway").build()?;
    /// let layer = ServiceTokenLayer::new(tokens).header(http::HeaderName::from_static("x-service-authorization"));
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn header(mut self, name: HeaderName) -> Self {
        self.header = name;
        self
    }
}

impl<S> Layer<S> for ServiceTokenLayer {
    type Service = ServiceTokenService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServiceTokenService {
            inner,
            tokens: self.tokens.clone(),
            header: self.header.clone(),
            origin: self.origin.clone(),
        }
    }
}

/// The client service made by [`ServiceTokenLayer`].
#[derive(Clone)]
pub struct ServiceTokenService<S> {
    inner: S,
    tokens: ServiceTokens,
    header: HeaderName,
    origin: Option<Origin>,
}

impl<S: fmt::Debug> fmt::Debug for ServiceTokenService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTokenService")
            .field("inner", &self.inner)
            .field("tokens", &self.tokens)
            .field("header", &self.header)
            .field("origin", &self.origin)
            .finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ServiceTokenService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ServiceTokenFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let signed = self.tokens.current().and_then(|(value, token)| match &self.tokens.inner.dpop {
            Some(key) => {
                // A relative URI (a tonic Channel's) is signed on the configured origin.
                let joined = match (request.uri().authority(), &self.origin) {
                    (None, Some(origin)) => origin.join(request.uri()),
                    _ => None,
                };
                let proof =
                    key.proof(request.method(), joined.as_ref().unwrap_or(request.uri()), Some(&token))?;
                Ok((value, HeaderValue::try_from(proof).ok()))
            }
            None => Ok((value, None)),
        });
        match signed {
            Ok((value, proof)) => {
                forward_interaction_id(&mut request);
                request.headers_mut().insert(self.header.clone(), value);
                if let Some(proof) = proof {
                    request.headers_mut().insert("dpop", proof);
                }
                let dpop = self.tokens.inner.dpop.clone();
                ServiceTokenFuture { kind: Kind::Inner { future: self.inner.call(request), dpop } }
            }
            Err(err) => {
                tracing::error!(target: "tower_jwt_guard", error = %err, "no service token: request not sent");
                ServiceTokenFuture { kind: Kind::Failed { error: Some(err) } }
            }
        }
    }
}

/// FAPI 2.0's `x-fapi-interaction-id` on an outgoing request: one it already has is kept; else
/// the [`InteractionId`] in its extensions, else the one of the incoming request being handled
/// ([`InteractionId::current`], set by [`InteractionIdLayer`](crate::InteractionIdLayer)).
fn forward_interaction_id<B>(request: &mut Request<B>) {
    if request.headers().contains_key(&INTERACTION_ID) {
        return;
    }
    let id = request.extensions().get::<InteractionId>().cloned().or_else(InteractionId::current);
    if let Some(value) = id.and_then(|id| HeaderValue::from_str(id.as_str()).ok()) {
        request.headers_mut().insert(INTERACTION_ID, value);
    }
}

pin_project! {
    /// The future of [`ServiceTokenService`]: the client's future, or the minting error. With a
    /// [`DpopKey`], a `DPoP-Nonce` in the answer is remembered for the next proofs (RFC 9449 §8).
    pub struct ServiceTokenFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Inner { #[pin] future: F, dpop: Option<Arc<DpopKey>> },
        Failed { error: Option<IssueError> },
    }
}

impl<F> fmt::Debug for ServiceTokenFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.kind {
            Kind::Inner { .. } => "Inner",
            Kind::Failed { .. } => "Failed",
        };
        f.debug_struct("ServiceTokenFuture").field("state", &state).finish()
    }
}

impl<F, B, E> Future for ServiceTokenFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<B>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future, dpop } => {
                let response = ready!(future.poll(cx)).map_err(Into::into)?;
                let nonce = response.headers().get("dpop-nonce").and_then(|value| value.to_str().ok());
                if let (Some(key), Some(nonce)) = (dpop.as_ref(), nonce) {
                    key.remember_nonce(nonce);
                }
                Poll::Ready(Ok(response))
            }
            KindProj::Failed { error } => {
                let error = error.take().expect("ServiceTokenFuture polled after completion");
                Poll::Ready(Err(Box::new(error)))
            }
        }
    }
}
