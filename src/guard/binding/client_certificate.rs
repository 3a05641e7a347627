//! The client certificate of a request, wherever it comes from: [`ClientCertificate`].
//!
//! Two sources, like the client address:
//! - the TLS connection itself: the server puts the connection's [`ClientCertificate`] into every
//!   request's extensions (a hyper-util or axum accept loop over tokio-rustls, see
//!   [`ClientCertificate::from_rustls`] with the feature `rustls`), or tonic does (its
//!   `TlsConnectInfo`, feature `tonic`);
//! - behind a TLS-terminating proxy, the RFC 9440 `Client-Cert` header, read only when the
//!   connection's peer is one of the [`TrustedProxies`]. From anyone else it is ignored: a client
//!   cannot name a certificate it does not hold. From a trusted proxy it is the only source (the
//!   connection's own certificate, if any, is the proxy's). The proxy must remove any
//!   `Client-Cert` header its own clients send (RFC 9440 §2).

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use http::{Extensions, HeaderName};

use super::{sha256, RequestHead, TrustedProxies};

/// The RFC 9440 header a TLS-terminating proxy writes: the client's leaf certificate, DER, as a
/// structured-field Byte Sequence (`Client-Cert: :MIIB…:`).
pub const CLIENT_CERT: HeaderName = HeaderName::from_static("client-cert");

/// The leaf certificate (DER) a client presented on its TLS connection, with its SHA-256
/// thumbprint (RFC 8705 §3.1), computed once.
///
/// A server that terminates TLS itself inserts it into every request of the connection (cheap to
/// clone: the DER is shared [`Bytes`]); the [`CertificateBound`](super::CertificateBound) policy
/// reads it. tonic records the certificate itself (feature `tonic`); a `ClientCertificate`
/// extension takes precedence.
///
/// ```
/// use tower_jwt_guard::binding::{ClientCertificate, RequestHead};
///
/// // In a hyper accept loop over tokio-rustls, from the handshake's peer certificates
/// // (`tls.get_ref().1.peer_certificates()`), leaf first:
/// let chain: Vec<Vec<u8>> = vec![b"leaf DER".to_vec(), b"intermediate DER".to_vec()];
/// let certificate = ClientCertificate::leaf_of(&chain).unwrap();
/// assert_eq!(certificate.der(), b"leaf DER");
///
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(certificate.clone());
/// assert_eq!(ClientCertificate::of_connection(request.extensions()), Some(certificate));
/// // A chain without a leaf is no certificate.
/// assert!(ClientCertificate::leaf_of::<Vec<u8>>(&[]).is_none());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    der: Bytes,
    thumbprint: [u8; 32],
}

impl ClientCertificate {
    /// The certificate whose DER encoding is `der` (not parsed: the TLS library verified it, or
    /// chose to accept it).
    pub fn from_der(der: impl Into<Bytes>) -> Self {
        let der = der.into();
        let mut thumbprint = [0u8; 32];
        thumbprint.copy_from_slice(sha256(&der).as_ref());
        ClientCertificate { der, thumbprint }
    }

    /// The leaf of a presented chain (its first certificate, RFC 8446 §4.4.2); `None` for an
    /// empty chain.
    pub fn leaf_of<C: AsRef<[u8]>>(chain: &[C]) -> Option<Self> {
        chain.first().map(|leaf| ClientCertificate::from_der(Bytes::copy_from_slice(leaf.as_ref())))
    }

    /// The client certificate of a rustls server connection after its handshake (feature
    /// `rustls`): the leaf of its peer certificates; `None` when the client presented none.
    ///
    /// With tokio-rustls: `ClientCertificate::from_rustls(tls_stream.get_ref().1)`. An axum (or any
    /// tower) app served by hyper-util over tokio-rustls, each request with its connection's
    /// certificate and peer address:
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use tower::ServiceExt as _;
    /// use tower_jwt_guard::binding::{ClientCertificate, PeerAddr};
    ///
    /// async fn serve(app: axum::Router, config: Arc<rustls::ServerConfig>) -> std::io::Result<()> {
    ///     let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
    ///     let acceptor = tokio_rustls::TlsAcceptor::from(config);
    ///     loop {
    ///         let (tcp, peer) = listener.accept().await?;
    ///         let (acceptor, app) = (acceptor.clone(), app.clone());
    ///         tokio::spawn(async move {
    ///             let Ok(tls) = acceptor.accept(tcp).await else { return };
    ///             let certificate = ClientCertificate::from_rustls(tls.get_ref().1);
    ///             let service = hyper::service::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
    ///                 request.extensions_mut().insert(PeerAddr(peer));
    ///                 if let Some(certificate) = &certificate {
    ///                     request.extensions_mut().insert(certificate.clone());
    ///                 }
    ///                 app.clone().oneshot(request)
    ///             });
    ///             let io = hyper_util::rt::TokioIo::new(tls);
    ///             let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    ///             let _ = builder.serve_connection(io, service).await;
    ///         });
    ///     }
    /// }
    /// ```
    #[cfg(feature = "rustls")]
    pub fn from_rustls(connection: &rustls::ServerConnection) -> Option<Self> {
        connection.peer_certificates().and_then(ClientCertificate::leaf_of)
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The SHA-256 thumbprint of the DER encoding: what `cnf."x5t#S256"` carries (base64url).
    ///
    /// ```
    /// use tower_jwt_guard::binding::ClientCertificate;
    /// let certificate = ClientCertificate::from_der(&b"DER"[..]);
    /// assert_eq!(certificate.thumbprint().len(), 32);
    /// ```
    pub fn thumbprint(&self) -> &[u8; 32] {
        &self.thumbprint
    }

    /// The certificate of the request's own TLS connection: a `ClientCertificate` extension,
    /// else tonic's `TlsConnectInfo` (feature `tonic`).
    pub fn of_connection(extensions: &Extensions) -> Option<Self> {
        connection_certificate(extensions).map(Cow::into_owned)
    }

    /// The client certificate of `request`: from a trusted proxy, its `Client-Cert` header (and
    /// nothing else); from anyone else, the connection's certificate (the header is ignored).
    pub fn of_request(
        request: &RequestHead<'_>,
        proxies: &TrustedProxies,
    ) -> Result<Option<Self>, ClientCertificateError> {
        request_certificate(request, proxies).map(|certificate| certificate.map(Cow::into_owned))
    }
}

/// [`ClientCertificate::of_connection`], borrowed from the extensions when it is there.
fn connection_certificate(extensions: &Extensions) -> Option<Cow<'_, ClientCertificate>> {
    if let Some(certificate) = extensions.get::<ClientCertificate>() {
        return Some(Cow::Borrowed(certificate));
    }
    #[cfg(feature = "tonic")]
    if let Some(info) =
        extensions.get::<tonic::transport::server::TlsConnectInfo<tonic::transport::server::TcpConnectInfo>>()
    {
        return info
            .peer_certs()
            .and_then(|chain| ClientCertificate::leaf_of(chain.as_slice()))
            .map(Cow::Owned);
    }
    None
}

