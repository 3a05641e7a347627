//! The one normaliser of `http(s)` URLs, shared by the DPoP proof's `htu` (RFC 9449 §4.3) and
//! the resource identifier (RFC 8707, RFC 9728): two spellings of one URL compare equal after
//! RFC 3986's syntax-based normalisation (§6.2.2) and its scheme-based one (§6.2.3), and only then.
//!
//! - §6.2.2.1 case: the scheme and the host are lowercased, the hex digits of percent-encodings
//!   uppercased;
//! - §6.2.2.2 percent-encoding: an encoded unreserved character (`A-Z a-z 0-9 - . _ ~`) is decoded;
//! - §6.2.2.3 path segments: `.` and `..` segments are removed (§5.2.4);
//! - §6.2.3 scheme: the default port (80 for `http`, 443 for `https`) and an empty port are
//!   dropped, an empty path is `/`.
//!
//! Nothing else: the path's case, a trailing slash (`/mcp` and `/mcp/` are two resources) and
//! the query's bytes (but their percent-encodings) are significant. A URL with user
//! information or a fragment, another scheme, no host, or a byte outside visible ASCII is none
//! of these URLs: `None`.
//!
//! Its RFC 3986 steps (percent-encodings, dot segments) are the crate's only ones: the readings
//! of a request path ([`path`](crate::primitives::path)) are built on them.

/// The normal form of an `http(s)` URL (query kept), or `None` when it is not one:
/// `HTTPS://Api.Example.COM:443/a/./b/../%7ec?x=%2f` is `https://api.example.com/a/~c?x=%2F`.
pub(crate) fn normalize(url: &str) -> Option<String> {
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    let (scheme, default_port) = if scheme.eq_ignore_ascii_case("https") {
        ("https", "443")
    } else if scheme.eq_ignore_ascii_case("http") {
        ("http", "80")
    } else {
        return None;
    };
    if rest.contains('#') {
        return None;
    }
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(authority_end);
    if authority.contains('@') {
        return None;
    }
    // The port follows the last colon, unless that colon is inside an IPv6 literal.
    let (host, port) = match authority.rfind(':') {
        Some(colon) if !authority[colon..].contains(']') => (&authority[..colon], &authority[colon + 1..]),
        _ => (authority, ""),
    };
    if host.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (path, query) = match path_and_query.find('?') {
        Some(i) => path_and_query.split_at(i),
        None => (path_and_query, ""),
    };
    let mut out = String::with_capacity(url.len() + 1);
    out.push_str(scheme);
    out.push_str("://");
    out.push_str(&percent(host)?.to_ascii_lowercase());
    let port = match port.trim_start_matches('0') {
        "" if !port.is_empty() => "0",
        digits => digits,
    };
    if !port.is_empty() && port != default_port {
        out.push(':');
        out.push_str(port);
    }
    let path = percent(path)?;
    let path = remove_dot_segments(if path.is_empty() { b"/" } else { path.as_bytes() });
    out.push_str(std::str::from_utf8(&path).ok()?);
    out.push_str(&percent(query)?);
    Some(out)
}

/// The path of a normalised URL (after its authority), up to its query: `/` at least.
pub(crate) fn path_of(normal: &str) -> &str {
    let after_scheme = normal.find("://").map_or(0, |i| i + 3);
    let start = normal[after_scheme..].find('/').map_or(normal.len(), |i| after_scheme + i);
    let end = normal[start..].find('?').map_or(normal.len(), |i| start + i);
    &normal[start..end]
}

/// Percent-encodings: unreserved characters decoded, the others' hex digits uppercased; `None`
/// for a `%` not followed by two hex digits.
fn percent(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let well_formed = bytes.iter().enumerate().all(|(i, &b)| b != b'%' || escape(&bytes[i..]).is_some());
    if !well_formed {
        return None;
    }
    String::from_utf8(decode_unreserved(bytes)).ok()
}

