//! berth-runtime: Low-level container runtime: namespaces, mounts, capabilities, exec.
