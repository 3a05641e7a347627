//! [`RequireMfaLayer`]: demand a second factor for chosen routes or gRPC methods, in front of
//! services whose handlers you cannot change (tonic-health, a generated gRPC server, a proxy).
//!
//! Place it *inside* [`JwtLayer`](crate::JwtLayer): it reads the [`AuthContext`] the layer put
//! into the request's extensions and checks it against the configured
//! [`MfaPolicy`](crate::MfaPolicy) ([`JwtAuthBuilder::mfa`](crate::JwtAuthBuilder::mfa)).
//! Without a second factor the answer is `MFA_REQUIRED`, rendered like every rejection: HTTP 401
//! with the RFC 9470 step-up challenge, or gRPC status 7 PERMISSION_DENIED.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::authorize::check::{self, CheckFuture};
use crate::primitives::body::JwtBody;
use crate::primitives::path;

/// Which requests need a second factor: the paths (or gRPC methods, `/package.Service/Method`)
/// the layer covers. Not OAuth scopes (those are [`ScopeSet`](crate::ScopeSet)).
enum PathSet {
    Every,
    /// The configured paths as [`key`]s.
    Paths(Vec<String>),
    Matching(Box<dyn Fn(&str) -> bool + Send + Sync>),
}

impl PathSet {
    /// Whether `path` needs a second factor: any of its readings ([`path::any_reading`]: as
    /// received, RFC 3986 normal form, as decoding backends read it) matches, or it is in doubt.
    fn covers(&self, path: &str) -> bool {
        match self {
            PathSet::Every => true,
            PathSet::Paths(keys) => path::any_reading(path, |reading| {
                let reading = without_trailing_slashes(reading);
                keys.iter().any(|key| reading.eq_ignore_ascii_case(key))
            }),
            PathSet::Matching(predicate) => path::any_reading(path, predicate),
        }
    }
}

/// A configured path as it is compared: RFC 3986 normal form, without trailing slashes (and
/// then compared ignoring ASCII case).
fn key(path: &str) -> String {
    without_trailing_slashes(&path::normalize_path(path)).to_owned()
}

fn without_trailing_slashes(path: &str) -> &str {
    path.trim_end_matches('/')
}

impl fmt::Debug for PathSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSet::Every => f.write_str("Every"),
            PathSet::Paths(paths) => f.debug_tuple("Paths").field(paths).finish(),
            PathSet::Matching(_) => f.write_str("Matching(..)"),
        }
    }
}

/// A tower layer that lets a request through only when its token satisfies the
/// [`MfaPolicy`](crate::MfaPolicy): the layer form of the [`RequireMfa`]
/// extractor, for any service (tonic, hyper, axum).
///
#[cfg_attr(feature = "axum", doc = "[`RequireMfa`]: crate::RequireMfa")]
#[cfg_attr(
    not(feature = "axum"),
    doc = "[`RequireMfa`]: https://docs.rs/tower-jwt-guard/latest/tower_jwt_guard/struct.RequireMfa.html"
)]
///
/// It must sit inside [`JwtLayer`](crate::JwtLayer) (in `ServiceBuilder` and tonic's
/// `Server::builder().layer(..)`, the layer added later is the inner one). A gRPC method's path
/// is `/<package>.<Service>/<Method>`.
///
/// ```
/// use tower::{service_fn, Service, ServiceBuilder, ServiceExt};
/// use tower_jwt_guard::{issue::SigningKey, JwtAuth, RequireMfaLayer, TokenIssuer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let secret = [7u8; 32];
/// let auth = JwtAuth::builder().hmac_secret(secret).build()?;
/// let service = ServiceBuilder::new()
///     .layer(auth.layer::<serde_json::Value>())
///     // Watch needs a second factor; Check only a valid token.
///     .layer(RequireMfaLayer::for_paths(["/grpc.health.v1.Health/Watch"]))
///     .service(service_fn(|_request: http::Request<String>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
///     }));
///
/// let issuer = TokenIssuer::builder(SigningKey::hmac(tower_jwt_guard::Algorithm::HS256, secret)?).build();
/// let password_only = issuer.mint("alice", &serde_json::json!({ "amr": ["pwd"] }))?.token;
/// let call = |path: &str| {
///     http::Request::builder()
///         .version(http::Version::HTTP_2)
///         .uri(path)
///         .header("content-type", "application/grpc")
///         .header("authorization", format!("Bearer {password_only}"))
///         .body(String::new())
///         .unwrap()
/// };
///
/// let check = service.clone().oneshot(call("/grpc.health.v1.Health/Check")).await?;
/// assert!(check.headers().get("grpc-status").is_none(), "let through");
///
/// let watch = service.clone().oneshot(call("/grpc.health.v1.Health/Watch")).await?;
/// assert_eq!(watch.headers()["grpc-status"], "7"); // PERMISSION_DENIED
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct RequireMfaLayer {
    paths: Arc<PathSet>,
}

