//! How an [`AuthError`] becomes a response.
//!
//! - HTTP: the status, an RFC 6750 / RFC 9470 `WWW-Authenticate` challenge and a JSON body
//!   `{"error": "...", "code": "..."}`.
//! - gRPC (request `content-type: application/grpc*`): a trailers-only answer, HTTP 200 with
//!   `grpc-status` and a percent-encoded `grpc-message`, because gRPC clients turn a bare
//!   HTTP 401 into `INTERNAL`.
//!
//! The text (JSON `error`, `error_description`, `grpc-message`) is the code's one client-safe
//! text ([`AuthError::message`]): the precise reason ([`AuthError::detail`]) goes to the audit
//! event, and to clients only with
//! [`JwtAuthBuilder::expose_error_details`](crate::JwtAuthBuilder::expose_error_details).
//!
//! Users replace the default with [`JwtAuthBuilder::on_rejection`](crate::JwtAuthBuilder::on_rejection).

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderValue, Response, StatusCode, Version};

use crate::guard::binding::DpopChallenge;
use crate::primitives::error::{AuthError, ErrorKind};

/// The wire protocol a rejection must be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// Plain HTTP: status, `WWW-Authenticate`, JSON body.
    Http,
    /// gRPC: trailers-only response with `grpc-status`.
    Grpc,
}

impl Protocol {
    /// Detects gRPC: an HTTP/2 request whose `content-type` is `application/grpc`,
    /// optionally followed by `+format` or parameters.
    ///
    /// Everything else, HTTP/1.1 with a gRPC content type included, gets a plain HTTP answer:
    /// a gRPC rejection is an HTTP 200, and a proxy that asks this service "is this request
    /// allowed?" over HTTP/1.1 must never read a refusal as a 2xx. gRPC-Web is HTTP here too.
    ///
    /// ```
    /// use http::{HeaderMap, Version};
    /// use tower_jwt_guard::Protocol;
    ///
    /// let mut headers = HeaderMap::new();
    /// assert_eq!(Protocol::of(Version::HTTP_2, &headers), Protocol::Http);
    /// headers.insert("content-type", "application/grpc+proto".parse().unwrap());
    /// assert_eq!(Protocol::of(Version::HTTP_2, &headers), Protocol::Grpc);
    /// assert_eq!(Protocol::of(Version::HTTP_11, &headers), Protocol::Http);
    /// headers.insert("content-type", "application/grpc-web".parse().unwrap());
    /// assert_eq!(Protocol::of(Version::HTTP_2, &headers), Protocol::Http);
    /// ```
    pub fn of(version: Version, headers: &HeaderMap) -> Protocol {
        if version != Version::HTTP_2 {
            return Protocol::Http;
        }
        let Some(content_type) = headers.get(CONTENT_TYPE) else { return Protocol::Http };
        match content_type.as_bytes().strip_prefix(b"application/grpc") {
            Some([] | [b'+' | b';', ..]) => Protocol::Grpc,
            _ => Protocol::Http,
        }
    }

    /// The protocol of `request` (see [`Protocol::of`]).
    pub fn of_request<B>(request: &http::Request<B>) -> Protocol {
        Protocol::of(request.version(), request.headers())
    }
}

/// A user-supplied replacement for the default rejection response.
pub(crate) type RejectionHook = Arc<dyn Fn(&AuthError, Protocol) -> Response<Bytes> + Send + Sync>;

/// Renders rejections: the realm of the challenge, whether clients read the precise reason,
/// and an optional user hook.
#[derive(Clone)]
pub(crate) struct Responder {
    realm: HeaderValue,
    expose_details: bool,
    hook: Option<RejectionHook>,
    /// RFC 9728 §5.1: the URL of the protected-resource metadata, named in every challenge.
    resource_metadata: Option<Arc<HeaderValue>>,
    /// RFC 9449: the `DPoP` challenge, when DPoP is configured.
    dpop: Option<Arc<DpopChallenge>>,
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Responder")
            .field("realm", &self.realm)
            .field("expose_details", &self.expose_details)
            .field("hook", &self.hook.as_ref().map(|_| "custom"))
            .field("resource_metadata", &self.resource_metadata)
            .field("dpop", &self.dpop)
            .finish()
    }
}

