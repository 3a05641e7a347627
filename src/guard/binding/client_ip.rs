//! [`ClientIpBinding`]: the token is good only from the address (or network) it was issued to.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{same, BindingPolicy, BindingUnavailable, NewBinding, RequestHead, TrustedProxies};
use crate::primitives::claims::Confirmation;
use crate::primitives::error::AuthError;
use crate::primitives::error::ConfigError;

const NAME: &str = "client_ip";

/// Binds tokens to the client's IP address, exactly or by network prefix (claim `cnf.cip`).
///
/// The client's address is the connection's peer, or, behind configured
/// [`TrustedProxies`], the rightmost untrusted hop of their forwarding header. IPv4-mapped
/// IPv6 addresses (`::ffff:192.0.2.1`) count as IPv4. With a prefix (`/24` for IPv4, `/64`
/// for IPv6 suits mobile clients whose address changes inside their carrier's network) the
/// token records the network and any address inside it passes.
///
/// What it stops: a stolen token replayed from another network. What it does not stop: a
/// thief behind the same address (a shared NAT, the same proxy, the same prefix).
///
/// ```
/// use std::net::SocketAddr;
/// use tower_jwt_guard::binding::{BindingPolicy, ClientIpBinding, NewBinding, PeerAddr, RequestHead};
///
/// let policy = ClientIpBinding::new().prefix_len(24, 64)?;
/// let from = |addr: &str| {
///     let mut request = http::Request::new(());
///     request.extensions_mut().insert(PeerAddr(addr.parse::<SocketAddr>().unwrap()));
///     request
/// };
/// let mut binding = NewBinding::default();
/// policy.bind(&RequestHead::of(&from("198.51.100.7:1000")), &mut binding).unwrap();
/// assert_eq!(binding.confirmation().client_ip.as_deref(), Some("198.51.100.0/24"));
///
/// let cnf = binding.confirmation();
/// assert!(policy.check(&RequestHead::of(&from("198.51.100.200:1000")), Some(cnf)).is_ok());
/// assert!(policy.check(&RequestHead::of(&from("198.51.101.7:1000")), Some(cnf)).is_err());
/// # Ok::<(), tower_jwt_guard::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClientIpBinding {
    proxies: TrustedProxies,
    v4_prefix: u8,
    v6_prefix: u8,
}

impl Default for ClientIpBinding {
    fn default() -> Self {
        ClientIpBinding::new()
    }
}

impl ClientIpBinding {
    /// Exact-address binding; no proxy is trusted.
    pub fn new() -> Self {
        ClientIpBinding { proxies: TrustedProxies::none(), v4_prefix: 32, v6_prefix: 128 }
    }

    /// Believe the forwarding header of these proxies.
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = proxies;
        self
    }

    /// Match by network: the first `v4` bits of an IPv4 address, the first `v6` bits of an
    /// IPv6 address (`32`/`128`: exact). Refused: a prefix longer than the address, or shorter
    /// than `/8` (IPv4) or `/16` (IPv6), which would bind to nothing much.
    ///
    /// ```
    /// use tower_jwt_guard::binding::ClientIpBinding;
    /// assert!(ClientIpBinding::new().prefix_len(24, 64).is_ok());
    /// assert!(ClientIpBinding::new().prefix_len(33, 64).is_err());
    /// assert!(ClientIpBinding::new().prefix_len(24, 0).is_err());
    /// ```
    pub fn prefix_len(mut self, v4: u8, v6: u8) -> Result<Self, ConfigError> {
        if !(8..=32).contains(&v4) || !(16..=128).contains(&v6) {
            return Err(ConfigError::Invalid(
                "client IP prefix lengths must be 8..=32 (IPv4) and 16..=128 (IPv6)",
            ));
        }
        self.v4_prefix = v4;
        self.v6_prefix = v6;
        Ok(self)
    }

    /// The proxies whose forwarding header is believed.
    pub fn proxies(&self) -> &TrustedProxies {
        &self.proxies
    }

    /// The network this request's client is bound to (a single address with the default
    /// exact match).
    pub fn network_of(&self, request: &RequestHead<'_>) -> Result<IpNet, BindingUnavailable> {
        let ip =
            self.proxies.client_ip(request).map_err(|err| BindingUnavailable::new(NAME, err.reason()))?;
        Ok(self.network(ip))
    }

    fn network(&self, ip: IpAddr) -> IpNet {
        let prefix = if ip.is_ipv4() { self.v4_prefix } else { self.v6_prefix };
        // The prefix is within the address length (checked in `prefix_len`).
        IpNet::new(ip, prefix).map(|net| net.trunc()).unwrap_or_else(|_| IpNet::from(ip))
    }
}

