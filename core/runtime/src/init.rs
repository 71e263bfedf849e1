//! `--init`: the static `berth-init` program (`init/main.rs`, compiled by `build.rs`) is
//! embedded in the runtime and run as the container's PID 1 from a sealed memfd.
//!
//! The memfd is made per container in the engine, sealed against every change (write,
//! grow, shrink, exec-bit change, further seals) and executed by the container child with
//! `execveat(fd, "", AT_EMPTY_PATH)` after it has become the container's user. So
//! `/proc/1/exe` is `/memfd:berth-init (deleted)`: an anonymous file that is not the
//! host's berth binary and that nobody can modify (CVE-2019-5736).

use std::{
    ffi::CString,
    io::Write,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
};

use nix::errno::Errno;

use crate::RuntimeError;

/// The program, built for the target by `build.rs`.
static BERTH_INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/berth-init"));

/// What the container child needs to exec `berth-init` (all prepared in the parent).
pub(crate) struct InitPlan {
    pub fd: OwnedFd,
    /// Owns the strings `argv_ptrs` points into.
    #[allow(dead_code)]
    argv: Vec<CString>,
    pub argv_ptrs: Vec<*const libc::c_char>,
}

impl InitPlan {
    /// `berth-init [-t] -s STATUS -- ARGV...`; the environment is the command's own.
    pub(crate) fn new(
        status_fd: RawFd,
        tty: bool,
        command: &[CString],
    ) -> Result<Self, RuntimeError> {
        let fd = sealed_copy()?;
        let mut argv = vec![c"berth-init".to_owned()];
        if tty {
            argv.push(c"-t".to_owned());
        }
        argv.push(c"-s".to_owned());
        argv.push(
            CString::new(status_fd.to_string())
                .map_err(|_| RuntimeError::InvalidSpec("status descriptor".into()))?,
        );
        argv.push(c"--".to_owned());
        argv.extend(command.iter().cloned());
        let argv_ptrs = argv
            .iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        Ok(Self {
            fd,
            argv,
            argv_ptrs,
        })
    }
}

/// A memfd holding `berth-init`, executable, sealed. Close-on-exec: the exec that runs it
/// needs it only as the `execveat` descriptor.
fn sealed_copy() -> Result<OwnedFd, RuntimeError> {
    let create = |flags: libc::c_uint| {
        // SAFETY: memfd_create with a literal name; the result is checked and owned below.
        let fd = unsafe { libc::memfd_create(c"berth-init".as_ptr(), flags) };
        if fd < 0 {
            Err(Errno::last())
        } else {
            // SAFETY: a fresh descriptor that nothing else owns.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        }
    };
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3) keeps the memfd executable where vm.memfd_noexec asks for
    // non-executable memfds by default; older kernels reject the flag.
    let fd = create(base | libc::MFD_EXEC)
        .or_else(|e| {
            if e == Errno::EINVAL {
                create(base)
            } else {
                Err(e)
            }
        })
        .map_err(|e| RuntimeError::sys("creating the memfd for berth-init", e))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(BERTH_INIT)
        .map_err(|e| RuntimeError::io("writing berth-init into", "memfd:berth-init", e))?;
    let fd = OwnedFd::from(file);
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // F_SEAL_EXEC (Linux 6.3) also freezes the mode bits; older kernels reject it.
    // SAFETY: fcntl on a descriptor we own with integer arguments.
    let r = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals | libc::F_SEAL_EXEC) };
    // SAFETY: as above.
    if r < 0 && unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(RuntimeError::sys(
            "sealing the berth-init memfd",
            Errno::last(),
        ));
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_is_the_program_and_cannot_be_changed() {
        let fd = sealed_copy().unwrap();
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        assert_eq!(std::fs::read(&path).unwrap(), BERTH_INIT);
        // Reopened for writing (what the CVE's attacker would do), the seals refuse.
        let mut w = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let e = w.write_all(b"x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
        let e = w.set_len(1).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
        // SAFETY: fcntl query on a descriptor we own.
        let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
        assert_ne!(seals & libc::F_SEAL_SEAL, 0);
    }

    #[test]
    fn argv_carries_the_status_pipe_and_the_command() {
        let cmd = [c"sh".to_owned(), c"-c".to_owned(), c"true".to_owned()];
        let p = InitPlan::new(7, true, &cmd).unwrap();
        let got: Vec<&str> = p.argv.iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(
            got,
            ["berth-init", "-t", "-s", "7", "--", "sh", "-c", "true"]
        );
        assert!(p.argv_ptrs.last().unwrap().is_null());
    }
}
