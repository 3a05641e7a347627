//! The proof's `htu` (RFC 9449 §4.3 check 9): the URI the client called, compared with the one
//! this service received "ignoring any query and fragment parts" on both sides, after RFC 3986
//! §6 normalisation.
//!
//! A service behind a proxy does not see the URI the client signed (`http://10.0.0.5:8080/me`
//! for `https://api.example.com/me`): its external origin comes from configuration
//! ([`Dpop::public_url`](super::Dpop::public_url)), from the forwarding headers of trusted
//! proxies ([`Dpop::trusted_proxies`](super::Dpop::trusted_proxies): the header family those
//! [`TrustedProxies`] are configured with, read by the same code that finds the client's
//! address), or, when explicitly chosen, from the request's own `Host`
//! ([`Dpop::origin_from_request`](super::Dpop::origin_from_request)). The request's own scheme
//! is its URI's (HTTP/2), else its connection's ([`ConnectionScheme`](crate::binding::ConnectionScheme)),
//! else `http`.
//!
//! The comparison first tries the bytes as they are (what every client sends in practice: no
//! allocation), then both sides normalised by the crate's one URL normaliser
//! ([`crate::primitives::url`], also the resource identifier's).

use std::borrow::Cow;

use http::header::HOST;

use crate::guard::binding::{connection_scheme, RequestHead, TrustedProxies};
use crate::primitives::error::ConfigError;
use crate::primitives::url::{normalize, path_of};

/// Where the external scheme and host come from.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    /// Configured: the normalised origin (`https://api.example.com`) and the path prefix the
    /// proxy strips (`/api`, or empty).
    Fixed { origin: String, prefix: String },
    /// What the trusted proxies forwarded, in the header family they are configured with, when
    /// the peer is one of them; else the request's own.
    Proxies(TrustedProxies),
    /// The request's `Host` (or absolute URI), and its scheme (the URI's, the connection's, else `http`).
    Request,
}

impl Origin {
    /// `url`'s origin and path prefix; an URL with a query, a fragment or user info is refused.
    pub(crate) fn fixed(url: &str) -> Result<Origin, ConfigError> {
        const BAD: ConfigError =
            ConfigError::Invalid("the DPoP public URL must be an http(s) URL without query");
        let normal = normalize(url).filter(|normal| !normal.contains('?')).ok_or(BAD)?;
        let path = path_of(&normal);
        let path_start = normal.len() - path.len();
        let prefix = path.trim_end_matches('/').to_owned();
        Ok(Origin::Fixed { origin: normal[..path_start].to_owned(), prefix })
    }

    /// Whether `htu` names the URI of `request`, ignoring the query and fragment of both
    /// (RFC 9449 §4.3 check 9).
    pub(crate) fn matches(&self, htu: &str, request: &RequestHead<'_>) -> bool {
        let htu = htu.find(['?', '#']).map_or(htu, |end| &htu[..end]);
        let path = request.uri.path();
        match self {
            Origin::Fixed { origin, prefix } => compare(htu, &[origin, prefix, path]),
            Origin::Proxies(proxies) => {
                let (scheme, host) = proxies.forwarded_origin(request);
                let scheme = scheme.unwrap_or_else(|| Cow::Borrowed(own_scheme(request)));
                let host = host.unwrap_or_else(|| Cow::Borrowed(own_host(request)));
                compare(htu, &[&scheme, "://", &host, path])
            }
            Origin::Request => compare(htu, &[own_scheme(request), "://", own_host(request), path]),
        }
    }
}

/// The request's own scheme: its URI's (HTTP/2's `:scheme`), else its connection's, else `http`.
fn own_scheme<'r>(request: &RequestHead<'r>) -> &'r str {
    request.uri.scheme_str().or_else(|| connection_scheme(request.extensions)).unwrap_or("http")
}

