//! [`SameOriginLayer`]: refuse cross-origin requests that change state, in front of the endpoints
//! a browser authenticates with a cookie. The rules are on the type.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST, ORIGIN};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::authorize::check::CheckFuture;
use crate::guard::binding::connection_scheme;
use crate::guard::rejection::Protocol;
use crate::primitives::body::JwtBody;

/// The stable code of the refusal.
const CODE: &str = "CROSS_ORIGIN_REQUEST";
/// Its text.
const MESSAGE: &str = "cross-origin request refused";

/// A tower layer that refuses state-changing requests a browser sends from another origin: put
/// it in front of every endpoint that a cookie authenticates (a refresh endpoint, a logout, a
/// [`JwtLayer`](crate::JwtLayer) that reads its token from a cookie).
///
/// `SameSite=Strict` keeps a cookie off requests started by other *sites*, but a site is wider
/// than an origin: another port of the same host, or a sibling subdomain, is the same site, and
/// its pages' requests carry the cookie. So the layer reads what the browser says about the
/// request itself, the way Go's `http.CrossOriginProtection` does:
///
/// 1. `GET`, `HEAD` and `OPTIONS` pass: they must not change state.
/// 2. `Sec-Fetch-Site` (W3C Fetch Metadata): `same-origin` and `none` (the user's own navigation)
///    pass; any other value (`same-site`, `cross-site`) is refused unless `Origin` is trusted.
/// 3. Without `Sec-Fetch-Site` (an older browser, or a page not served from a secure context):
///    `Origin` must name the request's own host (its `Host`, or the authority of an HTTP/2
///    request) and, when it is known, its scheme (an HTTP/2 request's, else the connection's:
///    [`ConnectionScheme`](crate::binding::ConnectionScheme), a client certificate), or a trusted
///    origin; `Origin: null` is refused.
/// 4. Neither header: not a request a browser sends from another origin (browsers send `Origin`
///    with every cross-origin `POST`), so `curl` and server-to-server clients pass.
///
/// A refusal is `403` with `{"error": "cross-origin request refused", "code":
/// "CROSS_ORIGIN_REQUEST"}` (gRPC: status 7 PERMISSION_DENIED), and never reaches the inner
/// service: the refresh token is not spent, the session not ended.
///
/// ```
/// use tower::{service_fn, ServiceBuilder, ServiceExt};
/// use tower_jwt_guard::SameOriginLayer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let refresh = ServiceBuilder::new()
///     .layer(SameOriginLayer::new())
///     .service(service_fn(|_request: http::Request<String>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(String::from("a new token")))
///     }));
/// let post = |site: &str, origin: &str| {
///     http::Request::post("/auth/refresh")
///         .header("host", "app.example.com")
///         .header("sec-fetch-site", site)
///         .header("origin", origin)
///         .body(String::new())
///         .unwrap()
/// };
///
/// // The application's own page.
/// let own = refresh.clone().oneshot(post("same-origin", "https://app.example.com")).await?;
/// assert_eq!(own.status(), 200);
/// // A page of another port or subdomain: the same site, so SameSite=Strict sends the cookie.
/// let sibling = refresh.clone().oneshot(post("same-site", "https://blog.example.com")).await?;
/// assert_eq!(sibling.status(), 403);
/// // curl, or another server: no browser headers.
/// let curl = refresh.clone().oneshot(http::Request::post("/auth/refresh").body(String::new())?).await?;
/// assert_eq!(curl.status(), 200);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct SameOriginLayer {
    trusted: Arc<Vec<String>>,
}

