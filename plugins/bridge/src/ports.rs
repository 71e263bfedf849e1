//! Published ports: validation, conflicts with other attachments and with listening sockets
//! of the host, and random host ports.

use std::{
    collections::BTreeSet,
    io,
    net::{Ipv4Addr, SocketAddrV4, TcpListener, UdpSocket},
};

use berth_abi::{PluginError, PluginResult, PortMapping};

use crate::state::{Network, Port, Proto};

/// Whether two mappings would catch the same traffic.
fn clash(a_ip: Option<Ipv4Addr>, b_ip: Option<Ipv4Addr>) -> bool {
    a_ip.is_none() || b_ip.is_none() || a_ip == b_ip
}

/// Tries to bind `ip:port` the way a server would; Ok(actual port) when it is free.
fn probe(proto: Proto, ip: Option<Ipv4Addr>, port: u16) -> io::Result<u16> {
    let addr = SocketAddrV4::new(ip.unwrap_or(Ipv4Addr::UNSPECIFIED), port);
    match proto {
        Proto::Tcp => TcpListener::bind(addr)
            .and_then(|l| l.local_addr())
            .map(|a| a.port()),
        Proto::Udp => UdpSocket::bind(addr)
            .and_then(|s| s.local_addr())
            .map(|a| a.port()),
    }
}

fn describe(ip: Option<Ipv4Addr>, port: u16, proto: Proto) -> String {
    match ip {
        Some(ip) => format!("{ip}:{port}/{}", proto.as_str()),
        None => format!("{port}/{}", proto.as_str()),
    }
}

/// Checks the requested mappings of container `cid` and resolves host port 0 to a free port.
/// Fails with `Busy` (naming the port) before anything is created.
pub fn resolve(all: &[Network], cid: &str, reqs: &[PortMapping]) -> PluginResult<Vec<Port>> {
    // Mappings of every other attachment, on every network.
    let mut taken: Vec<(Proto, Option<Ipv4Addr>, u16, String)> = Vec::new();
    for n in all {
        for (other, l) in &n.leases {
            if other == cid {
                continue;
            }
            for p in &l.ports {
                taken.push((
                    p.proto,
                    p.host_ip,
                    p.host_port,
                    format!("{other} (network {})", n.name),
                ));
            }
        }
    }
    let mut out: Vec<Port> = Vec::new();
    for r in reqs {
        let proto = Proto::from(r.protocol);
        let host_ip = if r.host_ip.is_empty() {
            None
        } else {
            let s = r.host_ip.as_str();
            if s.contains(':') {
                return Err(PluginError::unsupported(format!(
                    "host address {s} is IPv6; the bridge backend publishes on IPv4 addresses only"
                )));
            }
            Some(s.parse::<Ipv4Addr>().map_err(|_| {
                PluginError::invalid(format!("malformed host address {s:?} in a published port"))
            })?)
        };
        if r.container_port == 0 {
            return Err(PluginError::invalid(format!(
                "published port {}: the container port must not be 0",
                describe(host_ip, r.host_port, proto)
            )));
        }
        let in_use = |port: u16, out: &[Port]| -> Option<String> {
            if let Some((.., who)) = taken
                .iter()
                .find(|(p, ip, hp, _)| *p == proto && *hp == port && clash(*ip, host_ip))
            {
                return Some(format!("it is already published by container {who}"));
            }
            if out
                .iter()
                .any(|o| o.proto == proto && o.host_port == port && clash(o.host_ip, host_ip))
            {
                return Some("it is requested twice".into());
            }
            None
        };
        let host_port = if r.host_port != 0 {
            let port = r.host_port;
            if let Some(why) = in_use(port, &out) {
                return Err(PluginError::busy(format!(
                    "host port {} is busy: {why}; choose another host port",
                    describe(host_ip, port, proto)
                )));
            }
            match probe(proto, host_ip, port) {
                Ok(_) => port,
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    return Err(PluginError::busy(format!(
                        "host port {} is busy: another process on this host is using it; \
                         choose another host port or stop that process",
                        describe(host_ip, port, proto)
                    )))
                }
                Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => {
                    return Err(PluginError::invalid(format!(
                        "cannot publish on {}: that address is not configured on this host",
                        describe(host_ip, port, proto)
                    )))
                }
                Err(e) => {
                    return Err(PluginError::io(
                        format!("probe host port {}", describe(host_ip, port, proto)),
                        e,
                    ))
                }
            }
        } else {
            let mut tried = BTreeSet::new();
            let mut found = None;
            for _ in 0..64 {
                let port = probe(proto, host_ip, 0).map_err(|e| {
                    PluginError::io(
                        format!(
                            "pick a free host port for container port {}",
                            r.container_port
                        ),
                        e,
                    )
                })?;
                if in_use(port, &out).is_none() && tried.insert(port) {
                    found = Some(port);
                    break;
                }
            }
            found.ok_or_else(|| {
                PluginError::new(
                    berth_abi::ErrorKind::Exhausted,
                    format!(
                        "no free host port found for container port {}/{}",
                        r.container_port,
                        proto.as_str()
                    ),
                )
            })?
        };
        out.push(Port {
            host_ip,
            host_port,
            container_port: r.container_port,
            proto,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_abi::{ErrorKind, Protocol};

    fn pm(ip: &str, host: u16, ctr: u16) -> PortMapping {
        PortMapping {
            host_ip: ip.into(),
            host_port: host,
            container_port: ctr,
            protocol: Protocol::Tcp,
        }
    }

    #[test]
    fn listening_socket_is_busy_and_zero_is_resolved() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let err = resolve(&[], "c", &[pm("127.0.0.1", port, 80)]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Busy);
        assert!(
            err.message().contains(&port.to_string()),
            "{}",
            err.message()
        );
        let err = resolve(&[], "c", &[pm("", port, 80)]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Busy, "{}", err.message());
        let got = resolve(&[], "c", &[pm("127.0.0.1", 0, 80)]).unwrap();
        assert_ne!(got[0].host_port, 0);
        assert_eq!(
            resolve(&[], "c", &[pm("", 1, 0)]).unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            resolve(&[], "c", &[pm("x", 1, 1)]).unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn duplicate_in_request_is_busy() {
        let free = resolve(&[], "c", &[pm("127.0.0.1", 0, 80)]).unwrap()[0].host_port;
        let err = resolve(&[], "c", &[pm("", free, 80), pm("127.0.0.1", free, 81)]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Busy);
    }
}
