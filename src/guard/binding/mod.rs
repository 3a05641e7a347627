//! Step 3 of the request path: binding policies tie a token to its caller.
//!
//! Each configured [`BindingPolicy`] compares the request with the token's `cnf` claims on every
//! request, cache hit or not. A token that lacks a claim a policy needs is refused.
//!
//! The same policy also *makes* the binding: [`TokenIssuer`](crate::TokenIssuer) asks every
//! policy it was given to [`bind`](BindingPolicy::bind) a new token to the request that asked
//! for it, so the value that is checked is computed by the code that checks it.
//!
//! | policy | claim | stops | does not stop |
//! |---|---|---|---|
//! | [`DeviceFingerprint`] | `cnf.dfp` | a stolen token replayed from a client whose headers differ | a thief who copies the victim's headers too |
//! | [`CookieFingerprint`] | `cnf.cfp` | a token stolen by script (XSS, logs, storage) without the `HttpOnly` cookie | a thief with the whole browser (malware, a stolen device) |
//! | [`ClientIpBinding`] | `cnf.cip` | a stolen token replayed from another network | a thief behind the same address (NAT, proxy, same /24 with a prefix) |
//! | [`Dpop`] (RFC 9449) | `cnf.jkt` | a stolen token used without the client's private key | a thief who holds the key too (malware on the client) |
//! | [`MessageSignature`] (RFC 9421) | `cnf.jwk`, `cnf.jkt` | a stolen token used without the client's key; a request altered in a covered component | a thief who holds the key too; what the signature does not cover |
//! | [`CertificateBound`] (RFC 8705) | `cnf."x5t#S256"` | a stolen token used without the client's TLS certificate and its key | a thief who holds the key too; a TLS-terminating proxy that is not configured as trusted (the token cannot be used) |
//!
//! ```
//! use std::net::SocketAddr;
//! use tower_jwt_guard::binding::{BindingPolicy, ClientIpBinding, NewBinding, PeerAddr, RequestHead};
//!
//! let policy = ClientIpBinding::new();
//! let peer = |addr: &str| {
//!     let mut request = http::Request::new(());
//!     request.extensions_mut().insert(PeerAddr(addr.parse::<SocketAddr>().unwrap()));
//!     request
//! };
//!
//! // Issuing: the policy writes the caller's address into the token's `cnf`.
//! let mut binding = NewBinding::default();
//! policy.bind(&RequestHead::of(&peer("198.51.100.7:5000")), &mut binding).unwrap();
//! let cnf = binding.confirmation().clone();
//!
//! // Checking: the same caller passes, another one is refused.
//! assert!(policy.check(&RequestHead::of(&peer("198.51.100.7:6000")), Some(&cnf)).is_ok());
//! let err = policy.check(&RequestHead::of(&peer("203.0.113.9:5000")), Some(&cnf)).unwrap_err();
//! assert_eq!(err.binding(), Some("client_ip"));
//! ```

mod certificate;
mod client_certificate;
mod client_ip;
mod cookie;
pub mod dpop;
mod fingerprint;
pub mod message_signature;
mod peer;
mod proxies;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::{Extensions, HeaderMap, HeaderValue, Method, Request, Uri};

use crate::guard::observe::readiness::Readiness;
use crate::primitives::claims::{Confirmation, TokenFacts};
use crate::primitives::error::AuthError;

pub use certificate::CertificateBound;
pub use client_certificate::{ClientCertificate, ClientCertificateError, CLIENT_CERT};
pub use client_ip::ClientIpBinding;
pub use cookie::CookieFingerprint;
pub use dpop::{Dpop, DpopMode, DpopNonces, VerifiedProof};
pub(crate) use dpop::{DpopChallenge, DpopCheck};
pub use fingerprint::DeviceFingerprint;
pub use message_signature::{
    ClientSignatureKeys, ContentDigest, MessageSignature, MessageSigner, SignatureAlgorithm, SignatureError,
    SignatureFields, SignatureKey, SignatureKeyLookup, SignatureKeySet, SignatureKeySource, SignatureMode,
    SignatureParams,
};
pub(crate) use peer::{connection_scheme, peer_addr};
pub use peer::{ConnectionScheme, PeerAddr};
pub use proxies::{ClientIpError, ForwardedHeader, TrustedProxies};

/// A borrowed view of a request's head: what binding policies look at.
///
/// ```
/// use tower_jwt_guard::binding::RequestHead;
///
/// let request = http::Request::builder().uri("/me").body(()).unwrap();
/// let head = RequestHead::of(&request);
/// assert_eq!(head.uri.path(), "/me");
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RequestHead<'a> {
    /// The method.
    pub method: &'a Method,
    /// The URI.
    pub uri: &'a Uri,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The extensions (where the connection's peer address lives).
    pub extensions: &'a Extensions,
}