impl SameOriginLayer {
    /// Only the request's own origin is let through.
    ///
    /// ```
    /// let layer = tower_jwt_guard::SameOriginLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        SameOriginLayer::default()
    }

    /// Also lets through requests whose `Origin` is exactly `origin` (`scheme://host[:port]`,
    /// compared without regard to ASCII case; a trailing `/` is ignored): a front end served
    /// from another origin that is meant to use these endpoints.
    ///
    /// ```
    /// let layer = tower_jwt_guard::SameOriginLayer::new().trust_origin("https://app.example.com");
    /// # let _ = layer;
    /// ```
    pub fn trust_origin(mut self, origin: impl Into<String>) -> Self {
        let origin = origin.into().trim_end_matches('/').to_ascii_lowercase();
        Arc::make_mut(&mut self.trusted).push(origin);
        self
    }

    /// Whether `request` may pass (the rules above).
    fn allows<B>(&self, request: &Request<B>) -> bool {
        if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
            return true;
        }
        let headers = request.headers();
        let origin = headers.get(ORIGIN).map(HeaderValue::as_bytes);
        let trusted = origin.is_some_and(|origin| self.trusts(origin));
        if let Some(site) = headers.get("sec-fetch-site") {
            return matches!(site.as_bytes(), b"same-origin" | b"none") || trusted;
        }
        let Some(origin) = origin else { return true };
        if trusted {
            return true;
        }
        let host = headers
            .get(HOST)
            .map(HeaderValue::as_bytes)
            .or_else(|| request.uri().authority().map(|authority| authority.as_str().as_bytes()));
        // The request's own scheme, when it is known (an HTTP/2 request's `:scheme`, else the
        // connection's): `http://app.test` is not the origin of `https://app.test`.
        let scheme = request.uri().scheme_str().or_else(|| connection_scheme(request.extensions()));
        match (origin_parts(origin), host) {
            (Some((origin_scheme, origin_host)), Some(host)) => {
                origin_host.eq_ignore_ascii_case(host)
                    && scheme.is_none_or(|scheme| origin_scheme.eq_ignore_ascii_case(scheme.as_bytes()))
            }
            _ => false,
        }
    }

    fn trusts(&self, origin: &[u8]) -> bool {
        self.trusted.iter().any(|trusted| trusted.as_bytes().eq_ignore_ascii_case(origin))
    }
}

/// The scheme and the `host[:port]` of a serialized origin (`scheme://host[:port]`); `None` for
/// `null` or anything else that is not an origin.
fn origin_parts(origin: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = origin.windows(3).position(|window| window == b"://")?;
    let host = &origin[end + 3..];
    (!host.is_empty() && !host.contains(&b'/')).then_some((&origin[..end], host))
}

