//! OIDC discovery (OpenID Connect Discovery 1.0 §4): from an issuer URL, read
//! `/.well-known/openid-configuration`, check that it names the same issuer, take its `jwks_uri`.

use reqwest::Url;
use serde::Deserialize;

use super::fetch::Fetcher;
use super::JwksError;

/// The part of the provider metadata this crate needs.
#[derive(Deserialize)]
struct ProviderMetadata {
    issuer: String,
    jwks_uri: Option<String>,
}

/// Where an issuer publishes its discovery document.
pub(super) fn discovery_url(issuer: &str) -> Result<Url, &'static str> {
    let url = Url::parse(&format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')))
        .map_err(|_| "the OIDC issuer is not a URL")?;
    match url.scheme() {
        "https" | "http" => Ok(url),
        _ => Err("the OIDC issuer must be an http(s) URL"),
    }
}

/// Reads the discovery document of `issuer` and returns its `jwks_uri`.
pub(super) async fn discover(fetcher: &Fetcher, issuer: &str, url: &Url) -> Result<Url, JwksError> {
    let fetched = fetcher.get(url).await?;
    let metadata: ProviderMetadata = serde_json::from_slice(&fetched.body)
        .map_err(|err| JwksError::Malformed(format!("not an OIDC discovery document: {err}")))?;
    // §4.3: the issuer in the document must be identical to the one the configuration names.
    if metadata.issuer != issuer {
        return Err(JwksError::IssuerMismatch { expected: issuer.to_owned(), found: metadata.issuer });
    }
    let jwks_uri = metadata.jwks_uri.ok_or_else(|| JwksError::Discovery("no jwks_uri".into()))?;
    let jwks_uri = Url::parse(&jwks_uri).map_err(|_| JwksError::Discovery("jwks_uri is not a URL".into()))?;
    match (url.scheme(), jwks_uri.scheme()) {
        ("https", "https") | ("http", "https" | "http") => Ok(jwks_uri),
        _ => Err(JwksError::Discovery("jwks_uri must be https when the issuer is".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_url_appends_the_well_known_path() {
        let url = discovery_url("https://auth.example.com/realms/demo/").unwrap();
        assert_eq!(url.as_str(), "https://auth.example.com/realms/demo/.well-known/openid-configuration");
        assert!(discovery_url("ftp://auth.example.com").is_err());
        assert!(discovery_url("not a url").is_err());
    }
}
