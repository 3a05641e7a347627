//! Entry points for the cargo-fuzz targets in `fuzz/`: the crate-internal steps of the request
//! path, reachable without a server. Not part of the public API (hidden, no stability promise);
//! each function calls the very code the layer runs.
//!
//! Compiled only for fuzzing (`--cfg fuzzing`, set by cargo-fuzz; re-exported as
//! `tower_jwt_guard::__fuzz`) and for this file's tests.

use std::sync::Arc;

use http::{HeaderMap, Uri};
use serde::de::IgnoredAny;

use crate::guard::config::JwtAuth;
use crate::guard::verify::{JoseHeader, Verification};
use crate::primitives::claims::TokenFacts;
use crate::primitives::error::{AuthError, ErrorKind};

/// Step 1: the token of a request with these headers and URI, from the configured sources.
pub fn extract<'r>(
    auth: &JwtAuth,
    headers: &'r HeaderMap,
    uri: &'r Uri,
) -> Result<Option<&'r str>, AuthError> {
    match auth.shared.sources.extract(headers, uri)? {
        Some(token) => crate::guard::source::check_charset(token).map(Some),
        None => Ok(None),
    }
}

/// The JOSE header parser, on decoded header bytes.
pub fn parse_header(decoded: &[u8]) -> Result<(), AuthError> {
    JoseHeader::parse(decoded).map(drop)
}

/// Step 2 and the time checks: verifies `token` with the configuration's keys (static keys
/// only: a key source that must fetch answers `AUTH_UNAVAILABLE`), claims decoded into
/// nothing in particular, checked against the clock at `now` (seconds since the epoch).
pub fn verify(auth: &JwtAuth, token: &str, now: u64) -> Result<Arc<TokenFacts>, AuthError> {
    let verifier = &auth.shared.verifier;
    match verifier.verify::<IgnoredAny>(token) {
        Verification::Done(Ok((verified, _with))) => {
            verifier.check_time(&verified, now)?;
            Ok(verified.facts)
        }
        Verification::Done(Err(err)) => Err(err),
        Verification::NeedsKey(_) => Err(AuthError::new(ErrorKind::AuthUnavailable)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> JwtAuth {
        JwtAuth::builder().hmac_secret([7u8; 32]).build().unwrap()
    }

    #[test]
    fn extract_finds_the_bearer_token() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer a.b.c".parse().unwrap());
        let uri = Uri::from_static("/");
        assert_eq!(extract(&auth(), &headers, &uri).unwrap(), Some("a.b.c"));
    }

    #[test]
    fn parse_header_refuses_unknown_crit() {
        assert!(parse_header(br#"{"alg":"HS256"}"#).is_ok());
        assert!(parse_header(br#"{"alg":"HS256","crit":["x"]}"#).is_err());
    }

    #[test]
    fn verify_refuses_garbage() {
        assert_eq!(verify(&auth(), "a.b.c", 0).unwrap_err().code(), "INVALID_TOKEN");
    }
}
