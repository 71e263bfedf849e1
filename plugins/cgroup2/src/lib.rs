//! berth-plugin-cgroup2: Isolator plugin: cgroup v2 unified hierarchy.
