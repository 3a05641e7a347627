//! Audit events: every decision of the layer, observable.
//!
//! Each request the layer decides on (accepted, let through anonymously, or rejected) emits
//! one `tracing` event with target `tower_jwt_guard::audit` and these fields:
//!
//! | field | value |
//! |---|---|
//! | `outcome` | `accepted`, `anonymous` or `rejected` |
//! | `code` | the rejection's stable code (`TOKEN_EXPIRED`, ...), or `OK` / `ANONYMOUS` |
//! | `reason` | the rejection's precise reason ([`AuthError::detail`]: `"the token signature is invalid"`, `"no key is known for this token"`, ...; rejections only) |
//! | `issuer`, `subject`, `jti` | the token's `iss`, `sub` and `jti`, when the token verified |
//! | `client_ip` | the peer address, when the request carries one (see below) |
//! | `method`, `path` | the request's method and path (never the query: it may hold a token) |
//! | `interaction_id` | the `x-fapi-interaction-id`, when an [`InteractionIdLayer`](crate::InteractionIdLayer) runs before the guard |
//!
//! Rejections are logged at `INFO`, acceptances and anonymous requests at `DEBUG`. The event
//! never contains the token, a signature, a key, or a fingerprint value. The `reason` is more
//! precise than what the client reads (one text per code, unless
//! [`JwtAuthBuilder::expose_error_details`]): keep it for the operators.
//!
//! The same facts are handed to an optional hook ([`JwtAuthBuilder::on_audit`]) for users who
//! ship audit events elsewhere, and counted ([`JwtAuth::audit_counts`]; with the `metrics` feature,
//! also in the `jwt_guard.decisions` metric).
//!
//! The client address is the peer address the server put in the request's extensions: a
//! [`PeerAddr`](crate::PeerAddr), axum's `ConnectInfo<SocketAddr>`, tonic's `TcpConnectInfo`, or
//! a bare [`SocketAddr`] or [`IpAddr`]; proxies' headers are not read here.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use tower::{ServiceBuilder, ServiceExt};
//! use tower_jwt_guard::audit::AuditOutcome;
//! use tower_jwt_guard::{ErrorKind, JwtAuth};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let sink = Arc::clone(&seen);
//! let auth = JwtAuth::builder()
//!     .hmac_secret([7u8; 32])
//!     .on_audit(move |event| sink.lock().unwrap().push((event.outcome, event.code)))
//!     .build()?;
//! let service = ServiceBuilder::new().layer(auth.layer::<serde_json::Value>()).service_fn(
//!     |_request: http::Request<String>| async {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//!     },
//! );
//! let request = http::Request::builder().uri("/me").body(String::new())?;
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! let response = runtime.block_on(service.oneshot(request))?;
//! assert_eq!(response.status(), 401);
//! assert_eq!(*seen.lock().unwrap(), [(AuditOutcome::Rejected, "MISSING_TOKEN")]);
//! assert_eq!(auth.audit_counts().rejected(ErrorKind::MissingToken), 1);
//! # Ok(())
//! # }
//! ```
//!
//! [`JwtAuthBuilder::on_audit`]: crate::JwtAuthBuilder::on_audit
//! [`JwtAuthBuilder::expose_error_details`]: crate::JwtAuthBuilder::expose_error_details
//! [`AuthError::detail`]: crate::AuthError::detail
//! [`JwtAuth::audit_counts`]: crate::JwtAuth::audit_counts

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::{Extensions, Method, Request};

use crate::guard::observe::metrics::DecisionMetrics;
use crate::primitives::claims::TokenFacts;
use crate::primitives::error::{AuthError, ErrorKind};

/// What the layer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditOutcome {
    /// The token verified; the request went to the inner service.
    Accepted,
    /// No token, and the layer is [optional](crate::JwtAuthBuilder::optional): let through anonymously.
    Anonymous,
    /// The request was refused.
    Rejected,
}

