//! Claim propagation: [`ClaimHeaders`] and [`ClaimHeadersLayer`].

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Extensions, HeaderMap, HeaderName, HeaderValue, Request};
use serde::Serialize;
use serde_json::Value;
use tower_layer::Layer;
use tower_service::Service;

use crate::guard::context::AuthContext;
use crate::primitives::claims::Claims;
use crate::primitives::error::ConfigError;

/// Reads the typed claims `Claims<C>` of a request as JSON.
type ClaimsAsJson = fn(&Extensions) -> Option<Value>;

fn claims_as_json<C: Serialize + Send + Sync + 'static>(extensions: &Extensions) -> Option<Value> {
    extensions.get::<Claims<C>>().and_then(|claims| serde_json::to_value(&**claims).ok())
}

/// Claim propagation: after the token is verified, headers built from its claims replace
/// whatever the client sent under those names (like Envoy's `claim_to_headers`).
///
/// A gateway verifies the user's token once and tells the services behind it who the user is
/// in plain headers (`x-user-id`, `x-user-role`). Those headers are only worth anything when a
/// client can never set them itself: [`ClaimHeadersLayer`] first removes every configured
/// header (by name, and by prefix such as `x-user-`) from each request, then inserts the values
/// of the verified claims. It sits *inside* [`JwtLayer`](crate::JwtLayer); a request without a
/// verified token (optional mode) leaves with the headers removed and none inserted.
///
/// **Names are compared as a CGI backend reads them.** PHP, Rack, WSGI and every CGI-style
/// server read `x-user-role` and `x_user_role` alike (as `HTTP_X_USER_ROLE`), so the layer
/// reads an incoming name with each `_` as `-`, case-insensitively: `x_user_role`,
/// `X-User_Role` and `x-user-role` are all removed by `strip_prefix("x-user-")` (or by the
/// mapping to `x-user-role`).
///
/// **Values are unambiguous.** A header value is visible ASCII; a claim's text is written with
/// RFC 3986 percent-encoding (`%` and two uppercase hex digits per UTF-8 byte) of every byte
/// that would be lost or misread:
/// - `%` itself, and every byte that is not visible ASCII (`0x21`–`0x7E`): non-ASCII text
///   (`José` → `Jos%C3%A9`), control characters;
/// - a space at either end of the text (HTTP trims it), while a space inside stays;
/// - `,` (the separator of HTTP lists, and of the items of an array claim): an array is the
///   encoded items joined with `,`, so `["a,b", "c"]` is `a%2Cb,c`, never the same header as
///   `["a", "b", "c"]` (`a,b,c`) or the string `"a,b"` (`a%2Cb`).
///
/// The header of a claim is thus split on `,` (for an array) and each part percent-decoded; a
/// value of visible ASCII without `%` or `,` (the usual `sub`, role, e-mail) is sent as it is.
/// `scope` is joined with spaces (RFC 6749), so there a space inside a scope is encoded and `,`
/// is not.
///
/// ```
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
/// use tower_jwt_guard::{issue::SigningKey, Algorithm, ClaimHeaders, JwtAuth, TokenIssuer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let auth = JwtAuth::builder().hmac_secret([7u8; 32]).build()?;
/// let service = ServiceBuilder::new()
///     .layer(auth.layer::<serde_json::Value>())
///     .layer(ClaimHeaders::new().claim("sub", "x-user-id").claim("role", "x-user-role").strip_prefix("x-user-").build::<serde_json::Value>()?)
///     .service(service_fn(|request: http::Request<String>| async move {
///         let seen = format!("{:?} {:?} {:?}", request.headers().get("x-user-id"), request.headers().get("x-user-role"), request.headers().get("x-user-admin"));
///         Ok::<_, std::convert::Infallible>(http::Response::new(seen))
///     }));
///
/// let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [7u8; 32])?).build();
/// let token = issuer.mint("alice", &serde_json::json!({ "role": "customer" }))?.token;
/// let request = http::Request::get("/orders")
///     .header("authorization", format!("Bearer {token}"))
///     .header("x-user-id", "admin")       // spoofed by the client
///     .header("x-user-admin", "true")     // spoofed too: same prefix
///     .body(String::new())?;
/// let response = service.oneshot(request).await?;
/// let seen = http_body_util::BodyExt::collect(response.into_body()).await?.to_bytes();
/// assert_eq!(seen, r#"Some("alice") Some("customer") None"#);
/// # Ok(()) }
/// ```
///
/// Builds a [`ClaimHeadersLayer`]: which claim goes into which header, and which incoming
/// headers are removed.
///
/// ```
/// use tower_jwt_guard::ClaimHeaders;
///
/// let layer = ClaimHeaders::new()
///     .claim("sub", "x-user-id")
///     .claim("https://example.com/roles", "x-user-roles") // a namespaced claim, by its full name
///     .claim("realm_access.roles", "x-user-realm-roles")  // a nested claim, by its path
///     .strip("x-forwarded-user")
///     .strip_prefix("x-user-")
///     .build::<serde_json::Value>()?;
/// # let _ = layer;
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[derive(Debug, Default, Clone)]
#[must_use]
pub struct ClaimHeaders {
    mappings: Vec<(String, String)>,
    strip: Vec<String>,
    prefixes: Vec<String>,
}

