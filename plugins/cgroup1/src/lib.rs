//! berth-plugin-cgroup1: Isolator plugin: cgroup v1 hierarchies (hybrid hosts).