impl<'a> RequestHead<'a> {
    /// The head of `request`.
    pub fn of<B>(request: &'a Request<B>) -> Self {
        RequestHead {
            method: request.method(),
            uri: request.uri(),
            headers: request.headers(),
            extensions: request.extensions(),
        }
    }

    /// The head of request `parts`.
    pub fn from_parts(parts: &'a http::request::Parts) -> Self {
        RequestHead {
            method: &parts.method,
            uri: &parts.uri,
            headers: &parts.headers,
            extensions: &parts.extensions,
        }
    }

    /// The address of the connection's remote end, from the request's extensions: a
    /// [`PeerAddr`], axum's `ConnectInfo<SocketAddr>` (feature `axum`) or tonic's
    /// `TcpConnectInfo`, plain or inside its `TlsConnectInfo` (feature `tonic`), in this order.
    ///
    /// ```
    /// use tower_jwt_guard::binding::{PeerAddr, RequestHead};
    ///
    /// let mut request = http::Request::new(());
    /// assert_eq!(RequestHead::of(&request).peer_addr(), None);
    /// request.extensions_mut().insert(PeerAddr("192.0.2.1:4000".parse().unwrap()));
    /// assert_eq!(RequestHead::of(&request).peer_addr(), Some("192.0.2.1:4000".parse().unwrap()));
    /// ```
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        peer::peer_addr(self.extensions)
    }
}

impl<'a> From<&'a http::request::Parts> for RequestHead<'a> {
    fn from(parts: &'a http::request::Parts) -> Self {
        RequestHead::from_parts(parts)
    }
}

impl<'a, B> From<&'a Request<B>> for RequestHead<'a> {
    fn from(request: &'a Request<B>) -> Self {
        RequestHead::of(request)
    }
}

/// What the binding policies add to a token being minted: its `cnf` claims, the cookies the
/// response must set (the [`CookieFingerprint`]'s hardened cookie), and the checks a policy
/// could not finish at once (a DPoP proof's replay check in a remote store), which the
/// [`TokenIssuer`](crate::TokenIssuer) awaits before it signs.
///
/// ```
/// use tower_jwt_guard::binding::NewBinding;
///
/// let mut binding = NewBinding::new(std::time::Duration::from_secs(900));
/// binding.confirmation_mut().client_ip = Some("192.0.2.1".into());
/// assert_eq!(binding.token_ttl().as_secs(), 900);
/// assert!(binding.set_cookies().is_empty());
/// // A check that needs a round trip (here one that is ready at once): awaited before signing.
/// binding.defer(async { Ok(()) });
/// assert_eq!(binding.deferred(), 1);
/// ```
#[derive(Default)]
pub struct NewBinding {
    confirmation: Confirmation,
    set_cookies: Vec<HeaderValue>,
    ttl: Duration,
    deferred: Vec<BoxFuture<'static, Result<(), BindingUnavailable>>>,
    /// The `cnf.jkt` of the token the layer let this request through with (the issuer reads it
    /// from the request's `AuthContext`): the DPoP policy does not record that proof twice.
    layer_jkt: Option<String>,
}

impl NewBinding {
    /// An empty binding for a token that lives `ttl`.
    pub fn new(ttl: Duration) -> Self {
        NewBinding {
            confirmation: Confirmation::default(),
            set_cookies: Vec::new(),
            ttl,
            deferred: Vec::new(),
            layer_jkt: None,
        }
    }

    /// Tells the policies that the layer let this request through with a token bound to the
    /// DPoP key `jkt` (and so checked and recorded its proof already).
    pub(crate) fn with_layer_jkt(mut self, jkt: Option<String>) -> Self {
        self.layer_jkt = jkt;
        self
    }

    /// See [`with_layer_jkt`](Self::with_layer_jkt).
    pub(crate) fn layer_jkt(&self) -> Option<&str> {
        self.layer_jkt.as_deref()
    }

    /// The `cnf` claims so far.
    pub fn confirmation(&self) -> &Confirmation {
        &self.confirmation
    }

    /// The `cnf` claims, for a policy to fill in.
    pub fn confirmation_mut(&mut self) -> &mut Confirmation {
        &mut self.confirmation
    }

    /// Adds a `Set-Cookie` value the response that hands out the token must carry.
    pub fn add_set_cookie(&mut self, cookie: HeaderValue) {
        self.set_cookies.push(cookie);
    }

