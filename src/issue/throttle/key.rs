//! [`ThrottleKey`]: what a throttle counts attempts by: an account, or the client's network.
//!
//! A network is what one party can easily hold many addresses of: an IPv4 address on its own
//! (`/32`), an IPv6 `/64` (the smallest prefix a provider hands a subscriber, so one machine
//! can use 2⁶⁴ addresses). An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack
//! socket reports for an IPv4 client) is the IPv4 address it maps.
//!
//! An account key is the SHA-256 of the name (so a key never holds a user name, and every
//! key has the same length); the name is taken as given: normalise it the way your account
//! lookup does (case, Unicode) before you make the key, or `Alice` gets a budget of her own.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::guard::binding::{ClientIpError, RequestHead, TrustedProxies};

/// The network a client address counts under: IPv4 per address, IPv6 per `/64`, an
/// IPv4-mapped IPv6 address as its IPv4 address.
///
/// ```
/// use tower_jwt_guard::issue::throttle::client_network;
///
/// assert_eq!(client_network("192.0.2.7".parse().unwrap()).to_string(), "192.0.2.7/32");
/// assert_eq!(client_network("2001:db8:1:2:aaaa::1".parse().unwrap()).to_string(), "2001:db8:1:2::/64");
/// assert_eq!(client_network("::ffff:192.0.2.7".parse().unwrap()).to_string(), "192.0.2.7/32");
/// ```
pub fn client_network(ip: IpAddr) -> IpNet {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpNet::V4(Ipv4Net::from(v4)),
        IpAddr::V6(v6) => IpNet::V6(v6_64(v6)),
    }
}

fn v6_64(ip: Ipv6Addr) -> Ipv6Net {
    let prefix = u128::from(ip) & !((1u128 << 64) - 1);
    // A /64 is always a valid prefix length.
    Ipv6Net::new(Ipv6Addr::from(prefix), 64).unwrap_or_else(|_| Ipv6Net::from(ip))
}

/// One thing a throttle counts attempts by (see the [module docs](super)).
///
/// ```
/// use tower_jwt_guard::issue::throttle::ThrottleKey;
///
/// // Every address of one /64 is one network.
/// let a = ThrottleKey::network("2001:db8::1".parse().unwrap());
/// let b = ThrottleKey::network("2001:db8::ffff:2".parse().unwrap());
/// assert_eq!(a, b);
/// assert_eq!(a.as_str(), "n:2001:db8::/64");
/// // An account key names no user.
/// let alice = ThrottleKey::account("alice");
/// assert!(!alice.as_str().contains("alice"));
/// assert_ne!(alice, ThrottleKey::account("bob"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ThrottleKey(String);

impl ThrottleKey {
    /// The key of an account, by its name (`a:` and the first 128 bits of its SHA-256, hex).
    pub fn account(name: &str) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, name.as_bytes());
        let mut key = String::with_capacity(2 + 32);
        key.push_str("a:");
        for byte in &digest.as_ref()[..16] {
            key.push(hex_digit(byte >> 4));
            key.push(hex_digit(byte & 0xf));
        }
        ThrottleKey(key)
    }

    /// The key of the network `ip` belongs to ([`client_network`]): `n:` and the network.
    pub fn network(ip: IpAddr) -> Self {
        let key = match client_network(ip) {
            // A single IPv4 address: written without its `/32`.
            IpNet::V4(net) => format!("n:{}", net.addr()),
            IpNet::V6(net) => format!("n:{net}"),
        };
        ThrottleKey(key)
    }

    /// The key of the client's network, the client found by `proxies` as the client-IP
    /// binding finds it (the peer, or behind a trusted proxy the rightmost untrusted hop of the
    /// forwarding header): a client cannot choose it by writing `X-Forwarded-For` itself.
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use tower_jwt_guard::binding::{PeerAddr, RequestHead, TrustedProxies};
    /// use tower_jwt_guard::issue::throttle::ThrottleKey;
    ///
    /// let proxies = TrustedProxies::parse("10.0.0.0/8")?;
    /// let mut request = http::Request::builder()
    ///     .header("x-forwarded-for", "192.0.2.1, 2001:db8:7::9")
    ///     .body(())
    ///     .unwrap();
    /// request.extensions_mut().insert(PeerAddr("10.0.0.2:443".parse::<SocketAddr>().unwrap()));
    /// let key = ThrottleKey::client(&proxies, &RequestHead::of(&request)).unwrap();
    /// assert_eq!(key.as_str(), "n:2001:db8:7::/64");
    /// # Ok::<(), tower_jwt_guard::ConfigError>(())
    /// ```
    pub fn client(proxies: &TrustedProxies, request: &RequestHead<'_>) -> Result<Self, ClientIpError> {
        proxies.client_ip(request).map(ThrottleKey::network)
    }

    /// The key as stored (inside a throttle's name and a Redis hash tag).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is an account's key.
    pub fn is_account(&self) -> bool {
        self.0.starts_with("a:")
    }
}