impl ClaimHeaders {
    /// No mapping yet.
    pub fn new() -> Self {
        ClaimHeaders::default()
    }

    /// The value of claim `claim` goes into header `header` (which is always removed from the
    /// incoming request first, under any spelling with `_` for `-`). `claim` is a top-level
    /// claim name, or else a dotted path into nested objects. Strings are sent percent-encoded
    /// as the [type's documentation](ClaimHeaders) says (visible ASCII without `%` and `,` as
    /// it is), numbers and booleans as JSON, arrays of those joined with `,`; a claim that is
    /// absent, `null` or an object (or an array holding one) yields no header.
    ///
    /// Registered claims (`sub`, `iss`, `jti`, `aud`, `scope`, `acr`, `amr`) are read from the
    /// verified token whatever the claims type; others from the claims type `C` of
    /// [`build`](Self::build), serialised.
    pub fn claim(mut self, claim: impl Into<String>, header: impl Into<String>) -> Self {
        self.mappings.push((claim.into(), header.into()));
        self
    }

    /// Also remove the incoming header `header` (without putting anything in its place), under
    /// any spelling with `_` for `-` (`x_forwarded_user` for `x-forwarded-user`).
    pub fn strip(mut self, header: impl Into<String>) -> Self {
        self.strip.push(header.into());
        self
    }

    /// Also remove every incoming header whose name starts with `prefix`, e.g. `x-user-`:
    /// case-insensitively, and with each `_` read as `-` in both (so `x_user_role` goes too, as
    /// a CGI backend would read it as `HTTP_X_USER_ROLE`).
    ///
    /// ```
    /// use tower::{service_fn, Layer, ServiceExt};
    /// use tower_jwt_guard::ClaimHeaders;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let layer = ClaimHeaders::new().strip_prefix("x-user-").build::<serde_json::Value>()?;
    /// let service = layer.layer(service_fn(|request: http::Request<()>| async move {
    ///     Ok::<_, std::convert::Infallible>(request.headers().len())
    /// }));
    /// let request = http::Request::get("/")
    ///     .header("x_user_role", "admin")   // the same as x-user-role for PHP, Rack, WSGI
    ///     .header("X-User_Id", "root")
    ///     .header("accept", "*/*")
    ///     .body(())?;
    /// assert_eq!(service.oneshot(request).await?, 1); // only `accept` is left
    /// # Ok(()) }
    /// ```
    pub fn strip_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefixes.push(fold(&prefix.into()));
        self
    }

    /// The layer, reading custom claims from the layer's claims type `C` (the `C` of
    /// [`JwtAuth::layer::<C>`](crate::JwtAuth::layer)). Refuses header names that are not valid.
    pub fn build<C>(self) -> Result<ClaimHeadersLayer, ConfigError>
    where
        C: Serialize + Send + Sync + 'static,
    {
        let header = |name: &str| {
            HeaderName::try_from(name)
                .map_err(|_| ConfigError::Invalid("a claim header name is not a valid header name"))
        };
        let mut mappings = Vec::with_capacity(self.mappings.len());
        for (claim, name) in &self.mappings {
            if claim.is_empty() {
                return Err(ConfigError::Invalid("a claim to propagate needs a name"));
            }
            mappings.push(Mapping { claim: claim.clone(), header: header(name)? });
        }
        let mut strip: Vec<String> = mappings.iter().map(|m| fold(m.header.as_str())).collect();
        for name in &self.strip {
            strip.push(fold(header(name)?.as_str()));
        }
        if self.prefixes.iter().any(String::is_empty) {
            return Err(ConfigError::Invalid("an empty prefix would remove every header"));
        }
        let claims = mappings
            .iter()
            .any(|m| registered(&m.claim).is_none())
            .then_some(claims_as_json::<C> as ClaimsAsJson);
        Ok(ClaimHeadersLayer {
            config: Arc::new(Config { mappings, strip, prefixes: self.prefixes, claims }),
        })
    }
}

