//! The resource identifier (RFC 8707 §2, RFC 9728 §1.2): the URL a protected resource is known
//! by, which its tokens must name in `aud` when
//! [`JwtAuthBuilder::resource`](crate::JwtAuthBuilder::resource) is set.
//!
//! Two spellings of one URL name the same resource: the scheme and the host compare
//! case-insensitively, and the default port (443 for `https`, 80 for `http`) may be written or
//! not (RFC 3986 §6.2.2.1, §6.2.3). Nothing else is normalised: the path and the query compare
//! byte for byte, percent-encoding included.
//!
//! **A trailing slash is significant**: `https://api.example.com/mcp` and
//! `https://api.example.com/mcp/` are two resources, as RFC 3986 says of two paths, so a token
//! for one is refused by the other. Only an empty path and `/` are the same (RFC 3986 §6.2.3):
//! `https://api.example.com` and `https://api.example.com/` both become the former.
//!
//! The normalised form is computed once for the configured resource; a token's `aud` values are
//! compared byte for byte first, and normalised only when that fails.

use crate::error::ConfigError;
use crate::guard::claims::TokenFacts;

/// A normalised `http(s)` resource identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceId {
    canonical: String,
}

impl ResourceId {
    /// Parses a configured resource identifier: an absolute `https` (or, for local development,
    /// `http`) URL without user information or fragment.
    pub(crate) fn parse(url: &str) -> Result<Self, ConfigError> {
        normalize(url).map(|canonical| ResourceId { canonical }).ok_or(ConfigError::Invalid(
            "the resource must be an absolute http(s) URL with a host and without a fragment or user info",
        ))
    }

    /// The normalised form.
    pub(crate) fn as_str(&self) -> &str {
        &self.canonical
    }

    /// Whether one of the token's `aud` values names this resource.
    pub(crate) fn named_by(&self, facts: &TokenFacts) -> bool {
        facts.audience.iter().any(|aud| {
            aud == &self.canonical || normalize(aud).is_some_and(|normalised| normalised == self.canonical)
        })
    }
}

/// The normalised form of an `http(s)` URL, or `None` for anything else.
pub(crate) fn normalize(url: &str) -> Option<String> {
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
    if authority.contains('@') || !authority.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    // The port follows the last colon, unless that colon is inside an IPv6 literal.
    let (host, port) = match authority.rfind(':') {
        Some(colon) if !authority[colon..].contains(']') => {
            (&authority[..colon], Some(&authority[colon + 1..]))
        }
        _ => (authority, None),
    };
    if host.is_empty() || port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    out.push_str("://");
    out.extend(host.chars().map(|c| c.to_ascii_lowercase()));
    if let Some(port) = port.filter(|p| *p != default_port) {
        out.push(':');
        out.push_str(port);
    }
    match path_and_query {
        "" | "/" => {}
        query if query.starts_with('?') => {
            out.push('/');
            out.push_str(query);
        }
        path => out.push_str(path),
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_host_and_default_port_are_normalised() {
        let canonical = Some("https://api.example.com/mcp".to_owned());
        assert_eq!(normalize("https://api.example.com/mcp"), canonical);
        assert_eq!(normalize("HTTPS://API.Example.COM/mcp"), canonical);
        assert_eq!(normalize("https://api.example.com:443/mcp"), canonical);
        assert_eq!(normalize("http://localhost:80/x"), Some("http://localhost/x".into()));
        assert_eq!(
            normalize("https://api.example.com:8443/mcp"),
            Some("https://api.example.com:8443/mcp".into())
        );
        assert_eq!(normalize("http://[::1]:3000/mcp"), Some("http://[::1]:3000/mcp".into()));
        assert_eq!(normalize("http://[::1]/mcp"), Some("http://[::1]/mcp".into()));
    }

    #[test]
    fn the_path_compares_exactly_and_a_trailing_slash_counts() {
        assert_eq!(normalize("https://a.example/MCP"), Some("https://a.example/MCP".into()));
        assert_ne!(normalize("https://a.example/mcp/"), normalize("https://a.example/mcp"));
        // Only the root: an empty path and `/` are one.
        assert_eq!(normalize("https://a.example/"), Some("https://a.example".into()));
        assert_eq!(normalize("https://a.example"), Some("https://a.example".into()));
        assert_eq!(normalize("https://a.example?tenant=1"), Some("https://a.example/?tenant=1".into()));
    }

    #[test]
    fn what_is_not_a_resource_url() {
        for bad in [
            "api",
            "urn:example:api",
            "ftp://a.example/",
            "https://",
            "https://:443/",
            "https://a.example:/",
            "https://a.example:x/",
            "https://user@a.example/",
            "https://a.example/#frag",
            "https://a .example/",
        ] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_token_names_the_resource_in_any_spelling() {
        let resource = ResourceId::parse("https://API.example.com:443/mcp").unwrap();
        assert_eq!(resource.as_str(), "https://api.example.com/mcp");
        let facts = |aud: &[&str]| TokenFacts {
            audience: aud.iter().map(|a| (*a).to_owned()).collect(),
            ..TokenFacts::default()
        };
        assert!(resource.named_by(&facts(&["other", "https://api.example.com/mcp"])));
        assert!(resource.named_by(&facts(&["HTTPS://api.EXAMPLE.com/mcp"])));
        assert!(!resource.named_by(&facts(&["https://api.example.com/mcp/"])));
        assert!(!resource.named_by(&facts(&["https://api.example.com/other"])));
        assert!(!resource.named_by(&facts(&["https://evil.example/mcp"])));
        assert!(!resource.named_by(&facts(&[])));
        assert!(ResourceId::parse("urn:x").is_err());
    }
}
