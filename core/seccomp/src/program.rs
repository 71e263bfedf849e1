//! A compiled BPF filter, ready for `seccomp(SECCOMP_SET_MODE_FILTER)`.

use serde::{Deserialize, Serialize};

use crate::SeccompError;

/// The kernel's limit on the length of one filter (BPF_MAXINSNS).
pub const MAX_INSTRUCTIONS: usize = 4096;

/// One classic BPF instruction (`struct sock_filter`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// A seccomp BPF program for the host architecture.
///
/// Build it (allocation, libseccomp) in the parent; [`Program::install`] only issues the
/// system call, so it can run in a child between `clone` and `execve`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Program {
    insns: Vec<Insn>,
}

const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;

impl Program {
    /// Parses the raw form libseccomp exports: native-endian 8-byte `sock_filter` records.
    pub fn from_bytes(bytes: &[u8]) -> Result<Program, SeccompError> {
        if !bytes.chunks_exact(8).remainder().is_empty() {
            return Err(SeccompError::Compile {
                entry: "exported filter".into(),
                names: String::new(),
                op: "reading the BPF program",
                reason: format!(
                    "{} bytes is not a whole number of instructions",
                    bytes.len()
                ),
            });
        }
        let insns: Vec<Insn> = bytes
            .chunks_exact(8)
            .map(|c| Insn {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        if insns.len() > MAX_INSTRUCTIONS {
            return Err(SeccompError::TooLong(insns.len()));
        }
        Ok(Program { insns })
    }

    /// The raw form [`Program::from_bytes`] reads: native-endian 8-byte records.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.insns.len() * 8);
        for i in &self.insns {
            out.extend_from_slice(&i.code.to_ne_bytes());
            out.extend_from_slice(&[i.jt, i.jf]);
            out.extend_from_slice(&i.k.to_ne_bytes());
        }
        out
    }

    /// The instructions.
    pub fn instructions(&self) -> &[Insn] {
        &self.insns
    }

    /// Number of instructions.
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// Installs the filter on the calling thread (and everything it later forks or execs).
    ///
    /// Async-signal-safe: no allocation, no locks, only `seccomp(2)` (or `prctl(2)` on
    /// kernels without it). The caller must have `no_new_privs` set or CAP_SYS_ADMIN.
    /// Returns the raw errno on failure.
    pub fn install(&self) -> Result<(), i32> {
        if self.insns.is_empty() || self.insns.len() > MAX_INSTRUCTIONS {
            return Err(libc::EINVAL);
        }
        let prog = libc::sock_fprog {
            len: self.insns.len() as libc::c_ushort,
            // The kernel only reads through this pointer.
            filter: self.insns.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `prog` points at `len` instructions laid out as `struct sock_filter`
        // (`Insn` is repr(C) with the same fields) that outlive the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                SECCOMP_SET_MODE_FILTER,
                0 as libc::c_uint,
                &prog as *const libc::sock_fprog,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL);
        if e != libc::ENOSYS {
            return Err(e);
        }
        // SAFETY: as above, through the older prctl interface.
        let r = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                &prog as *const libc::sock_fprog,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EINVAL))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_kernel() {
        assert_eq!(
            std::mem::size_of::<Insn>(),
            std::mem::size_of::<libc::sock_filter>()
        );
        assert_eq!(
            std::mem::align_of::<Insn>(),
            std::mem::align_of::<libc::sock_filter>()
        );
    }

    #[test]
    fn bytes_roundtrip_and_limits() {
        let mut b = Vec::new();
        b.extend_from_slice(&0x06u16.to_ne_bytes());
        b.extend_from_slice(&[1, 2]);
        b.extend_from_slice(&0x7fff_0000u32.to_ne_bytes());
        let p = Program::from_bytes(&b).unwrap();
        assert_eq!(
            p.instructions(),
            &[Insn {
                code: 6,
                jt: 1,
                jf: 2,
                k: 0x7fff_0000
            }]
        );
        assert!(Program::from_bytes(&b[..7]).is_err());
        assert!(matches!(
            Program::from_bytes(&vec![0u8; 8 * 4097]),
            Err(SeccompError::TooLong(4097))
        ));
        assert_eq!(Program::default().install(), Err(libc::EINVAL));
    }
}
