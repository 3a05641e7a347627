//! The refresh token's cookie: `HttpOnly; Secure; SameSite=Strict`, scoped to a path.

use http::{HeaderMap, HeaderValue};

use super::IssuedRefresh;
use crate::guard::clock;

/// How a refresh token travels in a cookie: its name and the path it is sent to.
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
    /// (e.g. `/auth`, so it never travels with ordinary API calls).
    pub fn new(name: impl Into<String>, path: impl Into<String>) -> Self {
        RefreshCookie { name: name.into(), path: path.into() }
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
