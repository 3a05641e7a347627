//! Claim propagation: [`ClaimHeaders`] and [`ClaimHeadersLayer`].

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Extensions, HeaderMap, HeaderName, HeaderValue, Request};
use serde::Serialize;
use serde_json::Value;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::ConfigError;
use crate::guard::claims::Claims;
use crate::guard::context::AuthContext;

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
    /// incoming request first). `claim` is a top-level claim name, or else a dotted path into
    /// nested objects. Strings are sent as they are, numbers and booleans as JSON, arrays of
    /// those joined with `,`; a claim that is absent, an object, or not a valid header value
    /// yields no header.
    ///
    /// Registered claims (`sub`, `iss`, `jti`, `aud`, `scope`, `acr`, `amr`) are read from the
    /// verified token whatever the claims type; others from the claims type `C` of
    /// [`build`](Self::build), serialised.
    pub fn claim(mut self, claim: impl Into<String>, header: impl Into<String>) -> Self {
        self.mappings.push((claim.into(), header.into()));
        self
    }

    /// Also remove the incoming header `header` (without putting anything in its place).
    pub fn strip(mut self, header: impl Into<String>) -> Self {
        self.strip.push(header.into());
        self
    }

    /// Also remove every incoming header whose name starts with `prefix` (case-insensitive),
    /// e.g. `x-user-`.
    pub fn strip_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefixes.push(prefix.into().to_ascii_lowercase());
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
        let mut strip: Vec<HeaderName> = mappings.iter().map(|m| m.header.clone()).collect();
        for name in &self.strip {
            strip.push(header(name)?);
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
    fn value(self, context: &AuthContext) -> Option<String> {
        let joined = |list: &[String], sep: &str| (!list.is_empty()).then(|| list.join(sep));
        match self {
            Registered::Sub => context.subject.clone(),
            Registered::Iss => context.issuer.clone(),
            Registered::Jti => context.jti.clone(),
            Registered::Aud => joined(&context.audience, ","),
            Registered::Scope => joined(&context.scopes, " "),
            Registered::Acr => context.acr.clone(),
            Registered::Amr => joined(&context.amr, ","),
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
    strip: Vec<HeaderName>,
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
        for name in &self.strip {
            headers.remove(name);
        }
        if !self.prefixes.is_empty() {
            let doomed: Vec<HeaderName> = headers
                .keys()
                .filter(|name| self.prefixes.iter().any(|prefix| name.as_str().starts_with(prefix.as_str())))
                .cloned()
                .collect();
            for name in doomed {
                headers.remove(name);
            }
        }
        let Some(context) = extensions.get::<AuthContext>() else { return };
        let claims = self.claims.and_then(|read| read(extensions));
        for mapping in &self.mappings {
            let text = match registered(&mapping.claim) {
                Some(claim) => claim.value(context),
                None => claims.as_ref().and_then(|claims| find(claims, &mapping.claim)).and_then(header_text),
            };
            match text.and_then(|text| HeaderValue::from_bytes(text.as_bytes()).ok()) {
                Some(value) => {
                    headers.insert(mapping.header.clone(), value);
                }
                None => {
                    tracing::debug!(target: "tower_jwt_guard", claim = %mapping.claim, header = %mapping.header, "claim not propagated: absent or not a header value");
                }
            }
        }
    }
}

/// The claim `claim`: a top-level name first (`https://example.com/roles`), else a dotted path.
fn find<'v>(claims: &'v Value, claim: &str) -> Option<&'v Value> {
    if let Some(value) = claims.get(claim) {
        return Some(value);
    }
    claim.split('.').try_fold(claims, |value, part| value.get(part))
}

/// The header text of a claim value: strings as they are, scalars as JSON, arrays of those
/// joined with `,`; objects and `null` give nothing.
fn header_text(value: &Value) -> Option<String> {
    fn scalar(value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    match value {
        Value::Array(items) => {
            items.iter().map(scalar).collect::<Option<Vec<_>>>().map(|items| items.join(","))
        }
        other => scalar(other),
    }
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
        assert_eq!(header_text(&json!(42)).as_deref(), Some("42"));
        assert_eq!(header_text(&json!(["a", "b", 1])).as_deref(), Some("a,b,1"));
        assert_eq!(header_text(&json!({"a": 1})), None);
        assert_eq!(header_text(&json!(["a", {"b": 1}])), None);
        assert_eq!(header_text(&Value::Null), None);
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
        headers.insert("accept", HeaderValue::from_static("*/*"));
        layer.config.apply(&mut headers, &Extensions::new());
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert!(headers.contains_key("accept"));
    }

    #[test]
    fn bad_header_names_are_configuration_errors() {
        assert!(ClaimHeaders::new().claim("sub", "x user").build::<Value>().is_err());
        assert!(ClaimHeaders::new().strip("bad\nname").build::<Value>().is_err());
        assert!(ClaimHeaders::new().strip_prefix("").build::<Value>().is_err());
    }
}
