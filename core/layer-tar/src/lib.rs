//! berth-layer-tar: Safe OCI layer tar apply and diff, shared by storage plugins.