/// The registered claims read from the verified token's facts.
#[derive(Clone, Copy)]
enum Registered {
    Sub,
    Iss,
    Jti,
    Aud,
    Scope,
    Acr,
    Amr,
}

fn registered(claim: &str) -> Option<Registered> {
    Some(match claim {
        "sub" => Registered::Sub,
        "iss" => Registered::Iss,
        "jti" => Registered::Jti,
        "aud" => Registered::Aud,
        "scope" => Registered::Scope,
        "acr" => Registered::Acr,
        "amr" => Registered::Amr,
        _ => return None,
    })
}

impl Registered {
    /// The header text of the claim: encoded as [`encode`] says.
    fn value(self, context: &AuthContext) -> Option<String> {
        let one = |text: &Option<String>| text.as_deref().map(|text| encoded(text, LIST));
        let joined = |list: &[String], separator: u8| {
            (!list.is_empty()).then(|| join(list.iter().map(String::as_str), separator))
        };
        match self {
            Registered::Sub => one(&context.subject),
            Registered::Iss => one(&context.issuer),
            Registered::Jti => one(&context.jti),
            Registered::Aud => joined(&context.audience, LIST),
            Registered::Scope => joined(&context.scopes, b' '),
            Registered::Acr => one(&context.acr),
            Registered::Amr => joined(&context.amr, LIST),
        }
    }
}

#[derive(Debug)]
struct Mapping {
    claim: String,
    header: HeaderName,
}

struct Config {
    mappings: Vec<Mapping>,
    /// Names removed, [`fold`]ed.
    strip: Vec<String>,
    /// Prefixes of names removed, [`fold`]ed.
    prefixes: Vec<String>,
    claims: Option<ClaimsAsJson>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimHeaders")
            .field("mappings", &self.mappings)
            .field("strip", &self.strip)
            .field("strip_prefixes", &self.prefixes)
            .finish()
    }
}

impl Config {
    /// Removes the configured headers, then inserts the verified claims' values.
    fn apply(&self, headers: &mut HeaderMap, extensions: &Extensions) {
        let doomed: Vec<HeaderName> =
            headers.keys().filter(|name| self.strips(name.as_str())).cloned().collect();
        for name in doomed {
            headers.remove(name);
        }
        let Some(context) = extensions.get::<AuthContext>() else { return };
        let claims = self.claims.and_then(|read| read(extensions));
        for mapping in &self.mappings {
            let text = match registered(&mapping.claim) {
                Some(claim) => claim.value(context),
                None => claims.as_ref().and_then(|claims| find(claims, &mapping.claim)).and_then(header_text),
            };
            match text.and_then(|text| HeaderValue::try_from(text).ok()) {
                Some(value) => {
                    headers.insert(mapping.header.clone(), value);
                }
                None => {
                    tracing::debug!(target: "tower_jwt_guard", claim = %mapping.claim, header = %mapping.header, "claim not propagated: absent, null or an object");
                }
            }
        }
    }
}

impl Config {
    /// Whether the incoming header `name` (lowercase, as `http` keeps names) is removed: its
    /// name, read with `_` as `-`, is one of the stripped names or starts with a prefix.
    fn strips(&self, name: &str) -> bool {
        let name = name.as_bytes();
        self.strip.iter().any(|strip| strip.len() == name.len() && folded_starts_with(name, strip))
            || self.prefixes.iter().any(|prefix| folded_starts_with(name, prefix))
    }
}

/// A header name as a CGI backend reads it: lowercase, each `_` a `-`.
fn fold(name: &str) -> String {
    name.bytes().map(|b| char::from(if b == b'_' { b'-' } else { b.to_ascii_lowercase() })).collect()
}

/// Whether `name`, [`fold`]ed, starts with `prefix` (already folded). Allocation-free.
fn folded_starts_with(name: &[u8], prefix: &str) -> bool {
    name.len() >= prefix.len()
        && name.iter().zip(prefix.bytes()).all(|(&b, p)| {
            let b = if b == b'_' { b'-' } else { b.to_ascii_lowercase() };
            b == p
        })
}

/// The separator of the items of an array claim (and of HTTP lists).
const LIST: u8 = b',';

/// Appends `text` to `out`, percent-encoded (RFC 3986 §2.1, uppercase hex, per UTF-8 byte)
/// where it would be lost or misread in a header value: `%`, every byte outside visible ASCII
/// (`0x21`–`0x7E`) except a space inside the text, and `separator` (`,`, or the space between
/// scopes).
fn encode(text: &str, separator: u8, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let inner_space = b == b' ' && i != 0 && i + 1 != bytes.len();
        let kept = (matches!(b, 0x21..=0x7E) || inner_space) && b != b'%' && b != separator;
        if kept {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xF)]));
        }
    }
}

