//! The proof's `htu` (RFC 9449 §4.3 check 9): the URI the client called, without query and
//! fragment, compared with the one this service received after RFC 3986 §6 normalisation.
//!
//! A service behind a proxy does not see the URI the client signed (`http://10.0.0.5:8080/me`
//! for `https://api.example.com/me`): its external origin comes from configuration
//! ([`Dpop::public_url`](super::Dpop::public_url)), from the forwarding headers of trusted
//! proxies ([`Dpop::trusted_proxies`](super::Dpop::trusted_proxies)), or, when explicitly
//! chosen, from the request's own `Host` ([`Dpop::origin_from_request`](super::Dpop::origin_from_request)).
//!
//! The comparison first tries the bytes as they are (what every client sends in practice: no
//! allocation), then both sides normalised: scheme and host lowercased, the default port
//! dropped, percent-encodings of unreserved characters decoded and the others uppercased, dot
//! segments removed, an empty path made `/`.

use http::header::HOST;

use crate::error::ConfigError;
use crate::guard::binding::{RequestHead, TrustedProxies};

/// Where the external scheme and host come from.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    /// Configured: the normalised origin (`https://api.example.com`) and the path prefix the
    /// proxy strips (`/api`, or empty).
    Fixed { origin: String, prefix: String },
    /// `X-Forwarded-Proto`/`X-Forwarded-Host` (or `Forwarded`) when the peer is a trusted
    /// proxy, else the request's own.
    Proxies(TrustedProxies),
    /// The request's `Host` (or absolute URI), scheme `http` unless the URI says otherwise.
    Request,
}

impl Origin {
    /// `url`'s origin and path prefix; an URL with a query, a fragment or user info is refused.
    pub(crate) fn fixed(url: &str) -> Result<Origin, ConfigError> {
        const BAD: ConfigError =
            ConfigError::Invalid("the DPoP public URL must be an http(s) URL without query");
        let normal = normalize(url).ok_or(BAD)?;
        let authority_end = normal.find("://").map(|i| i + 3).ok_or(BAD)?;
        let path_start = normal[authority_end..].find('/').map_or(normal.len(), |i| authority_end + i);
        let prefix = normal[path_start..].trim_end_matches('/').to_owned();
        Ok(Origin::Fixed { origin: normal[..path_start].to_owned(), prefix })
    }

    /// Whether `htu` names the URI of `request`.
    pub(crate) fn matches(&self, htu: &str, request: &RequestHead<'_>) -> bool {
        if htu.contains(['?', '#']) {
            return false;
        }
        let path = request.uri.path();
        match self {
            Origin::Fixed { origin, prefix } => compare(htu, &[origin, prefix, path]),
            Origin::Proxies(proxies) => {
                let (scheme, host) = forwarded(proxies, request).unwrap_or_else(|| own(request));
                compare(htu, &[scheme, "://", host, path])
            }
            Origin::Request => {
                let (scheme, host) = own(request);
                compare(htu, &[scheme, "://", host, path])
            }
        }
    }
}

/// The request's own scheme and host.
fn own<'r>(request: &RequestHead<'r>) -> (&'r str, &'r str) {
    let scheme = request.uri.scheme_str().unwrap_or("http");
    let host = match request.uri.authority() {
        Some(authority) => authority.as_str(),
        None => request.headers.get(HOST).and_then(|host| host.to_str().ok()).unwrap_or(""),
    };
    (scheme, host)
}

/// The scheme and host a trusted proxy forwarded: the last value of each header.
fn forwarded<'r>(proxies: &TrustedProxies, request: &RequestHead<'r>) -> Option<(&'r str, &'r str)> {
    let peer = request.peer_addr()?;
    if !proxies.is_trusted(peer.ip()) {
        return None;
    }
    let last = |name: &str| -> Option<&'r str> {
        let line = request.headers.get_all(name).iter().next_back()?.to_str().ok()?;
        Some(line.rsplit(',').next()?.trim())
    };
    if let (Some(proto), Some(host)) = (last("x-forwarded-proto"), last("x-forwarded-host")) {
        return Some((proto, host));
    }
    // RFC 7239: the last element, its `proto` and `host` parameters.
    let element = last("forwarded")?;
    let mut proto = None;
    let mut host = None;
    for pair in element.split(';') {
        let (name, value) = pair.trim().split_once('=')?;
        let value = value.trim_matches('"');
        if name.eq_ignore_ascii_case("proto") {
            proto = Some(value);
        } else if name.eq_ignore_ascii_case("host") {
            host = Some(value);
        }
    }
    Some((proto?, host?))
}