/// The request's own host: its URI's authority, else its `Host`.
fn own_host<'r>(request: &RequestHead<'r>) -> &'r str {
    match request.uri.authority() {
        Some(authority) => authority.as_str(),
        None => request.headers.get(HOST).and_then(|host| host.to_str().ok()).unwrap_or(""),
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::binding::{ConnectionScheme, ForwardedHeader, PeerAddr};

    #[test]
    fn the_request_uri_against_htu_ignoring_query_and_fragment() {
        let request =
            http::Request::builder().uri("/me?x=1").header("host", "internal:8080").body(()).unwrap();
        let head = RequestHead::of(&request);
        let origin = Origin::fixed("https://API.example.com/api/").unwrap();
        assert!(origin.matches("https://api.example.com/api/me", &head));
        assert!(origin.matches("https://api.example.com:443/api/./me", &head));
        // RFC 9449 §4.3 (9): the query and fragment of either side are ignored.
        assert!(origin.matches("https://api.example.com/api/me?x=1", &head));
        assert!(origin.matches("https://api.example.com/api/me?other#frag", &head));
        assert!(origin.matches("HTTPS://api.example.com/api/%6De?x=1", &head));
        assert!(!origin.matches("https://api.example.com/me", &head));
        assert!(!origin.matches("https://api.example.com/me?/api/me", &head));
        assert!(!origin.matches("http://api.example.com/api/me", &head));
        assert!(Origin::Request.matches("http://internal:8080/me", &head));
        assert!(!Origin::Request.matches("https://internal:8080/me", &head));
        assert!(Origin::fixed("https://api.example.com/?q").is_err());
    }

    /// An HTTP/1.1 request over TLS names no scheme: the connection's is used.
    #[test]
    fn the_scheme_of_a_tls_connection() {
        let mut request = http::Request::builder().uri("/me").header("host", "api:8443").body(()).unwrap();
        assert!(Origin::Request.matches("http://api:8443/me", &RequestHead::of(&request)));
        request.extensions_mut().insert(ConnectionScheme::HTTPS);
        assert!(Origin::Request.matches("https://api:8443/me", &RequestHead::of(&request)));
        assert!(!Origin::Request.matches("http://api:8443/me", &RequestHead::of(&request)));
        let mut request = http::Request::builder().uri("/me").header("host", "api:8443").body(()).unwrap();
        request.extensions_mut().insert(crate::guard::binding::ClientCertificate::from_der(vec![1, 2, 3]));
        assert!(Origin::Request.matches("https://api:8443/me", &RequestHead::of(&request)));
    }

    fn via(peer: &str, headers: &[(&str, &str)]) -> http::Request<()> {
        let mut builder = http::Request::builder().uri("/me").header("host", "internal:8080");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder.body(()).unwrap();
        request.extensions_mut().insert(PeerAddr(peer.parse().unwrap()));
        request
    }

    /// Behind proxies that write `Forwarded`, only its `proto` and `host` count, from the element
    /// about the client: a client's own `X-Forwarded-Host`, passed through, is not believed.
    #[test]
    fn forwarded_proxies_are_read_in_their_own_header() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap().header(ForwardedHeader::Forwarded);
        let origin = Origin::Proxies(proxies);
        let matches = |htu: &str, request: &http::Request<()>| origin.matches(htu, &RequestHead::of(request));
        let honest = via("10.0.0.1:1", &[("forwarded", "for=192.0.2.7;proto=https;host=api.example.com")]);
        assert!(matches("https://api.example.com/me", &honest));
        let passed_through = via(
            "10.0.0.1:1",
            &[
                ("forwarded", "for=192.0.2.7;proto=https;host=api.example.com"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "evil.example"),
            ],
        );
        assert!(matches("https://api.example.com/me", &passed_through));
        assert!(!matches("https://evil.example/me", &passed_through));
        // What the client wrote left of its own element is ignored; inner proxies' elements too.
        let chain = via(
            "10.0.0.1:1",
            &[(
                "forwarded",
                "for=6.6.6.6;proto=https;host=evil.example, for=192.0.2.7;proto=https;host=api.example.com, \
                 for=10.2.2.2;proto=http;host=internal:8080",
            )],
        );
        assert!(matches("https://api.example.com/me", &chain));
        assert!(!matches("https://evil.example/me", &chain));
        // From an untrusted peer, nothing forwarded counts.
        let direct = via("192.0.2.9:1", &[("forwarded", "for=1.1.1.1;proto=https;host=api.example.com")]);
        assert!(matches("http://internal:8080/me", &direct));
        assert!(!matches("https://api.example.com/me", &direct));
    }

    /// Behind proxies that write `X-Forwarded-For`, `X-Forwarded-Proto` and `-Host` count, and a
    /// `Forwarded` header (which such a proxy passes through from the client) does not.
    #[test]
    fn x_forwarded_proxies_are_read_in_their_own_headers() {
        let origin = Origin::Proxies(TrustedProxies::parse("10.0.0.0/8").unwrap());
        let matches = |htu: &str, request: &http::Request<()>| origin.matches(htu, &RequestHead::of(request));
        let request = via(
            "10.0.0.1:1",
            &[
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "api.example.com"),
                ("forwarded", "proto=http;host=evil.example"),
            ],
        );
        assert!(matches("https://api.example.com/me", &request));
        let only_forwarded = via("10.0.0.1:1", &[("forwarded", "for=1.1.1.1;proto=https;host=evil.example")]);
        assert!(!matches("https://evil.example/me", &only_forwarded));
        assert!(matches("http://internal:8080/me", &only_forwarded));
        // Only the scheme forwarded: the host is the request's own.
        let proto = via("10.0.0.1:1", &[("x-forwarded-proto", "https")]);
        assert!(matches("https://internal:8080/me", &proto));
    }
}
