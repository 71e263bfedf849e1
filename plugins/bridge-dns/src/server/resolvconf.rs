//! The `nameserver` lines of a resolv.conf.
//!
//! Loopback servers (systemd-resolved's 127.0.0.53, a local dnsmasq) are kept: the
//! responder runs in the host's network namespace, where they are reachable; containers
//! only ever talk to the responder. Our own listen addresses are dropped (no loops).

use std::net::{IpAddr, SocketAddr};

/// Upstream servers (port 53) named by `text`, without `own` addresses, in file order.
pub fn nameservers(text: &str, own: &[SocketAddr]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        if fields.next() != Some("nameserver") {
            continue;
        }
        let Some(value) = fields.next() else { continue };
        // A scoped IPv6 address (fe80::1%eth0) cannot be used from a plain socket address.
        let Ok(ip) = value.parse::<IpAddr>() else {
            continue;
        };
        let addr = SocketAddr::new(ip, 53);
        let unspecified_own = own
            .iter()
            .any(|o| o.port() == 53 && o.ip().is_unspecified() && o.is_ipv4() == ip.is_ipv4());
        if own.contains(&addr) || unspecified_own || out.contains(&addr) {
            continue;
        }
        out.push(addr);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_filters() {
        let text = "# comment\nsearch example.com\nnameserver 127.0.0.53\nnameserver  10.0.0.1 # x\n\
                    nameserver fe80::1%eth0\nnameserver 2001:db8::1\nnameserver 10.0.0.1\nnameserver\n\
                    options edns0\nnameserver 10.89.0.1\n";
        let own: Vec<SocketAddr> = vec!["10.89.0.1:53".parse().unwrap()];
        let got = nameservers(text, &own);
        let want: Vec<SocketAddr> = ["127.0.0.53:53", "10.0.0.1:53", "[2001:db8::1]:53"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(got, want);
    }
}
