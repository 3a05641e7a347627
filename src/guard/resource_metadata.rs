//! OAuth 2.0 Protected Resource Metadata (RFC 9728): the document that tells a client which
//! authorization server issues tokens for this resource, and the endpoint that serves it.
//!
//! A client that gets a 401 reads `resource_metadata="…"` in the challenge (§5.1), fetches that
//! URL, and learns the `authorization_servers` to ask for a token, the `scopes_supported` and
//! how to present the token. The Model Context Protocol requires exactly this of every MCP server.
//!
//! - [`ProtectedResource`] is the document (§2). Give it to
//!   [`JwtAuthBuilder::protected_resource`](crate::JwtAuthBuilder::protected_resource): the
//!   builder fills what the configuration already knows (the accepted issuers become
//!   `authorization_servers`, the token sources `bearer_methods_supported`), and every
//!   `WWW-Authenticate` challenge of the layer, of [`RequireScopeLayer`](crate::RequireScopeLayer)
//!   and of [`RequireMfaLayer`](crate::RequireMfaLayer) names the document's URL.
//! - [`ProtectedResourceService`] serves it at its well-known URL (§3.1):
//!   `/.well-known/oauth-protected-resource` followed by the resource's path, so
//!   `https://api.example.com/mcp` is described at
//!   `https://api.example.com/.well-known/oauth-protected-resource/mcp`. It answers `GET` and
//!   `HEAD` with `application/json`, a `Cache-Control` of one hour and
//!   `Access-Control-Allow-Origin: *` (the document is public, browser-based clients read it),
//!   and `OPTIONS` preflights. With the `axum` feature, [`JwtAuth::resource_metadata_router`](crate::JwtAuth::resource_metadata_router) is
//!   the same as a `Router`.
//!
//! The audience rule that goes with it (RFC 8707: the token must name this resource in `aud`) is
//! [`JwtAuthBuilder::resource`](crate::JwtAuthBuilder::resource).
//!
//! ```
//! use axum::{routing::post, Router};
//! use tower::ServiceExt;
//! use tower_jwt_guard::{JwtAuth, ProtectedResource};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = JwtAuth::builder()
//!     .hmac_secret([7u8; 32])
//!     .issuer("https://auth.example.com")
//!     .resource("https://api.example.com/mcp")
//!     .protected_resource(ProtectedResource::new("https://api.example.com/mcp")?.scopes_supported(["mcp:tools"]))
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/mcp", post(|| async { "ok" }))
//!     .route_layer(auth.layer::<serde_json::Value>())
//!     .merge(auth.resource_metadata_router());
//!
//! // Refused: the challenge says where to learn more.
//! let refused = app.clone().oneshot(http::Request::post("/mcp").body(axum::body::Body::empty())?).await?;
//! assert_eq!(refused.status(), 401);
//! assert_eq!(
//!     refused.headers()["www-authenticate"],
//!     r#"Bearer realm="api", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/mcp""#
//! );
//!
//! // The document, without a token.
//! let get = http::Request::get("/.well-known/oauth-protected-resource/mcp").body(axum::body::Body::empty())?;
//! let response = app.oneshot(get).await?;
//! assert_eq!(response.status(), 200);
//! let body = axum::body::to_bytes(response.into_body(), 4096).await?;
//! let document: serde_json::Value = serde_json::from_slice(&body)?;
//! assert_eq!(document["resource"], "https://api.example.com/mcp");
//! assert_eq!(document["authorization_servers"], serde_json::json!(["https://auth.example.com"]));
//! assert_eq!(document["scopes_supported"], serde_json::json!(["mcp:tools"]));
//! assert_eq!(document["bearer_methods_supported"], serde_json::json!(["header"]));
//! # Ok(()) }
//! ```

use std::convert::Infallible;
use std::fmt;
use std::future::{ready, Ready};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;
use tower_service::Service;

