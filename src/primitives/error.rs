//! [`AuthError`]: the one value every rejection is made of; [`ConfigError`]: every mistake
//! [`JwtAuthBuilder::build`](crate::JwtAuthBuilder::build) and the other builders find.
//!
//! Each rejection carries a stable machine [`code`](AuthError::code), an HTTP status, the
//! code's one client-safe text, the precise reason for the audit (its [`detail`](AuthError::detail))
//! and, for the step-up case, the RFC 9470 challenge parameters. How it becomes a response (HTTP
//! with `WWW-Authenticate`, or a gRPC trailers-only answer) lives in [`crate::rejection`].
//!
//! Clients get one text per code: "the token is not valid" whether the signature, the key, the
//! algorithm or a claim was wrong, so a refusal tells an attacker nothing about the server's keys.
//! The precise reason goes to the audit event, and to clients only when the service opts in for
//! development ([`JwtAuthBuilder::expose_error_details`](crate::JwtAuthBuilder::expose_error_details)).

use std::borrow::Cow;
use std::fmt;

use http::StatusCode;

use crate::primitives::algorithm::Algorithm;

/// What kind of rejection this is. Each kind has a stable [`code`](ErrorKind::code).
///
/// ```
/// use tower_jwt_guard::ErrorKind;
///
/// assert_eq!(ErrorKind::TokenExpired.code(), "TOKEN_EXPIRED");
/// assert_eq!(ErrorKind::TokenExpired.status(), http::StatusCode::UNAUTHORIZED);
/// assert_eq!(ErrorKind::AuthUnavailable.grpc_code(), 14);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No token in the request (RFC 6750 §3.1: the challenge has no `error` attribute).
    MissingToken,
    /// The request is malformed: two tokens, a broken `Authorization` header.
    InvalidRequest,
    /// The token is malformed, badly signed, uses a refused algorithm or key, or has bad claims.
    InvalidToken,
    /// The token's `exp` has passed (beyond the leeway).
    TokenExpired,
    /// The token's `nbf` is in the future (beyond the leeway).
    TokenNotYetValid,
    /// The token's `iat` is older than the configured maximum age.
    TokenTooOld,
    /// The token (its `jti`, or every token of its subject) has been revoked.
    TokenRevoked,
    /// The token is bound to another device or client address.
    BindingMismatch,
    /// The route needs a stronger authentication (RFC 9470 step-up).
    MfaRequired,
    /// The token lacks a scope the route requires (RFC 6750 §3.1 `insufficient_scope`).
    InsufficientScope,
    /// A dependency (key source, revocation store) is down: fail closed.
    AuthUnavailable,
    /// An extractor was used on a route without the layer: a wiring bug.
    MissingLayer,
    /// The DPoP proof (RFC 9449) is missing, malformed, or does not match the request or the token.
    InvalidDpopProof,
    /// The DPoP proof lacks a fresh server nonce (RFC 9449 §8): retry with the `DPoP-Nonce` sent.
    UseDpopNonce,
    /// The HTTP message signature (RFC 9421) is malformed, does not verify, or does not cover
    /// what the policy requires.
    InvalidSignature,
    /// An HTTP message signature (RFC 9421) is required and the request has none.
    SignatureRequired,
}

impl ErrorKind {
    /// Every kind, for tables and tests.
    pub const ALL: [ErrorKind; 16] = [
        ErrorKind::MissingToken,
        ErrorKind::InvalidRequest,
        ErrorKind::InvalidToken,
        ErrorKind::TokenExpired,
        ErrorKind::TokenNotYetValid,
        ErrorKind::TokenTooOld,
        ErrorKind::TokenRevoked,
        ErrorKind::BindingMismatch,
        ErrorKind::MfaRequired,
        ErrorKind::InsufficientScope,
        ErrorKind::AuthUnavailable,
        ErrorKind::MissingLayer,
        ErrorKind::InvalidDpopProof,
        ErrorKind::UseDpopNonce,
        ErrorKind::InvalidSignature,
        ErrorKind::SignatureRequired,
    ];