/// `text`, [`encode`]d.
fn encoded(text: &str, separator: u8) -> String {
    let mut out = String::with_capacity(text.len());
    encode(text, separator, &mut out);
    out
}

/// The items, each [`encode`]d, joined with `separator`.
fn join<'a>(items: impl Iterator<Item = &'a str>, separator: u8) -> String {
    let mut out = String::new();
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(char::from(separator));
        }
        encode(item, separator, &mut out);
    }
    out
}

/// The claim `claim`: a top-level name first (`https://example.com/roles`), else a dotted path.
fn find<'v>(claims: &'v Value, claim: &str) -> Option<&'v Value> {
    if let Some(value) = claims.get(claim) {
        return Some(value);
    }
    claim.split('.').try_fold(claims, |value, part| value.get(part))
}

/// The header text of a claim value: strings [`encode`]d, numbers and booleans as JSON, arrays
/// of those joined with `,`; objects and `null` (and arrays holding one) give nothing.
fn header_text(value: &Value) -> Option<String> {
    fn scalar(value: &Value, out: &mut String) -> Option<()> {
        match value {
            Value::String(s) => encode(s, LIST, out),
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            _ => return None,
        }
        Some(())
    }
    let mut out = String::new();
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(char::from(LIST));
                }
                scalar(item, &mut out)?;
            }
        }
        other => scalar(other, &mut out)?,
    }
    Some(out)
}

/// The tower layer made by [`ClaimHeaders::build`]: removes the configured incoming headers,
/// then inserts headers from the verified claims. Place it inside [`JwtLayer`](crate::JwtLayer).
#[derive(Clone, Debug)]
pub struct ClaimHeadersLayer {
    config: Arc<Config>,
}

impl<S> Layer<S> for ClaimHeadersLayer {
    type Service = ClaimHeadersService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClaimHeadersService { inner, config: Arc::clone(&self.config) }
    }
}

/// The service made by [`ClaimHeadersLayer`].
#[derive(Clone)]
pub struct ClaimHeadersService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: fmt::Debug> fmt::Debug for ClaimHeadersService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimHeadersService")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}

