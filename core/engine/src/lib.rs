//! berth-engine: The berth engine: config, plugins, images, containers, builds.