use crate::guard::source::TokenSource;
use crate::guard::verify::ResourceId;
use crate::primitives::algorithm::Algorithm;
use crate::primitives::error::ConfigError;

/// How long clients and caches may keep the document (`Cache-Control: public, max-age=3600`).
const CACHE_CONTROL: &str = "public, max-age=3600";

/// The methods the document answers.
const ALLOWED: &str = "GET, HEAD, OPTIONS";

/// The metadata of a protected resource (RFC 9728 §2).
///
/// Only `resource` is required. Fields left empty are left out of the document; the
/// [`JwtAuthBuilder::protected_resource`](crate::JwtAuthBuilder::protected_resource) builder
/// fills `authorization_servers` (from the accepted issuers) and `bearer_methods_supported`
/// (from the token sources) when they are not set here.
///
/// ```
/// use tower_jwt_guard::{Algorithm, ProtectedResource};
///
/// let metadata = ProtectedResource::new("https://API.example.com:443/mcp")?
///     .authorization_server("https://auth.example.com")
///     .scopes_supported(["mcp:tools"])
///     .resource_name("Example MCP server")
///     .dpop_signing_alg_values_supported([Algorithm::ES256]);
/// assert_eq!(metadata.resource(), "https://api.example.com/mcp");
/// assert_eq!(
///     metadata.metadata_url(),
///     "https://api.example.com/.well-known/oauth-protected-resource/mcp"
/// );
/// let json: serde_json::Value = serde_json::from_slice(&metadata.to_json())?;
/// assert_eq!(json["dpop_signing_alg_values_supported"], serde_json::json!(["ES256"]));
/// assert!(json.get("resource_documentation").is_none());
///
/// assert!(ProtectedResource::new("api://orders").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProtectedResource {
    #[serde(serialize_with = "as_str")]
    resource: ResourceId,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authorization_servers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    scopes_supported: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bearer_methods_supported: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    resource_signing_alg_values_supported: Vec<Algorithm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_documentation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_policy_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_tos_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_client_certificate_bound_access_tokens: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dpop_signing_alg_values_supported: Vec<Algorithm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dpop_bound_access_tokens_required: Option<bool>,
}

fn as_str<S: serde::Serializer>(resource: &ResourceId, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(resource.as_str())
}

impl ProtectedResource {
    /// The well-known path of RFC 9728 §3, before the resource's own path.
    pub const WELL_KNOWN_PATH: &'static str = "/.well-known/oauth-protected-resource";

    /// The metadata of the resource identified by `resource`: an absolute `https` URL without
    /// fragment (RFC 9728 §1.2; `http` is accepted for local development). It is normalised as
    /// [`JwtAuthBuilder::resource`](crate::JwtAuthBuilder::resource) describes (lowercase scheme
    /// and host, no default port, a trailing slash kept except for the root).
    pub fn new(resource: impl AsRef<str>) -> Result<Self, ConfigError> {
        Ok(ProtectedResource {
            resource: ResourceId::parse(resource.as_ref())?,
            authorization_servers: Vec::new(),
            scopes_supported: Vec::new(),
            bearer_methods_supported: None,
            resource_signing_alg_values_supported: Vec::new(),
            resource_name: None,
            resource_documentation: None,
            resource_policy_uri: None,
            resource_tos_uri: None,
            tls_client_certificate_bound_access_tokens: None,
            dpop_signing_alg_values_supported: Vec::new(),
            dpop_bound_access_tokens_required: None,
        })
    }