impl Default for RequireMfaLayer {
    fn default() -> Self {
        RequireMfaLayer::new()
    }
}

impl RequireMfaLayer {
    /// Every request that reaches the layer needs a second factor.
    ///
    /// ```
    /// let layer = tower_jwt_guard::RequireMfaLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> Self {
        RequireMfaLayer { paths: Arc::new(PathSet::Every) }
    }

    /// Only requests whose path is one of `paths` need a second factor (for gRPC:
    /// `/<package>.<Service>/<Method>`), in any spelling that a service behind may serve as it:
    /// the request's path is read as received, in its RFC 3986 §6.2.2 normal form
    /// (`/%61dmin` and `/x/../admin` are `/admin`), and as decoding backends read it (every
    /// percent-encoding decoded, the path cut at a decoded `?`, `#` or NUL, `\` as `/`, `;`
    /// path parameters removed, repeated slashes merged); letter case and trailing slashes are
    /// ignored. It needs the second factor when any reading is one of `paths`, and when it is
    /// in doubt (still percent-encoded after three rounds of decoding). Fail closed: at worst a
    /// spelling nobody serves asks for MFA.
    ///
    /// ```
    /// use tower::{service_fn, ServiceBuilder, ServiceExt};
    /// use tower_jwt_guard::{issue::SigningKey, Algorithm, JwtAuth, RequireMfaLayer, TokenIssuer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let layer = RequireMfaLayer::for_paths(["/admin", "/grpc.health.v1.Health/Watch"]);
    /// let auth = JwtAuth::builder().hmac_secret([7u8; 32]).build()?;
    /// let service = ServiceBuilder::new().layer(auth.layer::<serde_json::Value>()).layer(layer).service(
    ///     service_fn(|_: http::Request<String>| async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) }),
    /// );
    /// let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, [7u8; 32])?).build();
    /// let password_only = issuer.mint("alice", &serde_json::json!({ "amr": ["pwd"] }))?.token;
    /// for (path, status) in [("/me", 200), ("/admin", 401), ("/%61dmin", 401), ("/x/../admin", 401), ("//Admin/", 401)] {
    ///     let request = http::Request::get(path).header("authorization", format!("Bearer {password_only}")).body(String::new())?;
    ///     assert_eq!(service.clone().oneshot(request).await?.status(), status, "{path}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn for_paths<I, P>(paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        let keys = paths.into_iter().map(|path| key(&path.into())).collect();
        RequireMfaLayer { paths: Arc::new(PathSet::Paths(keys)) }
    }

    /// Only requests whose path satisfies `predicate` need a second factor. The predicate is
    /// asked about the path as received and about each of its readings (RFC 3986 normal form,
    /// as decoding backends read it: see [`for_paths`](Self::for_paths)); any yes asks for the
    /// second factor, and so does a path in doubt. Letter case is the predicate's to ignore.
    /// Prefer a prefix test that ends with `/` over a substring test.
    ///
    /// ```
    /// // Every method of the admin service.
    /// let layer = tower_jwt_guard::RequireMfaLayer::for_paths_matching(|path| path.starts_with("/shop.Admin/"));
    /// # let _ = layer;
    /// ```
    pub fn for_paths_matching<F>(predicate: F) -> Self
    where
        F: Fn(&str) -> bool + Send + Sync + 'static,
    {
        RequireMfaLayer { paths: Arc::new(PathSet::Matching(Box::new(predicate))) }
    }
}

