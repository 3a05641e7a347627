//! Who the client is, and which URL it called, when proxies stand in between: [`TrustedProxies`].
//!
//! The connection's peer is the client unless it is a configured trusted proxy. Only then is
//! the forwarding header read, walked from the right (the hop the nearest proxy saw), skipping
//! trusted proxies; the first untrusted address is the client. Anything left of it was written
//! by the client and is ignored, so a client cannot choose its address by sending the header.
//!
//! The same reader gives the scheme and host the client called (DPoP's `htu`), from the header
//! family the proxies are configured with, and from nothing else: with
//! [`ForwardedHeader::Forwarded`], the `proto` and `host` of the element that names the client
//! (the one a trusted proxy wrote about it); with [`ForwardedHeader::XForwardedFor`],
//! `X-Forwarded-Proto` and `X-Forwarded-Host` (the nearest proxy's values: have the proxies set
//! them, not pass a client's on). This module is the crate's one parser of `Forwarded`.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use http::header::FORWARDED;
use http::HeaderName;
use ipnet::IpNet;

use super::RequestHead;
use crate::primitives::error::ConfigError;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Which forwarding header the trusted proxies write.
///
/// Only one is read: a proxy that sets `X-Forwarded-For` passes a client's `Forwarded` header
/// through untouched, so reading both would let the client choose its address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (the de-facto standard; the default).
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

/// Why the client's address could not be found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientIpError {
    /// No peer address in the request's extensions: serve axum with
    /// `into_make_service_with_connect_info::<SocketAddr>()`, or insert a
    /// [`PeerAddr`](super::PeerAddr).
    NoPeerAddress,
    /// A trusted proxy forwarded a hop it did not identify (`unknown`, an obfuscated name, or
    /// a value that is not an address).
    UnknownHop,
    /// The forwarding header is not readable text.
    MalformedHeader,
}

impl ClientIpError {
    /// A fixed description.
    pub const fn reason(self) -> &'static str {
        match self {
            ClientIpError::NoPeerAddress => "the connection's peer address is unknown",
            ClientIpError::UnknownHop => "a trusted proxy forwarded an unidentified client",
            ClientIpError::MalformedHeader => "the forwarding header is malformed",
        }
    }
}

impl fmt::Display for ClientIpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ClientIpError {}