/// The value of the percent-encoding at the start of `bytes`, if it is one.
pub(crate) fn escape(bytes: &[u8]) -> Option<u8> {
    match bytes {
        [b'%', high, low, ..] => {
            let digit = |b: u8| char::from(b).to_digit(16);
            Some(u8::try_from(digit(*high)? * 16 + digit(*low)?).ok()?)
        }
        _ => None,
    }
}

/// RFC 3986 §2.3: the unreserved characters.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// §6.2.2.1–2: unreserved characters decoded, the other encodings' hex digits uppercased.
pub(crate) fn decode_unreserved(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        match escape(&path[i..]) {
            Some(value) if is_unreserved(value) => out.push(value),
            Some(_) => out.extend(path[i..i + 3].iter().map(u8::to_ascii_uppercase)),
            None => {
                out.push(path[i]);
                i += 1;
                continue;
            }
        }
        i += 3;
    }
    out
}

/// RFC 3986 §5.2.4 for an absolute path (a relative one is read as if it began with `/`).
pub(crate) fn remove_dot_segments(path: &[u8]) -> Vec<u8> {
    let body = path.strip_prefix(b"/").unwrap_or(path);
    let mut segments: Vec<&[u8]> = Vec::new();
    let mut parts = body.split(|&b| b == b'/').peekable();
    let mut ends_open = false;
    while let Some(segment) = parts.next() {
        let last = parts.peek().is_none();
        match segment {
            b"." => ends_open = last,
            b".." => {
                segments.pop();
                ends_open = last;
            }
            other => {
                segments.push(other);
                ends_open = false;
            }
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for segment in &segments {
        out.push(b'/');
        out.extend_from_slice(segment);
    }
    if ends_open || out.is_empty() {
        out.push(b'/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3986_section_6_2_2_and_6_2_3() {
        let same = [
            ("HTTPS://API.Example.COM:443/a/./b/../c", "https://api.example.com/a/c"),
            ("http://example.com", "http://example.com/"),
            ("http://example.com:/", "http://example.com/"),
            ("http://example.com:80/%7euser/%2f", "http://example.com/~user/%2F"),
            ("http://example.com:8080/x", "http://example.com:8080/x"),
            ("http://example.com:0080/x", "http://example.com/x"),
            ("http://[::1]:8080/x", "http://[::1]:8080/x"),
            ("http://[::1]/mcp", "http://[::1]/mcp"),
            ("https://a.example?tenant=%7e1%3d", "https://a.example/?tenant=~1%3D"),
            ("https://a.example/MCP/", "https://a.example/MCP/"),
            ("https://a.example/a/..", "https://a.example/"),
            ("https://%41.example/", "https://a.example/"),
        ];
        for (input, normal) in same {
            assert_eq!(normalize(input).as_deref(), Some(normal), "{input}");
            // The normal form is its own normal form.
            assert_eq!(normalize(normal).as_deref(), Some(normal), "{normal}");
        }
        // Percent-encodings are decoded before the dot segments go (§6.2.2's order).
        assert_eq!(normalize("https://a.example/x/%2E%2e/y").as_deref(), Some("https://a.example/y"));
        assert_ne!(normalize("https://a.example/mcp/"), normalize("https://a.example/mcp"));
        for bad in [
            "api",
            "urn:example:api",
            "ftp://example.com/",
            "https://",
            "https:///x",
            "https://:443/",
            "https://a.example:x/",
            "https://user@example.com/",
            "https://a.example/#frag",
            "https://a .example/",
            "https://e.com/%zz",
            "https://e.com/%+1",
            "https://é.example/",
        ] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_path_of_a_normal_url() {
        assert_eq!(path_of("https://a.example/"), "/");
        assert_eq!(path_of("https://a.example/x/y?q=1"), "/x/y");
        assert_eq!(path_of("https://a.example"), "");
    }
}
