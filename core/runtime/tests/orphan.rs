//! A container process created but never started must not outlive an engine that was
//! killed: it waits for the go signal on a pipe, and the engine's death must be EOF there.
//! (Before, it kept its own copy of the pipe's write end and blocked forever, holding the
//! engine's inherited descriptors — build locks among them.)

mod common;

use std::io::BufRead;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use berth_runtime::Stdio;
use common::*;

/// Run only as a child of `a_created_container_dies_with_its_killed_engine`.
#[test]
#[ignore]
fn bt_orphan_helper() {
    let Ok(mnt) = std::env::var("BT_ORPHAN_ROOTFS") else {
        return;
    };
    let c = berth_runtime::create(
        &spec_at(std::path::Path::new(&mnt), &["true"]),
        Stdio::Inherit,
    )
    .unwrap();
    println!("pid {}", c.pid());
    loop {
        std::thread::park();
    }
}

#[test]
fn a_created_container_dies_with_its_killed_engine() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    let mut helper = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "bt_orphan_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("BT_ORPHAN_ROOTFS", &r.mnt)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(helper.stdout.take().unwrap()).lines();
    let pid: i32 = lines
        .find_map(|l| {
            l.unwrap()
                .split_once("pid ")
                .map(|(_, p)| p.trim().parse().unwrap())
        })
        .expect("the helper created a container");
    // SAFETY: pidfd_open with a pid and no flags.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    assert!(fd >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: pidfd_open returned a new descriptor that we own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    helper.kill().unwrap();
    helper.wait().unwrap();
    // The pidfd becomes readable when the process exits. The bound only keeps a
    // regression from hanging the suite; it exits right away when the pipe sees EOF.
    let mut fds = [nix::poll::PollFd::new(
        pidfd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let n = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(60_000u16)).unwrap();
    if n == 0 {
        // Don't leak it when the test fails.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert_eq!(
        n, 1,
        "the created container process {pid} outlived its killed engine"
    );
    drop(r);
}