    /// The `Set-Cookie` values so far.
    pub fn set_cookies(&self) -> &[HeaderValue] {
        &self.set_cookies
    }

    /// The lifetime of the token being minted (a cookie need not outlive it).
    pub fn token_ttl(&self) -> Duration {
        self.ttl
    }

    /// Leaves `check` for the issuer to await: a part of the binding whose answer comes later
    /// (a remote store's). No token is signed until every deferred check has passed; the first
    /// one that fails is the issuer's error.
    pub fn defer(&mut self, check: impl Future<Output = Result<(), BindingUnavailable>> + Send + 'static) {
        self.deferred.push(Box::pin(check));
    }

    /// How many checks are deferred.
    pub fn deferred(&self) -> usize {
        self.deferred.len()
    }

    /// Awaits every deferred check, in order.
    pub(crate) async fn settle(&mut self) -> Result<(), BindingUnavailable> {
        for check in std::mem::take(&mut self.deferred) {
            check.await?;
        }
        Ok(())
    }

    pub(crate) fn into_parts(self) -> (Confirmation, Vec<HeaderValue>) {
        (self.confirmation, self.set_cookies)
    }
}

impl fmt::Debug for NewBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewBinding")
            .field("confirmation", &self.confirmation)
            .field("set_cookies", &self.set_cookies.len())
            .field("ttl", &self.ttl)
            .field("deferred", &self.deferred.len())
            .finish()
    }
}

/// Why a token could not be bound to a request: the request lacks what the policy needs
/// (no peer address, an unreadable `Forwarded` header, ...).
///
/// ```
/// use tower_jwt_guard::binding::BindingUnavailable;
///
/// let err = BindingUnavailable::new("client_ip", "the connection's peer address is unknown");
/// assert_eq!(err.binding(), "client_ip");
/// assert_eq!(err.to_string(), "cannot bind the token to the client_ip: the connection's peer address is unknown");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingUnavailable {
    binding: &'static str,
    reason: &'static str,
    dpop_nonce: Option<String>,
    store_unavailable: bool,
}

impl BindingUnavailable {
    /// The policy `binding` cannot bind a token to this request, because of `reason`.
    pub const fn new(binding: &'static str, reason: &'static str) -> Self {
        BindingUnavailable { binding, reason, dpop_nonce: None, store_unavailable: false }
    }

    /// The policy `binding` cannot bind a token now: a store it needs cannot answer (`reason`).
    /// The request may be fine: a token endpoint answers 503 and the client tries again.
    ///
    /// ```
    /// use tower_jwt_guard::binding::BindingUnavailable;
    ///
    /// let err = BindingUnavailable::store_unavailable("dpop", "the DPoP replay store cannot answer");
    /// assert!(err.is_store_unavailable());
    /// assert!(!BindingUnavailable::new("dpop", "the DPoP proof is not valid").is_store_unavailable());
    /// ```
    pub const fn store_unavailable(binding: &'static str, reason: &'static str) -> Self {
        BindingUnavailable { binding, reason, dpop_nonce: None, store_unavailable: true }
    }

    /// Whether a store the policy needs could not answer (rather than the request lacking something).
    pub const fn is_store_unavailable(&self) -> bool {
        self.store_unavailable
    }

    /// The same, because the request's DPoP proof lacks the server's nonce: `nonce` is the one
    /// the client must put in its next proof (RFC 9449 §8). Only the DPoP binding makes it; the
    /// issuer turns it into [`IssueError::UseDpopNonce`](crate::issue::IssueError::UseDpopNonce).
    pub(crate) fn use_dpop_nonce(binding: &'static str, reason: &'static str, nonce: String) -> Self {
        BindingUnavailable { binding, reason, dpop_nonce: Some(nonce), store_unavailable: false }
    }

    /// The policy's name.
    pub const fn binding(&self) -> &'static str {
        self.binding
    }

    /// Why (a fixed, client-safe text).
    pub const fn reason(&self) -> &'static str {
        self.reason
    }

    /// The nonce to send back when the DPoP proof lacked the server's (RFC 9449 §8).
    pub(crate) fn into_dpop_nonce(self) -> Result<String, Self> {
        match self.dpop_nonce {
            Some(nonce) => Ok(nonce),
            None => Err(self),
        }
    }
}

impl fmt::Display for BindingUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot bind the token to the {}: {}", self.binding, self.reason)
    }
}

impl std::error::Error for BindingUnavailable {}

