//! The HTTP side of introspection (RFC 7662 §2.1): one form-encoded `POST` with the token, the
//! hint `access_token` and the client's authentication; a timeout, a response-size cap, and no
//! redirects (the token and the secret never go anywhere but the configured endpoint).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Url;

use super::assertion::{self, ClientAssertionKey};
use super::discovery::Endpoint;
use super::response::{self, Answer};
use super::settings::Settings;
use crate::guard::keys::capped_body::{read_capped, CappedBodyError};

/// How this service authenticates to the introspection endpoint.
#[derive(Clone)]
pub(super) enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the form-encoded id and secret.
    Basic { client_id: String, secret: String },
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    Post { client_id: String, secret: String },
    /// `private_key_jwt`: a client assertion signed by `key`, new for each call.
    PrivateKeyJwt { client_id: String, key: Arc<dyn ClientAssertionKey> },
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (method, client_id) = match self {
            ClientAuth::Basic { client_id, .. } => ("client_secret_basic", client_id),
            ClientAuth::Post { client_id, .. } => ("client_secret_post", client_id),
            ClientAuth::PrivateKeyJwt { client_id, .. } => ("private_key_jwt", client_id),
        };
        f.debug_struct(method).field("client_id", client_id).field("secret", &"REDACTED").finish()
    }
}

/// Why a call gave no answer. Never holds the token; logged, then the request gets 503.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallError {
    /// Connection refused, timeout, TLS, ...
    Request(String),
    /// A status other than 200.
    Status(u16),
    /// The answer exceeds the size cap.
    TooLarge,
    /// Not an RFC 7662 answer: not a JSON object, `active` missing or not a boolean, ...
    Malformed(&'static str),
    /// Too many calls at once, or no runtime to make one.
    Busy(&'static str),
    /// The authorization server's metadata does not name a usable endpoint.
    Discovery(&'static str),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Request(why) => write!(f, "the introspection endpoint could not be reached: {why}"),
            CallError::Status(status) => write!(f, "the introspection endpoint answered HTTP {status}"),
            CallError::TooLarge => f.write_str("the introspection answer exceeds the size cap"),
            CallError::Malformed(why) => write!(f, "the introspection answer is malformed: {why}"),
            CallError::Busy(why) => f.write_str(why),
            CallError::Discovery(why) => write!(f, "introspection endpoint discovery failed: {why}"),
        }
    }
}

/// The HTTP client of an introspector.
pub(super) struct Client {
    http: reqwest::Client,
    endpoint: Endpoint,
    auth: ClientAuth,
    /// The `Authorization` value of `client_secret_basic`, made once.
    basic: Option<http::HeaderValue>,
    max_response_size: usize,
    timeout: Duration,
    /// RFC 9701: answers must be signed.
    signed: Option<super::signed::SignedResponses>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("auth", &self.auth)
            .field("timeout", &self.timeout)
            .field("max_response_size", &self.max_response_size)
            .finish()
    }
}

impl Client {
    pub(super) fn new(
        endpoint: Endpoint,
        auth: ClientAuth,
        settings: &Settings,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            // An endpoint reached over TLS is never left for plain HTTP.
            .https_only(endpoint.is_https())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tower-jwt-guard/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let basic = match &auth {
            ClientAuth::Basic { client_id, secret } => {
                let pair = format!("{}:{}", form_encode(client_id), form_encode(secret));
                let mut value = http::HeaderValue::try_from(format!("Basic {}", STANDARD.encode(pair)))
                    .expect("base64 is a valid header value");
                value.set_sensitive(true);
                Some(value)
            }
            ClientAuth::Post { .. } | ClientAuth::PrivateKeyJwt { .. } => None,
        };
        Ok(Client {
            http,
            endpoint,
            auth,
            basic,
            max_response_size: settings.max_response_size,
            timeout: settings.timeout,
            signed: settings.signed.clone(),
        })
    }

    /// Asks the endpoint about `token`. The whole call, body included, is bounded by the timeout.
    pub(super) async fn introspect(&self, token: &str) -> Result<Answer, CallError> {
        match tokio::time::timeout(self.timeout, self.call(token)).await {
            Ok(answer) => answer,
            Err(_) => Err(CallError::Request("timed out".into())),
        }
    }

    /// The issuer the endpoint is discovered from, if it is.
    pub(super) fn issuer(&self) -> Option<&str> {
        self.endpoint.issuer()
    }

