//! berth-dockerfile: Dockerfile parser: directives, heredocs, variable expansion.