impl AuditOutcome {
    /// `accepted`, `anonymous` or `rejected`.
    ///
    /// ```
    /// assert_eq!(tower_jwt_guard::audit::AuditOutcome::Rejected.as_str(), "rejected");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Accepted => "accepted",
            AuditOutcome::Anonymous => "anonymous",
            AuditOutcome::Rejected => "rejected",
        }
    }
}

/// One decision of the layer, as handed to the [audit hook](crate::JwtAuthBuilder::on_audit).
///
/// It borrows from the request; copy what you keep. It never holds the token, a key or a
/// fingerprint value.
///
/// ```
/// use tower_jwt_guard::audit::{AuditEvent, AuditOutcome};
///
/// fn line(event: &AuditEvent<'_>) -> String {
///     format!("{} {} {} {}", event.outcome.as_str(), event.code, event.method, event.path)
/// }
/// # let _ = line;
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct AuditEvent<'a> {
    /// What was decided.
    pub outcome: AuditOutcome,
    /// The rejection's stable code, or `OK` / `ANONYMOUS`.
    pub code: &'static str,
    /// The rejection's kind (`None` when the request was let through).
    pub kind: Option<ErrorKind>,
    /// The rejection's precise reason, [`AuthError::detail`](crate::AuthError::detail) (`None`
    /// when the request was let through). More than the client reads: for operators.
    pub reason: Option<&'a str>,
    /// The token's `iss`, when the token verified: with several trusted issuers, the one whose
    /// keys verified it.
    pub issuer: Option<&'a str>,
    /// The token's `sub`, when the token verified (accepted, or refused after verification:
    /// expired, revoked, bound to another client, ...).
    pub subject: Option<&'a str>,
    /// The token's `jti`, when the token verified.
    pub jti: Option<&'a str>,
    /// The peer address, when the server put one in the request's extensions.
    pub client_ip: Option<IpAddr>,
    /// The request's method.
    pub method: &'a Method,
    /// The request's path (without the query string).
    pub path: &'a str,
    /// The request's `x-fapi-interaction-id`, when an
    /// [`InteractionIdLayer`](crate::InteractionIdLayer) runs before the guard.
    pub interaction_id: Option<&'a str>,
}

/// A user-supplied receiver of audit events.
pub(crate) type AuditHook = Arc<dyn Fn(&AuditEvent<'_>) + Send + Sync>;

/// How many decisions of each kind a configuration made, since it was built.
///
/// ```
/// use tower_jwt_guard::{ErrorKind, JwtAuth};
///
/// let auth = JwtAuth::builder().hmac_secret([7u8; 32]).build()?;
/// let counts = auth.audit_counts();
/// assert_eq!(counts.accepted, 0);
/// assert_eq!(counts.rejected(ErrorKind::InvalidToken), 0);
/// assert_eq!(counts.total_rejected(), 0);
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditCounts {
    /// Requests let through with a verified token.
    pub accepted: u64,
    /// Requests let through without a token (optional mode).
    pub anonymous: u64,
    rejected: [u64; ErrorKind::ALL.len()],
}

impl AuditCounts {
    /// Requests refused with `kind`.
    pub fn rejected(&self, kind: ErrorKind) -> u64 {
        self.rejected[index(kind)]
    }

    /// Requests refused, all kinds together.
    pub fn total_rejected(&self) -> u64 {
        self.rejected.iter().sum()
    }

    /// `(code, count)` for every rejection kind, zeros included, in [`ErrorKind::ALL`] order.
    ///
    /// ```
    /// let auth = tower_jwt_guard::JwtAuth::builder().hmac_secret([7u8; 32]).build()?;
    /// let by_code: Vec<_> = auth.audit_counts().rejected_by_code().collect();
    /// assert_eq!(by_code[0], ("MISSING_TOKEN", 0));
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn rejected_by_code(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        ErrorKind::ALL.iter().map(|kind| (kind.code(), self.rejected(*kind)))
    }
}

fn index(kind: ErrorKind) -> usize {
    ErrorKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

/// The audit state of one configuration: the hook and the counters.
#[derive(Default)]
pub(crate) struct Audit {
    hook: Option<AuditHook>,
    accepted: AtomicU64,
    anonymous: AtomicU64,
    rejected: [AtomicU64; ErrorKind::ALL.len()],
    metrics: DecisionMetrics,
}

impl fmt::Debug for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Audit")
            .field("hook", &self.hook.as_ref().map(|_| "custom"))
            .field("counts", &self.counts())
            .finish()
    }
}

