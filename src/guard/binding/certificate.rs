//! [`CertificateBound`]: certificate-bound access tokens (RFC 8705 mutual-TLS).

use std::borrow::Cow;

use super::client_certificate::request_certificate;
use super::{BindingPolicy, BindingUnavailable, ClientCertificate, NewBinding, RequestHead, TrustedProxies};
use crate::primitives::claims::Confirmation;
use crate::primitives::error::{AuthError, ErrorKind};

const NAME: &str = "certificate";

/// Binds tokens to the client's TLS certificate (RFC 8705 §3, claim `cnf."x5t#S256"`: the
/// base64url SHA-256 thumbprint of the certificate's DER encoding).
///
/// On every request the thumbprint of the request's [`ClientCertificate`] is compared in
/// constant time with the token's. The certificate is the TLS connection's (a
/// [`ClientCertificate`] extension the server inserts, or tonic's TLS connect info), or, when
/// the connection's peer is one of the [`trusted_proxies`](Self::trusted_proxies), the RFC 9440
/// `Client-Cert` header that proxy wrote; a `Client-Cert` header from anyone else is ignored.
///
/// Refusals: `BINDING_MISMATCH` (binding `"certificate"`) for another certificate, no
/// certificate, an unreadable `Client-Cert` header from a trusted proxy, or (when
/// [`required`](Self::required)) a token without `x5t#S256`; `INVALID_TOKEN` for a thumbprint
/// that is not base64url (no padding) of 32 bytes.
///
/// What it stops: a stolen token used without the client's private key (the TLS handshake
/// proves the key). What it does not stop: a thief who holds the key too (malware on the client).
///
/// ```
/// use tower_jwt_guard::binding::{BindingPolicy, CertificateBound, ClientCertificate, NewBinding, RequestHead};
///
/// let policy = CertificateBound::required();
/// let over = |der: &'static [u8]| {
///     let mut request = http::Request::new(());
///     request.extensions_mut().insert(ClientCertificate::from_der(der));
///     request
/// };
/// // Issuing: the token records the thumbprint of the certificate the client presented.
/// let mut binding = NewBinding::default();
/// policy.bind(&RequestHead::of(&over(b"alice's certificate")), &mut binding).unwrap();
/// let cnf = binding.confirmation().clone();
/// assert_eq!(cnf.certificate_thumbprint.as_ref().map(String::len), Some(43));
///
/// // Checking: the same certificate passes; another one, or none, is refused.
/// assert!(policy.check(&RequestHead::of(&over(b"alice's certificate")), Some(&cnf)).is_ok());
/// let stolen = policy.check(&RequestHead::of(&over(b"mallory's certificate")), Some(&cnf)).unwrap_err();
/// assert_eq!((stolen.code(), stolen.binding()), ("BINDING_MISMATCH", Some("certificate")));
/// assert!(policy.check(&RequestHead::of(&http::Request::new(())), Some(&cnf)).is_err());
/// // Required: a token without the claim is refused; allowed: it passes as a bearer token.
/// assert!(policy.check(&RequestHead::of(&over(b"alice's certificate")), None).is_err());
/// assert!(CertificateBound::allowed().check(&RequestHead::of(&http::Request::new(())), None).is_ok());
/// ```
#[derive(Debug, Clone, Default)]
pub struct CertificateBound {
    proxies: TrustedProxies,
    bearer_allowed: bool,
}

impl CertificateBound {
    /// Every token must be certificate-bound: a token without `x5t#S256` is refused.
    pub fn required() -> Self {
        CertificateBound::default()
    }

    /// Certificate-bound tokens need their certificate; tokens without `x5t#S256` still pass as
    /// plain bearer tokens (over TLS or not). The [`TokenIssuer`](crate::TokenIssuer) binds a
    /// token when the request has a certificate, and mints a bearer token when it has none.
    pub fn allowed() -> Self {
        CertificateBound { bearer_allowed: true, ..CertificateBound::default() }
    }

