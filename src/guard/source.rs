//! Step 1 of the request path: where the token comes from.
//!
//! The default is the RFC 6750 `Authorization: Bearer <token>` header (scheme case-insensitive,
//! exactly one header, size cap before any parsing). A cookie, a custom header or the RFC 6750
//! `access_token` query parameter can be configured instead or as well; a request that carries
//! a token by more than one method is refused (RFC 6750 §2).
//!
//! With DPoP configured ([`Dpop`](crate::binding::Dpop)), `Authorization: DPoP <token>`
//! (RFC 9449 §7.1) is read too, and the scheme goes with the token to the binding step: a
//! DPoP-bound token sent as `Bearer` is refused there (§7.2).

use http::{HeaderMap, HeaderName, Uri};

use crate::primitives::authorization::Scheme;
use crate::primitives::authorization::{authorization, invalid_request, single, too_large};
use crate::primitives::cookie::CookieError;
use crate::primitives::error::{AuthError, ErrorKind};

/// One place a token may be carried.
///
/// ```
/// use tower_jwt_guard::TokenSource;
///
/// let sources = [TokenSource::Bearer, TokenSource::cookie("access_token")];
/// assert_eq!(sources.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenSource {
    /// `Authorization: Bearer <token>` (RFC 6750 §2.1).
    Bearer,
    /// A cookie of this name.
    Cookie(String),
    /// A header of this name whose whole value is the token.
    Header(HeaderName),
    /// A URI query parameter of this name (RFC 6750 §2.3 names it `access_token`).
    /// Tokens in URLs end up in logs: only configure this when a client cannot send headers.
    Query(String),
}

impl TokenSource {
    /// A cookie source.
    pub fn cookie(name: impl Into<String>) -> Self {
        TokenSource::Cookie(name.into())
    }

    /// A custom-header source.
    pub fn header(name: HeaderName) -> Self {
        TokenSource::Header(name)
    }

    /// The RFC 6750 `access_token` query parameter.
    pub fn query() -> Self {
        TokenSource::Query("access_token".into())
    }
}

/// The configured sources and the size cap.
#[derive(Debug, Clone)]
pub(crate) struct TokenSources {
    sources: Vec<TokenSource>,
    max_len: usize,
    /// Whether `Authorization: DPoP` is read (DPoP configured).
    dpop: bool,
}

impl TokenSources {
    pub(crate) fn new(sources: Vec<TokenSource>, max_len: usize) -> Self {
        TokenSources { sources, max_len, dpop: false }
    }

    /// Reads `Authorization: DPoP <token>` too (RFC 9449 §7.1), wherever `Bearer` is read.
    pub(crate) fn with_dpop(mut self, dpop: bool) -> Self {
        self.dpop = dpop;
        self
    }

    /// The token of the request: `Ok(None)` when there is none, an error when the request
    /// is malformed or carries a token in more than one place.
    pub(crate) fn extract<'r>(
        &self,
        headers: &'r HeaderMap,
        uri: &'r Uri,
    ) -> Result<Option<&'r [u8]>, AuthError> {
        self.extract_with_scheme(headers, uri).map(|found| found.map(|(token, _)| token))
    }

    /// The token of the request and how it came (see [`extract`](Self::extract)).
    pub(crate) fn extract_with_scheme<'r>(
        &self,
        headers: &'r HeaderMap,
        uri: &'r Uri,
    ) -> Result<Option<(&'r [u8], Scheme)>, AuthError> {
        let mut found = None;
        for source in &self.sources {
            let token = match source {
                TokenSource::Bearer => authorization(headers, self.max_len, self.dpop)?,
                TokenSource::Cookie(name) => other(cookie(headers, name, self.max_len)?),
                TokenSource::Header(name) => other(header(headers, name, self.max_len)?),
                TokenSource::Query(name) => other(query(uri, name, self.max_len)?),
            };
            if token.is_some() {
                if found.is_some() {
                    return Err(invalid_request("more than one token in the request"));
                }
                found = token;
            }
        }
        Ok(found)
    }
}

fn other(token: Option<&str>) -> Option<(&[u8], Scheme)> {
    token.map(|token| (token.as_bytes(), Scheme::Other))
}

impl TokenSources {
    /// Whether the request carries a token in a configured query parameter: its answer must
    /// then not be cached by shared caches (RFC 6750 §2.3, `Cache-Control: private`).
    pub(crate) fn token_in_query(&self, uri: &Uri) -> bool {
        self.sources.iter().any(|source| match source {
            TokenSource::Query(name) => matches!(query(uri, name, usize::MAX), Ok(Some(_)) | Err(_)),
            _ => false,
        })
    }
}