    /// The stable machine code, as found in the JSON body's `code`.
    ///
    /// ```
    /// assert_eq!(tower_jwt_guard::ErrorKind::MissingToken.code(), "MISSING_TOKEN");
    /// ```
    pub const fn code(self) -> &'static str {
        match self {
            ErrorKind::MissingToken => "MISSING_TOKEN",
            ErrorKind::InvalidRequest => "INVALID_REQUEST",
            ErrorKind::InvalidToken => "INVALID_TOKEN",
            ErrorKind::TokenExpired => "TOKEN_EXPIRED",
            ErrorKind::TokenNotYetValid => "TOKEN_NOT_YET_VALID",
            ErrorKind::TokenTooOld => "TOKEN_TOO_OLD",
            ErrorKind::TokenRevoked => "TOKEN_REVOKED",
            ErrorKind::BindingMismatch => "BINDING_MISMATCH",
            ErrorKind::MfaRequired => "MFA_REQUIRED",
            ErrorKind::InsufficientScope => "INSUFFICIENT_SCOPE",
            ErrorKind::AuthUnavailable => "AUTH_UNAVAILABLE",
            ErrorKind::MissingLayer => "MISSING_LAYER",
            ErrorKind::InvalidDpopProof => "INVALID_DPOP_PROOF",
            ErrorKind::UseDpopNonce => "USE_DPOP_NONCE",
            ErrorKind::InvalidSignature => "INVALID_SIGNATURE",
            ErrorKind::SignatureRequired => "SIGNATURE_REQUIRED",
        }
    }

    /// The HTTP status of this kind of rejection.
    ///
    /// ```
    /// use http::StatusCode;
    /// use tower_jwt_guard::ErrorKind;
    /// assert_eq!(ErrorKind::InvalidRequest.status(), StatusCode::BAD_REQUEST);
    /// assert_eq!(ErrorKind::MissingLayer.status(), StatusCode::INTERNAL_SERVER_ERROR);
    /// ```
    pub const fn status(self) -> StatusCode {
        match self {
            ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorKind::InsufficientScope => StatusCode::FORBIDDEN,
            ErrorKind::AuthUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::MissingLayer => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The RFC 6750 / RFC 9470 `error` attribute of the `WWW-Authenticate` challenge,
    /// or `None` when the challenge carries no error (missing token) or there is no challenge.
    ///
    /// ```
    /// use tower_jwt_guard::ErrorKind;
    /// assert_eq!(ErrorKind::TokenRevoked.challenge_error(), Some("invalid_token"));
    /// assert_eq!(ErrorKind::MissingToken.challenge_error(), None);
    /// ```
    pub const fn challenge_error(self) -> Option<&'static str> {
        match self {
            ErrorKind::MissingToken | ErrorKind::AuthUnavailable | ErrorKind::MissingLayer => None,
            ErrorKind::InvalidRequest => Some("invalid_request"),
            ErrorKind::MfaRequired => Some("insufficient_user_authentication"),
            ErrorKind::InsufficientScope => Some("insufficient_scope"),
            ErrorKind::InvalidDpopProof => Some("invalid_dpop_proof"),
            ErrorKind::UseDpopNonce => Some("use_dpop_nonce"),
            _ => Some("invalid_token"),
        }
    }

    /// Whether the response carries a `WWW-Authenticate` challenge at all.
    pub const fn has_challenge(self) -> bool {
        !matches!(self, ErrorKind::AuthUnavailable | ErrorKind::MissingLayer)
    }

    /// The gRPC status code used when the request is a gRPC call.
    ///
    /// 16 UNAUTHENTICATED for token problems, 7 PERMISSION_DENIED for a missing second factor
    /// or scope, 14 UNAVAILABLE when a dependency is down, 13 INTERNAL for a wiring bug.
    pub const fn grpc_code(self) -> u8 {
        match self {
            ErrorKind::MfaRequired | ErrorKind::InsufficientScope => 7,
            ErrorKind::AuthUnavailable => 14,
            ErrorKind::MissingLayer => 13,
            _ => 16,
        }
    }

    /// The short, client-safe text of this kind: what clients read, whatever the precise reason.
    ///
    /// It says what to do, never which key, algorithm or check refused the token (that is the
    /// [`detail`](AuthError::detail), for the audit).
    ///
    /// ```
    /// use tower_jwt_guard::ErrorKind;
    /// assert_eq!(ErrorKind::InvalidToken.default_message(), "the token is not valid");
    /// ```
    pub const fn default_message(self) -> &'static str {
        match self {
            ErrorKind::MissingToken => "a bearer token is required",
            ErrorKind::InvalidRequest => "the authorization request is malformed",
            ErrorKind::InvalidToken => "the token is not valid",
            ErrorKind::TokenExpired => "the token has expired",
            ErrorKind::TokenNotYetValid => "the token is not valid yet",
            ErrorKind::TokenTooOld => "the token is too old, authenticate again",
            ErrorKind::TokenRevoked => "the token has been revoked",
            ErrorKind::BindingMismatch => "the token is bound to another client",
            ErrorKind::MfaRequired => "a stronger authentication is required",
            ErrorKind::InsufficientScope => "the token lacks a required scope",
            ErrorKind::AuthUnavailable => "authentication is temporarily unavailable",
            ErrorKind::MissingLayer => {
                "server misconfiguration: the JWT layer is not installed on this route"
            }
            ErrorKind::InvalidDpopProof => "the DPoP proof is not valid",
            ErrorKind::UseDpopNonce => "the DPoP proof must carry the server's nonce",
            ErrorKind::InvalidSignature => "the HTTP message signature is not valid",
            ErrorKind::SignatureRequired => "an HTTP message signature is required",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The parameters of an RFC 9470 step-up challenge or an RFC 6750 scope challenge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub(crate) acr_values: Option<String>,
    pub(crate) max_age: Option<u64>,
    pub(crate) scope: Option<String>,
    pub(crate) binding: Option<&'static str>,
    /// The client text when it is not the kind's own (a binding mismatch names the binding).
    pub(crate) message: Option<String>,
    /// RFC 9449: the refusal concerns a DPoP request (the `DPoP` challenge carries the error).
    pub(crate) dpop: bool,
    /// RFC 9449 §8: the nonce the client must put in its next proof (`DPoP-Nonce`).
    pub(crate) dpop_nonce: Option<String>,
    /// RFC 9421 §5.1: what a signature must cover (`Accept-Signature`).
    pub(crate) accept_signature: Option<String>,
}

/// A rejection: a kind with a stable code, the code's client-safe text, the precise reason
/// (for the audit) and challenge details.
///
/// It never holds the token, a key or a fingerprint value, so it can be logged as is.
///
/// ```
/// use tower_jwt_guard::{AuthError, ErrorKind};
///
/// let err = AuthError::new(ErrorKind::TokenExpired);
/// assert_eq!(err.code(), "TOKEN_EXPIRED");
/// assert_eq!(err.to_string(), "the token has expired");
/// assert_eq!(err.status(), http::StatusCode::UNAUTHORIZED);
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthError {
    kind: ErrorKind,
    detail: Option<Cow<'static, str>>,
    challenge: Option<Box<Challenge>>,
}

impl AuthError {
    /// A rejection of `kind` with its default message.
    pub const fn new(kind: ErrorKind) -> Self {
        AuthError { kind, detail: None, challenge: None }
    }

    /// A rejection of `kind` with the precise reason (lowercase, no period).
    ///
    /// Clients read the kind's one text ([`message`](Self::message)); the reason goes to the audit
    /// event ([`detail`](Self::detail)), and to clients only with
    /// [`expose_error_details`](crate::JwtAuthBuilder::expose_error_details). A `&'static str`
    /// reason does not allocate.
    ///
    /// ```
    /// use tower_jwt_guard::{AuthError, ErrorKind};
    /// let err = AuthError::with_detail(ErrorKind::InvalidToken, "unknown key id");
    /// assert_eq!(err.message(), "the token is not valid");
    /// assert_eq!(err.detail(), "unknown key id");
    /// ```
    pub fn with_detail(kind: ErrorKind, detail: impl Into<Cow<'static, str>>) -> Self {
        AuthError { detail: Some(detail.into()), ..AuthError::new(kind) }
    }

    /// The same as [`with_detail`](Self::with_detail): the text is the precise reason, not what
    /// clients read. (It used to replace the client text; replace the whole response with
    /// [`on_rejection`](crate::JwtAuthBuilder::on_rejection) to word refusals yourself.)
    ///
    /// ```
    /// use tower_jwt_guard::{AuthError, ErrorKind};
    /// let err = AuthError::with_message(ErrorKind::InvalidToken, "wrong tenant");
    /// assert_eq!((err.message(), err.detail()), ("the token is not valid", "wrong tenant"));
    /// ```
    pub fn with_message(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        AuthError::with_detail(kind, message)
    }

    /// An RFC 9470 step-up rejection, with the `acr_values` and `max_age` the client should ask for.
    ///
    /// ```
    /// use tower_jwt_guard::{AuthError, ErrorKind};
    /// let err = AuthError::mfa_required(Some("mfa".into()), Some(300));
    /// assert_eq!(err.kind(), ErrorKind::MfaRequired);
    /// assert_eq!(err.acr_values(), Some("mfa"));
    /// assert_eq!(err.max_age(), Some(300));
    /// ```
    pub fn mfa_required(acr_values: Option<String>, max_age: Option<u64>) -> Self {
        AuthError {
            challenge: Some(Box::new(Challenge { acr_values, max_age, ..Challenge::default() })),
            ..AuthError::new(ErrorKind::MfaRequired)
        }
    }

    /// A binding mismatch naming the binding that failed (`"fingerprint"`, `"client_ip"`, ...),
    /// never the expected value.
    ///
    /// ```
    /// let err = tower_jwt_guard::AuthError::binding_mismatch("client_ip");
    /// assert_eq!(err.binding(), Some("client_ip"));
    /// assert_eq!(err.code(), "BINDING_MISMATCH");
    /// // The message names it too, for gRPC clients, which get no JSON body.
    /// assert_eq!(err.message(), "the token is bound to another client (client_ip)");
    /// ```
    pub fn binding_mismatch(binding: &'static str) -> Self {
        AuthError {
            challenge: Some(Box::new(Challenge {
                binding: Some(binding),
                message: Some(format!("{} ({binding})", ErrorKind::BindingMismatch.default_message())),
                ..Challenge::default()
            })),
            ..AuthError::new(ErrorKind::BindingMismatch)
        }
    }

    /// An RFC 6750 `insufficient_scope` rejection naming the scope(s) needed.
    ///
    /// ```
    /// let err = tower_jwt_guard::AuthError::insufficient_scope("read:orders");
    /// assert_eq!(err.status(), http::StatusCode::FORBIDDEN);
    /// assert_eq!(err.scope(), Some("read:orders"));
    /// ```
    pub fn insufficient_scope(scope: impl Into<String>) -> Self {
        AuthError {
            challenge: Some(Box::new(Challenge { scope: Some(scope.into()), ..Challenge::default() })),
            ..AuthError::new(ErrorKind::InsufficientScope)
        }
    }

    /// A refusal of a request that used DPoP (RFC 9449): the `DPoP` challenge carries the
    /// error. `nonce` is the `DPoP-Nonce` the client must use next (for
    /// [`ErrorKind::UseDpopNonce`], or a fresh nonce for any refusal).
    ///
    /// ```
    /// use tower_jwt_guard::{AuthError, ErrorKind};
    /// let err = AuthError::dpop(ErrorKind::UseDpopNonce, "the proof has no nonce", Some("n-1".into()));
    /// assert_eq!(err.code(), "USE_DPOP_NONCE");
    /// assert_eq!(err.dpop_nonce(), Some("n-1"));
    /// assert!(err.is_dpop());
    /// ```
    pub fn dpop(kind: ErrorKind, detail: &'static str, nonce: Option<String>) -> Self {
        AuthError {
            detail: Some(Cow::Borrowed(detail)),
            challenge: Some(Box::new(Challenge { dpop: true, dpop_nonce: nonce, ..Challenge::default() })),
            ..AuthError::new(kind)
        }
    }

    /// The same refusal, of a request that presented its token with `Authorization: DPoP`: the
    /// `DPoP` challenge carries the error, whatever it is (RFC 9449 §7.1: an expired, revoked
    /// or insufficiently scoped DPoP-bound token included).
    ///
    /// ```
    /// use tower_jwt_guard::{AuthError, ErrorKind};
    /// let err = AuthError::new(ErrorKind::TokenExpired);
    /// assert!(!err.is_dpop());
    /// assert!(err.on_dpop_request().is_dpop());
    /// ```
    pub fn on_dpop_request(mut self) -> Self {
        self.challenge.get_or_insert_with(Box::default).dpop = true;
        self
    }

    /// Whether the refusal concerns a DPoP request (RFC 9449).
    pub fn is_dpop(&self) -> bool {
        matches!(self.kind, ErrorKind::InvalidDpopProof | ErrorKind::UseDpopNonce)
            || self.challenge.as_ref().is_some_and(|challenge| challenge.dpop)
    }

    /// The `DPoP-Nonce` the client must use in its next proof, when there is one.
    pub fn dpop_nonce(&self) -> Option<&str> {
        self.challenge.as_ref()?.dpop_nonce.as_deref()
    }

    /// A refusal of an HTTP message signature (RFC 9421): `kind` is
    /// [`ErrorKind::InvalidSignature`] or [`ErrorKind::SignatureRequired`], `accept` the
    /// `Accept-Signature` value (§5.1) naming what a signature must cover.
    ///
    /// ```
    /// use tower_jwt_guard::{AuthError, ErrorKind};
    /// let err = AuthError::signature(ErrorKind::SignatureRequired, "no signature", Some("sig=(\"@method\")".into()));
    /// assert_eq!(err.code(), "SIGNATURE_REQUIRED");
    /// assert_eq!(err.accept_signature(), Some("sig=(\"@method\")"));
    /// ```
    pub fn signature(kind: ErrorKind, detail: &'static str, accept: Option<String>) -> Self {
        AuthError {
            detail: Some(Cow::Borrowed(detail)),
            challenge: Some(Box::new(Challenge { accept_signature: accept, ..Challenge::default() })),
            ..AuthError::new(kind)
        }
    }

    /// The `Accept-Signature` value (RFC 9421 §5.1) of a signature refusal, when there is one.
    pub fn accept_signature(&self) -> Option<&str> {
        self.challenge.as_ref()?.accept_signature.as_deref()
    }

    /// The kind of rejection.
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The stable machine code (`"TOKEN_EXPIRED"`, ...).
    pub const fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The HTTP status.
    pub const fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The client-safe message: the kind's one text (a binding mismatch also names the binding).
    pub fn message(&self) -> &str {
        self.challenge
            .as_ref()
            .and_then(|challenge| challenge.message.as_deref())
            .unwrap_or(self.kind.default_message())
    }

    /// The precise reason: what the audit event records (`"the token signature is invalid"`,
    /// `"no key is known for this token"`, ...), or the [`message`](Self::message) when the
    /// rejection has no more precise reason.
    ///
    /// Never the token, a key or a fingerprint, but it can tell an attacker which check failed:
    /// clients see it only with [`expose_error_details`](crate::JwtAuthBuilder::expose_error_details).
    ///
    /// ```
    /// use tower_jwt_guard::{AuthError, ErrorKind};
    /// assert_eq!(AuthError::new(ErrorKind::TokenRevoked).detail(), "the token has been revoked");
    /// ```
    pub fn detail(&self) -> &str {
        self.detail.as_deref().unwrap_or_else(|| self.message())
    }

    /// For a step-up rejection: the `acr_values` asked for.
    pub fn acr_values(&self) -> Option<&str> {
        self.challenge.as_ref()?.acr_values.as_deref()
    }

    /// For a step-up rejection: the maximum authentication age asked for, in seconds.
    pub fn max_age(&self) -> Option<u64> {
        self.challenge.as_ref()?.max_age
    }

    /// For a scope rejection: the scope(s) needed.
    pub fn scope(&self) -> Option<&str> {
        self.challenge.as_ref()?.scope.as_deref()
    }

    /// For a binding mismatch: which binding failed.
    pub fn binding(&self) -> Option<&'static str> {
        self.challenge.as_ref()?.binding
    }

    /// The response body: `{"error": "...", "code": "..."}` (plus `"binding"` for a mismatch).
    ///
    /// ```
    /// let body = tower_jwt_guard::AuthError::binding_mismatch("fingerprint").json_body();
    /// let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    /// assert_eq!(v["code"], "BINDING_MISMATCH");
    /// assert_eq!(v["binding"], "fingerprint");
    /// ```
    pub fn json_body(&self) -> bytes::Bytes {
        self.json_body_with(self.message())
    }

    /// The response body with `text` as its `error` (the message, or the detail when exposed).
    pub(crate) fn json_body_with(&self, text: &str) -> bytes::Bytes {
        let mut body = serde_json::Map::with_capacity(4);
        body.insert("error".into(), text.into());
        body.insert("code".into(), self.code().into());
        if let Some(binding) = self.binding() {
            body.insert("binding".into(), binding.into());
        }
        if let Some(scope) = self.scope() {
            body.insert("scope".into(), scope.into());
        }
        serde_json::to_vec(&body).map(bytes::Bytes::from).unwrap_or_default()
    }
}