/// The proxies whose forwarding header is believed, and how to find the client behind them.
///
/// ```
/// use std::net::{IpAddr, SocketAddr};
/// use tower_jwt_guard::binding::{PeerAddr, RequestHead, TrustedProxies};
///
/// let proxies = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1")?;
/// let request = |peer: &str, xff: &str| {
///     let mut request = http::Request::builder().header("x-forwarded-for", xff).body(()).unwrap();
///     request.extensions_mut().insert(PeerAddr(peer.parse::<SocketAddr>().unwrap()));
///     request
/// };
/// // Through the proxy: the rightmost untrusted hop is the client; what it wrote itself is ignored.
/// let via_proxy = request("10.1.2.3:443", "6.6.6.6, 198.51.100.7, 10.9.9.9");
/// assert_eq!(proxies.client_ip(&RequestHead::of(&via_proxy)), Ok("198.51.100.7".parse::<IpAddr>().unwrap()));
/// // Straight from the internet: the header is a lie, the peer is the client.
/// let direct = request("203.0.113.5:5555", "1.1.1.1");
/// assert_eq!(proxies.client_ip(&RequestHead::of(&direct)), Ok("203.0.113.5".parse::<IpAddr>().unwrap()));
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    /// No trusted proxy: the connection's peer is always the client.
    pub fn none() -> Self {
        TrustedProxies::default()
    }

    /// These networks are trusted proxies. An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`)
    /// is taken as the IPv4 network it maps (`10.0.0.0/8`), like the addresses it is matched with.
    ///
    /// ```
    /// use tower_jwt_guard::binding::TrustedProxies;
    /// let proxies = TrustedProxies::new(["::ffff:10.0.0.0/104".parse().unwrap()]);
    /// assert_eq!(proxies.networks()[0].to_string(), "10.0.0.0/8");
    /// assert!(proxies.is_trusted("::ffff:10.1.2.3".parse().unwrap()));
    /// ```
    pub fn new(networks: impl IntoIterator<Item = IpNet>) -> Self {
        TrustedProxies {
            networks: networks.into_iter().map(canonical_net).collect(),
            header: ForwardedHeader::default(),
        }
    }

    /// Parses a comma-separated list of CIDRs (`10.0.0.0/8`) or single addresses (`127.0.0.1`);
    /// an empty list trusts no proxy.
    ///
    /// ```
    /// use tower_jwt_guard::binding::TrustedProxies;
    /// assert!(TrustedProxies::parse("10.0.0.0/8,fd00::/8 , 192.0.2.1").is_ok());
    /// assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
    /// ```
    pub fn parse(list: &str) -> Result<Self, ConfigError> {
        let mut networks = Vec::new();
        for item in list.split(',').map(str::trim).filter(|item| !item.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => item
                    .parse::<IpAddr>()
                    .map(IpNet::from)
                    .map_err(|_| ConfigError::Invalid("trusted proxies: expected CIDRs like 10.0.0.0/8"))?,
            };
            networks.push(net);
        }
        Ok(TrustedProxies::new(networks))
    }

    /// Which forwarding header the proxies write (default `X-Forwarded-For`).
    pub fn header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// The trusted networks.
    pub fn networks(&self) -> &[IpNet] {
        &self.networks
    }

    /// Whether `ip` is a trusted proxy (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.networks.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: the peer, or (when the peer is a trusted proxy) the rightmost
    /// untrusted hop of the forwarding header. IPv4-mapped IPv6 addresses are returned as IPv4.
    pub fn client_ip(&self, request: &RequestHead<'_>) -> Result<IpAddr, ClientIpError> {
        match self.client_hop(request)? {
            (Some(ip), _) => Ok(ip),
            (None, _) => Err(ClientIpError::UnknownHop),
        }
    }

    /// The scheme and host the client called, as the trusted proxies forwarded them (see the
    /// [module](self)); `None` for each one they did not forward, and for both when the peer is
    /// not a trusted proxy.
    pub(crate) fn forwarded_origin<'r>(
        &self,
        request: &RequestHead<'r>,
    ) -> (Option<Cow<'r, str>>, Option<Cow<'r, str>>) {
        let trusted = request.peer_addr().is_some_and(|peer| self.is_trusted(peer.ip()));
        if !trusted {
            return (None, None);
        }
        match self.header {
            ForwardedHeader::XForwardedFor => {
                let last = |name: &HeaderName| -> Option<Cow<'r, str>> {
                    let line = request.headers.get_all(name).iter().next_back()?.to_str().ok()?;
                    let value = line.rsplit(',').next()?.trim();
                    (!value.is_empty()).then_some(Cow::Borrowed(value))
                };
                (last(&X_FORWARDED_PROTO), last(&X_FORWARDED_HOST))
            }
            ForwardedHeader::Forwarded => match self.client_hop(request) {
                Ok((_, Some(element))) => (element.proto.map(Cow::Owned), element.host.map(Cow::Owned)),
                _ => (None, None),
            },
        }
    }

    /// The client's hop: its address (`None`: a trusted proxy did not identify it) and, with
    /// `Forwarded`, the element a trusted proxy wrote about it.
    fn client_hop(
        &self,
        request: &RequestHead<'_>,
    ) -> Result<(Option<IpAddr>, Option<Element>), ClientIpError> {
        let peer = request.peer_addr().ok_or(ClientIpError::NoPeerAddress)?.ip().to_canonical();
        if !self.is_trusted(peer) {
            return Ok((Some(peer), None));
        }
        let mut farthest = (Some(peer), None);
        let name = match self.header {
            ForwardedHeader::XForwardedFor => X_FORWARDED_FOR,
            ForwardedHeader::Forwarded => FORWARDED,
        };
        // Header lines in order, each a list: walk lines and items from the right.
        for line in request.headers.get_all(name).iter().rev() {
            let line = line.to_str().map_err(|_| ClientIpError::MalformedHeader)?;
            let hops: Vec<(Option<IpAddr>, Option<Element>)> = match self.header {
                ForwardedHeader::XForwardedFor => {
                    line.split(',').filter_map(x_forwarded_for_hop).map(|ip| (ip, None)).collect()
                }
                ForwardedHeader::Forwarded => forwarded_elements(line)?
                    .into_iter()
                    .map(|element| (element.node.as_deref().and_then(node_address), Some(element)))
                    .collect(),
            };
            for hop in hops.into_iter().rev() {
                match hop.0 {
                    Some(ip) if self.is_trusted(ip) => farthest = hop,
                    // An untrusted address is the client; an unidentified hop ends the walk.
                    _ => return Ok(hop),
                }
            }
        }
        // Every hop is a trusted proxy: the farthest one is the client.
        Ok(farthest)
    }
}

