//! One module per v1 controller: each applies its part of [`berth_abi::Limits`] to a group
//! directory and reads its counters into [`berth_abi::ResourceStats`].

pub mod blkio;
pub mod cpu;
pub mod cpuacct;
pub mod cpuset;
pub mod devices;
pub mod freezer;
pub mod memory;