/// The refusal, in the request's protocol.
fn refusal<B>(request: &Request<B>) -> Response<Bytes> {
    tracing::info!(
        target: "tower_jwt_guard",
        code = CODE,
        method = %request.method(),
        path = request.uri().path(),
        "request rejected"
    );
    let mut response = match Protocol::of_request(request) {
        Protocol::Grpc => {
            let mut response = Response::new(Bytes::new());
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            headers.insert("grpc-status", HeaderValue::from_static("7"));
            headers.insert("grpc-message", HeaderValue::from_static("cross-origin%20request%20refused"));
            response
        }
        _ => {
            let body = serde_json::json!({ "error": MESSAGE, "code": CODE }).to_string();
            let mut response = Response::new(Bytes::from(body));
            *response.status_mut() = StatusCode::FORBIDDEN;
            response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
    };
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

impl<S> Layer<S> for SameOriginLayer {
    type Service = SameOriginService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SameOriginService { inner, layer: self.clone() }
    }
}

/// The service made by [`SameOriginLayer`].
#[derive(Clone)]
pub struct SameOriginService<S> {
    inner: S,
    layer: SameOriginLayer,
}

impl<S: fmt::Debug> fmt::Debug for SameOriginService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SameOriginService")
            .field("inner", &self.inner)
            .field("trusted", &self.layer.trusted)
            .finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SameOriginService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<JwtBody<ResBody>>;
    type Error = S::Error;
    type Future = CheckFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if self.layer.allows(&request) {
            CheckFuture::inner(self.inner.call(request))
        } else {
            CheckFuture::rejected(refusal(&request))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method(method).uri("/auth/refresh");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    fn post(headers: &[(&str, &str)]) -> Request<()> {
        request(Method::POST, headers)
    }

    #[test]
    fn fetch_metadata_decides_when_present() {
        let layer = SameOriginLayer::new();
        assert!(layer.allows(&post(&[("sec-fetch-site", "same-origin")])));
        assert!(layer.allows(&post(&[("sec-fetch-site", "none")])));
        for site in ["same-site", "cross-site", "SAME-ORIGIN", ""] {
            assert!(!layer.allows(&post(&[("sec-fetch-site", site)])), "{site}");
        }
        // The origin matches the host, but the browser says the page is another origin's.
        let headers = [("sec-fetch-site", "cross-site"), ("origin", "http://a.test"), ("host", "a.test")];
        assert!(!layer.allows(&post(&headers)));
    }

    #[test]
    fn origin_decides_without_fetch_metadata() {
        let layer = SameOriginLayer::new();
        assert!(layer.allows(&post(&[("origin", "https://A.test:8443"), ("host", "a.test:8443")])));
        assert!(!layer.allows(&post(&[("origin", "https://a.test:8444"), ("host", "a.test:8443")])));
        assert!(!layer.allows(&post(&[("origin", "https://evil.test"), ("host", "a.test")])));
        assert!(!layer.allows(&post(&[("origin", "null"), ("host", "a.test")])));
        assert!(!layer.allows(&post(&[("origin", "https://a.test")])), "no host to compare with");
        assert!(!layer.allows(&post(&[("origin", "https://a.test/x"), ("host", "a.test/x")])));
    }

    #[test]
    fn the_origins_scheme_must_be_the_requests_when_known() {
        use crate::guard::binding::{ClientCertificate, ConnectionScheme};
        let layer = SameOriginLayer::new();
        let over = |scheme: Option<ConnectionScheme>, origin: &str| {
            let mut request = post(&[("origin", origin), ("host", "app.test")]);
            if let Some(scheme) = scheme {
                request.extensions_mut().insert(scheme);
            }
            layer.allows(&request)
        };
        // An HTTPS service: a plain-http page of the same host is another origin.
        assert!(!over(Some(ConnectionScheme::HTTPS), "http://app.test"));
        assert!(over(Some(ConnectionScheme::HTTPS), "HTTPS://app.test"));
        assert!(!over(Some(ConnectionScheme::HTTP), "https://app.test"));
        assert!(over(Some(ConnectionScheme::HTTP), "http://app.test"));
        // Unknown scheme (behind a proxy that does not say): the host decides, as before.
        assert!(over(None, "http://app.test") && over(None, "https://app.test"));
        // A client certificate means TLS.
        let mut request = post(&[("origin", "http://app.test"), ("host", "app.test")]);
        request.extensions_mut().insert(ClientCertificate::from_der(b"not a real certificate".to_vec()));
        assert!(!layer.allows(&request));
        // An HTTP/2 request's own scheme comes first.
        let http2 = |origin: &str| {
            let request = Request::post("https://app.test/auth/refresh").header("origin", origin).body(());
            layer.allows(&request.unwrap())
        };
        assert!(!http2("http://app.test"));
        assert!(http2("https://app.test"));
    }

    #[test]
    fn trusted_origins_pass() {
        let layer = SameOriginLayer::new().trust_origin("https://App.example.com/");
        let headers = [("sec-fetch-site", "same-site"), ("origin", "https://app.example.com")];
        assert!(layer.allows(&post(&headers)));
        assert!(layer.allows(&post(&[("origin", "https://app.example.com"), ("host", "api.example.com")])));
        let other = [("sec-fetch-site", "same-site"), ("origin", "https://blog.example.com")];
        assert!(!layer.allows(&post(&other)));
    }

    #[test]
    fn safe_methods_and_non_browsers_pass() {
        let layer = SameOriginLayer::new();
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert!(layer.allows(&request(method, &[("sec-fetch-site", "cross-site")])));
        }
        assert!(layer.allows(&post(&[])));
        assert!(!layer.allows(&request(Method::DELETE, &[("sec-fetch-site", "cross-site")])));
    }

    #[test]
    fn the_refusal_is_a_403_or_a_grpc_status() {
        let http = refusal(&post(&[]));
        assert_eq!(http.status(), StatusCode::FORBIDDEN);
        let body: serde_json::Value = serde_json::from_slice(http.body()).unwrap();
        assert_eq!(body["code"], CODE);
        let grpc = Request::builder()
            .version(http::Version::HTTP_2)
            .header("content-type", "application/grpc")
            .body(())
            .unwrap();
        let grpc = refusal(&grpc);
        assert_eq!(grpc.status(), StatusCode::OK);
        assert_eq!(grpc.headers()["grpc-status"], "7");
    }
}