    /// Adds an issuer identifier to `authorization_servers`; may be called several times.
    /// Without any, the builder lists the issuers the layer accepts.
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.authorization_servers.push(issuer.into());
        self
    }

    /// `scopes_supported`: the scopes clients may ask for to reach this resource.
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// `bearer_methods_supported` (`"header"`, `"body"`, `"query"`, RFC 6750 §2). Without it, the
    /// builder derives it from the token sources: `header` for the bearer header, `query` for an
    /// `access_token` query parameter.
    pub fn bearer_methods_supported<I, S>(mut self, methods: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.bearer_methods_supported = Some(methods.into_iter().map(Into::into).collect());
        self
    }

    /// `resource_signing_alg_values_supported`: the algorithms this resource signs its responses with.
    pub fn resource_signing_alg_values_supported(
        mut self,
        algs: impl IntoIterator<Item = Algorithm>,
    ) -> Self {
        self.resource_signing_alg_values_supported = algs.into_iter().collect();
        self
    }

    /// `resource_name`: a human-readable name, for the user a client asks to consent.
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// `resource_documentation`: a URL of documentation for developers.
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.resource_documentation = Some(url.into());
        self
    }

    /// `resource_policy_uri`: a URL of the resource's data-use policy.
    pub fn resource_policy_uri(mut self, url: impl Into<String>) -> Self {
        self.resource_policy_uri = Some(url.into());
        self
    }

    /// `resource_tos_uri`: a URL of the resource's terms of service.
    pub fn resource_tos_uri(mut self, url: impl Into<String>) -> Self {
        self.resource_tos_uri = Some(url.into());
        self
    }

    /// `tls_client_certificate_bound_access_tokens` (RFC 8705): whether the resource supports
    /// certificate-bound access tokens. A statement for clients; it configures no binding.
    pub fn tls_client_certificate_bound_access_tokens(mut self, supported: bool) -> Self {
        self.tls_client_certificate_bound_access_tokens = Some(supported);
        self
    }

    /// `dpop_signing_alg_values_supported` (RFC 9449): the DPoP proof algorithms accepted.
    /// A statement for clients; it configures no binding.
    pub fn dpop_signing_alg_values_supported(mut self, algs: impl IntoIterator<Item = Algorithm>) -> Self {
        self.dpop_signing_alg_values_supported = algs.into_iter().collect();
        self
    }

    /// `dpop_bound_access_tokens_required` (RFC 9449): whether only DPoP-bound tokens are accepted.
    /// A statement for clients; it configures no binding.
    pub fn dpop_bound_access_tokens_required(mut self, required: bool) -> Self {
        self.dpop_bound_access_tokens_required = Some(required);
        self
    }

    /// The resource identifier, normalised.
    pub fn resource(&self) -> &str {
        self.resource.as_str()
    }

    /// The listed authorization servers.
    pub fn authorization_servers(&self) -> &[String] {
        &self.authorization_servers
    }

    /// The path the document is served at (RFC 9728 §3.1): [`WELL_KNOWN_PATH`](Self::WELL_KNOWN_PATH) followed by the
    /// resource's path, without its query.
    ///
    /// ```
    /// use tower_jwt_guard::ProtectedResource;
    /// let path = |r| ProtectedResource::new(r).unwrap().well_known_path();
    /// assert_eq!(path("https://api.example.com"), "/.well-known/oauth-protected-resource");
    /// assert_eq!(path("https://api.example.com/"), "/.well-known/oauth-protected-resource");
    /// assert_eq!(path("https://api.example.com/v1/mcp"), "/.well-known/oauth-protected-resource/v1/mcp");
    /// ```
    pub fn well_known_path(&self) -> String {
        let (_, path, _) = self.parts();
        format!("{}{path}", Self::WELL_KNOWN_PATH)
    }

    /// The URL of the document (RFC 9728 §3.1): what challenges name in `resource_metadata`.
    pub fn metadata_url(&self) -> String {
        let (origin, path, query) = self.parts();
        format!("{origin}{}{path}{query}", Self::WELL_KNOWN_PATH)
    }

    /// The document as JSON (RFC 9728 §3.2).
    pub fn to_json(&self) -> Bytes {
        serde_json::to_vec(self).map(Bytes::from).unwrap_or_default()
    }

    /// A tower service that serves the document at its [well-known path](Self::well_known_path).
    pub fn service(&self) -> ProtectedResourceService {
        ProtectedResourceService {
            inner: Arc::new(Served { path: self.well_known_path(), document: self.to_json() }),
        }
    }

    /// The same as an axum `Router`, to [`merge`](axum::Router::merge) into the application
    /// outside the [`JwtLayer`](crate::JwtLayer) (the document needs no token).
    #[cfg(feature = "axum")]
    pub fn router<S>(&self) -> axum::Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        axum::Router::new().route_service(&self.well_known_path(), self.service())
    }

    /// The origin (`scheme://host[:port]`), the path (empty for the root) and the query
    /// (with its `?`, or empty) of the normalised identifier.
    fn parts(&self) -> (&str, &str, &str) {
        let id = self.resource.as_str();
        let after_scheme = id.find("://").map_or(0, |i| i + 3);
        let origin_end = id[after_scheme..].find(['/', '?']).map_or(id.len(), |i| after_scheme + i);
        let (origin, rest) = id.split_at(origin_end);
        let (path, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
        // §3.1: a terminating slash right after the host is removed.
        (origin, if path == "/" { "" } else { path }, query)
    }

    /// Fills what the layer's configuration knows and the document does not say.
    pub(crate) fn complete<'a>(
        mut self,
        issuers: impl Iterator<Item = &'a str>,
        sources: &[TokenSource],
        dpop: Option<&crate::guard::binding::Dpop>,
    ) -> Self {
        // RFC 9449 §5.1 / RFC 9728 §2: what the configured DPoP policy accepts, unless set here.
        if let Some(dpop) = dpop {
            if self.dpop_signing_alg_values_supported.is_empty() {
                self.dpop_signing_alg_values_supported = dpop.algorithms.clone();
            }
            if self.dpop_bound_access_tokens_required.is_none() {
                self.dpop_bound_access_tokens_required =
                    Some(dpop.mode() == crate::guard::binding::DpopMode::Required);
            }
        }
        if self.authorization_servers.is_empty() {
            self.authorization_servers = issuers.map(str::to_owned).collect();
        }
        if self.bearer_methods_supported.is_none() {
            let methods = sources.iter().filter_map(|source| match source {
                TokenSource::Bearer => Some("header"),
                TokenSource::Query(name) if name == "access_token" => Some("query"),
                _ => None,
            });
            let mut list: Vec<String> = Vec::new();
            for method in methods {
                if !list.iter().any(|m| m == method) {
                    list.push(method.to_owned());
                }
            }
            self.bearer_methods_supported = Some(list);
        }
        self
    }

    /// The `resource_metadata` attribute's value for the challenges.
    pub(crate) fn challenge_value(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&self.metadata_url()).ok()
    }

    pub(crate) fn id(&self) -> &ResourceId {
        &self.resource
    }
}

