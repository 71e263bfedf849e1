//! berth-plugin-vfs: Storage plugin: full copies (no overlay needed).
