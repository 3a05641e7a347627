//! The refresh token's cookie: `HttpOnly; Secure; SameSite=Strict`, scoped to a path.

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};

use super::IssuedRefresh;
use crate::guard::clock;

/// How a refresh token travels in a cookie: its name and the path it is sent to.
///
/// ```
/// use tower_jwt_guard::refresh::{MemoryRefreshStore, RefreshCookie, RefreshStore};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let cookie = RefreshCookie::new("refresh_token", "/auth");
/// let issued = MemoryRefreshStore::new().issue("alice").await.unwrap();
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
    pub fn read<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == self.name)
            .map(|(_, value)| value)
            .filter(|value| !value.is_empty())
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