struct Served {
    path: String,
    document: Bytes,
}

/// Serves a [`ProtectedResource`] document (RFC 9728 §3): `GET`/`HEAD` on its well-known path,
/// `OPTIONS` preflights, 404 for another path, 405 for another method. Made by
/// [`ProtectedResource::service`]; always ready, never fails.
#[derive(Clone)]
pub struct ProtectedResourceService {
    inner: Arc<Served>,
}

impl fmt::Debug for ProtectedResourceService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtectedResourceService").field("path", &self.inner.path).finish()
    }
}

impl ProtectedResourceService {
    fn answer(&self, method: &Method, path: &str) -> Response<Full<Bytes>> {
        let (status, body) = match *method {
            _ if path != self.inner.path => (StatusCode::NOT_FOUND, Bytes::new()),
            Method::GET => (StatusCode::OK, self.inner.document.clone()),
            Method::HEAD => (StatusCode::OK, Bytes::new()),
            Method::OPTIONS => (StatusCode::NO_CONTENT, Bytes::new()),
            _ => (StatusCode::METHOD_NOT_ALLOWED, Bytes::new()),
        };
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        match status {
            StatusCode::OK => {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(self.inner.document.len()));
            }
            StatusCode::NO_CONTENT => {
                headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOWED));
                headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("*"));
                headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
            }
            StatusCode::METHOD_NOT_ALLOWED => {
                headers.insert(header::ALLOW, HeaderValue::from_static(ALLOWED));
            }
            _ => {}
        }
        response
    }
}