/// The network without host bits; IPv4-mapped IPv6 networks as IPv4.
fn canonical_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net {
        if let (Some(v4), Some(prefix)) = (v6.addr().to_ipv4_mapped(), v6.prefix_len().checked_sub(96)) {
            if let Ok(mapped) = ipnet::Ipv4Net::new(v4, prefix) {
                return IpNet::V4(mapped.trunc());
            }
        }
    }
    net.trunc()
}

/// One `X-Forwarded-For` item: `None` for an empty item (skipped), `Some(None)` for a hop
/// that is not an address.
fn x_forwarded_for_hop(item: &str) -> Option<Option<IpAddr>> {
    let item = item.trim();
    (!item.is_empty()).then(|| node_address(item))
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:8080`, `2001:db8::1`, `[2001:db8::1]:8080`.
fn node_address(node: &str) -> Option<IpAddr> {
    let ip = node
        .parse::<IpAddr>()
        .or_else(|_| node.parse::<SocketAddr>().map(|addr| addr.ip()))
        .or_else(|_| {
            node.strip_prefix('[')
                .and_then(|n| n.strip_suffix(']'))
                .ok_or(())
                .and_then(|n| n.parse::<IpAddr>().map_err(drop))
        })
        .ok()?;
    Some(ip.to_canonical())
}

/// One element of `Forwarded` (RFC 7239 §4): the parameters this crate reads.
#[derive(Debug, Default)]
struct Element {
    /// `for`: the node that connected to the proxy that wrote the element.
    node: Option<String>,
    /// `proto`: the scheme that node used.
    proto: Option<String>,
    /// `host`: the `Host` that node asked for.
    host: Option<String>,
}

/// The elements of one `Forwarded` line, in order. A parameter given twice in one element is
/// malformed (RFC 7239 §4); an element without `for` is an unidentified hop.
fn forwarded_elements(line: &str) -> Result<Vec<Element>, ClientIpError> {
    let mut elements = Vec::new();
    for element in split_unquoted(line, ',') {
        if element.trim().is_empty() {
            continue;
        }
        let mut parsed = Element::default();
        for pair in split_unquoted(element, ';') {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let (name, value) = pair.split_once('=').ok_or(ClientIpError::MalformedHeader)?;
            let name = name.trim();
            let slot = if name.eq_ignore_ascii_case("for") {
                &mut parsed.node
            } else if name.eq_ignore_ascii_case("proto") {
                &mut parsed.proto
            } else if name.eq_ignore_ascii_case("host") {
                &mut parsed.host
            } else {
                continue;
            };
            if slot.replace(unquote(value.trim())?).is_some() {
                return Err(ClientIpError::MalformedHeader);
            }
        }
        elements.push(parsed);
    }
    Ok(elements)
}

/// Splits on `separator` outside quoted strings.
fn split_unquoted(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A token or a quoted string (RFC 7230 §3.2.6), unescaped.
fn unquote(value: &str) -> Result<String, ClientIpError> {
    let Some(inner) = value.strip_prefix('"') else {
        return Ok(value.to_string());
    };
    let inner = inner.strip_suffix('"').ok_or(ClientIpError::MalformedHeader)?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next().ok_or(ClientIpError::MalformedHeader)? } else { c });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::binding::PeerAddr;

    fn client(
        proxies: &TrustedProxies,
        peer: &str,
        header: &str,
        values: &[&str],
    ) -> Result<IpAddr, ClientIpError> {
        let mut builder = http::Request::builder();
        for value in values {
            builder = builder.header(header, *value);
        }
        let mut request = builder.body(()).unwrap();
        request.extensions_mut().insert(PeerAddr(peer.parse().unwrap()));
        proxies.client_ip(&RequestHead::of(&request))
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(client(&proxies, "192.0.2.1:1", "x-forwarded-for", &["10.0.0.1"]), Ok(ip("192.0.2.1")));
        let none = TrustedProxies::none();
        assert_eq!(client(&none, "10.0.0.1:1", "x-forwarded-for", &["192.0.2.9"]), Ok(ip("10.0.0.1")));
    }

    #[test]
    fn walks_from_the_right_across_lines_and_skips_trusted_hops() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let xff = "x-forwarded-for";
        assert_eq!(
            client(&proxies, "10.0.0.1:1", xff, &["1.1.1.1, 192.0.2.7", "10.2.2.2"]),
            Ok(ip("192.0.2.7"))
        );
        assert_eq!(client(&proxies, "10.0.0.1:1", xff, &["garbage, 192.0.2.7:5000"]), Ok(ip("192.0.2.7")));
        assert_eq!(client(&proxies, "10.0.0.1:1", xff, &["[2001:db8::1]:80"]), Ok(ip("2001:db8::1")));
        assert_eq!(client(&proxies, "10.0.0.1:1", xff, &["10.3.3.3, 10.4.4.4"]), Ok(ip("10.3.3.3")));
        assert_eq!(client(&proxies, "10.0.0.1:1", xff, &[]), Ok(ip("10.0.0.1")));
        assert_eq!(
            client(&proxies, "10.0.0.1:1", xff, &["192.0.2.7, unknown"]),
            Err(ClientIpError::UnknownHop)
        );
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        let proxies = TrustedProxies::parse("127.0.0.1/32").unwrap();
        let peer = "[::ffff:127.0.0.1]:9000";
        assert_eq!(client(&proxies, peer, "x-forwarded-for", &["::ffff:192.0.2.44"]), Ok(ip("192.0.2.44")));
        assert_eq!(client(&TrustedProxies::none(), peer, "x-forwarded-for", &[]), Ok(ip("127.0.0.1")));
    }

    #[test]
    fn forwarded_header_rfc7239() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap().header(ForwardedHeader::Forwarded);
        let fwd = "forwarded";
        let line =
            r#"for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711", for=10.1.1.1"#;
        assert_eq!(client(&proxies, "10.0.0.1:1", fwd, &[line]), Ok(ip("2001:db8:cafe::17")));
        assert_eq!(client(&proxies, "10.0.0.1:1", fwd, &["for=\"_hidden\""]), Err(ClientIpError::UnknownHop));
        assert_eq!(client(&proxies, "10.0.0.1:1", fwd, &["proto=https"]), Err(ClientIpError::UnknownHop));
        assert_eq!(
            client(&proxies, "10.0.0.1:1", fwd, &["for=\"1.2.3.4"]),
            Err(ClientIpError::MalformedHeader)
        );
        assert_eq!(
            client(&proxies, "10.0.0.1:1", fwd, &["for=1.2.3.4;for=5.6.7.8"]),
            Err(ClientIpError::MalformedHeader)
        );
        // X-Forwarded-For is not read when Forwarded is configured.
        assert_eq!(client(&proxies, "10.0.0.1:1", "x-forwarded-for", &["192.0.2.1"]), Ok(ip("10.0.0.1")));
    }

    #[test]
    fn quoted_commas_do_not_split() {
        assert_eq!(split_unquoted(r#"a="x,y", b"#, ','), vec![r#"a="x,y""#, " b"]);
        assert_eq!(unquote(r#""a\"b""#).unwrap(), "a\"b");
    }
}