impl fmt::Debug for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("AuthError");
        d.field("code", &self.code()).field("message", &self.message());
        if let Some(detail) = &self.detail {
            d.field("detail", detail);
        }
        if let Some(challenge) = &self.challenge {
            d.field("challenge", challenge);
        }
        d.finish()
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for AuthError {}

impl From<ErrorKind> for AuthError {
    fn from(kind: ErrorKind) -> Self {
        AuthError::new(kind)
    }
}

/// A configuration mistake, found when the configuration is built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// An HMAC secret shorter than the hash output (RFC 7518 §3.2).
    WeakSecret {
        /// The algorithm the secret was meant for.
        algorithm: Algorithm,
        /// The shortest length accepted.
        min_len: usize,
        /// The length given.
        len: usize,
    },
    /// A key cannot be used with this algorithm (an RSA key for `ES256`, ...).
    KeyAlgorithmMismatch {
        /// The algorithm asked for.
        algorithm: Algorithm,
    },
    /// A key could not be read.
    InvalidKey(&'static str),
    /// No key and no key source was configured.
    NoKeys,
    /// A configured key's algorithm is not in the allow-list.
    AlgorithmNotAllowed(Algorithm),
    /// The allow-list is empty.
    NoAlgorithms,
    /// Another setting is invalid.
    Invalid(&'static str),
    /// A setting breaks a rule of the configured profile (the FAPI 2.0 profile,
    /// `JwtAuthBuilder::fapi2`): `rule` is the rule's stable id, `why` what breaks it.
    Profile {
        /// The rule's stable id (`"fapi2/algorithms"`, ...).
        rule: &'static str,
        /// What breaks it, and how to mend it.
        why: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::WeakSecret { algorithm, min_len, len } => {
                write!(f, "the {algorithm:?} secret is {len} bytes, at least {min_len} are required")
            }
            ConfigError::KeyAlgorithmMismatch { algorithm } => {
                write!(f, "the key cannot be used with {algorithm:?}")
            }
            ConfigError::InvalidKey(why) => write!(f, "invalid key: {why}"),
            ConfigError::NoKeys => f.write_str("no verification key or key source is configured"),
            ConfigError::AlgorithmNotAllowed(alg) => {
                write!(f, "a key uses {alg:?}, which is not in the allow-list")
            }
            ConfigError::NoAlgorithms => f.write_str("the algorithm allow-list is empty"),
            ConfigError::Invalid(why) => f.write_str(why),
            ConfigError::Profile { rule, why } => write!(f, "profile rule {rule} is broken: {why}"),
        }
    }
}

impl std::error::Error for ConfigError {}
