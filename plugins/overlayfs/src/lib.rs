//! berth-plugin-overlayfs: Storage plugin: overlayfs snapshots.
