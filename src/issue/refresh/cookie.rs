//! The refresh token's cookie: `HttpOnly; Secure; SameSite=Strict`, scoped to a path, or over
//! HTTPS a `__Host-` cookie that no sibling subdomain can set.

use http::{HeaderMap, HeaderValue};

use super::IssuedRefresh;
use crate::guard::clock;

/// How a refresh token travels in a cookie: its name and the path it is sent to.
///
/// **Over HTTPS, use [`host`](Self::host).** A cookie without a name prefix can be set for the
/// whole site by any sibling subdomain (`Domain=example.com` from `evil.example.com`): a second
/// cookie of the name then travels beside the genuine one, and [`read`](Self::read) refuses
/// both (a credential is never chosen by order), so the sibling blocks every refresh. The
/// `__Host-` prefix (RFC 6265bis §4.1.3.2) makes the browser refuse such a cookie: it is
/// accepted only from a secure origin, with `Secure`, without `Domain` (host-only) and with
/// `Path=/`. A plain cookie of the unprefixed name, tossed by a sibling, is then simply another
/// cookie, which [`read`](Self::read) ignores.
///
/// The RFC allows `__Host-` only with `Path=/`, so a host cookie is sent with every request to
/// the host, not only to `/auth` (it stays `HttpOnly` and `SameSite=Strict`, and path scoping
/// never kept a cookie from other paths of the same origin, RFC 6265 §8.5). `__Secure-` would
/// keep `Path=/auth` but allows `Domain`: a sibling over HTTPS could still set it.
///
/// ```
/// use tower_jwt_guard::refresh::{MemoryRefreshStore, RefreshCookie, RefreshStore, SenderConstraint};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let cookie = RefreshCookie::new("refresh_token", "/auth");
/// let issued = MemoryRefreshStore::new().issue("alice", &SenderConstraint::none()).await.unwrap();
///
/// let set_cookie = cookie.set(&issued);
/// let text = set_cookie.to_str().unwrap();
/// assert!(text.starts_with("refresh_token="));
/// assert!(text.contains("; HttpOnly; Secure; SameSite=Strict; Path=/auth; Max-Age="));
///
/// // The next request carries it back:
/// let mut headers = http::HeaderMap::new();
/// let pair = text.split(';').next().unwrap();
/// headers.insert(http::header::COOKIE, format!("theme=dark; {pair}").parse().unwrap());
/// assert_eq!(cookie.read(&headers), Some(issued.token.as_str()));
///
/// // Logout: the browser forgets it.
/// assert!(cookie.clear().to_str().unwrap().contains("Max-Age=0"));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RefreshCookie {
    name: String,
    path: String,
}

impl RefreshCookie {
    /// A cookie named `name` (a cookie-name token, e.g. `refresh_token`) sent only to `path`
    /// (e.g. `/auth`, so it never travels with ordinary API calls). A name with the `__Host-`
    /// prefix (any case) gets `Path=/` whatever `path` says: a browser drops a `__Host-` cookie
    /// with another path.
    pub fn new(name: impl Into<String>, path: impl Into<String>) -> Self {
        let name = name.into();
        let path = if is_host_prefixed(&name) { "/".to_owned() } else { path.into() };
        RefreshCookie { name, path }
    }

    /// The cookie to use over HTTPS: named `__Host-` + `name`, host-only, `Path=/` (RFC 6265bis
    /// §4.1.3.2), so that no sibling subdomain can set one of that name (see the type's
    /// documentation for why `Path=/` and not a narrower path).
    ///
    /// ```
    /// use tower_jwt_guard::refresh::{MemoryRefreshStore, RefreshCookie, RefreshStore, SenderConstraint};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cookie = RefreshCookie::host("refresh_token");
    /// assert_eq!(cookie.name(), "__Host-refresh_token");
    /// let issued = MemoryRefreshStore::new().issue("alice", &SenderConstraint::none()).await.unwrap();
    /// let set_cookie = cookie.set(&issued);
    /// let text = set_cookie.to_str().unwrap();
    /// assert!(text.starts_with("__Host-refresh_token="));
    /// assert!(text.contains("; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age="));
    /// assert!(!text.contains("Domain"));
    ///
    /// // A sibling subdomain's `refresh_token` cookie is another cookie: ignored.
    /// let mut headers = http::HeaderMap::new();
    /// let pair = text.split(';').next().unwrap();
    /// headers.insert(http::header::COOKIE, format!("refresh_token=tossed; {pair}").parse().unwrap());
    /// assert_eq!(cookie.read(&headers), Some(issued.token.as_str()));
    /// # }
    /// ```
    pub fn host(name: &str) -> Self {
        RefreshCookie { name: format!("{HOST_PREFIX}{name}"), path: "/".to_owned() }
    }