/// `htu` against the concatenation of `parts`: bytes first, then normalised.
fn compare(htu: &str, parts: &[&str]) -> bool {
    let mut rest = htu.as_bytes();
    let exact = parts.iter().all(|part| match rest.strip_prefix(part.as_bytes()) {
        Some(tail) => {
            rest = tail;
            true
        }
        None => false,
    }) && rest.is_empty();
    exact || {
        let expected: String = parts.concat();
        matches!((normalize(htu), normalize(&expected)), (Some(a), Some(b)) if a == b)
    }
}

/// RFC 3986 §6.2.2 and §6.2.3 normalisation of an http(s) URI; `None` when it is not one (or
/// carries user info, a query or a fragment).
pub(crate) fn normalize(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    if rest.contains(['?', '#']) {
        return None;
    }
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => (&authority[..i], &authority[i + 1..]),
        _ => (authority, ""),
    };
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port = port.trim_start_matches('0');
    let mut out = String::with_capacity(uri.len());
    out.push_str(&scheme);
    out.push_str("://");
    out.push_str(&percent(host)?.to_ascii_lowercase());
    if !port.is_empty() && port != default_port {
        out.push(':');
        out.push_str(port);
    }
    let path = percent(path)?;
    out.push_str(&remove_dot_segments(if path.is_empty() { "/" } else { &path }));
    Some(out)
}

/// Percent-encodings: unreserved characters decoded, the others' hex digits uppercased.
fn percent(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            let value = u8::from_str_radix(hex, 16).ok()?;
            if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(value));
            } else {
                out.push('%');
                out.push_str(&hex.to_ascii_uppercase());
            }
            i += 3;
        } else {
            out.push(char::from(bytes[i]));
            i += 1;
        }
    }
    text.is_ascii().then_some(out)
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let ends_open = path.ends_with("/.") || path.ends_with("/..") || path == "." || path == "..";
    for segment in path.split('/').skip(1) {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if ends_open || out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3986_normalisation() {
        let same = [
            ("HTTPS://API.Example.COM:443/a/./b/../c", "https://api.example.com/a/c"),
            ("http://example.com", "http://example.com/"),
            ("http://example.com:80/%7euser/%2f", "http://example.com/~user/%2F"),
            ("http://example.com:8080/x", "http://example.com:8080/x"),
            ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ];
        for (input, normal) in same {
            assert_eq!(normalize(input).as_deref(), Some(normal), "{input}");
        }
        for bad in [
            "ftp://example.com/",
            "https://user@example.com/",
            "https://example.com/?q",
            "https:///x",
            "https://e.com/%zz",
        ] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_request_uri_against_htu() {
        let request =
            http::Request::builder().uri("/me?x=1").header("host", "internal:8080").body(()).unwrap();
        let head = RequestHead::of(&request);
        let origin = Origin::fixed("https://API.example.com/api/").unwrap();
        assert!(origin.matches("https://api.example.com/api/me", &head));
        assert!(origin.matches("https://api.example.com:443/api/./me", &head));
        assert!(!origin.matches("https://api.example.com/api/me?x=1", &head));
        assert!(!origin.matches("https://api.example.com/me", &head));
        assert!(!origin.matches("http://api.example.com/api/me", &head));
        assert!(Origin::Request.matches("http://internal:8080/me", &head));
        assert!(!Origin::Request.matches("https://internal:8080/me", &head));
        assert!(Origin::fixed("https://api.example.com/?q").is_err());
    }
}
