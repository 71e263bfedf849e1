//! Test helper copied into test containers: issues each named system call with arguments
//! that are harmless even if the call is allowed, and prints `name=errno` (0 = success).
//!
//! - `reboot`: wrong magic numbers (EINVAL once past the CAP_SYS_BOOT check).
//! - `kexec_load`: invalid flags (EINVAL once past the CAP_SYS_BOOT check).
//! - `init_module`: an empty image (ENOEXEC/EFAULT once past the CAP_SYS_MODULE check).
//! - `clone3`: a NULL argument of size 0 (EINVAL if it reaches the kernel).
//! - `unshare_user`: a new user namespace for this short-lived process only.
//! - `vsock`: an AF_VSOCK socket, closed at once.
//! - `personality`: READ_IMPLIES_EXEC for this process only.
//! - `keyctl`: reads the id of the session keyring.
//! - `getpid`: a control that every profile allows.

fn errno() -> i64 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .map_or(-1, i64::from)
}

fn probe(name: &str) -> Option<i64> {
    // SAFETY: every call passes integers, NULL or a literal string; none can touch memory
    // of this process except through the kernel's own validation.
    let r = unsafe {
        match name {
            "reboot" => libc::syscall(libc::SYS_reboot, 0, 0, 0, std::ptr::null::<u8>()),
            "kexec_load" => libc::syscall(
                libc::SYS_kexec_load,
                0,
                0,
                std::ptr::null::<u8>(),
                0xdead_0000u64,
            ),
            "init_module" => libc::syscall(
                libc::SYS_init_module,
                std::ptr::null::<u8>(),
                0,
                c"".as_ptr(),
            ),
            "clone3" => libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0),
            "unshare_user" => libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER),
            "vsock" => {
                let fd = libc::socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0);
                if fd >= 0 {
                    libc::close(fd);
                }
                i64::from(fd)
            }
            "personality" => libc::syscall(libc::SYS_personality, 0x0400000),
            "keyctl" => libc::syscall(libc::SYS_keyctl, 0, -3, 0),
            "getpid" => libc::syscall(libc::SYS_getpid),
            _ => return None,
        }
    };
    Some(if r < 0 { errno() } else { 0 })
}

fn main() {
    let mut code = 0;
    for name in std::env::args().skip(1) {
        match probe(&name) {
            Some(e) => println!("{name}={e}"),
            None => {
                eprintln!("bt-syscall-probe: unknown probe {name:?}");
                code = 2;
            }
        }
    }
    std::process::exit(code);
}
