//! The connection's remote address, wherever the server put it in the request's extensions.

use std::net::SocketAddr;

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