impl<S, ReqBody> Service<Request<ReqBody>> for ClaimHeadersService<S>
where
    S: Service<Request<ReqBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        self.config.apply(&mut parts.headers, &parts.extensions);
        request = Request::from_parts(parts, body);
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claim_values_become_header_text() {
        assert_eq!(header_text(&json!("alice")).as_deref(), Some("alice"));
        assert_eq!(header_text(&json!("alice@example.com")).as_deref(), Some("alice@example.com"));
        assert_eq!(header_text(&json!("Alice Smith")).as_deref(), Some("Alice Smith"));
        assert_eq!(header_text(&json!(42)).as_deref(), Some("42"));
        assert_eq!(header_text(&json!(true)).as_deref(), Some("true"));
        assert_eq!(header_text(&json!(["a", "b", 1])).as_deref(), Some("a,b,1"));
        assert_eq!(header_text(&json!({"a": 1})), None);
        assert_eq!(header_text(&json!(["a", {"b": 1}])), None);
        assert_eq!(header_text(&Value::Null), None);
    }

    #[test]
    fn values_that_a_header_would_lose_or_confuse_are_percent_encoded() {
        let text = |value: Value| header_text(&value).unwrap();
        assert_eq!(text(json!("José")), "Jos%C3%A9");
        assert_eq!(text(json!("a\tb\r\nx-user-role: admin")), "a%09b%0D%0Ax-user-role: admin");
        assert_eq!(text(json!("100%")), "100%25");
        assert_eq!(text(json!(" admin ")), "%20admin%20");
        assert_eq!(text(json!("\u{7f}")), "%7F");
        // Arrays: an item's comma is encoded, so the joined forms differ.
        assert_eq!(text(json!(["a,b", "c"])), "a%2Cb,c");
        assert_eq!(text(json!(["a", "b", "c"])), "a,b,c");
        assert_eq!(text(json!("a,b")), "a%2Cb");
        assert_eq!(text(json!(["x%2Cy"])), "x%252Cy");
        // Every value is a valid header value.
        for value in [json!("\u{0}"), json!("日本"), json!(["\n", "é,"])] {
            assert!(HeaderValue::try_from(text(value.clone())).is_ok(), "{value}");
        }
    }

    /// Percent-decoding, as a backend reads an encoded claim.
    fn decode(text: &str) -> Vec<u8> {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        out
    }

    #[test]
    fn registered_lists_are_encoded_per_item() {
        assert_eq!(join(["a", "b,c"].into_iter(), LIST), "a,b%2Cc");
        assert_eq!(join(["read", "a b", "x,y"].into_iter(), b' '), "read a%20b x,y");
        assert_eq!(encoded("ü", LIST), "%C3%BC");
    }

    proptest::proptest! {
        /// Any array of strings comes back, item by item, by splitting on `,` and decoding.
        #[test]
        fn arrays_decode_to_their_items(items in proptest::collection::vec(".{0,8}", 1..5)) {
            let text = header_text(&json!(items)).unwrap();
            proptest::prop_assert!(HeaderValue::try_from(text.as_str()).is_ok());
            let back: Vec<Vec<u8>> = text.split(',').map(decode).collect();
            let expected: Vec<Vec<u8>> = items.iter().map(|item| item.as_bytes().to_vec()).collect();
            proptest::prop_assert_eq!(back, expected);
        }

        /// Whatever the spelling (case, `_` for `-`), a name under the prefix is removed and
        /// every other name is kept.
        #[test]
        fn stripping_reads_underscores_as_dashes(
            // A small alphabet, so that many names fall under the prefix in some spelling.
            prefix in "[a-bA-B_-]{1,3}",
            names in proptest::collection::vec("[a-bA-B0-9_-]{1,6}", 0..8),
        ) {
            let layer = ClaimHeaders::new().strip_prefix(prefix.clone()).build::<Value>().unwrap();
            let cgi = |name: &str| name.to_ascii_uppercase().replace('-', "_");
            let mut headers = HeaderMap::new();
            for name in &names {
                headers.append(HeaderName::try_from(name.as_str()).unwrap(), HeaderValue::from_static("v"));
            }
            layer.config.apply(&mut headers, &Extensions::new());
            for name in &names {
                let under_prefix = cgi(name).starts_with(&cgi(&prefix));
                proptest::prop_assert_eq!(headers.contains_key(name.as_str()), !under_prefix, "{} / {}", name, prefix);
            }
        }
    }

    #[test]
    fn claims_are_found_by_name_then_by_path() {
        let claims =
            json!({ "https://x.io/roles": ["a"], "realm": { "roles": ["b"] }, "a.b": 1, "a": { "b": 2 } });
        assert_eq!(find(&claims, "https://x.io/roles"), Some(&json!(["a"])));
        assert_eq!(find(&claims, "realm.roles"), Some(&json!(["b"])));
        assert_eq!(find(&claims, "a.b"), Some(&json!(1)));
        assert_eq!(find(&claims, "realm.missing"), None);
    }

    #[test]
    fn headers_are_stripped_without_a_verified_token() {
        let layer =
            ClaimHeaders::new().claim("sub", "x-user-id").strip_prefix("X-User-").build::<Value>().unwrap();
        let mut headers = HeaderMap::new();
        headers.append("x-user-id", HeaderValue::from_static("admin"));
        headers.append("x-user-id", HeaderValue::from_static("root"));
        headers.insert("X-USER-ROLE", HeaderValue::from_static("admin"));
        headers.insert("x_user_role", HeaderValue::from_static("admin"));
        headers.insert("X_User-Admin", HeaderValue::from_static("true"));
        headers.insert("accept", HeaderValue::from_static("*/*"));
        headers.insert("x-userrole", HeaderValue::from_static("kept: not under the prefix"));
        layer.config.apply(&mut headers, &Extensions::new());
        assert_eq!(headers.len(), 2, "{headers:?}");
        assert!(headers.contains_key("accept"));
    }

    #[test]
    fn stripped_and_mapped_names_are_read_with_underscores_as_dashes() {
        let layer =
            ClaimHeaders::new().claim("sub", "x-user-id").strip("X-Forwarded-User").build::<Value>().unwrap();
        let mut headers = HeaderMap::new();
        for name in ["x_user_id", "x-user_id", "x_forwarded_user", "x-forwarded-user", "x-user-idx", "x_user"]
        {
            headers.insert(HeaderName::try_from(name).unwrap(), HeaderValue::from_static("admin"));
        }
        layer.config.apply(&mut headers, &Extensions::new());
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["x-user-idx", "x_user"]);
    }

    #[test]
    fn bad_header_names_are_configuration_errors() {
        assert!(ClaimHeaders::new().claim("sub", "x user").build::<Value>().is_err());
        assert!(ClaimHeaders::new().strip("bad\nname").build::<Value>().is_err());
        assert!(ClaimHeaders::new().strip_prefix("").build::<Value>().is_err());
    }
}