    /// Believe the RFC 9440 `Client-Cert` header of these TLS-terminating proxies (and only
    /// theirs); default none.
    ///
    /// ```
    /// use tower_jwt_guard::binding::{CertificateBound, TrustedProxies};
    /// let policy = CertificateBound::required().trusted_proxies(TrustedProxies::parse("10.0.0.0/8")?);
    /// # let _ = policy;
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = proxies;
        self
    }

    /// Whether tokens without `x5t#S256` pass ([`allowed`](Self::allowed)).
    pub fn bearer_allowed(&self) -> bool {
        self.bearer_allowed
    }

    /// The request's certificate, or why there is none to compare.
    fn certificate<'a>(&self, request: &RequestHead<'a>) -> Result<Cow<'a, ClientCertificate>, &'static str> {
        match request_certificate(request, &self.proxies) {
            Ok(Some(certificate)) => Ok(certificate),
            Ok(None) => Err("the request has no client certificate"),
            Err(err) => Err(err.reason()),
        }
    }
}

/// The claim's 32 bytes: base64url without padding, canonical (no stray bits), exactly 32 bytes.
fn thumbprint_claim(claim: &str) -> Option<[u8; 32]> {
    use base64::Engine as _;
    if claim.len() != 43 {
        return None;
    }
    let mut bytes = [0u8; 33]; // room for the decoder's estimate
    match base64::engine::general_purpose::URL_SAFE_NO_PAD.decode_slice(claim, &mut bytes) {
        Ok(32) => {
            let mut out = [0u8; 32];
            out.copy_from_slice(&bytes[..32]);
            Some(out)
        }
        _ => None,
    }
}

