//! Where the endpoint is: configured, or read from the authorization server's metadata
//! (RFC 8414 `introspection_endpoint`, at `/.well-known/oauth-authorization-server` and then at
//! `/.well-known/openid-configuration`). The metadata is read once, by the first call that needs
//! it (a failed read is retried by the next call); its `issuer` must be the one configured
//! (RFC 8414 §3.3), and an `https` issuer's endpoint must be `https`.

use reqwest::Url;
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::client::CallError;
use super::settings::redacted;

/// The introspection endpoint, given or to be discovered.
pub(super) enum Endpoint {
    Fixed(Url),
    Discovered(Box<Discovered>),
}

/// An issuer, its two well-known metadata URLs, and the endpoint once read.
pub(super) struct Discovered {
    issuer: String,
    metadata: [Url; 2],
    resolved: OnceCell<Url>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Fixed(url) => f.write_str(&redacted(url)),
            Endpoint::Discovered(discovered) => write!(f, "discovered from {}", discovered.issuer),
        }
    }
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    introspection_endpoint: Option<String>,
}

impl Endpoint {
    /// An endpoint found from `issuer`'s metadata; `None` when `issuer` is not an http(s) URL
    /// without query or fragment.
    pub(super) fn discover(issuer: &str) -> Option<Endpoint> {
        let parsed = Url::parse(issuer).ok()?;
        if !matches!(parsed.scheme(), "https" | "http")
            || parsed.query().is_some()
            || parsed.fragment().is_some()
        {
            return None;
        }
        let path = parsed.path().trim_end_matches('/');
        let origin = parsed.origin().ascii_serialization();
        // RFC 8414 §3.1: the well-known segment goes between the host and the issuer's path.
        let oauth = Url::parse(&format!("{origin}/.well-known/oauth-authorization-server{path}")).ok()?;
        let oidc =
            Url::parse(&format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))).ok()?;
        let discovered =
            Discovered { issuer: issuer.to_owned(), metadata: [oauth, oidc], resolved: OnceCell::new() };
        Some(Endpoint::Discovered(Box::new(discovered)))
    }

    pub(super) fn is_https(&self) -> bool {
        match self {
            Endpoint::Fixed(url) => url.scheme() == "https",
            Endpoint::Discovered(discovered) => discovered.metadata[0].scheme() == "https",
        }
    }

    /// The issuer the endpoint was discovered from.
    pub(super) fn issuer(&self) -> Option<&str> {
        match self {
            Endpoint::Fixed(_) => None,
            Endpoint::Discovered(discovered) => Some(&discovered.issuer),
        }
    }

    /// The endpoint's URL, reading the metadata the first time.
    pub(super) async fn url(&self, http: &reqwest::Client, limit: usize) -> Result<&Url, CallError> {
        match self {
            Endpoint::Fixed(url) => Ok(url),
            Endpoint::Discovered(discovered) => {
                let Discovered { issuer, metadata, resolved } = &**discovered;
                resolved.get_or_try_init(|| discover(http, limit, issuer, metadata)).await
            }
        }
    }
}

async fn discover(
    http: &reqwest::Client,
    limit: usize,
    issuer: &str,
    metadata: &[Url; 2],
) -> Result<Url, CallError> {
    let mut last = CallError::Discovery("no metadata document");
    for url in metadata {
        let document = match super::client::get_json(http, url, limit).await {
            Ok(document) => document,
            Err(CallError::Status(404)) => {
                last = CallError::Discovery("no metadata at the well-known URLs");
                continue;
            }
            Err(err) => return Err(err),
        };
        let metadata: Metadata = serde_json::from_slice(&document)
            .map_err(|_| CallError::Discovery("the metadata is malformed"))?;
        if metadata.issuer != issuer {
            return Err(CallError::Discovery("the metadata names another issuer"));
        }
        let endpoint = metadata
            .introspection_endpoint
            .and_then(|endpoint| Url::parse(&endpoint).ok())
            .filter(|endpoint| matches!(endpoint.scheme(), "https" | "http"))
            .ok_or(CallError::Discovery("the metadata has no usable introspection_endpoint"))?;
        if url.scheme() == "https" && endpoint.scheme() != "https" {
            return Err(CallError::Discovery("the metadata's introspection_endpoint leaves https"));
        }
        return Ok(endpoint);
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_urls() {
        let Some(Endpoint::Discovered(discovered)) = Endpoint::discover("https://as.example.com/tenant/a/")
        else {
            panic!("an issuer URL");
        };
        let metadata = &discovered.metadata;
        assert_eq!(
            metadata[0].as_str(),
            "https://as.example.com/.well-known/oauth-authorization-server/tenant/a"
        );
        assert_eq!(metadata[1].as_str(), "https://as.example.com/tenant/a/.well-known/openid-configuration");
        assert!(Endpoint::discover("ftp://as.example.com").is_none());
        assert!(Endpoint::discover("https://as.example.com/?q=1").is_none());
    }
}
