//! [`Algorithm`]: the JWS signature algorithms (RFC 7518 §3, RFC 8037), named by this crate.
//!
//! The crate's own type, so that no dependency's type is in the public API: jsonwebtoken (which parses
//! keys and mints tokens inside) can change its major version without breaking users, and the crate can
//! name an algorithm jsonwebtoken lacks. The mapping to jsonwebtoken's enum is internal.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A JWS signature algorithm, by its JOSE name (`"alg"`, RFC 7518 §3.1).
///
/// `FromStr` and `Display` use the JOSE name; so do `Serialize` and `Deserialize`. `none` is not an
/// algorithm here: it can never be allowed.
///
/// ```
/// use tower_jwt_guard::Algorithm;
///
/// let alg: Algorithm = "ES256".parse()?;
/// assert_eq!(alg, Algorithm::ES256);
/// assert_eq!(alg.to_string(), "ES256");
/// assert_eq!(Algorithm::EdDSA.as_str(), "EdDSA");
/// // Names are case-sensitive (RFC 7515 §4.1.1), and `none` is refused.
/// assert!("es256".parse::<Algorithm>().is_err());
/// assert!("none".parse::<Algorithm>().is_err());
/// # Ok::<(), tower_jwt_guard::ParseAlgorithmError>(())
/// ```
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC using SHA-256.
    HS256,
    /// HMAC using SHA-384.
    HS384,
    /// HMAC using SHA-512.
    HS512,
    /// ECDSA using P-256 and SHA-256.
    ES256,
    /// ECDSA using P-384 and SHA-384.
    ES384,
    /// RSASSA-PKCS1-v1_5 using SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 using SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 using SHA-512.
    RS512,
    /// RSASSA-PSS using SHA-256 and MGF1 with SHA-256.
    PS256,
    /// RSASSA-PSS using SHA-384 and MGF1 with SHA-384.
    PS384,
    /// RSASSA-PSS using SHA-512 and MGF1 with SHA-512.
    PS512,
    /// EdDSA with Ed25519 (RFC 8037).
    EdDSA,
}

impl Algorithm {
    /// Every algorithm, in declaration order.
    pub(crate) const ALL: [Algorithm; 12] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::EdDSA,
    ];

    /// The JOSE name (`"HS256"`, `"EdDSA"`, ...).
    ///
    /// ```
    /// assert_eq!(tower_jwt_guard::Algorithm::PS256.as_str(), "PS256");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::EdDSA => "EdDSA",
        }
    }

    /// The key family (HMAC, RSA, EC, Ed), in jsonwebtoken's terms.
    pub(crate) fn family(self) -> jsonwebtoken::AlgorithmFamily {
        self.to_jsonwebtoken().family()
    }

    /// jsonwebtoken's name for this algorithm (it parses keys and mints tokens).
    pub(crate) fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as Jwt;
        match self {
            Algorithm::HS256 => Jwt::HS256,
            Algorithm::HS384 => Jwt::HS384,
            Algorithm::HS512 => Jwt::HS512,
            Algorithm::ES256 => Jwt::ES256,
            Algorithm::ES384 => Jwt::ES384,
            Algorithm::RS256 => Jwt::RS256,
            Algorithm::RS384 => Jwt::RS384,
            Algorithm::RS512 => Jwt::RS512,
            Algorithm::PS256 => Jwt::PS256,
            Algorithm::PS384 => Jwt::PS384,
            Algorithm::PS512 => Jwt::PS512,
            Algorithm::EdDSA => Jwt::EdDSA,
        }
    }

    /// This crate's name for one of jsonwebtoken's algorithms; `None` for one it does not know.
    pub(crate) fn from_jsonwebtoken(alg: jsonwebtoken::Algorithm) -> Option<Self> {
        Self::ALL.into_iter().find(|ours| ours.to_jsonwebtoken() == alg)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = ParseAlgorithmError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == name).ok_or(ParseAlgorithmError(()))
    }
}

/// The error of [`Algorithm`]'s `FromStr`: the text is not the JOSE name of a JWS algorithm this
/// crate knows.
///
/// ```
/// let err = "HS1".parse::<tower_jwt_guard::Algorithm>().unwrap_err();
/// assert_eq!(err.to_string(), "not a known JWS algorithm name");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseAlgorithmError(());

impl fmt::Display for ParseAlgorithmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a known JWS algorithm name")
    }
}

impl std::error::Error for ParseAlgorithmError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_round_trips_through_its_name_serde_and_jsonwebtoken() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.as_str().parse::<Algorithm>(), Ok(alg));
            assert_eq!(format!("{alg:?}"), alg.as_str());
            let json = serde_json::to_string(&alg).unwrap();
            assert_eq!(json, format!("\"{}\"", alg.as_str()));
            assert_eq!(serde_json::from_str::<Algorithm>(&json).unwrap(), alg);
            assert_eq!(Algorithm::from_jsonwebtoken(alg.to_jsonwebtoken()), Some(alg));
            // jsonwebtoken's own parser agrees on the name.
            assert_eq!(alg.as_str().parse::<jsonwebtoken::Algorithm>().ok(), Some(alg.to_jsonwebtoken()));
        }
        assert!(serde_json::from_str::<Algorithm>("\"none\"").is_err());
        assert!("".parse::<Algorithm>().is_err());
    }
}