impl Default for Responder {
    fn default() -> Self {
        Responder {
            realm: HeaderValue::from_static("api"),
            expose_details: false,
            hook: None,
            resource_metadata: None,
            dpop: None,
        }
    }
}

impl Responder {
    pub(crate) fn new(realm: HeaderValue, expose_details: bool, hook: Option<RejectionHook>) -> Self {
        Responder { realm, expose_details, hook, resource_metadata: None, dpop: None }
    }

    /// Challenges follow RFC 9449 §7.1: a `DPoP` challenge, beside `Bearer` when both are allowed.
    pub(crate) fn with_dpop(mut self, dpop: Option<DpopChallenge>) -> Self {
        self.dpop = dpop.map(Arc::new);
        self
    }

    /// Challenges name `url` in `resource_metadata` (RFC 9728 §5.1).
    pub(crate) fn with_resource_metadata(mut self, url: Option<HeaderValue>) -> Self {
        self.resource_metadata = url.map(Arc::new);
        self
    }

    /// The response for `error`, in `protocol`.
    pub(crate) fn respond(&self, error: &AuthError, protocol: Protocol) -> Response<Bytes> {
        match &self.hook {
            Some(hook) => hook(error, protocol),
            None => {
                let text = if self.expose_details { error.detail() } else { error.message() };
                let mut response = render_text(
                    error,
                    protocol,
                    self.realm.as_bytes(),
                    text,
                    self.resource_metadata.as_deref(),
                );
                if let Some(dpop) = &self.dpop {
                    dpop_challenges(&mut response, error, protocol, self.realm.as_bytes(), text, self, dpop);
                }
                response
            }
        }
    }
}

/// The default rendering of `error` (what the layer answers without a hook): the code's one
/// text ([`AuthError::message`]), never the precise reason.
///
/// ```
/// use tower_jwt_guard::{rejection, AuthError, ErrorKind, Protocol};
///
/// let response = rejection::render(&AuthError::new(ErrorKind::TokenExpired), Protocol::Http, b"api");
/// assert_eq!(response.status(), 401);
/// assert_eq!(
///     response.headers()["www-authenticate"],
///     r#"Bearer realm="api", error="invalid_token", error_description="the token has expired""#
/// );
///
/// let grpc = rejection::render(&AuthError::new(ErrorKind::TokenExpired), Protocol::Grpc, b"api");
/// assert_eq!(grpc.status(), 200);
/// assert_eq!(grpc.headers()["grpc-status"], "16");
/// ```
pub fn render(error: &AuthError, protocol: Protocol, realm: &[u8]) -> Response<Bytes> {
    render_text(error, protocol, realm, error.message(), None)
}

/// `error` rendered with `text` as its description (the message, or the detail when exposed),
/// naming the protected-resource metadata in the challenge when there is one.
fn render_text(
    error: &AuthError,
    protocol: Protocol,
    realm: &[u8],
    text: &str,
    resource_metadata: Option<&HeaderValue>,
) -> Response<Bytes> {
    match protocol {
        Protocol::Http => render_http(error, realm, text, resource_metadata),
        Protocol::Grpc => render_grpc(error, text),
    }
}