/// RFC 6750 §2.1 `b64token` characters, padding aside:
/// `ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/"`.
///
/// Branch-free on purpose: the check over a whole token then compiles to vector instructions.
#[inline(always)]
fn is_b64token(b: u8) -> bool {
    let lower = b | 0x20;
    (lower.wrapping_sub(b'a') < 26)
        | (b.wrapping_sub(b'0') < 10)
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
        | (b == b'+')
        | (b == b'/')
}

/// The token's text, once its character set is checked: RFC 6750 `b64token` (padding only
/// at the end), in one vectorised pass. Separators and control bytes make the request
/// malformed (400); other characters make the token malformed (401).
pub(crate) fn check_charset(token: &[u8]) -> Result<&str, AuthError> {
    let body = token.iter().rposition(|&b| b != b'=').map_or(&token[..0], |last| &token[..=last]);
    if body.iter().fold(0u8, |invalid, &b| invalid | u8::from(!is_b64token(b))) == 0 {
        // All ASCII by now, so this cannot fail.
        return std::str::from_utf8(token).map_err(|_| not_visible_ascii());
    }
    Err(if body.iter().any(|&b| b == b' ' || b == b',') {
        invalid_request("more than one credential in the authorization header")
    } else if body.iter().any(|&b| matches!(b, b';' | b'"' | b'\\')) {
        invalid_request("the authorization header has a separator inside the token")
    } else if !body.iter().all(u8::is_ascii_graphic) {
        not_visible_ascii()
    } else {
        // A malformed token, not a malformed request (RFC 6750 §3.1).
        AuthError::with_detail(ErrorKind::InvalidToken, "the token has characters a token cannot have")
    })
}

fn not_visible_ascii() -> AuthError {
    invalid_request("the authorization header is not visible ASCII")
}

/// The token cookie, read by the crate's one cookie parser ([`crate::primitives::cookie`]): a repeated
/// cookie is ambiguous and refused, quotes are removed, an empty cookie is no token.
fn cookie<'r>(headers: &'r HeaderMap, name: &str, max_len: usize) -> Result<Option<&'r str>, AuthError> {
    match crate::primitives::cookie::find(headers, name) {
        Ok(Some(token)) => checked(token, max_len).map(Some),
        Ok(None) => Ok(None),
        Err(CookieError::Repeated) => Err(invalid_request("the token cookie is repeated")),
        Err(CookieError::NotText) => Err(invalid_request("the token cookie is not visible ASCII")),
    }
}

fn header<'r>(
    headers: &'r HeaderMap,
    name: &HeaderName,
    max_len: usize,
) -> Result<Option<&'r str>, AuthError> {
    let Some(value) = single(headers, name)? else { return Ok(None) };
    if value.len() > max_len {
        return Err(too_large());
    }
    let token = std::str::from_utf8(value)
        .map_err(|_| invalid_request("the token header is not visible ASCII"))?
        .trim_matches(' ');
    if token.is_empty() {
        Ok(None)
    } else {
        checked(token, max_len).map(Some)
    }
}

fn query<'r>(uri: &'r Uri, name: &str, max_len: usize) -> Result<Option<&'r str>, AuthError> {
    let Some(query) = uri.query() else { return Ok(None) };
    let mut found = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == name {
            if found.is_some() {
                return Err(invalid_request("the token parameter is repeated"));
            }
            found = Some(value);
        }
    }
    match found {
        Some("") | None => Ok(None),
        Some(token) => checked(token, max_len).map(Some),
    }
}

