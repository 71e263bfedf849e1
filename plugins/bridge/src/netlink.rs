//! Links, addresses and routes through rtnetlink (no `ip` subprocesses).
//!
//! The host is synchronous, so every call builds a small current-thread tokio runtime and a
//! netlink connection for the duration of one operation. Work inside a container's network
//! namespace runs on a dedicated, short-lived thread that `setns`es first and then opens its
//! netlink socket there: the calling thread never changes namespace.

use std::{
    fmt,
    fs::File,
    future::Future,
    net::{IpAddr, Ipv4Addr},
    os::fd::AsRawFd,
    path::Path,
};

use futures_util::stream::TryStreamExt;
use rtnetlink::{
    packet_route::{
        address::AddressAttribute,
        link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkMessage},
        route::{RouteAddress, RouteAttribute},
    },
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};
use tracing::debug;

/// A failed netlink (or namespace) operation, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum NlError {
    #[error("{op}: {source}")]
    Netlink {
        op: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

impl NlError {
    /// The errno behind a netlink error, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NlError::Netlink {
                source: rtnetlink::Error::NetlinkError(m),
                ..
            } => m.code.map(|c| -c.get()),
            NlError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

fn nl(op: impl fmt::Display) -> impl FnOnce(rtnetlink::Error) -> NlError {
    move |source| NlError::Netlink {
        op: op.to_string(),
        source,
    }
}

type NlResult<T> = Result<T, NlError>;

/// Runs `f` with a fresh netlink handle in the current thread's network namespace.
pub fn run<T, F, Fut>(f: F) -> NlResult<T>
where
    F: FnOnce(Handle) -> Fut,
    Fut: Future<Output = NlResult<T>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|source| NlError::Io {
            op: "create tokio runtime for netlink".into(),
            source,
        })?;
    rt.block_on(async move {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(|source| NlError::Io {
            op: "open rtnetlink socket".into(),
            source,
        })?;
        let task = tokio::spawn(conn);
        let out = f(handle).await;
        task.abort();
        out
    })
}

/// Runs `f` with a netlink handle opened inside the network namespace at `netns`, on a
/// dedicated thread (the calling thread keeps its namespace).
pub fn run_in_netns<T, F, Fut>(netns: &Path, f: F) -> NlResult<T>
where
    T: Send,
    F: FnOnce(Handle) -> Fut + Send,
    Fut: Future<Output = NlResult<T>>,
{
    let file = File::open(netns).map_err(|source| NlError::Io {
        op: format!("open network namespace {}", netns.display()),
        source,
    })?;
    std::thread::scope(|s| {
        let worker = s.spawn(move || {
            debug!(netns = %netns.display(), "entering network namespace on worker thread");
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                NlError::Io {
                    op: format!("setns into {}", netns.display()),
                    source: std::io::Error::from(e),
                }
            })?;
            run(f)
        });
        worker
            .join()
            .map_err(|_| NlError::Other("netlink worker thread panicked".into()))?
    })
}

/// True when `e` says the object does not exist (ENODEV / ENOENT / ESRCH / EADDRNOTAVAIL).
pub fn is_gone(e: &NlError) -> bool {
    matches!(
        e.errno(),
        Some(libc::ENODEV) | Some(libc::ENOENT) | Some(libc::ESRCH) | Some(libc::EADDRNOTAVAIL)
    )
}