    /// The cookie's name (with its prefix).
    ///
    /// ```
    /// use tower_jwt_guard::refresh::RefreshCookie;
    ///
    /// assert_eq!(RefreshCookie::new("refresh_token", "/auth").name(), "refresh_token");
    /// assert_eq!(RefreshCookie::host("refresh_token").name(), "__Host-refresh_token");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The path the cookie is sent to (`/` for a `__Host-` cookie).
    ///
    /// ```
    /// use tower_jwt_guard::refresh::RefreshCookie;
    ///
    /// assert_eq!(RefreshCookie::new("refresh_token", "/auth").path(), "/auth");
    /// assert_eq!(RefreshCookie::new("__Host-refresh_token", "/auth").path(), "/");
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The `Set-Cookie` value handing out `issued`, expiring with it.
    pub fn set(&self, issued: &IssuedRefresh) -> HeaderValue {
        self.header(issued.token.as_str(), issued.expires_in(clock::now()))
    }

    /// The `Set-Cookie` value that removes the cookie.
    pub fn clear(&self) -> HeaderValue {
        self.header("", 0)
    }

    /// The refresh token in the request's `Cookie` headers, if any.
    ///
    /// `None` when the cookie is absent or empty, and when the request carries it twice: which
    /// one is the session's is ambiguous (a sibling subdomain can set a second cookie of the
    /// name), so neither is used. Quotes around the value are removed (RFC 6265 §4.1.1).
    ///
    /// ```
    /// use tower_jwt_guard::refresh::RefreshCookie;
    ///
    /// let cookie = RefreshCookie::new("refresh_token", "/auth");
    /// let read = |value: &'static str| {
    ///     let mut headers = http::HeaderMap::new();
    ///     headers.insert(http::header::COOKIE, http::HeaderValue::from_static(value));
    ///     cookie.read(&headers).map(str::to_owned)
    /// };
    /// assert_eq!(read(r#"refresh_token="abc""#).as_deref(), Some("abc"));
    /// assert_eq!(read("refresh_token=abc; refresh_token=def"), None);
    /// assert_eq!(read("refresh_token="), None);
    /// ```
    pub fn read<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        crate::guard::cookie::find(headers, &self.name).ok().flatten()
    }

    fn header(&self, value: &str, max_age: u64) -> HeaderValue {
        // `Secure` always, never `Domain`: what a `__Host-` name requires.
        let text = format!(
            "{}={value}; HttpOnly; Secure; SameSite=Strict; Path={}; Max-Age={max_age}",
            self.name, self.path
        );
        // Our values are base64url and '.'; a name or path with control characters is a bug
        // of the caller: the cookie is then dropped rather than a panic.
        HeaderValue::from_str(&text)
            .unwrap_or_else(|_| HeaderValue::from_static("invalid-refresh-cookie=; Max-Age=0"))
    }
}

/// RFC 6265bis §4.1.3.2.
const HOST_PREFIX: &str = "__Host-";

/// Whether `name` has the `__Host-` prefix; browsers compare it case-insensitively
/// (the storage model of RFC 6265bis §5.7).
fn is_host_prefixed(name: &str) -> bool {
    name.get(..HOST_PREFIX.len()).is_some_and(|start| start.eq_ignore_ascii_case(HOST_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::COOKIE, HeaderValue::from_static(cookie));
        headers
    }

    #[test]
    fn a_host_cookie_has_the_prefix_path_slash_and_no_domain() {
        let cookie = RefreshCookie::host("rt");
        let cleared = cookie.clear();
        let text = cleared.to_str().unwrap();
        assert_eq!(text, "__Host-rt=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0");
        assert_eq!(RefreshCookie::new("__host-rt", "/auth").path(), "/", "a __Host- name forces Path=/");
        assert_eq!(RefreshCookie::new("__Host-rt", "/auth").path(), "/");
        assert_eq!(RefreshCookie::new("rt", "/auth").path(), "/auth");
        assert_eq!(RefreshCookie::new("__Secure-rt", "/auth").path(), "/auth");
    }

    #[test]
    fn a_tossed_unprefixed_cookie_does_not_shadow_the_host_cookie() {
        let host = RefreshCookie::host("rt");
        assert_eq!(host.read(&headers("rt=tossed; __Host-rt=genuine")), Some("genuine"));
        assert_eq!(host.read(&headers("__Host-rt=genuine; rt=tossed; rt=again")), Some("genuine"));
        assert_eq!(host.read(&headers("rt=tossed")), None);
        // Without the prefix a tossed cookie of the same name blocks the genuine one.
        let plain = RefreshCookie::new("rt", "/auth");
        assert_eq!(plain.read(&headers("rt=tossed; rt=genuine")), None);
    }
}