/// Size cap and character set (visible ASCII without separators) before any decoding.
fn checked(token: &str, max_len: usize) -> Result<&str, AuthError> {
    if token.len() > max_len {
        return Err(too_large());
    }
    if !token.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b',' | b';' | b'"' | b'\\')) {
        return Err(invalid_request("the token contains characters a token cannot have"));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::AUTHORIZATION;
    use http::header::COOKIE;
    use http::HeaderValue;

    #[test]
    fn b64token_is_exactly_the_rfc_6750_set() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
            assert_eq!(is_b64token(b), expected, "byte {b:#04x}");
        }
    }

    #[test]
    fn padding_only_at_the_end() {
        assert_eq!(extract(&[b"Bearer abc=="]), Ok(Some("abc==".into())));
        assert_eq!(extract(&[b"Bearer ab=c"]), Err(ErrorKind::InvalidToken));
        assert_eq!(extract(&[b"Bearer ==="]), Ok(Some("===".into())));
    }

    fn bearer_only() -> TokenSources {
        TokenSources::new(vec![TokenSource::Bearer], 64)
    }

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        map
    }

    fn extract(values: &[&[u8]]) -> Result<Option<String>, ErrorKind> {
        let headers = headers(values);
        let uri = Uri::from_static("/");
        let token = bearer_only().extract(&headers, &uri).map_err(|e| e.kind())?;
        match token {
            Some(token) => Ok(Some(check_charset(token).map_err(|e| e.kind())?.to_owned())),
            None => Ok(None),
        }
    }

    #[test]
    fn scheme_is_case_insensitive_and_spaces_tolerated() {
        assert_eq!(extract(&[b"Bearer a.b.c"]), Ok(Some("a.b.c".into())));
        assert_eq!(extract(&[b"bEaReR   a.b.c"]), Ok(Some("a.b.c".into())));
    }

    #[test]
    fn malformed_headers_are_invalid_requests() {
        assert_eq!(extract(&[b"Bearer a", b"Bearer b"]), Err(ErrorKind::InvalidRequest));
        assert_eq!(extract(&[b"Bearer a b"]), Err(ErrorKind::InvalidRequest));
        assert_eq!(extract(&[b"Bearer a,b"]), Err(ErrorKind::InvalidRequest));
        assert_eq!(extract(&[b"Bearer"]), Err(ErrorKind::InvalidRequest));
        assert_eq!(extract(&[b"Bearer \xff\xfe"]), Err(ErrorKind::InvalidRequest));
    }

    #[test]
    fn other_schemes_mean_no_token_and_oversize_is_refused() {
        assert_eq!(extract(&[b"Basic YWxhZGRpbjpvcGVu"]), Ok(None));
        assert_eq!(extract(&[]), Ok(None));
        let long = format!("Bearer {}", "a".repeat(65));
        assert_eq!(extract(&[long.as_bytes()]), Err(ErrorKind::InvalidToken));
    }

    #[test]
    fn cookie_and_query_sources() {
        let sources =
            TokenSources::new(vec![TokenSource::Bearer, TokenSource::cookie("at"), TokenSource::query()], 64);
        let mut map = HeaderMap::new();
        map.insert(COOKIE, HeaderValue::from_static("theme=dark; at=x.y.z"));
        let uri = Uri::from_static("/");
        assert_eq!(sources.extract(&map, &uri).unwrap(), Some(&b"x.y.z"[..]));
        let uri = Uri::from_static("/?access_token=q.r.s");
        assert_eq!(sources.extract(&map, &uri).unwrap_err().kind(), ErrorKind::InvalidRequest);
        assert_eq!(sources.extract(&HeaderMap::new(), &uri).unwrap(), Some(&b"q.r.s"[..]));
    }

    #[test]
    fn the_token_cookie_follows_the_cookie_rules() {
        let sources = TokenSources::new(vec![TokenSource::cookie("at")], 64);
        let uri = Uri::from_static("/");
        let extract = |fields: &[&'static str]| {
            let mut map = HeaderMap::new();
            for field in fields {
                map.append(COOKIE, HeaderValue::from_static(field));
            }
            sources.extract(&map, &uri).map(|token| token.map(<[u8]>::to_vec)).map_err(|e| e.kind())
        };
        assert_eq!(extract(&[r#"at="x.y.z""#]), Ok(Some(b"x.y.z".to_vec())));
        assert_eq!(extract(&["theme=dark", "at=x.y.z"]), Ok(Some(b"x.y.z".to_vec())));
        assert_eq!(extract(&["at=x.y.z", "at=x.y.z"]), Err(ErrorKind::InvalidRequest));
        assert_eq!(extract(&["at=; at=x.y.z"]), Err(ErrorKind::InvalidRequest));
        assert_eq!(extract(&[r#"at="x.y.z"#]), Err(ErrorKind::InvalidRequest));
        assert_eq!(extract(&["at="]), Ok(None));
    }

    #[test]
    fn query_is_ignored_unless_configured() {
        let uri = Uri::from_static("/?access_token=q.r.s");
        assert_eq!(bearer_only().extract(&HeaderMap::new(), &uri).unwrap(), None);
    }
}
