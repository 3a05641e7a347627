//! The resource identifier (RFC 8707 §2, RFC 9728 §1.2): the URL a protected resource is known
//! by, which its tokens must name in `aud` when
//! [`JwtAuthBuilder::resource`](crate::JwtAuthBuilder::resource) is set.
//!
//! Two spellings of one URL name the same resource when they are equal after RFC 3986's
//! normalisation, the same one DPoP's `htu` is compared with ([`crate::primitives::url`]): scheme and
//! host case, the default port, percent-encodings, dot segments, an empty path and `/`. The
//! path's case and the query's bytes are significant.
//!
//! **A trailing slash is significant**: `https://api.example.com/mcp` and
//! `https://api.example.com/mcp/` are two resources, as RFC 3986 says of two paths, so a token
//! for one is refused by the other. Only an empty path and `/` are the same (RFC 3986 §6.2.3):
//! `https://api.example.com` and `https://api.example.com/` name one resource, published as the
//! former (what a client builds the metadata URL from, RFC 9728 §3.1).
//!
//! The normalised form is computed once for the configured resource; a token's `aud` values are
//! compared byte for byte first, and normalised only when that fails.

use crate::primitives::claims::TokenFacts;
use crate::primitives::error::ConfigError;
use crate::primitives::url::{normalize, path_of};

/// A normalised `http(s)` resource identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceId {
    /// The RFC 3986 normal form (`https://api.example.com/` at the root).
    canonical: String,
    /// The normal form as published: without the root's lone `/` (`https://api.example.com`).
    published: String,
}

impl ResourceId {
    /// Parses a configured resource identifier: an absolute `https` (or, for local development,
    /// `http`) URL without user information or fragment.
    pub(crate) fn parse(url: &str) -> Result<Self, ConfigError> {
        let canonical = normalize(url).ok_or(ConfigError::Invalid(
            "the resource must be an absolute http(s) URL with a host and without a fragment or user info",
        ))?;
        let published = match canonical.strip_suffix('/') {
            Some(origin) if path_of(&canonical) == "/" => origin.to_owned(),
            _ => canonical.clone(),
        };
        Ok(ResourceId { canonical, published })
    }

    /// The normalised form, as published (without the root's lone `/`).
    pub(crate) fn as_str(&self) -> &str {
        &self.published
    }

    /// Whether one of the token's `aud` values names this resource.
    pub(crate) fn named_by(&self, facts: &TokenFacts) -> bool {
        facts.audience.iter().any(|aud| {
            aud == &self.published
                || aud == &self.canonical
                || normalize(aud).is_some_and(|normalised| normalised == self.canonical)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(url: &str) -> String {
        ResourceId::parse(url).unwrap().as_str().to_owned()
    }

    #[test]
    fn scheme_host_and_default_port_are_normalised() {
        assert_eq!(published("HTTPS://API.Example.COM:443/mcp"), "https://api.example.com/mcp");
        assert_eq!(published("http://localhost:80/x"), "http://localhost/x");
        assert_eq!(published("https://api.example.com:8443/mcp"), "https://api.example.com:8443/mcp");
        assert_eq!(published("http://[::1]:3000/mcp"), "http://[::1]:3000/mcp");
    }

    #[test]
    fn the_root_is_published_without_its_slash_and_a_trailing_slash_counts() {
        assert_eq!(published("https://a.example/"), "https://a.example");
        assert_eq!(published("https://a.example"), "https://a.example");
        assert_eq!(published("https://a.example?tenant=1"), "https://a.example/?tenant=1");
        assert_eq!(published("https://a.example/MCP"), "https://a.example/MCP");
        assert_ne!(published("https://a.example/mcp/"), published("https://a.example/mcp"));
        for bad in ["urn:example:api", "https://user@a.example/", "https://a.example/#frag"] {
            assert!(ResourceId::parse(bad).is_err(), "{bad}");
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
        // The rules DPoP's htu is compared with (RFC 3986 §6.2.2): percent-encodings, dot segments.
        assert!(resource.named_by(&facts(&["https://api.example.com/%6dcp"])));
        assert!(resource.named_by(&facts(&["https://api.example.com/v1/../mcp"])));
        let root = ResourceId::parse("https://api.example.com").unwrap();
        assert!(root.named_by(&facts(&["https://api.example.com/"])));
        assert!(root.named_by(&facts(&["https://api.example.com"])));
        assert!(!resource.named_by(&facts(&["https://api.example.com/mcp/"])));
        assert!(!resource.named_by(&facts(&["https://api.example.com/other"])));
        assert!(!resource.named_by(&facts(&["https://evil.example/mcp"])));
        assert!(!resource.named_by(&facts(&[])));
        assert!(ResourceId::parse("urn:x").is_err());
    }
}