impl BindingPolicy for CertificateBound {
    fn name(&self) -> &'static str {
        NAME
    }

    fn confirms(&self) -> &'static [&'static str] {
        &["x5t#S256"]
    }

    fn check(&self, request: &RequestHead<'_>, confirmation: Option<&Confirmation>) -> Result<(), AuthError> {
        let Some(claim) = confirmation.and_then(|cnf| cnf.certificate_thumbprint.as_deref()) else {
            return if self.bearer_allowed { Ok(()) } else { Err(AuthError::binding_mismatch(NAME)) };
        };
        let Some(expected) = thumbprint_claim(claim) else {
            return Err(AuthError::with_detail(
                ErrorKind::InvalidToken,
                "cnf x5t#S256 is not the base64url of a SHA-256 thumbprint",
            ));
        };
        let certificate = match request_certificate(request, &self.proxies) {
            Ok(Some(certificate)) => certificate,
            // A client without a certificate: an ordinary refusal.
            Ok(None) => return Err(AuthError::binding_mismatch(NAME)),
            // A trusted proxy that writes what is no certificate: the operator should know.
            Err(err) => {
                tracing::warn!(target: "tower_jwt_guard", reason = err.reason(), "certificate binding: a trusted proxy's Client-Cert header is unreadable");
                return Err(AuthError::binding_mismatch(NAME));
            }
        };
        if super::same(&expected, certificate.thumbprint()) {
            Ok(())
        } else {
            Err(AuthError::binding_mismatch(NAME))
        }
    }

    fn bind(&self, request: &RequestHead<'_>, binding: &mut NewBinding) -> Result<(), BindingUnavailable> {
        match self.certificate(request) {
            Ok(certificate) => {
                binding.confirmation_mut().certificate_thumbprint =
                    Some(super::base64url(certificate.thumbprint()));
                Ok(())
            }
            Err(reason) if self.bearer_allowed => {
                // A bearer token then; said, since a proxy's unreadable header lands here too.
                tracing::debug!(target: "tower_jwt_guard", reason, "certificate binding: minting a bearer token");
                Ok(())
            }
            Err(reason) => Err(BindingUnavailable::new(NAME, reason)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_claims_are_exactly_32_bytes_of_base64url() {
        let good = super::super::base64url(&[7u8; 32]);
        assert_eq!(thumbprint_claim(&good), Some([7u8; 32]));
        let padded = format!("{good}=");
        let std_alphabet = super::super::base64url(&[0xfb; 32]).replace('-', "+").replace('_', "/");
        let stray_bits = format!("{}B", &good[..42]); // the last character's low bits must be zero
        for bad in [
            "",
            "abc",
            padded.as_str(),
            std_alphabet.as_str(),
            stray_bits.as_str(),
            &super::super::base64url(&[7u8; 31]),
            &super::super::base64url(&[7u8; 33]),
            "ééééééééééééééééééééé.",
        ] {
            assert_eq!(thumbprint_claim(bad), None, "{bad:?}");
        }
    }

    mod properties {
        use std::net::SocketAddr;

        use proptest::prelude::*;

        use super::*;
        use crate::guard::binding::PeerAddr;
        use crate::primitives::error::ErrorKind;

        const DER: &[u8] = &[0x30, 0x03, 0x02, 0x01, 0x05];

        fn over_tls() -> http::Request<()> {
            let mut request = http::Request::new(());
            request.extensions_mut().insert(ClientCertificate::from_der(DER));
            request
        }

        fn claim(thumbprint: &str) -> Confirmation {
            let mut cnf = Confirmation::default();
            cnf.certificate_thumbprint = Some(thumbprint.to_owned());
            cnf
        }

        fn canonical() -> String {
            crate::guard::binding::base64url(ClientCertificate::from_der(DER).thumbprint())
        }

        proptest! {
            /// Any claim text: a clean refusal (never a panic), a pass only for the exact thumbprint.
            #[test]
            fn only_the_exact_thumbprint_passes(text in ".{0,60}", index in 0usize..43, replacement in "[A-Za-z0-9_-]") {
                let policy = CertificateBound::required();
                let request = over_tls();
                for candidate in [text, {
                    let mut mutated = canonical();
                    mutated.replace_range(index..index + 1, &replacement);
                    mutated
                }] {
                    let answer = policy.check(&RequestHead::of(&request), Some(&claim(&candidate)));
                    match answer {
                        Ok(()) => prop_assert_eq!(&candidate, &canonical()),
                        Err(err) => prop_assert!(matches!(err.kind(), ErrorKind::InvalidToken | ErrorKind::BindingMismatch)),
                    }
                }
            }

            /// Any `Client-Cert` bytes from a trusted proxy: a clean answer, never a panic.
            #[test]
            fn any_client_cert_header_is_a_clean_answer(value in proptest::collection::vec(0x20u8..0x7f, 0..200)) {
                let Ok(value) = http::HeaderValue::from_bytes(&value) else { return Ok(()) };
                let mut request = http::Request::builder().header("client-cert", value).body(()).unwrap();
                request.extensions_mut().insert(PeerAddr("10.0.0.1:443".parse::<SocketAddr>().unwrap()));
                let policy = CertificateBound::required().trusted_proxies(TrustedProxies::parse("10.0.0.0/8").unwrap());
                if let Err(err) = policy.check(&RequestHead::of(&request), Some(&claim(&canonical()))) {
                    prop_assert_eq!(err.kind(), ErrorKind::BindingMismatch);
                }
            }
        }

        #[test]
        fn the_header_of_the_right_certificate_passes_from_a_trusted_proxy() {
            let mut request = http::Request::builder().header("client-cert", ":MAMCAQU=:").body(()).unwrap();
            request.extensions_mut().insert(PeerAddr("10.0.0.1:443".parse::<SocketAddr>().unwrap()));
            let policy =
                CertificateBound::required().trusted_proxies(TrustedProxies::parse("10.0.0.0/8").unwrap());
            assert!(policy.check(&RequestHead::of(&request), Some(&claim(&canonical()))).is_ok());
            // Not trusted: the header is ignored and there is no connection certificate.
            let untrusted = CertificateBound::required();
            assert!(untrusted.check(&RequestHead::of(&request), Some(&claim(&canonical()))).is_err());
        }
    }
}
