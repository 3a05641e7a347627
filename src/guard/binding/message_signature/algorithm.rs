//! The signature algorithms of the RFC 9421 registry (§6.2.2) the policy verifies.

use std::fmt;

/// An HTTP message signature algorithm (RFC 9421 §3.3).
///
/// The algorithm always comes from the key and the configuration; a signature's `alg`
/// parameter that names another one fails verification (§3.2, step 7).
///
/// ```
/// use tower_jwt_guard::binding::SignatureAlgorithm;
///
/// assert_eq!(SignatureAlgorithm::from_name("ed25519"), Some(SignatureAlgorithm::Ed25519));
/// assert_eq!(SignatureAlgorithm::EcdsaP256Sha256.name(), "ecdsa-p256-sha256");
/// assert_eq!(SignatureAlgorithm::from_name("hs256"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// `rsa-pss-sha512` (§3.3.1).
    RsaPssSha512,
    /// `rsa-v1_5-sha256` (§3.3.2): only for a key of that algorithm, and only where the policy
    /// allows it ([`MessageSignature::allow_rsa_v1_5_sha256`](super::MessageSignature::allow_rsa_v1_5_sha256)).
    RsaV15Sha256,
    /// `hmac-sha256` (§3.3.3): only with a configured shared key.
    HmacSha256,
    /// `ecdsa-p256-sha256` (§3.3.4).
    EcdsaP256Sha256,
    /// `ecdsa-p384-sha384` (§3.3.5).
    EcdsaP384Sha384,
    /// `ed25519` (§3.3.6).
    Ed25519,
}

impl SignatureAlgorithm {
    /// The registered name.
    pub const fn name(self) -> &'static str {
        match self {
            SignatureAlgorithm::RsaPssSha512 => "rsa-pss-sha512",
            SignatureAlgorithm::RsaV15Sha256 => "rsa-v1_5-sha256",
            SignatureAlgorithm::HmacSha256 => "hmac-sha256",
            SignatureAlgorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
            SignatureAlgorithm::EcdsaP384Sha384 => "ecdsa-p384-sha384",
            SignatureAlgorithm::Ed25519 => "ed25519",
        }
    }

    /// The algorithm of a registered `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            SignatureAlgorithm::RsaPssSha512,
            SignatureAlgorithm::RsaV15Sha256,
            SignatureAlgorithm::HmacSha256,
            SignatureAlgorithm::EcdsaP256Sha256,
            SignatureAlgorithm::EcdsaP384Sha384,
            SignatureAlgorithm::Ed25519,
        ]
        .into_iter()
        .find(|alg| alg.name() == name)
    }

    /// The aws-lc-rs verification algorithm of an asymmetric algorithm.
    pub(crate) fn verification(self) -> Option<&'static dyn aws_lc_rs::signature::VerificationAlgorithm> {
        use aws_lc_rs::signature;
        Some(match self {
            SignatureAlgorithm::RsaPssSha512 => &signature::RSA_PSS_2048_8192_SHA512,
            SignatureAlgorithm::RsaV15Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            SignatureAlgorithm::EcdsaP256Sha256 => &signature::ECDSA_P256_SHA256_FIXED,
            SignatureAlgorithm::EcdsaP384Sha384 => &signature::ECDSA_P384_SHA384_FIXED,
            SignatureAlgorithm::Ed25519 => &signature::ED25519,
            SignatureAlgorithm::HmacSha256 => return None,
        })
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