/// What the audit hears about one decision: the accepted token's facts (`Ok(Some(..))`), an
/// anonymous request let through (`Ok(None)`), or the refusal. The request path turns its
/// decision into this; the audit knows nothing of the pipeline.
pub(crate) type Verdict<'a> = Result<Option<&'a TokenFacts>, &'a AuthError>;

/// The facts of a token that verified but was refused afterwards (time, binding, revocation),
/// carried in the refused request's extensions so the audit event can name the subject.
#[derive(Clone)]
pub(crate) struct RefusedTokenFacts(pub(crate) Arc<TokenFacts>);

/// Marks `request` with the facts of its verified token when `decision` refuses it.
pub(crate) fn note_refused<B, T>(
    request: &mut Request<B>,
    decision: &Result<T, AuthError>,
    facts: &Arc<TokenFacts>,
) {
    if decision.is_err() {
        request.extensions_mut().insert(RefusedTokenFacts(Arc::clone(facts)));
    }
}

/// The peer address from the extensions: where the client-IP binding finds it (`PeerAddr`,
/// axum's `ConnectInfo`, tonic's `TcpConnectInfo`), else a `SocketAddr` or an `IpAddr` put there
/// by the server. IPv4-mapped IPv6 addresses are shown as IPv4.
fn peer_ip(extensions: &Extensions) -> Option<IpAddr> {
    crate::guard::binding::peer_addr(extensions)
        .map(|addr| addr.ip())
        .or_else(|| extensions.get::<SocketAddr>().map(SocketAddr::ip))
        .or_else(|| extensions.get::<IpAddr>().copied())
        .map(|ip| ip.to_canonical())
}

impl Audit {
    pub(crate) fn new(hook: Option<AuditHook>) -> Self {
        Audit { hook, ..Audit::default() }
    }

    /// Counts the decisions in the metrics too (feature `metrics`).
    pub(crate) fn with_metrics(self, metrics: DecisionMetrics) -> Self {
        Audit { metrics, ..self }
    }

    pub(crate) fn counts(&self) -> AuditCounts {
        let mut rejected = [0; ErrorKind::ALL.len()];
        for (count, counter) in rejected.iter_mut().zip(&self.rejected) {
            *count = counter.load(Ordering::Relaxed);
        }
        AuditCounts {
            accepted: self.accepted.load(Ordering::Relaxed),
            anonymous: self.anonymous.load(Ordering::Relaxed),
            rejected,
        }
    }

