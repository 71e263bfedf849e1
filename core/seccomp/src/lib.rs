//! berth-seccomp: Docker-compatible seccomp profiles.
//!
//! - [`Profile`] is Docker's profile JSON (`defaultAction`, `archMap`, `syscalls` with
//!   `args`, `includes`/`excludes` by capability, architecture and kernel version);
//!   [`Profile::default_profile`] is berth's built-in allow-list (`profiles/default.json`).
//! - [`Profile::compile`] resolves the entries for the host architecture and the
//!   container's capabilities and compiles them with libseccomp into a [`Program`]:
//!   plain BPF instructions that [`Program::install`] loads with one system call, so a
//!   runtime can build it before `clone` and install it in the child without allocating.

mod arch;
mod caps;
mod compile;
mod error;
mod profile;
mod program;

pub use caps::cap_mask;
pub use compile::{set_cache_dir, CompileOptions};
pub use error::SeccompError;
pub use profile::{Action, ArchMap, Arg, Filter, Op, Profile, SyscallRule};
pub use program::{Insn, Program, MAX_INSTRUCTIONS};
