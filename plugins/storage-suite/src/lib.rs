//! Shared conformance checks for storage plugins.
