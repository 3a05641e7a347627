//! The HTTP side: one GET with a timeout and a response-size cap, and the `Cache-Control`
//! lifetime of the answer.

use std::time::Duration;

use http::header::{HeaderMap, ACCEPT, CACHE_CONTROL};
use reqwest::{Client, Url};

use super::JwksError;
use crate::guard::keys::capped_body::{read_capped, CappedBodyError};

/// A fetched document: its body and how long the server says it stays fresh.
pub(super) struct Fetched {
    pub(super) body: Vec<u8>,
    pub(super) max_age: Option<Duration>,
}

/// The HTTP client of a key source.
#[derive(Clone)]
pub(super) struct Fetcher {
    client: Client,
    max_response_size: usize,
}

impl Fetcher {
    /// A client with `timeout` per request; with `https_only`, no request (nor redirect) leaves TLS.
    pub(super) fn new(
        timeout: Duration,
        max_response_size: usize,
        https_only: bool,
    ) -> Result<Self, reqwest::Error> {
        let client = Client::builder()
            .https_only(https_only)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("tower-jwt-guard/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Fetcher { client, max_response_size })
    }

    /// A fetcher on an HTTP client another source made with the same settings (its connection
    /// pool is then shared).
    pub(super) fn sharing(client: Client, max_response_size: usize) -> Self {
        Fetcher { client, max_response_size }
    }

    /// The HTTP client (a handle: clones share its connection pool).
    pub(super) fn client(&self) -> &Client {
        &self.client
    }

    /// GETs `url`; the body is read at most up to the size cap.
    pub(super) async fn get(&self, url: &Url) -> Result<Fetched, JwksError> {
        let request_error = |err: reqwest::Error| JwksError::Request(err.without_url().to_string());
        let response = self
            .client
            .get(url.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(request_error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(JwksError::Status(status.as_u16()));
        }
        let limit = self.max_response_size;
        let max_age = max_age(response.headers());
        let body = read_capped(response, limit).await.map_err(|err| match err {
            CappedBodyError::TooLarge => JwksError::TooLarge { limit },
            CappedBodyError::Request(err) => request_error(err),
        })?;
        Ok(Fetched { body, max_age })
    }
}

/// The freshness lifetime a `Cache-Control` header gives: `max-age=N`, or zero for
/// `no-cache` / `no-store` (the caller bounds it).
pub(super) fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut found = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
                None => (directive, None),
            };
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                return Some(Duration::ZERO);
            }
            if name.eq_ignore_ascii_case("max-age") {
                if let Some(seconds) = argument.and_then(|a| a.parse::<u64>().ok()) {
                    found = Some(Duration::from_secs(seconds));
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(CACHE_CONTROL, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn reads_max_age() {
        assert_eq!(max_age(&headers(&["public, max-age=3600"])), Some(Duration::from_secs(3600)));
        assert_eq!(max_age(&headers(&["Max-Age=\"60\", must-revalidate"])), Some(Duration::from_secs(60)));
        assert_eq!(max_age(&headers(&["public", "max-age=5"])), Some(Duration::from_secs(5)));
        assert_eq!(max_age(&headers(&["no-cache"])), Some(Duration::ZERO));
        assert_eq!(max_age(&headers(&["max-age=abc"])), None);
        assert_eq!(max_age(&headers(&[])), None);
    }
}
