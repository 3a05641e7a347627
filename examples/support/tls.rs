//! HTTPS for the examples (rustls on aws-lc-rs, no OpenSSL), and the client certificates that
//! certificate-bound tokens (RFC 8705) are checked against.
//!
//! - `TLS_CERT` / `TLS_KEY`: PEM paths of the server's certificate chain and private key: serve
//!   HTTPS (HTTP/2 and HTTP/1.1) instead of plain HTTP.
//! - `TLS_CLIENT_CA`: PEM path of the CA(s) that sign client certificates: clients are asked for
//!   one, and a certificate they present must chain to this CA. Without `TLS_CLIENT_CA` (TLS on),
//!   clients are still asked, and *any* certificate is accepted for binding, as RFC 8705 §2.2
//!   allows (self-signed clients, whose certificate the token names): the handshake still proves
//!   the client holds the certificate's private key. Either way a client certificate is optional:
//!   plain bearer tokens keep working without one.
//!
//! Every request of a TLS connection carries its [`ClientCertificate`] (and its [`PeerAddr`]), so
//! the layer's [`CertificateBound`](tower_jwt_guard::CertificateBound) policy finds it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme};
use tower::ServiceExt as _;
use tower_jwt_guard::binding::{ClientCertificate, ConnectionScheme, PeerAddr};

use super::{fail, var};

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTPS configuration of `TLS_CERT`, `TLS_KEY` and `TLS_CLIENT_CA`.
#[derive(Clone)]
pub struct Tls {
    pub config: Arc<ServerConfig>,
    /// Whether client certificates are verified against `TLS_CLIENT_CA` (else any is accepted).
    pub client_ca: bool,
    /// The PEM of `TLS_CERT` and `TLS_KEY`, for [`Tls::internal`].
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl Tls {
    /// `TLS_CERT` + `TLS_KEY` (both or neither), `TLS_CLIENT_CA` (only with them); exit 2 naming
    /// the variable on a bad value.
    pub fn from_env() -> Option<Tls> {
        let read = |name: &str| {
            var(name).map(|path| {
                let pem = std::fs::read(&path)
                    .unwrap_or_else(|err| fail(name, format!("cannot read {path}: {err}")));
                (path, pem)
            })
        };
        let (cert, key, client_ca) = (read("TLS_CERT"), read("TLS_KEY"), read("TLS_CLIENT_CA"));
        let ((_, cert), (_, key)) = match (cert, key) {
            (Some(cert), Some(key)) => (cert, key),
            (None, None) if client_ca.is_some() => fail("TLS_CLIENT_CA", "needs TLS_CERT and TLS_KEY"),
            (None, None) => return None,
            (Some(_), None) => fail("TLS_KEY", "is required with TLS_CERT"),
            (None, Some(_)) => fail("TLS_CERT", "is required with TLS_KEY"),
        };
        let config = server_config(&cert, &key, client_ca.as_ref().map(|(_, pem)| pem.as_slice()))
            .unwrap_or_else(|(variable, err)| fail(variable, err));
        Some(Tls { config: Arc::new(config), client_ca: client_ca.is_some(), cert_pem: cert, key_pem: key })
    }

    /// The same server certificate for an internal listener whose clients are services of this
    /// deployment with certificates of their own making: any client certificate is accepted for
    /// binding (RFC 8705 §2.2), whatever `TLS_CLIENT_CA` says.
    pub fn internal(&self) -> Tls {
        let config = server_config(&self.cert_pem, &self.key_pem, None)
            .unwrap_or_else(|(variable, err)| fail(variable, err));
        Tls { config: Arc::new(config), client_ca: false, ..self.clone() }
    }

    /// The leaf certificate of `TLS_CERT` (DER): what a client of this process's own listener pins.
    pub fn server_certificate(&self) -> CertificateDer<'static> {
        CertificateDer::pem_slice_iter(&self.cert_pem)
            .next()
            .and_then(Result::ok)
            .unwrap_or_else(|| fail("TLS_CERT", "no certificate in the file"))
    }

    /// A line for the banner.
    pub fn describe(&self) -> &'static str {
        if self.client_ca {
            "HTTPS; client certificates optional, verified against TLS_CLIENT_CA"
        } else {
            "HTTPS; client certificates optional, any accepted for binding (no TLS_CLIENT_CA, RFC 8705 §2.2)"
        }
    }
}

