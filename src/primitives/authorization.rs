//! The `Authorization` header: its scheme and credential (RFC 6750 §2.1, RFC 9449 §7.1),
//! read once for every part that needs it (the layer's token sources, the DPoP binding).

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName};

use crate::primitives::error::{AuthError, ErrorKind};

/// Default cap on the token's length, checked before any decoding.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

/// How the request presented its token: what the DPoP binding needs to know (RFC 9449 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// `Authorization: Bearer`.
    Bearer,
    /// `Authorization: DPoP` (only read when DPoP is configured).
    Dpop,
    /// A cookie, a custom header or a query parameter: a bearer token by another way.
    Other,
}

/// Whether the request presents its token with `Authorization: DPoP` (RFC 9449 §7.1): its
/// refusals carry their error on the `DPoP` challenge. Read on the refusal path only.
pub(crate) fn uses_dpop_scheme(headers: &HeaderMap) -> bool {
    headers.get(AUTHORIZATION).is_some_and(|value| {
        value.as_bytes().get(..5).is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"dpop "))
    })
}

pub(crate) fn invalid_request(message: &'static str) -> AuthError {
    AuthError::with_detail(ErrorKind::InvalidRequest, message)
}

pub(crate) fn too_large() -> AuthError {
    AuthError::with_detail(ErrorKind::InvalidToken, "the token is too large")
}

/// The single value of `name`, or an error when the header is repeated.
pub(crate) fn single<'r>(headers: &'r HeaderMap, name: &HeaderName) -> Result<Option<&'r [u8]>, AuthError> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => Ok(Some(value.as_bytes())),
        (Some(_), Some(_)) => Err(invalid_request("more than one authorization header")),
    }
}

/// `Authorization: Bearer <b64token>` (or `DPoP <b64token>` when `dpop`); another scheme
/// means "no bearer token".
///
/// No allocation, and no pass over the token's bytes: the character set is the token sources'
/// `check_charset`, run only for tokens the verified-token cache does not know.
pub(crate) fn authorization(
    headers: &HeaderMap,
    max_len: usize,
    dpop: bool,
) -> Result<Option<(&[u8], Scheme)>, AuthError> {
    let Some(value) = single(headers, &AUTHORIZATION)? else { return Ok(None) };
    let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
        Some(space) => (&value[..space], &value[space + 1..]),
        None => (value, &value[value.len()..]),
    };
    let scheme = if scheme.eq_ignore_ascii_case(b"bearer") {
        Scheme::Bearer
    } else if dpop && scheme.eq_ignore_ascii_case(b"dpop") {
        Scheme::Dpop
    } else {
        return Ok(None);
    };
    let token = trim_spaces(rest);
    if token.is_empty() {
        return Err(invalid_request("the bearer token is empty"));
    }
    if token.len() > max_len {
        return Err(too_large());
    }
    // The character set is checked by `check_charset`, and only for tokens the verified-token
    // cache does not know: a cached token passed that check when it was verified.
    Ok(Some((token, scheme)))
}

fn trim_spaces(mut bytes: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' '] = bytes {
        bytes = rest;
    }
    bytes
}
