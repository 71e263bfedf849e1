//! One module per v2 controller: each applies its part of [`berth_abi::Limits`] to a group
//! directory and reads its counters into [`berth_abi::ResourceStats`]. `core` holds what the
//! cgroup core offers without a controller (procs, freeze, kill, events, cpu.stat).

pub mod core;
pub mod cpu;
pub mod cpuset;
pub mod io;
pub mod memory;