    /// Counts, logs and hands to the hook the decision about `request`.
    pub(crate) fn record<B>(&self, request: &Request<B>, verdict: Verdict<'_>) {
        let (outcome, error, facts) = match verdict {
            Ok(Some(facts)) => (AuditOutcome::Accepted, None, Some(facts)),
            Ok(None) => (AuditOutcome::Anonymous, None, None),
            Err(error) => (
                AuditOutcome::Rejected,
                Some(error),
                request.extensions().get::<RefusedTokenFacts>().map(|refused| &*refused.0),
            ),
        };
        let (counter, series) = match (outcome, error) {
            (_, Some(error)) => {
                let index = index(error.kind());
                (&self.rejected[index], 2 + index)
            }
            (AuditOutcome::Anonymous, None) => (&self.anonymous, 1),
            _ => (&self.accepted, 0),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.metrics.record(series, facts);
        let mut event = AuditEvent {
            outcome,
            code: match (outcome, error) {
                (_, Some(error)) => error.code(),
                (AuditOutcome::Anonymous, None) => "ANONYMOUS",
                _ => "OK",
            },
            kind: error.map(|error| error.kind()),
            reason: error.map(|error| error.detail()),
            issuer: facts.and_then(|facts| facts.issuer.as_deref()),
            subject: facts.and_then(|facts| facts.subject.as_deref()),
            jti: facts.and_then(|facts| facts.jti.as_deref()),
            // Looked up only for a reader: the hook here, a subscriber inside `emit`.
            client_ip: None,
            method: request.method(),
            path: request.uri().path(),
            interaction_id: request
                .extensions()
                .get::<super::interaction_id::InteractionId>()
                .map(super::interaction_id::InteractionId::as_str),
        };
        if let Some(hook) = &self.hook {
            event.client_ip = peer_ip(request.extensions());
            hook(&event);
        }
        emit(&event, request.extensions());
    }
}

/// The `tracing` event. Strings from the request and the token are logged with `Debug`
/// (quoted, control characters escaped) so they cannot forge log lines.
///
/// `tracing` evaluates the fields only when a subscriber (or the `log` bridge) takes the event,
/// so the client address is looked up only then.
fn emit(event: &AuditEvent<'_>, extensions: &Extensions) {
    macro_rules! audit_event {
        ($level:expr, $message:literal) => {
            tracing::event!(
                target: "tower_jwt_guard::audit",
                $level,
                outcome = event.outcome.as_str(),
                code = event.code,
                reason = event.reason,
                issuer = event.issuer.map(tracing::field::debug),
                subject = event.subject.map(tracing::field::debug),
                jti = event.jti.map(tracing::field::debug),
                client_ip = event.client_ip.or_else(|| peer_ip(extensions)).map(tracing::field::display),
                method = %event.method,
                path = ?event.path,
                interaction_id = event.interaction_id,
                $message
            )
        };
    }
    match event.outcome {
        AuditOutcome::Rejected => audit_event!(tracing::Level::INFO, "request rejected"),
        AuditOutcome::Accepted => audit_event!(tracing::Level::DEBUG, "request accepted"),
        AuditOutcome::Anonymous => audit_event!(tracing::Level::DEBUG, "anonymous request let through"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_kind() {
        let audit = Audit::new(None);
        let request = Request::builder().uri("/x?access_token=secret").body(()).unwrap();
        let expired = AuthError::new(ErrorKind::TokenExpired);
        audit.record(&request, Err(&expired));
        audit.record(&request, Err(&expired));
        audit.record(&request, Ok(None));
        let counts = audit.counts();
        assert_eq!(counts.rejected(ErrorKind::TokenExpired), 2);
        assert_eq!(counts.rejected(ErrorKind::MissingToken), 0);
        assert_eq!((counts.anonymous, counts.accepted, counts.total_rejected()), (1, 0, 2));
    }

    #[test]
    fn refused_facts_name_the_subject() {
        let seen = Arc::new(std::sync::Mutex::new(None));
        let sink = Arc::clone(&seen);
        let audit = Audit::new(Some(Arc::new(move |event: &AuditEvent<'_>| {
            *sink.lock().unwrap() =
                Some((event.subject.map(str::to_owned), event.client_ip, event.path.to_owned()));
        })));
        let facts = Arc::new(TokenFacts { subject: Some("alice".into()), ..TokenFacts::default() });
        let decision: Result<(), AuthError> = Err(AuthError::new(ErrorKind::TokenRevoked));
        let mut request = Request::builder().uri("/orders?access_token=secret").body(()).unwrap();
        request.extensions_mut().insert(SocketAddr::from(([127, 0, 0, 9], 4000)));
        note_refused(&mut request, &decision, &facts);
        audit.record(&request, decision.as_ref().map(|()| None));
        let seen = seen.lock().unwrap().clone().unwrap();
        assert_eq!(seen, (Some("alice".into()), Some(IpAddr::from([127, 0, 0, 9])), "/orders".into()));
    }
}
