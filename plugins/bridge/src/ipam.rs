//! Subnet parsing and address allocation (pure functions; persistence and locking live in
//! `state`).

use std::{collections::BTreeSet, net::Ipv4Addr};

use berth_abi::{ErrorKind, PluginError, PluginResult};
use ipnet::Ipv4Net;

/// Parses a user-given IPv4 subnet in CIDR notation; rejects host bits and prefixes that
/// leave no room for a gateway plus one container.
pub fn parse_subnet(s: &str) -> PluginResult<Ipv4Net> {
    let s = s.trim();
    if s.contains(':') {
        return Err(PluginError::unsupported(format!(
            "subnet {s:?} is IPv6; the bridge backend supports IPv4 subnets only"
        )));
    }
    let net: Ipv4Net = s.parse().map_err(|_| {
        PluginError::invalid(format!(
            "malformed subnet {s:?}: expected IPv4 CIDR notation such as 10.89.3.0/24"
        ))
    })?;
    if net.network() != net.addr() {
        return Err(PluginError::invalid(format!(
            "subnet {s} has host bits set; did you mean {}?",
            net.trunc()
        )));
    }
    if net.prefix_len() > 30 {
        return Err(PluginError::invalid(format!(
            "subnet {s} is too small: a bridge network needs at least a /30 (gateway + 1 container)"
        )));
    }
    if net.prefix_len() < 8 {
        return Err(PluginError::invalid(format!(
            "subnet {s} is too large: use a prefix of /8 or longer"
        )));
    }
    Ok(net)
}

/// Parses and checks a gateway inside `net` (default: the first usable address).
pub fn parse_gateway(net: &Ipv4Net, gw: Option<&str>) -> PluginResult<Ipv4Addr> {
    let Some(gw) = gw else {
        return Ok(first_host(net));
    };
    let ip: Ipv4Addr = gw.trim().parse().map_err(|_| {
        PluginError::invalid(format!(
            "malformed gateway {gw:?}: expected an IPv4 address such as 10.89.3.1"
        ))
    })?;
    usable(net, ip).map_err(|why| {
        PluginError::invalid(format!(
            "gateway {ip} cannot be used in subnet {net}: {why}"
        ))
    })?;
    Ok(ip)
}

fn first_host(net: &Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()) + 1)
}

/// Whether `ip` is an assignable host address of `net`.
fn usable(net: &Ipv4Net, ip: Ipv4Addr) -> Result<(), &'static str> {
    if !net.contains(&ip) {
        return Err("it is outside the subnet");
    }
    if ip == net.network() {
        return Err("it is the network address");
    }
    if ip == net.broadcast() {
        return Err("it is the broadcast address");
    }
    Ok(())
}

/// Number of container addresses in `net` (network, broadcast and gateway excluded).
pub fn capacity(net: &Ipv4Net) -> u64 {
    (1u64 << (32 - net.prefix_len())).saturating_sub(3)
}

/// Picks the next free address after `last` (wrapping), skipping the gateway and `used`.
pub fn allocate(
    network: &str,
    net: &Ipv4Net,
    gateway: Ipv4Addr,
    used: &BTreeSet<Ipv4Addr>,
    last: Option<Ipv4Addr>,
) -> PluginResult<Ipv4Addr> {
    let first = u32::from(net.network()) + 1;
    let end = u32::from(net.broadcast()); // exclusive
    let count = end - first;
    let start = match last {
        Some(l) if net.contains(&l) && u32::from(l) >= first && u32::from(l) < end => {
            u32::from(l) + 1 - first
        }
        _ => 0,
    };
    for i in 0..count {
        let ip = Ipv4Addr::from(first + (start + i) % count);
        if ip != gateway && !used.contains(&ip) {
            return Ok(ip);
        }
    }
    Err(PluginError::new(
        ErrorKind::Exhausted,
        format!(
            "network {network} (subnet {net}) has no free address: all {} container addresses \
             are in use; detach a container or create a network with a larger subnet",
            capacity(net)
        ),
    ))
}