fn render_http(
    error: &AuthError,
    realm: &[u8],
    text: &str,
    resource_metadata: Option<&HeaderValue>,
) -> Response<Bytes> {
    let mut response = Response::new(error.json_body_with(text));
    *response.status_mut() = error.status();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if error.kind().has_challenge() {
        if let Ok(challenge) = HeaderValue::from_bytes(&challenge(error, realm, text, resource_metadata)) {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
    }
    if error.status() == StatusCode::SERVICE_UNAVAILABLE {
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    if let Some(accept) = error.accept_signature().and_then(|value| HeaderValue::from_str(value).ok()) {
        headers.insert("accept-signature", accept);
    }
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `Bearer realm="..", error="..", error_description="..", ...` (RFC 6750 §3, RFC 9470 §3,
/// RFC 9728 §5.1).
fn challenge(
    error: &AuthError,
    realm: &[u8],
    text: &str,
    resource_metadata: Option<&HeaderValue>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"Bearer realm=\"");
    push_quoted(&mut out, realm);
    out.push(b'"');
    if let Some(code) = error.kind().challenge_error() {
        out.extend_from_slice(b", error=\"");
        out.extend_from_slice(code.as_bytes());
        out.extend_from_slice(b"\", error_description=\"");
        push_quoted(&mut out, text.as_bytes());
        out.push(b'"');
    }
    if let Some(acr) = error.acr_values() {
        out.extend_from_slice(b", acr_values=\"");
        push_quoted(&mut out, acr.as_bytes());
        out.push(b'"');
    }
    if let Some(max_age) = error.max_age() {
        out.extend_from_slice(format!(", max_age=\"{max_age}\"").as_bytes());
    }
    if let Some(scope) = error.scope() {
        out.extend_from_slice(b", scope=\"");
        push_quoted(&mut out, scope.as_bytes());
        out.push(b'"');
    }
    if let Some(url) = resource_metadata {
        out.extend_from_slice(b", resource_metadata=\"");
        push_quoted(&mut out, url.as_bytes());
        out.push(b'"');
    }
    out
}

/// RFC 9449 §7.1: the `DPoP` challenge (with `algs`), after a `Bearer` one when bearer tokens
/// are allowed; the error goes to the scheme the refusal concerns. And §8: the `DPoP-Nonce`.
fn dpop_challenges(
    response: &mut Response<Bytes>,
    error: &AuthError,
    protocol: Protocol,
    realm: &[u8],
    text: &str,
    responder: &Responder,
    dpop: &DpopChallenge,
) {
    if let Some(nonce) = error.dpop_nonce().and_then(|nonce| HeaderValue::from_str(nonce).ok()) {
        response.headers_mut().insert("dpop-nonce", nonce);
    }
    if protocol != Protocol::Http || !error.kind().has_challenge() {
        return;
    }
    let on_dpop = error.is_dpop() || !dpop.bearer;
    let headers = response.headers_mut();
    headers.remove(WWW_AUTHENTICATE);
    let metadata = responder.resource_metadata.as_deref();
    if dpop.bearer {
        let bearer = if on_dpop { AuthError::new(ErrorKind::MissingToken) } else { error.clone() };
        let bearer = if on_dpop {
            challenge(&bearer, realm, "", metadata)
        } else {
            challenge(&bearer, realm, text, metadata)
        };
        if let Ok(value) = HeaderValue::from_bytes(&bearer) {
            headers.append(WWW_AUTHENTICATE, value);
        }
    }
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"DPoP algs=\"");
    push_quoted(&mut out, dpop.algs.as_bytes());
    out.push(b'"');
    if on_dpop || error.kind().challenge_error().is_none() {
        // `Bearer realm=".."…` minus its scheme: the same attributes for the DPoP scheme.
        let rest = challenge(error, realm, text, metadata);
        out.extend_from_slice(b", ");
        out.extend_from_slice(&rest[b"Bearer ".len()..]);
    }
    if let Ok(value) = HeaderValue::from_bytes(&out) {
        headers.append(WWW_AUTHENTICATE, value);
    }
}

/// RFC 6750 restricts attribute values to `%x20-21 / %x23-5B / %x5D-7E`: drop anything else.
fn push_quoted(out: &mut Vec<u8>, value: &[u8]) {
    out.extend(value.iter().copied().filter(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)));
}

fn render_grpc(error: &AuthError, text: &str) -> Response<Bytes> {
    let mut response = Response::new(Bytes::new());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", HeaderValue::from(u16::from(error.kind().grpc_code())));
    let message = format!("{}: {text}", error.code());
    if let Ok(value) = HeaderValue::from_str(&percent_encode(&message)) {
        headers.insert("grpc-message", value);
    }
    response
}

/// gRPC's percent-encoding of `grpc-message`: bytes outside `%x20-%x7E`, and `%`, are escaped.
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for byte in message.bytes() {
        if (0x20..=0x7E).contains(&byte) && byte != b'%' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::error::ErrorKind;

    #[test]
    fn missing_token_challenge_has_no_error_attribute() {
        let response = render(&AuthError::new(ErrorKind::MissingToken), Protocol::Http, b"api");
        assert_eq!(response.headers()[WWW_AUTHENTICATE], r#"Bearer realm="api""#);
    }

    #[test]
    fn step_up_challenge_carries_acr_values_and_max_age() {
        let err = AuthError::mfa_required(Some("mfa".into()), Some(60));
        let response = render(&err, Protocol::Http, b"api");
        let challenge = response.headers()[WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.contains(r#"error="insufficient_user_authentication""#), "{challenge}");
        assert!(challenge.contains(r#"acr_values="mfa""#), "{challenge}");
        assert!(challenge.contains("max_age=\"60\""), "{challenge}");
    }

    fn exposing() -> Responder {
        Responder::new(HeaderValue::from_static("a\"pi"), true, None)
    }

    #[test]
    fn quotes_and_controls_never_reach_the_challenge() {
        let err = AuthError::with_detail(ErrorKind::InvalidToken, "bad \"quote\"\r\n");
        let response = render_text(&err, Protocol::Http, b"a\"pi", err.detail(), None);
        let challenge = response.headers()[WWW_AUTHENTICATE].to_str().unwrap();
        assert_eq!(challenge, r#"Bearer realm="api", error="invalid_token", error_description="bad quote""#);
    }

    #[test]
    fn every_challenge_names_the_resource_metadata_when_configured() {
        let url =
            HeaderValue::from_static("https://api.example.com/.well-known/oauth-protected-resource/mcp");
        let responder = Responder::default().with_resource_metadata(Some(url));
        let attribute =
            r#"resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/mcp""#;
        for error in ErrorKind::ALL.into_iter().filter(|kind| kind.has_challenge()).map(AuthError::new) {
            let response = responder.respond(&error, Protocol::Http);
            let challenge = response.headers()[WWW_AUTHENTICATE].to_str().unwrap();
            assert!(challenge.ends_with(attribute), "{challenge}");
        }
        let scope = responder.respond(&AuthError::insufficient_scope("mcp:tools"), Protocol::Http);
        assert_eq!(
            scope.headers()[WWW_AUTHENTICATE],
            format!(
                "Bearer realm=\"api\", error=\"insufficient_scope\", error_description=\"{}\", scope=\"mcp:tools\", {attribute}",
                ErrorKind::InsufficientScope.default_message()
            )
            .as_str()
        );
        // Not configured: no attribute.
        let plain = Responder::default().respond(&AuthError::new(ErrorKind::MissingToken), Protocol::Http);
        assert_eq!(plain.headers()[WWW_AUTHENTICATE], r#"Bearer realm="api""#);
    }

    #[test]
    fn grpc_message_is_percent_encoded() {
        let err = AuthError::with_detail(ErrorKind::InvalidToken, "100% é");
        let response = exposing().respond(&err, Protocol::Grpc);
        assert_eq!(response.headers()["grpc-message"], "INVALID_TOKEN: 100%25 %C3%A9");
        assert_eq!(response.headers()["grpc-status"], "16");
    }

    #[test]
    fn the_detail_reaches_clients_only_when_exposed() {
        let err = AuthError::with_detail(ErrorKind::InvalidToken, "the token signature is invalid");
        for (responder, text) in
            [(Responder::default(), "the token is not valid"), (exposing(), "the token signature is invalid")]
        {
            let http = responder.respond(&err, Protocol::Http);
            let body: serde_json::Value = serde_json::from_slice(http.body()).unwrap();
            assert_eq!(body["error"], text);
            let challenge = http.headers()[WWW_AUTHENTICATE].to_str().unwrap();
            assert!(challenge.ends_with(&format!("error_description=\"{text}\"")), "{challenge}");
            let grpc = responder.respond(&err, Protocol::Grpc);
            assert_eq!(grpc.headers()["grpc-message"], format!("INVALID_TOKEN: {text}").as_str());
        }
    }

    #[test]
    fn unavailable_has_no_challenge_and_a_retry_after() {
        let response = render(&AuthError::new(ErrorKind::AuthUnavailable), Protocol::Http, b"api");
        assert_eq!(response.status(), 503);
        assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
        assert!(response.headers().get(http::header::RETRY_AFTER).is_some());
    }
}
