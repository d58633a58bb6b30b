//! Who the client is: the peer address, or — behind proxies this deployment trusts — the address the nearest
//! trusted proxy saw, read from `X-Forwarded-For` right to left.
//!
//! Each proxy appends the address it received the request from, so only the entries appended by our own
//! proxies are facts; everything to their left was written by the client and may be anything. The client is
//! therefore the rightmost address that is not one of ours, never the leftmost: trusting the leftmost would
//! let every client pick its own rate-limit bucket.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    str::FromStr,
};

use axum::http::HeaderMap;

/// An address block, `10.42.0.0/16` or `fd00::/8` (a bare address is a block of one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    network: IpAddr,
    prefix: u8,
}

/// A malformed `TRUSTED_PROXIES` entry.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not an address block such as 10.42.0.0/16 or fd00::/8")]
pub struct IpNetError(String);

impl FromStr for IpNet {
    type Err = IpNetError;

    fn from_str(text: &str) -> Result<IpNet, IpNetError> {
        let error = || IpNetError(text.to_owned());
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().map_err(|_| error())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().ok().filter(|&p| p <= max).ok_or_else(error)?,
            None => max,
        };
        Ok(IpNet { network, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl IpNet {
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        match (self.network, address) {
            (IpAddr::V4(net), IpAddr::V4(address)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(address)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.7`, what a dual-stack socket reports) as the IPv4 it is.
pub fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

/// Which proxies in front of the api are ours.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TrustedProxies {
    /// Address blocks of the proxies in front of the api (comma-separated CIDRs, e.g. the cluster's pod
    /// network 10.42.0.0/16 where the ingress controller runs). A request from such a peer is attributed to
    /// the rightmost `X-Forwarded-For` address outside these blocks. Empty: see `TRUSTED_PROXY_HOPS`.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpNet>,

    /// When `TRUSTED_PROXIES` is empty: how many proxies always stand in front of the api, each appending one
    /// `X-Forwarded-For` entry; the client is the entry that many places from the right. 0 (the default):
    /// `X-Forwarded-For` is ignored and the peer is the client.
    #[arg(long, env = "TRUSTED_PROXY_HOPS", default_value_t = 0)]
    pub trusted_proxy_hops: usize,
}

impl TrustedProxies {
    /// The client of a request from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if self.trusted_proxies.is_empty() && self.trusted_proxy_hops == 0 {
            return peer;
        }
        // Every X-Forwarded-For header, in order, as one list (a proxy may add a header of its own).
        let entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        if self.trusted_proxies.is_empty() {
            return self.by_hops(peer, &entries);
        }
        let trusted =
            |address: IpAddr| self.trusted_proxies.iter().any(|net| net.contains(address));
        let mut client = peer;
        for entry in entries.iter().rev() {
            if !trusted(client) {
                break;
            }
            // An entry that is not an address was not written by one of our proxies: the last trusted hop
            // is as far as the facts go.
            let Some(address) = parse_entry(entry) else { break };
            client = address;
        }
        client
    }

    /// The client `trusted_proxy_hops` entries from the right; a shorter list than the configured chain
    /// (a request that bypassed a proxy) falls back to its leftmost address, then to the peer.
    fn by_hops(&self, peer: IpAddr, entries: &[&str]) -> IpAddr {
        let index = entries.len().saturating_sub(self.trusted_proxy_hops);
        entries.get(index).and_then(|entry| parse_entry(entry)).unwrap_or(peer)
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`192.0.2.7:4711`, `[2001:db8::1]:443`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let address = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|socket| socket.ip()))?;
    Some(canonical(address))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn cidrs(list: &[&str]) -> TrustedProxies {
        TrustedProxies {
            trusted_proxies: list.iter().map(|net| net.parse().unwrap()).collect(),
            trusted_proxy_hops: 0,
        }
    }

    #[test]
    fn without_trusted_proxies_forwarded_for_is_ignored() {
        let proxies = TrustedProxies::default();
        let spoofed = forwarded(&["203.0.113.9"]);
        assert_eq!(proxies.client(ip("198.51.100.4"), &spoofed), ip("198.51.100.4"));
    }

    #[test]
    fn the_rightmost_untrusted_address_is_the_client() {
        let proxies = cidrs(&["10.42.0.0/16"]);
        let ingress = ip("10.42.0.17");
        // The client wrote the first entry; our ingress appended what it saw.
        let spoofed = forwarded(&["1.2.3.4, 198.51.100.4"]);
        assert_eq!(proxies.client(ingress, &spoofed), ip("198.51.100.4"));
        // Two of our proxies in a row, across two headers.
        let chained = forwarded(&["1.2.3.4, 198.51.100.4", "10.42.3.3"]);
        assert_eq!(proxies.client(ingress, &chained), ip("198.51.100.4"));
        // Straight from the internet, a forged header is not read at all.
        assert_eq!(
            proxies.client(ip("198.51.100.4"), &forwarded(&["1.2.3.4"])),
            ip("198.51.100.4")
        );
        // Garbage where our proxy's entry should be: the last trusted hop.
        assert_eq!(proxies.client(ingress, &forwarded(&["1.2.3.4, bogus"])), ingress);
        // Ports and IPv4-mapped forms are the addresses they carry.
        let ported = forwarded(&["198.51.100.4:5123"]);
        assert_eq!(proxies.client(ip("::ffff:10.42.0.17"), &ported), ip("198.51.100.4"));
        let v6 = forwarded(&["[2001:db8::7]:443"]);
        assert_eq!(proxies.client(ingress, &v6), ip("2001:db8::7"));
    }

    #[test]
    fn a_hop_count_takes_that_many_entries_from_the_right() {
        let one = TrustedProxies { trusted_proxies: Vec::new(), trusted_proxy_hops: 1 };
        let two = TrustedProxies { trusted_proxies: Vec::new(), trusted_proxy_hops: 2 };
        let headers = forwarded(&["1.2.3.4, 198.51.100.4, 10.0.0.5"]);
        assert_eq!(one.client(ip("10.0.0.6"), &headers), ip("10.0.0.5"));
        assert_eq!(two.client(ip("10.0.0.6"), &headers), ip("198.51.100.4"));
        assert_eq!(two.client(ip("10.0.0.6"), &forwarded(&["198.51.100.4"])), ip("198.51.100.4"));
        assert_eq!(one.client(ip("10.0.0.6"), &HeaderMap::new()), ip("10.0.0.6"));
    }

    #[test]
    fn address_blocks_parse_and_match() {
        let net: IpNet = "10.42.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.42.255.1")) && !net.contains(ip("10.43.0.1")));
        assert!(net.contains(ip("::ffff:10.42.0.1")));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.1")));
        let one: IpNet = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        for bad in ["10.42.0.0/33", "fd00::/129", "nonsense", "10.42.0.0/x"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
        assert_eq!(net.to_string(), "10.42.0.0/16");
    }
}