/// A rule that ties a token to the request that presents it.
///
/// `check` runs in the layer on every request; `bind` runs in the
/// [`TokenIssuer`](crate::TokenIssuer) when a token is minted for a request, and writes the
/// claims `check` will compare. A policy that needs no claim (below) keeps the default `bind`.
///
/// ```
/// use tower_jwt_guard::binding::{BindingPolicy, RequestHead};
/// use tower_jwt_guard::{AuthError, Confirmation};
///
/// /// Tokens are only good on one host name.
/// struct SameHost;
///
/// impl BindingPolicy for SameHost {
///     fn name(&self) -> &'static str { "host" }
///     fn check(&self, request: &RequestHead<'_>, _: Option<&Confirmation>) -> Result<(), AuthError> {
///         match request.headers.get("host") {
///             Some(host) if host == "api.example.com" => Ok(()),
///             _ => Err(AuthError::binding_mismatch(self.name())),
///         }
///     }
/// }
/// ```
pub trait BindingPolicy: Send + Sync + 'static {
    /// The binding's name, as reported in a `BINDING_MISMATCH` rejection.
    fn name(&self) -> &'static str;

    /// The `cnf` members this policy checks (`"dfp"`, `"cfp"`, `"cip"`, ...).
    ///
    /// A token whose `cnf` carries a member that no configured policy checks is refused
    /// (`BINDING_MISMATCH`): it was bound to something this service cannot verify (a DPoP key
    /// without [`Dpop`], a client certificate without [`CertificateBound`], RFC 7800's `jwk`, `jwe`, `kid` or `jku`, a member of any other
    /// name), and used as a plain bearer token it would defeat that binding. Every member
    /// counts, including names the crate does not know ([`Confirmation::members`]); a policy
    /// that lists a member without a field reads it with [`Confirmation::other`].
    /// The default is none.
    fn confirms(&self) -> &'static [&'static str] {
        &[]
    }

    /// Compares `request` with the token's confirmation claims.
    fn check(&self, request: &RequestHead<'_>, confirmation: Option<&Confirmation>) -> Result<(), AuthError>;

    /// [`check`](Self::check), with a part whose answer comes later (a remote store's, such as
    /// a message signature's nonce in Redis): the layer awaits the returned future before the
    /// request goes on, and its error refuses the request. The default is `check`, nothing
    /// deferred.
    fn check_deferred(
        &self,
        request: &RequestHead<'_>,
        confirmation: Option<&Confirmation>,
    ) -> Result<Option<BoxFuture<'static, Result<(), AuthError>>>, AuthError> {
        self.check(request, confirmation).map(|()| None)
    }

    /// [`check_deferred`](Self::check_deferred) with the whole of the token's facts (its
    /// `client_id`, ...), which is what the layer calls. The default reads only the `cnf` claim.
    fn check_token(
        &self,
        request: &RequestHead<'_>,
        token: &TokenFacts,
    ) -> Result<Option<BoxFuture<'static, Result<(), AuthError>>>, AuthError> {
        self.check_deferred(request, token.confirmation.as_ref())
    }

    /// Binds a token being minted to `request`: fills in its `cnf` claims (and cookies to set).
    /// A part whose answer comes later (a remote store's) goes to [`NewBinding::defer`]: the
    /// issuer awaits it before it signs. The default binds nothing.
    fn bind(&self, request: &RequestHead<'_>, binding: &mut NewBinding) -> Result<(), BindingUnavailable> {
        let _ = (request, binding);
        Ok(())
    }

    /// Whether this policy can check requests now (see [`readiness`](crate::readiness)): a
    /// policy whose keys come from a remote source is not ready while it has never loaded them.
    /// [`JwtAuth::readiness`](crate::JwtAuth::readiness) reports it beside the key sources.
    /// The default is ready.
    fn readiness(&self) -> Readiness {
        Readiness::Ready
    }
}

/// SHA-256, base64url without padding: the form fingerprints take in a token.
pub(crate) fn sha256_b64(bytes: &[u8]) -> String {
    base64url(sha256(bytes).as_ref())
}

pub(crate) fn sha256(bytes: &[u8]) -> aws_lc_rs::digest::Digest {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
}

pub(crate) fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `claim` is the base64url text of `digest`, compared in constant time; the text is
/// laid out on the stack, not allocated.
pub(crate) fn claims_digest(claim: &str, digest: &aws_lc_rs::digest::Digest) -> bool {
    use base64::Engine as _;
    let mut text = [0u8; 86]; // base64 of the longest digest (SHA-512) without padding
    match base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_slice(digest.as_ref(), &mut text) {
        Ok(len) => same(claim.as_bytes(), &text[..len]),
        Err(_) => false,
    }
}

/// Constant-time equality of two claim values (the length is not secret): the crypto
/// backend's `CRYPTO_memcmp`, one call rather than a barrier per byte.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}
