//! Entry points for the cargo-fuzz targets in `fuzz/`: the crate-internal steps of the request
//! path, reachable without a server. Not part of the public API (hidden, no stability promise);
//! each function calls the very code the layer runs.

use std::sync::Arc;

use http::{HeaderMap, Uri};
use serde::de::IgnoredAny;

use crate::config::JwtAuth;
use crate::context::TokenFacts;
use crate::error::{AuthError, ErrorKind};
use crate::verify::{JoseHeader, Verification};

/// Step 1: the token of a request with these headers and URI, from the configured sources.
///
/// ```
/// let auth = tower_jwt_guard::JwtAuth::builder().hmac_secret([7u8; 32]).build()?;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("authorization", "Bearer a.b.c".parse().unwrap());
/// let uri = http::Uri::from_static("/");
/// assert_eq!(tower_jwt_guard::__fuzz::extract(&auth, &headers, &uri).unwrap(), Some("a.b.c"));
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
pub fn extract<'r>(
    auth: &JwtAuth,
    headers: &'r HeaderMap,
    uri: &'r Uri,
) -> Result<Option<&'r str>, AuthError> {
    match auth.shared.sources.extract(headers, uri)? {
        Some(token) => crate::source::check_charset(token).map(Some),
        None => Ok(None),
    }
}

/// The JOSE header parser, on decoded header bytes.
///
/// ```
/// assert!(tower_jwt_guard::__fuzz::parse_header(br#"{"alg":"HS256"}"#).is_ok());
/// assert!(tower_jwt_guard::__fuzz::parse_header(br#"{"alg":"HS256","crit":["x"]}"#).is_err());
/// ```
pub fn parse_header(decoded: &[u8]) -> Result<(), AuthError> {
    JoseHeader::parse(decoded).map(drop)
}

/// Step 2 and the time checks: verifies `token` with the configuration's keys (static keys
/// only: a key source that must fetch answers `AUTH_UNAVAILABLE`), claims decoded into
/// nothing in particular, checked against the clock at `now` (seconds since the epoch).
///
/// ```
/// let auth = tower_jwt_guard::JwtAuth::builder().hmac_secret([7u8; 32]).build()?;
/// let err = tower_jwt_guard::__fuzz::verify(&auth, "a.b.c", 0).unwrap_err();
/// assert_eq!(err.code(), "INVALID_TOKEN");
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
pub fn verify(auth: &JwtAuth, token: &str, now: u64) -> Result<Arc<TokenFacts>, AuthError> {
    let verifier = &auth.shared.verifier;
    match verifier.verify::<IgnoredAny>(token) {
        Verification::Done(Ok((verified, _key))) => {
            verifier.check_time(&verified, now)?;
            Ok(verified.facts)
        }
        Verification::Done(Err(err)) => Err(err),
        Verification::NeedsKey(_) => Err(AuthError::new(ErrorKind::AuthUnavailable)),
    }
}
