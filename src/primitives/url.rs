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
    out.push_str(&remove_dot_segments(if path.is_empty() { "/" } else { &path }));
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
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))?;
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
    Some(out)
}

/// RFC 3986 §5.2.4, for an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let ends_open = path.ends_with("/.") || path.ends_with("/..");
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