/// [`ClientCertificate::of_request`], borrowed when it is the connection's extension (the
/// binding's check on every request: no clone).
pub(crate) fn request_certificate<'a>(
    request: &RequestHead<'a>,
    proxies: &TrustedProxies,
) -> Result<Option<Cow<'a, ClientCertificate>>, ClientCertificateError> {
    let from_proxy = !proxies.networks().is_empty()
        && request.peer_addr().is_some_and(|peer| proxies.is_trusted(peer.ip()));
    if from_proxy {
        let mut lines = request.headers.get_all(CLIENT_CERT).iter();
        return match (lines.next(), lines.next()) {
            (None, _) => Ok(None),
            (Some(line), None) => {
                parse_client_cert(line.as_bytes()).map(|certificate| Some(Cow::Owned(certificate)))
            }
            (Some(_), Some(_)) => Err(ClientCertificateError::MalformedHeader),
        };
    }
    Ok(connection_certificate(request.extensions))
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate").field("der_len", &self.der.len()).finish_non_exhaustive()
    }
}

/// Why a request's client certificate could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientCertificateError {
    /// A trusted proxy's `Client-Cert` header is not one RFC 9440 Byte Sequence (`:base64:`) of
    /// a plausible DER certificate, or there are several.
    MalformedHeader,
}

impl ClientCertificateError {
    /// A fixed description.
    pub const fn reason(self) -> &'static str {
        match self {
            ClientCertificateError::MalformedHeader => "the Client-Cert header is malformed",
        }
    }
}

impl fmt::Display for ClientCertificateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ClientCertificateError {}

/// The largest `Client-Cert` value read (a certificate of a few kilobytes, base64).
const MAX_CLIENT_CERT_LEN: usize = 16 * 1024;

/// An RFC 9440 `Client-Cert` value: an RFC 8941 Byte Sequence (`:` base64 `:`, padding optional,
/// §4.2.7), optional surrounding spaces, no parameters; the content a DER SEQUENCE.
fn parse_client_cert(value: &[u8]) -> Result<ClientCertificate, ClientCertificateError> {
    use base64::Engine as _;
    const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let malformed = ClientCertificateError::MalformedHeader;
    if value.len() > MAX_CLIENT_CERT_LEN {
        return Err(malformed);
    }
    let value = value.trim_ascii();
    let inner = value.strip_prefix(b":").and_then(|v| v.strip_suffix(b":")).ok_or(malformed)?;
    let der = LENIENT.decode(inner).map_err(|_| malformed)?;
    // A certificate is a DER SEQUENCE; anything else (empty, text) is not one.
    if der.first() != Some(&0x30) || der.len() < 2 {
        return Err(malformed);
    }
    Ok(ClientCertificate::from_der(der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_cert_values() {
        let der = [0x30, 0x03, 0x02, 0x01, 0x05];
        let expected = ClientCertificate::from_der(der.to_vec());
        for good in [":MAMCAQU=:", " :MAMCAQU=: ", ":MAMCAQU:"] {
            assert_eq!(parse_client_cert(good.as_bytes()), Ok(expected.clone()), "{good}");
        }
        for bad in [
            "",
            "::",
            "MAMCAQU=",
            ":MAMCAQU=",
            ":MAMCAQU=:;a=1",
            ":MAMC AQU=:",
            ":MAMC-AQU=:",
            ":aGVsbG8=:",
            ":MA==:",
            "\"MAMCAQU=\"",
        ] {
            assert_eq!(
                parse_client_cert(bad.as_bytes()),
                Err(ClientCertificateError::MalformedHeader),
                "{bad}"
            );
        }
        let huge = format!(":{}:", "A".repeat(MAX_CLIENT_CERT_LEN));
        assert!(parse_client_cert(huge.as_bytes()).is_err());
    }

    #[test]
    fn debug_shows_no_certificate() {
        let certificate = ClientCertificate::from_der(b"secret-ish".to_vec());
        assert_eq!(format!("{certificate:?}"), "ClientCertificate { der_len: 10, .. }");
    }
}
