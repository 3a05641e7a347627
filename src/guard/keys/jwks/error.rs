//! [`JwksError`]: why a JWKS (or OIDC discovery) fetch did not produce keys.

use std::fmt;

/// Why fetching keys failed. The last good keys stay in use (up to the maximum staleness), except
/// after [`NoUsableKeys`](JwksError::NoUsableKeys): a well-formed JWKS without usable keys replaces
/// them (a provider may withdraw a compromised key that way). The error is logged (target
/// `tower_jwt_guard`) and kept in [`JwksStatus`](super::JwksStatus).
///
/// ```
/// use tower_jwt_guard::keys::JwksError;
///
/// let err = JwksError::Status(503);
/// assert_eq!(err.to_string(), "the key endpoint answered HTTP 503");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwksError {
    /// The request failed: connection refused, timeout, TLS, ...
    Request(String),
    /// The endpoint answered with a status other than 2xx.
    Status(u16),
    /// The response is larger than the configured cap.
    TooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// The document is not a JWKS (or not a discovery document): not JSON, no `keys`, ...
    Malformed(String),
    /// The JWKS is well formed but holds no key this source can use (it is empty, or every key was
    /// skipped). Unlike the other errors it is honoured: the source now holds no keys, and tokens
    /// are refused (401) until the provider publishes a usable key.
    NoUsableKeys {
        /// How many keys were skipped (HMAC, `use` other than `sig`, unsupported type, ...).
        skipped: usize,
    },
    /// The discovery document names another issuer than the one configured.
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The issuer in the discovery document.
        found: String,
    },
    /// The discovery document's `jwks_uri` is missing or unusable.
    Discovery(String),
    /// No tokio runtime is running, so nothing can be fetched.
    NoRuntime,
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwksError::Request(why) => write!(f, "the key endpoint could not be reached: {why}"),
            JwksError::Status(status) => write!(f, "the key endpoint answered HTTP {status}"),
            JwksError::TooLarge { limit } => write!(f, "the key endpoint's answer exceeds {limit} bytes"),
            JwksError::Malformed(why) => write!(f, "the key endpoint's answer is malformed: {why}"),
            JwksError::NoUsableKeys { skipped } => {
                write!(f, "the JWKS holds no usable signature key ({skipped} skipped)")
            }
            JwksError::IssuerMismatch { expected, found } => {
                write!(f, "the discovery document names issuer {found:?}, expected {expected:?}")
            }
            JwksError::Discovery(why) => write!(f, "OIDC discovery failed: {why}"),
            JwksError::NoRuntime => f.write_str("no tokio runtime is running to fetch keys"),
        }
    }
}

impl std::error::Error for JwksError {}