pub async fn link_by_name(h: &Handle, name: &str) -> NlResult<Option<LinkMessage>> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(l) => Ok(l),
        Err(e) => {
            let e = nl(format!("look up link {name}"))(e);
            if is_gone(&e) {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

pub async fn link_by_index(h: &Handle, index: u32) -> NlResult<Option<LinkMessage>> {
    let mut links = h.link().get().match_index(index).execute();
    match links.try_next().await {
        Ok(l) => Ok(l),
        Err(e) => {
            let e = nl(format!("look up link #{index}"))(e);
            if is_gone(&e) {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

pub fn link_mtu(l: &LinkMessage) -> Option<u32> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(m) => Some(*m),
        _ => None,
    })
}

pub fn link_controller(l: &LinkMessage) -> Option<u32> {
    l.attributes.iter().find_map(|a| match a {
        LinkAttribute::Controller(m) => Some(*m),
        _ => None,
    })
}

pub fn link_is_up(l: &LinkMessage) -> bool {
    l.header.flags.contains(LinkFlags::Up)
}

pub fn link_mac(l: &LinkMessage) -> String {
    l.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::Address(b) => Some(
                b.iter()
                    .map(|x| format!("{x:02x}"))
                    .collect::<Vec<_>>()
                    .join(":"),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

/// IPv4 routes of the main table as (destination, prefix, output interface).
pub async fn ipv4_routes(h: &Handle) -> NlResult<Vec<(Ipv4Addr, u8, Option<u32>)>> {
    let mut out = Vec::new();
    let mut routes = h
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute();
    while let Some(r) = routes.try_next().await.map_err(nl("dump IPv4 routes"))? {
        if r.header.table != 254 {
            continue; // main table only (RT_TABLE_MAIN)
        }
        let mut dst = Ipv4Addr::UNSPECIFIED;
        let mut oif = None;
        for a in &r.attributes {
            match a {
                RouteAttribute::Destination(RouteAddress::Inet(ip)) => dst = *ip,
                RouteAttribute::Oif(i) => oif = Some(*i),
                _ => {}
            }
        }
        out.push((dst, r.header.destination_prefix_length, oif));
    }
    Ok(out)
}

/// IPv4 addresses (address, prefix) configured on interface `index` (0 = all interfaces).
pub async fn ipv4_addresses(h: &Handle, index: u32) -> NlResult<Vec<(Ipv4Addr, u8)>> {
    let mut req = h.address().get();
    if index != 0 {
        req = req.set_link_index_filter(index);
    }
    let mut addrs = req.execute();
    let mut out = Vec::new();
    while let Some(a) = addrs.try_next().await.map_err(nl("dump addresses"))? {
        if index != 0 && a.header.index != index {
            continue;
        }
        for attr in &a.attributes {
            if let AddressAttribute::Address(IpAddr::V4(ip)) = attr {
                out.push((*ip, a.header.prefix_len));
            }
        }
    }
    Ok(out)
}

/// The MTU of the interface holding the default route, if there is one.
pub async fn uplink_mtu(h: &Handle) -> NlResult<Option<u32>> {
    let routes = ipv4_routes(h).await?;
    let Some(oif) = routes
        .iter()
        .find(|(_, prefix, oif)| *prefix == 0 && oif.is_some())
        .and_then(|r| r.2)
    else {
        return Ok(None);
    };
    Ok(link_by_index(h, oif).await?.as_ref().and_then(link_mtu))
}

/// Creates (or finds) the bridge `name` with `gateway/prefix` on it, up. Returns its index
/// and whether it was created now.
pub async fn ensure_bridge(
    h: &Handle,
    name: &str,
    gateway: Ipv4Addr,
    prefix: u8,
    mtu: u32,
) -> NlResult<(u32, bool)> {
    let mut created = false;
    let link = match link_by_name(h, name).await? {
        Some(l) => l,
        None => {
            debug!(bridge = name, mtu, "creating bridge");
            match h
                .link()
                .add(LinkBridge::new(name).mtu(mtu).up().build())
                .execute()
                .await
            {
                Ok(()) => created = true,
                Err(e) => {
                    let e = nl(format!("create bridge {name}"))(e);
                    if e.errno() != Some(libc::EEXIST) {
                        return Err(e);
                    }
                }
            }
            link_by_name(h, name)
                .await?
                .ok_or_else(|| NlError::Other(format!("bridge {name} vanished after creation")))?
        }
    };
    let index = link.header.index;
    let have = ipv4_addresses(h, index).await?;
    if !have.contains(&(gateway, prefix)) {
        debug!(bridge = name, %gateway, prefix, "adding gateway address");
        h.address()
            .add(index, IpAddr::V4(gateway), prefix)
            .replace()
            .execute()
            .await
            .map_err(nl(format!(
                "add address {gateway}/{prefix} to bridge {name}"
            )))?;
    }
    if !link_is_up(&link) {
        h.link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(nl(format!("set bridge {name} up")))?;
    }
    Ok((index, created))
}

/// Deletes link `name`; absent is fine.
pub async fn delete_link(h: &Handle, name: &str) -> NlResult<bool> {
    let Some(l) = link_by_name(h, name).await? else {
        return Ok(false);
    };
    debug!(link = name, "deleting link");
    match h.link().del(l.header.index).execute().await {
        Ok(()) => Ok(true),
        Err(e) => {
            let e = nl(format!("delete link {name}"))(e);
            if is_gone(&e) {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

/// Creates the veth pair in one request: `host` plugged into bridge `bridge_index` and up in
/// this namespace, its peer born as `ifname` inside the namespace open as `netns`. Creating
/// the peer in place avoids moving a device between namespaces, which costs a network-wide
/// RCU grace period (~15-20 ms here) per attach.
pub async fn create_veth(
    h: &Handle,
    host: &str,
    ifname: &str,
    bridge_index: u32,
    mtu: u32,
    netns: &File,
) -> NlResult<()> {
    debug!(host, ifname, mtu, "creating veth pair");
    let peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name(ifname.to_string())
        .mtu(mtu)
        .setns_by_fd(netns.as_raw_fd())
        .build();
    let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(host.to_string())
        .mtu(mtu)
        .controller(bridge_index)
        .up()
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build();
    h.link().add(msg).execute().await.map_err(nl(format!(
        "create veth pair {host} (bridge #{bridge_index}) / {ifname}"
    )))
}

/// Inside the container namespace: gives `ifname` its address, brings it and `lo` up and
/// adds the default route via `gateway`. Returns the interface's MAC address.
pub async fn configure_peer(
    h: &Handle,
    ifname: &str,
    addr: Ipv4Addr,
    prefix: u8,
    gateway: Ipv4Addr,
) -> NlResult<String> {
    let link = link_by_name(h, ifname)
        .await?
        .ok_or_else(|| NlError::Other(format!("veth peer {ifname} not found in namespace")))?;
    let index = link.header.index;
    debug!(ifname, %addr, prefix, "configuring container interface");
    h.address()
        .add(index, IpAddr::V4(addr), prefix)
        .replace()
        .execute()
        .await
        .map_err(nl(format!("add address {addr}/{prefix} to {ifname}")))?;
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(nl(format!("set {ifname} up")))?;
    if let Some(lo) = link_by_name(h, "lo").await? {
        if !link_is_up(&lo) {
            h.link()
                .set(LinkUnspec::new_with_index(lo.header.index).up().build())
                .execute()
                .await
                .map_err(nl("set lo up"))?;
        }
    }
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .gateway(gateway)
        .output_interface(index)
        .build();
    h.route()
        .add(route)
        .replace()
        .execute()
        .await
        .map_err(nl(format!("add default route via {gateway} on {ifname}")))?;
    Ok(link_mac(&link))
}

/// What CHECK finds inside the namespace for `ifname`.
pub async fn inspect_peer(
    h: &Handle,
    ifname: &str,
) -> NlResult<Option<(bool, Vec<(Ipv4Addr, u8)>)>> {
    let Some(link) = link_by_name(h, ifname).await? else {
        return Ok(None);
    };
    let addrs = ipv4_addresses(h, link.header.index).await?;
    Ok(Some((link_is_up(&link), addrs)))
}
