//! An issuer pattern such as `https://login.example.com/{tenant}/v2.0`: which `iss` values it
//! matches, and the tenant each names.
//!
//! The tenant must be a plain path segment: 1 to [`MAX_TENANT_LEN`] characters among ASCII letters,
//! digits, `-`, `.`, `_` and `~` (RFC 3986's unreserved characters), and neither `.` nor `..`. So
//! no `/`, `?`, `#`, `%`, space or non-ASCII character ever reaches a discovery URL, and a tenant
//! cannot climb out of the pattern's path.

use reqwest::Url;

use crate::primitives::error::ConfigError;

/// The placeholder of the tenant in a pattern.
pub(super) const PLACEHOLDER: &str = "{tenant}";

/// The longest tenant accepted, in bytes.
///
/// ```
/// assert_eq!(tower_jwt_guard::keys::MAX_TENANT_LEN, 128);
/// ```
pub const MAX_TENANT_LEN: usize = 128;

/// A checked pattern: what comes before and after `{tenant}`.
#[derive(Debug, Clone)]
pub(super) struct Pattern {
    prefix: Box<str>,
    suffix: Box<str>,
}

impl Pattern {
    /// Checks `pattern`: an http(s) URL without query or fragment, with `{tenant}` exactly once,
    /// as a whole path segment.
    pub(super) fn parse(pattern: &str) -> Result<Pattern, ConfigError> {
        let invalid = ConfigError::Invalid;
        let (prefix, suffix) = pattern
            .split_once(PLACEHOLDER)
            .ok_or(invalid("a tenant pattern needs the placeholder {tenant}"))?;
        if suffix.contains(PLACEHOLDER) {
            return Err(invalid("a tenant pattern has one {tenant} placeholder"));
        }
        if pattern.contains(['?', '#']) {
            return Err(invalid("a tenant pattern has no query or fragment"));
        }
        let url = Url::parse(&pattern.replace(PLACEHOLDER, "tenant"))
            .map_err(|_| invalid("a tenant pattern must be a URL once {tenant} is replaced"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(invalid("a tenant pattern must be an http(s) URL"));
        }
        // A whole path segment: after the authority's first '/', and followed by '/' or the end.
        let authority_end = prefix
            .find("://")
            .map(|scheme| scheme + 3)
            .and_then(|start| prefix[start..].find('/').map(|slash| start + slash));
        if authority_end.is_none()
            || !prefix.ends_with('/')
            || !(suffix.is_empty() || suffix.starts_with('/'))
        {
            return Err(invalid("the {tenant} of a tenant pattern must be a whole path segment"));
        }
        Ok(Pattern { prefix: prefix.into(), suffix: suffix.into() })
    }

    /// The tenant `iss` names, when it matches the pattern with a plain segment as tenant.
    pub(super) fn tenant<'i>(&self, iss: &'i str) -> Option<&'i str> {
        let tenant = iss.strip_prefix(&*self.prefix)?.strip_suffix(&*self.suffix)?;
        plain_segment(tenant).then_some(tenant)
    }

    /// The pattern as configured.
    pub(super) fn display(&self) -> String {
        format!("{}{PLACEHOLDER}{}", self.prefix, self.suffix)
    }
}

/// RFC 3986 unreserved characters only, bounded, and not a dot segment.
fn plain_segment(tenant: &str) -> bool {
    (1..=MAX_TENANT_LEN).contains(&tenant.len())
        && tenant != "."
        && tenant != ".."
        && tenant.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_checked() {
        assert!(Pattern::parse("https://login.example.com/{tenant}/v2.0").is_ok());
        assert!(Pattern::parse("https://login.example.com/realms/{tenant}").is_ok());
        for bad in [
            "https://login.example.com/v2.0",
            "https://login.example.com/{tenant}/{tenant}",
            "https://{tenant}.example.com/",
            "https://login.example.com/x{tenant}",
            "https://login.example.com/{tenant}x",
            "https://login.example.com/{tenant}?x=1",
            "ftp://login.example.com/{tenant}",
            "{tenant}",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_plain_segments_are_tenants() {
        let pattern = Pattern::parse("https://login.example.com/{tenant}/v2.0").unwrap();
        assert_eq!(pattern.tenant("https://login.example.com/contoso/v2.0"), Some("contoso"));
        assert_eq!(
            pattern.tenant("https://login.example.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"),
            Some("72f988bf-86f1-41af-91ab-2d7cd011db47")
        );
        let long = format!("https://login.example.com/{}/v2.0", "a".repeat(MAX_TENANT_LEN + 1));
        for bad in [
            "https://login.example.com//v2.0",
            "https://login.example.com/a/b/v2.0",
            "https://login.example.com/../v2.0",
            "https://login.example.com/./v2.0",
            "https://login.example.com/a%2Fb/v2.0",
            "https://login.example.com/a?b/v2.0",
            "https://login.example.com/a#b/v2.0",
            "https://login.example.com/a b/v2.0",
            "https://login.example.com/é/v2.0",
            "https://login.example.com/contoso/v2.0/",
            "https://login.example.com/contoso/v1.0",
            "http://login.example.com/contoso/v2.0",
            long.as_str(),
        ] {
            assert_eq!(pattern.tenant(bad), None, "{bad}");
        }
    }
}