/// A rustls server configuration: the certificate chain and key (PEM), client certificates
/// requested (optional), verified against `client_ca` (PEM) or, without it, any accepted.
/// On failure: the variable to blame and why.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: Option<&[u8]>,
) -> Result<ServerConfig, (&'static str, String)> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| ("TLS_CERT", format!("not a PEM certificate chain: {err}")))?;
    if chain.is_empty() {
        return Err(("TLS_CERT", "no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|err| ("TLS_KEY", format!("not a PEM private key: {err}")))?;
    let verifier: Arc<dyn ClientCertVerifier> = match client_ca_pem {
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for ca in CertificateDer::pem_slice_iter(pem) {
                let ca = ca.map_err(|err| ("TLS_CLIENT_CA", format!("not a PEM certificate: {err}")))?;
                roots.add(ca).map_err(|err| ("TLS_CLIENT_CA", format!("not a CA certificate: {err}")))?;
            }
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .allow_unauthenticated()
                .build()
                .map_err(|err| ("TLS_CLIENT_CA", err.to_string()))?
        }
        None => Arc::new(AnyClientCertificate {
            handshake: HandshakeSignatures { provider: Arc::clone(&provider) },
        }),
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| ("TLS_CERT", err.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|err| ("TLS_KEY", format!("does not fit TLS_CERT: {err}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts any client certificate (RFC 8705 §2.2: self-signed clients, whose certificate is
/// named by the token itself), optional. The certificate's chain is not checked, but the
/// handshake signature is: the client must hold the certificate's private key.
#[derive(Debug)]
struct AnyClientCertificate {
    handshake: HandshakeSignatures,
}

/// The handshake's signature checks, by the provider's algorithms: what both verifiers here keep
/// of rustls's own (the peer proves it holds its certificate's key), whatever they decide of the
/// certificate itself.
#[derive(Debug)]
struct HandshakeSignatures {
    provider: Arc<CryptoProvider>,
}

impl HandshakeSignatures {
    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.handshake.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.handshake.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.handshake.schemes()
    }
}

/// Serves `app` over TLS on `listener` until Ctrl-C: each connection's handshake in its own task
/// (bounded by a timeout), then HTTP/2 or HTTP/1.1; every request carries the connection's
/// [`PeerAddr`] and, when the client presented one, its [`ClientCertificate`].
pub async fn serve(listener: tokio::net::TcpListener, app: axum::Router, tls: &Tls) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.config));
    let shutdown = super::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => return tracing::debug!(%peer, error = %err, "TLS handshake failed"),
                Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
            };
            serve_connection(tls, peer, app).await;
        });
    }
}

/// The TLS connections of `listener`, each handshake in its own task (bounded by a timeout), for
/// servers that take a stream of connections (tonic's `serve_with_incoming`, which records each
/// TLS stream's client certificate in its `TlsConnectInfo`).
pub fn incoming(
    listener: tokio::net::TcpListener,
    tls: &Tls,
) -> impl futures_util::Stream<Item = std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>>
{
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.config));
    let (sender, receiver) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        while !sender.is_closed() {
            let (tcp, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    continue;
                }
            };
            let (acceptor, sender) = (acceptor.clone(), sender.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = sender.send(Ok(tls)).await;
                    }
                    _ => tracing::debug!(%peer, "TLS handshake failed or timed out"),
                }
            });
        }
    });
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|connection| (connection, receiver))
    })
}

/// One TLS connection: its client certificate (read once) goes into every request.
async fn serve_connection(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    peer: SocketAddr,
    app: axum::Router,
) {
    let certificate = tls.get_ref().1.peer_certificates().and_then(ClientCertificate::leaf_of);
    let service = hyper::service::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(PeerAddr(peer));
        // HTTP/1.1 requests name no scheme: DPoP's `htu` is `https://` on this connection.
        request.extensions_mut().insert(ConnectionScheme::HTTPS);
        request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        if let Some(certificate) = &certificate {
            request.extensions_mut().insert(certificate.clone());
        }
        app.clone().oneshot(request)
    });
    let io = hyper_util::rt::TokioIo::new(tls);
    let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    if let Err(err) = builder.serve_connection(io, service).await {
        tracing::debug!(%peer, error = %err, "connection ended with an error");
    }
}

/// A client identity a service generates at start (self-signed, ECDSA P-256): the certificate it
/// presents over mutual TLS and binds its service tokens to (RFC 8705 §2.2).
pub struct ClientIdentity {
    pub certificate: ClientCertificate,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl ClientIdentity {
    /// A fresh self-signed client certificate for `name`.
    pub fn generate(name: &str) -> ClientIdentity {
        let made = (|| {
            let key = rcgen::KeyPair::generate()?;
            let mut params = rcgen::CertificateParams::new(vec![name.to_owned()])?;
            params.distinguished_name.push(rcgen::DnType::CommonName, name);
            params.extended_key_usages.push(rcgen::ExtendedKeyUsagePurpose::ClientAuth);
            let cert = params.self_signed(&key)?;
            Ok::<_, rcgen::Error>((cert.der().clone(), key.serialize_der()))
        })();
        let (der, key) =
            made.unwrap_or_else(|err| fail("TLS_CERT", format!("cannot make a client certificate: {err}")));
        let key = PrivateKeyDer::try_from(key).unwrap_or_else(|err| fail("TLS_CERT", err));
        ClientIdentity { certificate: ClientCertificate::from_der(der.to_vec()), chain: vec![der], key }
    }

    /// A rustls client configuration that presents this identity and trusts exactly `server`
    /// (the certificate of a listener of this same process: pinned, its handshake signature
    /// still checked).
    pub fn client_config(&self, server: CertificateDer<'static>) -> rustls::ClientConfig {
        let provider = Arc::new(aws_lc_rs::default_provider());
        rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap_or_else(|err| fail("TLS_CERT", err))
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedServer {
                server,
                handshake: HandshakeSignatures { provider },
            }))
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .unwrap_or_else(|err| fail("TLS_CERT", err))
    }
}

/// Trusts one server certificate, byte for byte (and checks the handshake signature with it).
#[derive(Debug)]
struct PinnedServer {
    server: CertificateDer<'static>,
    handshake: HandshakeSignatures,
}

impl rustls::client::danger::ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.server.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.handshake.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.handshake.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.handshake.schemes()
    }
}