impl<S> Layer<S> for RequireMfaLayer {
    type Service = RequireMfaService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireMfaService { inner, paths: Arc::clone(&self.paths) }
    }
}

/// The service made by [`RequireMfaLayer`].
#[derive(Clone)]
pub struct RequireMfaService<S> {
    inner: S,
    paths: Arc<PathSet>,
}

impl<S: fmt::Debug> fmt::Debug for RequireMfaService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireMfaService").field("inner", &self.inner).field("paths", &self.paths).finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireMfaService<S>
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
        if !self.paths.covers(request.uri().path()) {
            return CheckFuture::inner(self.inner.call(request));
        }
        match rejection(&request) {
            None => CheckFuture::inner(self.inner.call(request)),
            Some(response) => CheckFuture::rejected(response),
        }
    }
}

/// `None` when the request's token satisfies the MFA policy, the rejection's response otherwise.
fn rejection<B>(request: &Request<B>) -> Option<Response<Bytes>> {
    let (error, responder) = match check::verified_context(request, "RequireMfaLayer") {
        Ok(context) if context.mfa_satisfied() => return None,
        Ok(context) => (context.policy().mfa.challenge(), context.policy().responder.clone()),
        Err(refusal) => refusal,
    };
    Some(check::refuse(request, &error, &responder))
}

/// The future of [`RequireMfaService`]: [`CheckFuture`], the one future of the checks after the guard.
#[deprecated(note = "the future of every check after the guard is `CheckFuture`")]
pub type RequireMfaFuture<F> = CheckFuture<F>;

#[cfg(test)]
mod tests {
    use super::*;

    use std::convert::Infallible;
    use std::time::Duration;

    use tower::{service_fn, ServiceBuilder, ServiceExt};

    use crate::issue::{SigningKey, TokenIssuer};
    use crate::{Algorithm, JwtAuth, MfaPolicy};

    const SECRET: [u8; 32] = [7; 32];

    async fn ok(_: Request<String>) -> Result<Response<String>, Infallible> {
        Ok(Response::new("ok".into()))
    }

    fn request(path: &str, token: Option<&str>) -> Request<String> {
        let mut builder = Request::builder().uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        builder.body(String::new()).unwrap()
    }

    fn token(amr: &[&str]) -> String {
        let issuer = TokenIssuer::builder(SigningKey::hmac(Algorithm::HS256, SECRET).unwrap()).build();
        issuer.mint("alice", &serde_json::json!({ "amr": amr })).unwrap().token
    }