impl<B> Service<Request<B>> for ProtectedResourceService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        ready(Ok(self.answer(request.method(), request.uri().path())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(resource: &str) -> ProtectedResource {
        ProtectedResource::new(resource).unwrap()
    }

    #[test]
    fn well_known_url_inserts_the_suffix_between_host_and_path() {
        let m = metadata("https://api.example.com/mcp");
        assert_eq!(m.metadata_url(), "https://api.example.com/.well-known/oauth-protected-resource/mcp");
        let m = metadata("https://api.example.com:8443/");
        assert_eq!(m.metadata_url(), "https://api.example.com:8443/.well-known/oauth-protected-resource");
        // A trailing slash is part of the path, and stays (§3.1 removes it after the host only).
        let m = metadata("https://api.example.com/mcp/");
        assert_eq!(m.well_known_path(), "/.well-known/oauth-protected-resource/mcp/");
        // The query follows the path.
        let m = metadata("https://api.example.com/mcp?tenant=a");
        assert_eq!(
            m.metadata_url(),
            "https://api.example.com/.well-known/oauth-protected-resource/mcp?tenant=a"
        );
        assert_eq!(m.well_known_path(), "/.well-known/oauth-protected-resource/mcp");
        let m = metadata("https://api.example.com?tenant=a");
        assert_eq!(m.metadata_url(), "https://api.example.com/.well-known/oauth-protected-resource?tenant=a");
    }

    #[test]
    fn completion_fills_only_what_is_unset() {
        let sources = [TokenSource::Bearer, TokenSource::Query("access_token".into()), TokenSource::Bearer];
        let m = metadata("https://a.example").complete(["https://as.example"].into_iter(), &sources, None);
        assert_eq!(m.authorization_servers(), ["https://as.example"]);
        assert_eq!(
            m.bearer_methods_supported.as_deref(),
            Some(&["header".to_owned(), "query".to_owned()][..])
        );
        let m = metadata("https://a.example")
            .authorization_server("https://mine.example")
            .bearer_methods_supported(["body"])
            .complete(["https://as.example"].into_iter(), &sources, None);
        assert_eq!(m.authorization_servers(), ["https://mine.example"]);
        assert_eq!(m.bearer_methods_supported.as_deref(), Some(&["body".to_owned()][..]));
        // A cookie is no RFC 6750 method: the list is empty, and says so.
        let m =
            metadata("https://a.example").complete(std::iter::empty(), &[TokenSource::cookie("at")], None);
        let json: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        assert_eq!(json["bearer_methods_supported"], serde_json::json!([]));
        assert!(json.get("authorization_servers").is_none());
    }

    #[test]
    fn the_service_answers_get_head_preflight_and_nothing_else() {
        let mut service = metadata("https://a.example/mcp").service();
        let call = |service: &mut ProtectedResourceService, method: Method, path: &str| {
            let request = Request::builder().method(method).uri(path).body(()).unwrap();
            service.answer(request.method(), request.uri().path())
        };
        let path = "/.well-known/oauth-protected-resource/mcp";
        let get = call(&mut service, Method::GET, path);
        assert_eq!(get.status(), 200);
        assert_eq!(get.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(get.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(call(&mut service, Method::OPTIONS, path).status(), 204);
        assert_eq!(call(&mut service, Method::POST, path).status(), 405);
        assert_eq!(call(&mut service, Method::GET, "/.well-known/oauth-protected-resource").status(), 404);
    }
}