/// Checks a requested static address.
pub fn check_static(
    network: &str,
    net: &Ipv4Net,
    gateway: Ipv4Addr,
    requested: &str,
) -> PluginResult<Ipv4Addr> {
    let text = requested.trim();
    let text = text.split('/').next().unwrap_or(text);
    let ip: Ipv4Addr = text.parse().map_err(|_| {
        PluginError::invalid(format!(
            "malformed static address {requested:?}: expected an IPv4 address in {net}"
        ))
    })?;
    usable(net, ip).map_err(|why| {
        PluginError::invalid(format!(
            "static address {ip} cannot be used on network {network} ({net}): {why}"
        ))
    })?;
    if ip == gateway {
        return Err(PluginError::invalid(format!(
            "static address {ip} is the gateway of network {network}; choose another address in {net}"
        )));
    }
    Ok(ip)
}

/// Whether two subnets share any address.
pub fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_validation() {
        assert!(parse_subnet("10.1.0.0/24").is_ok());
        assert_eq!(
            parse_subnet("10.1.0.5/24").unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
        assert!(parse_subnet("10.1.0.5/24")
            .unwrap_err()
            .message()
            .contains("10.1.0.0/24"));
        assert_eq!(
            parse_subnet("banana").unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            parse_subnet("10.1.0.0/31").unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            parse_subnet("fd00::/64").unwrap_err().kind,
            ErrorKind::Unsupported
        );
    }

    #[test]
    fn gateway_validation() {
        let net = parse_subnet("10.1.0.0/24").unwrap();
        assert_eq!(
            parse_gateway(&net, None).unwrap(),
            Ipv4Addr::new(10, 1, 0, 1)
        );
        assert_eq!(
            parse_gateway(&net, Some("10.1.0.254")).unwrap(),
            Ipv4Addr::new(10, 1, 0, 254)
        );
        for bad in ["10.1.1.1", "10.1.0.0", "10.1.0.255", "x"] {
            assert_eq!(
                parse_gateway(&net, Some(bad)).unwrap_err().kind,
                ErrorKind::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn slash29_gives_five_then_exhausted() {
        let net = parse_subnet("10.2.0.0/29").unwrap();
        let gw = parse_gateway(&net, None).unwrap();
        assert_eq!(capacity(&net), 5);
        let mut used = BTreeSet::new();
        let mut last = None;
        for _ in 0..5 {
            let ip = allocate("n", &net, gw, &used, last).unwrap();
            assert!(ip != gw && ip != net.network() && ip != net.broadcast());
            assert!(used.insert(ip), "duplicate {ip}");
            last = Some(ip);
        }
        let err = allocate("n", &net, gw, &used, last).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Exhausted);
        assert!(err.message().contains("10.2.0.0/29"), "{}", err.message());
        // A released address is found again.
        used.remove(&Ipv4Addr::new(10, 2, 0, 3));
        assert_eq!(
            allocate("n", &net, gw, &used, last).unwrap(),
            Ipv4Addr::new(10, 2, 0, 3)
        );
    }

    #[test]
    fn static_addresses() {
        let net = parse_subnet("10.3.0.0/24").unwrap();
        let gw = Ipv4Addr::new(10, 3, 0, 1);
        assert_eq!(
            check_static("n", &net, gw, "10.3.0.9").unwrap(),
            Ipv4Addr::new(10, 3, 0, 9)
        );
        for bad in ["10.3.0.1", "10.3.0.0", "10.3.0.255", "10.4.0.2", "nope"] {
            assert_eq!(
                check_static("n", &net, gw, bad).unwrap_err().kind,
                ErrorKind::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn overlap() {
        let a = parse_subnet("10.0.0.0/16").unwrap();
        let b = parse_subnet("10.0.5.0/24").unwrap();
        let c = parse_subnet("10.1.0.0/24").unwrap();
        assert!(overlaps(&a, &b) && overlaps(&b, &a));
        assert!(!overlaps(&a, &c));
    }
}