impl fmt::Debug for ThrottleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ThrottleKey").field(&self.0).finish()
    }
}

fn hex_digit(nibble: u8) -> char {
    char::from(b"0123456789abcdef"[usize::from(nibble & 0xf)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    #[test]
    fn networks() {
        let key = |ip: &str| ThrottleKey::network(ip.parse().unwrap()).0;
        assert_eq!(key("203.0.113.9"), "n:203.0.113.9");
        assert_ne!(key("203.0.113.9"), key("203.0.113.10"));
        assert_eq!(key("::ffff:203.0.113.9"), "n:203.0.113.9");
        assert_eq!(key("2001:db8:0:1::1"), "n:2001:db8:0:1::/64");
        assert_eq!(key("2001:db8:0:1:ffff:ffff:ffff:ffff"), "n:2001:db8:0:1::/64");
        assert_ne!(key("2001:db8:0:1::1"), key("2001:db8:0:2::1"));
        // Not mapped: an IPv4-compatible (deprecated) or NAT64 address stays IPv6.
        assert_eq!(key("64:ff9b::203.0.113.9"), "n:64:ff9b::/64");
        assert_eq!(key("::1"), "n:::/64");
    }

    #[test]
    fn accounts() {
        let alice = ThrottleKey::account("alice");
        assert_eq!(alice.0.len(), 34);
        assert!(alice.is_account());
        assert!(!ThrottleKey::network(IpAddr::V4(Ipv4Addr::LOCALHOST)).is_account());
        assert_ne!(alice, ThrottleKey::account("Alice"));
        // A name cannot pose as a network, nor break a Redis hash tag.
        assert!(ThrottleKey::account("n:1.2.3.4}{")
            .0
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b"a:".contains(&b)));
    }

    proptest! {
        /// Every address of a /64 is one key; addresses of two /64s are two keys.
        #[test]
        fn ipv6_is_counted_per_64(prefix in any::<u64>(), host_a in any::<u64>(), host_b in any::<u64>(), other in any::<u64>()) {
            let addr = |p: u64, h: u64| IpAddr::V6(Ipv6Addr::from((u128::from(p) << 64) | u128::from(h)));
            // Mapped and compatible ranges are IPv4 territory: the next test covers them.
            prop_assume!(addr(prefix, host_a).to_canonical().is_ipv6() && addr(prefix, host_b).to_canonical().is_ipv6());
            prop_assert_eq!(ThrottleKey::network(addr(prefix, host_a)), ThrottleKey::network(addr(prefix, host_b)));
            prop_assume!(other != prefix);
            prop_assert_ne!(ThrottleKey::network(addr(prefix, host_a)), ThrottleKey::network(addr(other, host_a)));
            let net = client_network(addr(prefix, host_a));
            prop_assert_eq!(net.prefix_len(), 64);
            prop_assert!(net.contains(&addr(prefix, host_b)));
        }

        /// An IPv4 address and its IPv4-mapped IPv6 form are one key, and one IPv4 address is
        /// never another's.
        #[test]
        fn ipv4_mapped_is_ipv4(a in any::<u32>(), b in any::<u32>()) {
            let v4 = Ipv4Addr::from(a);
            let mapped = IpAddr::V6(v4.to_ipv6_mapped());
            prop_assert_eq!(ThrottleKey::network(IpAddr::V4(v4)), ThrottleKey::network(mapped));
            prop_assert_eq!(client_network(mapped), IpNet::V4(Ipv4Net::from(v4)));
            prop_assume!(a != b);
            prop_assert_ne!(ThrottleKey::network(IpAddr::V4(v4)), ThrottleKey::network(IpAddr::V4(Ipv4Addr::from(b))));
        }

        /// Keys are ASCII without braces or spaces: safe inside a Redis hash tag.
        #[test]
        fn keys_are_tag_safe(name in ".*", bits in any::<u128>()) {
            for key in [ThrottleKey::account(&name), ThrottleKey::network(IpAddr::V6(Ipv6Addr::from(bits)))] {
                let safe = key.0.bytes().all(|b| b.is_ascii_graphic() && !b"{}".contains(&b));
                prop_assert!(safe, "{:?}", key);
            }
        }
    }
}
