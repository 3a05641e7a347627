//! What the server knows of the connection, wherever it put it in the request's extensions:
//! its remote address ([`PeerAddr`]) and its scheme ([`ConnectionScheme`]).

use std::net::SocketAddr;

use http::uri::Scheme;
use http::Extensions;

/// The address of the connection's remote end, for servers that do not record it themselves
/// (a bare hyper service): insert it into every request's extensions, and the
/// [`ClientIpBinding`](super::ClientIpBinding) and [`TrustedProxies`](super::TrustedProxies)
/// find it.
///
/// axum (`into_make_service_with_connect_info::<SocketAddr>()`, feature `axum`) and tonic
/// (feature `tonic`) record the address themselves; `PeerAddr` takes precedence over both.
///
/// ```
/// use std::net::SocketAddr;
/// use tower_jwt_guard::binding::{PeerAddr, RequestHead};
///
/// // In a hyper `service_fn`, with `peer` from `TcpListener::accept`:
/// let peer: SocketAddr = "192.0.2.10:51000".parse().unwrap();
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(PeerAddr(peer));
/// assert_eq!(RequestHead::of(&request).peer_addr(), Some(peer));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

/// `PeerAddr`, then axum's `ConnectInfo<SocketAddr>`, then tonic's `TcpConnectInfo` (plain or
/// inside its `TlsConnectInfo`).
pub(crate) fn peer_addr(extensions: &Extensions) -> Option<SocketAddr> {
    if let Some(PeerAddr(addr)) = extensions.get::<PeerAddr>() {
        return Some(*addr);
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(*addr);
    }
    #[cfg(feature = "tonic")]
    {
        use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
        if let Some(addr) = extensions.get::<TcpConnectInfo>().and_then(TcpConnectInfo::remote_addr) {
            return Some(addr);
        }
        // Over TLS, tonic records the TCP info inside its TLS connect info.
        if let Some(addr) =
            extensions.get::<TlsConnectInfo<TcpConnectInfo>>().and_then(|info| info.get_ref().remote_addr())
        {
            return Some(addr);
        }
    }
    None
}

/// The scheme of the connection a request came on: `https` when the server accepted it over
/// TLS. An HTTP/1.1 request names no scheme (its target is a path), so a server that terminates
/// TLS itself inserts this into every request's extensions, and DPoP's `htu` (with
/// [`Dpop::origin_from_request`](super::Dpop::origin_from_request), or from a peer that is no
/// trusted proxy) starts with `https://`. HTTP/2 requests carry their scheme (`:scheme`), which
/// comes first; a connection with a [`ClientCertificate`](super::ClientCertificate) (or tonic's
/// TLS connect info) is TLS too. Without any of these, the scheme is `http`.
///
/// ```
/// use tower_jwt_guard::binding::ConnectionScheme;
///
/// // In the TLS accept loop, for every request of the connection:
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(ConnectionScheme::HTTPS);
/// # assert_eq!(request.extensions().get::<ConnectionScheme>(), Some(&ConnectionScheme::HTTPS));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionScheme(pub Scheme);

impl ConnectionScheme {
    /// A TLS connection.
    pub const HTTPS: ConnectionScheme = ConnectionScheme(Scheme::HTTPS);
    /// A plain connection.
    pub const HTTP: ConnectionScheme = ConnectionScheme(Scheme::HTTP);
}

/// The scheme of the request's connection, when the extensions tell: [`ConnectionScheme`], else
/// `https` for a connection with a client certificate (or tonic's TLS connect info).
pub(crate) fn connection_scheme(extensions: &Extensions) -> Option<&str> {
    if let Some(ConnectionScheme(scheme)) = extensions.get::<ConnectionScheme>() {
        return Some(scheme.as_str());
    }
    if extensions.get::<super::ClientCertificate>().is_some() {
        return Some("https");
    }
    #[cfg(feature = "tonic")]
    if extensions
        .get::<tonic::transport::server::TlsConnectInfo<tonic::transport::server::TcpConnectInfo>>()
        .is_some()
    {
        return Some("https");
    }
    None
}