    async fn call(&self, token: &str) -> Result<Answer, CallError> {
        let endpoint = self.endpoint.url(&self.http, self.max_response_size).await?;
        let mut body = String::with_capacity(token.len() + 64);
        body.push_str("token=");
        body.push_str(&form_encode(token));
        body.push_str("&token_type_hint=access_token");
        let mut request = self
            .http
            .post(endpoint.clone())
            .header(
                ACCEPT,
                if self.signed.is_some() { super::signed::MEDIA_TYPE } else { "application/json" },
            )
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        match (&self.auth, &self.basic) {
            (ClientAuth::Basic { .. }, Some(basic)) => request = request.header(AUTHORIZATION, basic.clone()),
            (ClientAuth::Post { client_id, secret }, _) => {
                body.push_str("&client_id=");
                body.push_str(&form_encode(client_id));
                body.push_str("&client_secret=");
                body.push_str(&form_encode(secret));
            }
            (ClientAuth::PrivateKeyJwt { client_id, key }, _) => {
                let audience = self.endpoint.issuer().unwrap_or(endpoint.as_str());
                let signed = key
                    .sign_assertion(&assertion::claims(client_id, audience))
                    .ok_or(CallError::Busy("the client assertion could not be signed"))?;
                body.push_str("&client_id=");
                body.push_str(&form_encode(client_id));
                body.push_str(
                    "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer",
                );
                body.push_str("&client_assertion=");
                body.push_str(&form_encode(&signed));
            }
            (ClientAuth::Basic { .. }, None) => unreachable!("made in Client::new"),
        }
        let (answer, content_type) = read_typed(request.body(body), self.max_response_size).await?;
        match &self.signed {
            Some(signed) => {
                let client_id = match &self.auth {
                    ClientAuth::Basic { client_id, .. }
                    | ClientAuth::Post { client_id, .. }
                    | ClientAuth::PrivateKeyJwt { client_id, .. } => client_id,
                };
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |elapsed| elapsed.as_secs());
                let opened = signed.open(content_type.as_deref(), &answer, client_id, now).await;
                response::parse(opened.map_err(CallError::Malformed)?)
            }
            None => response::parse(answer),
        }
    }
}

/// GETs a JSON document (the authorization server's metadata), within the size cap.
pub(super) async fn get_json(http: &reqwest::Client, url: &Url, limit: usize) -> Result<Vec<u8>, CallError> {
    read(http.get(url.clone()).header(ACCEPT, "application/json"), limit).await
}

/// Sends `request` and reads a 200 answer's body, at most `limit` bytes.
async fn read(request: reqwest::RequestBuilder, limit: usize) -> Result<Vec<u8>, CallError> {
    read_typed(request, limit).await.map(|(body, _)| body)
}

/// [`read`], with the answer's `Content-Type`.
async fn read_typed(
    request: reqwest::RequestBuilder,
    limit: usize,
) -> Result<(Vec<u8>, Option<String>), CallError> {
    let request_error = |err: reqwest::Error| CallError::Request(err.without_url().to_string());
    let response = request.send().await.map_err(request_error)?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        return Err(CallError::Status(status.as_u16()));
    }
    let content_type =
        response.headers().get(CONTENT_TYPE).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let body = read_capped(response, limit).await.map_err(|err| match err {
        CappedBodyError::TooLarge => CallError::TooLarge,
        CappedBodyError::Request(err) => request_error(err),
    })?;
    Ok((body, content_type))
}

/// `application/x-www-form-urlencoded` (WHATWG URL §5.2): unreserved bytes as they are, space as
/// `+`, every other byte percent-encoded.
pub(super) fn form_encode(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for &byte in value.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => encoded.push(byte as char),
            b' ' => encoded.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                encoded.push('%');
                encoded.push(HEX[usize::from(byte >> 4)] as char);
                encoded.push(HEX[usize::from(byte & 15)] as char);
            }
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding() {
        assert_eq!(form_encode("abc-XYZ_0.9*"), "abc-XYZ_0.9*");
        assert_eq!(form_encode("a b+c/d=e&f"), "a+b%2Bc%2Fd%3De%26f");
        assert_eq!(form_encode("é:%"), "%C3%A9%3A%25");
    }

    #[test]
    fn debug_hides_the_secret() {
        let auth = ClientAuth::Post { client_id: "api".into(), secret: "hunter2-secret".into() };
        let shown = format!("{auth:?}");
        assert!(shown.contains("client_secret_post") && shown.contains("api"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
