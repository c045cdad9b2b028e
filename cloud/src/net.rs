//! Where a request comes from: the peer's address, or the client a trusted proxy
//! names in `X-Forwarded-For`. Only proxies listed in `--trusted-proxies` are
//! believed; anyone else could write any address into the header and slip past
//! the login throttle.

use std::net::IpAddr;
use std::str::FromStr;

/// An address range: `10.0.0.0/8`, `fd00::/8`, or one address (`192.0.2.7`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// A `--trusted-proxies` entry that is not an address or range.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an IP address or CIDR range (e.g. 10.0.0.0/8, ::1)")]
pub struct BadCidr(String);

impl FromStr for Cidr {
    type Err = BadCidr;

    fn from_str(s: &str) -> Result<Cidr, BadCidr> {
        let bad = || BadCidr(s.to_string());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let network: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Cidr { network, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = unmapped(ip);
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                same_prefix(u32::from(n).into(), u32::from(a).into(), self.prefix, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                same_prefix(u128::from(n), u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// Whether the first `prefix` of `bits` bits of `a` and `b` agree.
fn same_prefix(a: u128, b: u128, prefix: u8, bits: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(bits - prefix.min(bits));
    (a >> shift) == (b >> shift)
}

/// An IPv4 peer on a dual-stack socket shows as `::ffff:a.b.c.d`; ranges are
/// written in IPv4.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy; then the
/// `X-Forwarded-For` chain (all headers, in order) is read from the right, each
/// trusted hop skipped, and the first address not trusted is the client. A chain
/// of trusted hops only gives its leftmost; an entry that is not an address ends
/// the walk at the hop that appended it (it cannot be believed further).
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    let peer = unmapped(peer);
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    for entry in forwarded_for
        .iter()
        .rev()
        .flat_map(|h| h.rsplit(','))
        .map(str::trim)
    {
        let Ok(ip) = entry.parse::<IpAddr>() else {
            return client;
        };
        client = unmapped(ip);
        if !is_trusted(client) {
            return client;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_contain_their_addresses_only() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.contains(ip("10.1.200.3")));
        assert!(!c.contains(ip("10.2.0.1")));
        assert!(c.contains(ip("::ffff:10.1.0.9")));
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "proxy", "10.0.0/8", "::1/129", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        // A client that is not a proxy cannot choose its address.
        assert_eq!(
            client_ip(ip("203.0.113.9"), &["198.51.100.1"], &trusted),
            ip("203.0.113.9")
        );
        // Behind the proxy: the address the proxy saw, not what the client wrote
        // to the left of it.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &["1.2.3.4, 203.0.113.9"], &trusted),
            ip("203.0.113.9")
        );
        // Two trusted hops, two headers.
        assert_eq!(
            client_ip(
                ip("10.0.0.2"),
                &["1.2.3.4, 203.0.113.9", "10.0.0.3"],
                &trusted
            ),
            ip("203.0.113.9")
        );
        // Garbage stops at the hop that appended it.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &["203.0.113.9, junk, 10.0.0.5"], &trusted),
            ip("10.0.0.5")
        );
        // No header: the proxy itself.
        assert_eq!(client_ip(ip("10.0.0.2"), &[], &trusted), ip("10.0.0.2"));
        // No trusted proxies configured: never believed.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &["203.0.113.9"], &[]),
            ip("10.0.0.2")
        );
    }
}