    #[tokio::test]
    async fn http_step_up_challenge_follows_the_configured_policy() {
        let policy = MfaPolicy::default().accept_acr(["gold"]).max_auth_age(Duration::from_secs(300));
        let auth = JwtAuth::builder().hmac_secret(SECRET).mfa(policy).build().unwrap();
        let service = ServiceBuilder::new()
            .layer(auth.layer::<serde_json::Value>())
            .layer(RequireMfaLayer::for_paths_matching(|path| path.starts_with("/admin/")))
            .service_fn(ok);

        let open = service.clone().oneshot(request("/me", Some(&token(&["pwd"])))).await.unwrap();
        assert_eq!(open.status(), 200);
        let refused = service.clone().oneshot(request("/admin/users", Some(&token(&["pwd"])))).await.unwrap();
        assert_eq!(refused.status(), 401);
        let challenge = refused.headers()[http::header::WWW_AUTHENTICATE].to_str().unwrap();
        assert!(challenge.contains(r#"error="insufficient_user_authentication""#), "{challenge}");
        assert!(challenge.contains(r#"acr_values="gold""#), "{challenge}");
        assert!(challenge.contains(r#"max_age="300""#), "{challenge}");
        // amr otp without a recent auth_time does not satisfy a policy with a maximum age
        let stale =
            service.clone().oneshot(request("/admin/users", Some(&token(&["pwd", "otp"])))).await.unwrap();
        assert_eq!(stale.status(), 401);
    }

    #[tokio::test]
    async fn without_the_jwt_layer_in_front_it_fails_closed() {
        // The wrong order: RequireMfaLayer outside JwtLayer sees no AuthContext.
        let auth = JwtAuth::builder().hmac_secret(SECRET).build().unwrap();
        let service = ServiceBuilder::new()
            .layer(RequireMfaLayer::new())
            .layer(auth.layer::<serde_json::Value>())
            .service_fn(ok);
        let response = service.oneshot(request("/admin", Some(&token(&["otp"])))).await.unwrap();
        assert_eq!(response.status(), 500);
        let grpc = service_fn(ok);
        let mut grpc_request = request("/a.B/C", Some(&token(&["otp"])));
        grpc_request.headers_mut().insert("content-type", http::HeaderValue::from_static("application/grpc"));
        *grpc_request.version_mut() = http::Version::HTTP_2;
        let response = RequireMfaLayer::new().layer(grpc).oneshot(grpc_request).await.unwrap();
        assert_eq!(response.headers()["grpc-status"], "13");
    }

    #[tokio::test]
    async fn anonymous_requests_in_optional_mode_are_missing_token() {
        let auth = JwtAuth::builder().hmac_secret(SECRET).optional(true).build().unwrap();
        let service = ServiceBuilder::new()
            .layer(auth.layer::<serde_json::Value>())
            .layer(RequireMfaLayer::for_paths(["/admin"]))
            .service_fn(ok);
        assert_eq!(service.clone().oneshot(request("/me", None)).await.unwrap().status(), 200);
        let response = service.clone().oneshot(request("/admin", None)).await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()[http::header::WWW_AUTHENTICATE], r#"Bearer realm="api""#);
        let mfa = service.oneshot(request("/admin", Some(&token(&["pwd", "hwk"])))).await.unwrap();
        assert_eq!(mfa.status(), 200);
    }

    #[test]
    fn path_sets_cover_what_they_say() {
        assert!(PathSet::Every.covers("/anything"));
        let paths = PathSet::Paths(vec![key("/a.B/C")]);
        assert!(paths.covers("/a.B/C"));
        assert!(paths.covers("/a.B/C/"), "a trailing slash is the same path to many routers");
        assert!(!paths.covers("/a.B/D"));
        let matching = PathSet::Matching(Box::new(|p| p.starts_with("/admin")));
        assert!(matching.covers("/admin/users"));
        assert!(!matching.covers("/me"));
    }

    #[test]
    fn paths_are_normalised_before_matching() {
        let layer = RequireMfaLayer::for_paths(["/admin", "/x/%2E%2E/grpc.health.v1.Health/Watch"]);
        for covered in [
            "/admin",
            "/%61dmin",
            "/x/../admin",
            "/x/%2e%2e/admin",
            "//admin",
            "/ADMIN",
            "/admin/",
            "/admin;jsessionid=1",
            "/%2561dmin",
            "/grpc.health.v1.Health/Watch",
            "/grpc.health.v1.health/watch",
            "/%2525252561",
        ] {
            assert!(layer.paths.covers(covered), "{covered}");
        }
        for open in ["/", "/me", "/admins", "/admin/x", "/x/admin", "/grpc.health.v1.Health/Check"] {
            assert!(!layer.paths.covers(open), "{open}");
        }
        let matching = RequireMfaLayer::for_paths_matching(|p| p.starts_with("/admin/"));
        for covered in
            ["/admin/users", "/%61dmin/users", "/x/../admin/users", "//admin/users", "/admin;a/users"]
        {
            assert!(matching.paths.covers(covered), "{covered}");
        }
        assert!(!matching.paths.covers("/me/admin/"));
    }
}