/// The claim's text: the bare address for an exact match, the CIDR for a network.
fn claim_text(net: &IpNet) -> String {
    if net.prefix_len() == net.max_prefix_len() {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

/// A claim as comparable bytes: family, prefix length, the address (IPv4-mapped as IPv4).
fn comparable(net: &IpNet) -> [u8; 18] {
    let mut out = [0u8; 18];
    out[1] = net.prefix_len();
    match net.addr().to_canonical() {
        IpAddr::V4(v4) => {
            out[0] = 4;
            out[2..6].copy_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out[0] = 6;
            out[2..].copy_from_slice(&v6.octets());
        }
    }
    out
}

/// The claim as written by [`claim_text`]: an address, or `address/prefix` (decimal digits).
/// std's address parser, not `IpNet`'s: this runs on every request.
fn parse_claim(text: &str) -> Option<IpNet> {
    match text.split_once('/') {
        None => text.parse::<IpAddr>().ok().map(|ip| IpNet::from(ip.to_canonical())),
        Some((addr, prefix)) => {
            let addr: IpAddr = addr.parse().ok()?;
            // As many digits as the longest prefix has (32: two, 128: three), as IpNet reads it.
            let digits = if addr.is_ipv4() { 2 } else { 3 };
            if prefix.is_empty() || prefix.len() > digits || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            IpNet::new(addr, prefix.parse().ok()?).ok()
        }
    }
}

impl BindingPolicy for ClientIpBinding {
    fn name(&self) -> &'static str {
        NAME
    }

    fn confirms(&self) -> &'static [&'static str] {
        &["cip"]
    }

    fn check(&self, request: &RequestHead<'_>, confirmation: Option<&Confirmation>) -> Result<(), AuthError> {
        let claim = confirmation.and_then(|cnf| cnf.client_ip.as_deref()).and_then(parse_claim);
        let Some(claim) = claim else {
            return Err(AuthError::binding_mismatch(NAME));
        };
        let actual = match self.network_of(request) {
            Ok(net) => net,
            Err(err) => {
                tracing::warn!(target: "tower_jwt_guard", reason = err.reason(), "client IP binding cannot find the client's address");
                return Err(AuthError::binding_mismatch(NAME));
            }
        };
        if same(&comparable(&claim), &comparable(&actual)) {
            Ok(())
        } else {
            Err(AuthError::binding_mismatch(NAME))
        }
    }

    fn bind(&self, request: &RequestHead<'_>, binding: &mut NewBinding) -> Result<(), BindingUnavailable> {
        let net = self.network_of(request)?;
        binding.confirmation_mut().client_ip = Some(claim_text(&net));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_round_trip_through_text() {
        for text in ["192.0.2.1", "192.0.2.0/24", "2001:db8::/64", "2001:db8::1"] {
            let net = parse_claim(text).unwrap();
            assert_eq!(claim_text(&net), text);
        }
        assert_eq!(
            comparable(&parse_claim("::ffff:192.0.2.1").unwrap()),
            comparable(&parse_claim("192.0.2.1").unwrap())
        );
        assert_ne!(
            comparable(&parse_claim("192.0.2.0/24").unwrap()),
            comparable(&parse_claim("192.0.2.0").unwrap())
        );
        assert!(parse_claim("not an address").is_none());
    }

    #[test]
    fn the_fast_parser_reads_claims_as_ipnet_does() {
        let ipnet = |text: &str| {
            text.parse::<IpNet>()
                .ok()
                .or_else(|| text.parse::<IpAddr>().ok().map(|ip| IpNet::from(ip.to_canonical())))
        };
        for text in [
            "192.0.2.1",
            "192.0.2.0/24",
            "192.0.2.7/24",
            "192.0.2.0/32",
            "192.0.2.0/0",
            "2001:db8::/64",
            "::ffff:192.0.2.1",
            "::ffff:192.0.2.0/120",
            "192.0.2.0/33",
            "2001:db8::/129",
            "192.0.2.0/",
            "192.0.2.0/+4",
            "192.0.2.0/-1",
            "192.0.2.0/24/8",
            "/24",
            "192.0.2.0 /24",
            "192.0.2.0/024",
            "192.0.2.1/032",
            "2001:db8::/064",
            "2001:db8::/0064",
            "",
        ] {
            assert_eq!(parse_claim(text), ipnet(text), "{text:?}");
        }
        // Stricter on purpose: octets with leading zeros (never written by `claim_text`, and
        // read as octal by some parsers) are refused, so such a claim fails closed.
        assert!(ipnet("010.0.0.1/8").is_some());
        assert_eq!(parse_claim("010.0.0.1/8"), None);
    }
}
