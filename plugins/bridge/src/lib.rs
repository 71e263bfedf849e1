//! berth-plugin-bridge: Network plugin: Linux bridge, veth, IPAM, nftables ports.
