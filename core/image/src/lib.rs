//! berth-image: OCI image store: content-addressable blobs, references, import/load/save.
