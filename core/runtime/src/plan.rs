//! Everything the container child needs, computed in the parent before `clone`: C strings,
//! pointer arrays, identity, capability masks and the ordered list of mount operations.
//! The child (see `child.rs`) only reads this and issues system calls.

use std::{
    ffi::{CStr, CString},
    os::fd::{AsRawFd, OwnedFd, RawFd},
    path::{Component, Path, PathBuf},
};

use crate::{
    caps,
    protocol::{exec_candidates, DEFAULT_PATH},
    spec::MountSpec,
    user::ResolvedUser,
    ContainerSpec, ProcessSpec, RuntimeError,
};

/// runc's default masked paths.
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// runc's default read-only paths.
pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The child's "errno" for a user mount refused because its destination resolved onto a
/// procfs (see `Op::Mount::not_on_proc`); above every real errno.
pub(crate) const ERR_ON_PROC: i32 = 1 << 16;

/// The only paths below `/proc` a mount may cover (runc's list: files lxcfs emulates).
pub const PROC_MOUNT_TARGETS: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
];

/// Whether `path` (on the host) is on a procfs.
pub fn is_procfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|st| st.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

/// runc's rule for mounts at or below `/proc` (`checkProcMount`), on the normalised
/// container path: over `/proc` itself only a procfs (`source_is_procfs`: a bind of one);
/// below it only [`PROC_MOUNT_TARGETS`]. Anything else would hide or replace the kernel's
/// view of the container (its `/proc/self`, `/proc/sys`, the masked paths). Returns the
/// reason as text for the caller to put in context.
pub fn check_proc_mount(destination: &str, source_is_procfs: bool) -> Result<(), String> {
    let rel = match container_rel(destination) {
        Ok((rel, _)) => rel,
        // Not absolute or with `..`: refused with its own message where it is mounted.
        Err(_) => return Ok(()),
    };
    if rel == "proc" {
        if source_is_procfs {
            return Ok(());
        }
        return Err("/proc cannot be mounted because it is not of type proc".into());
    }
    if rel.starts_with("proc/") {
        let abs = format!("/{rel}");
        if PROC_MOUNT_TARGETS.contains(&abs.as_str()) {
            return Ok(());
        }
        return Err(format!(
            "{abs} cannot be mounted because it is inside /proc (only {} may be)",
            PROC_MOUNT_TARGETS.join(", ")
        ));
    }
    Ok(())
}

fn cstr(s: &str, what: &str) -> Result<CString, RuntimeError> {
    CString::new(s)
        .map_err(|_| RuntimeError::InvalidSpec(format!("{what} {s:?} contains a NUL byte")))
}

/// What to create at a mount destination when it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    Nothing,
    Dir,
    File,
}

/// One step of the rootfs setup, relative to the container root.
#[derive(Debug)]
pub(crate) enum Op {
    Mount {
        source: Option<CString>,
        /// Destination relative to the root (no leading `/`).
        target: CString,
        fstype: Option<CString>,
        flags: libc::c_ulong,
        data: Option<CString>,
        create: Create,
        /// `(parent, name)` pairs to create when the destination is missing.
        chain: Vec<(CString, CString)>,
        /// Bind-remount read-only after mounting.
        readonly: bool,
        /// Refuse (EPERM) if the destination resolves onto a procfs: a user mount whose
        /// path is outside `/proc` reaching it through a symlink of the image (runc
        /// applies its `/proc` rule to the resolved path).
        not_on_proc: bool,
    },
    Mknod {
        dir: CString,
        name: CString,
        mode: libc::mode_t,
        dev: libc::dev_t,
        /// Owner to set when not root (`--device` copies the host node's).
        owner: (libc::uid_t, libc::gid_t),
    },
    Symlink {
        dir: CString,
        name: CString,
        target: CString,
    },
    /// Directory → read-only tmpfs, file → bind of /dev/null; missing → skipped.
    Mask { target: CString },
    /// Bind onto itself, then remount read-only; missing → skipped.
    ReadOnly { target: CString },
    /// Create a directory chain (the working directory).
    MkdirAll {
        target: CString,
        chain: Vec<(CString, CString)>,
    },
}

/// Normalises a container path to its components (rejecting `..`); returns the relative
/// form and the `(parent, name)` creation chain.
pub(crate) fn container_rel(path: &str) -> Result<(String, Vec<(CString, CString)>), RuntimeError> {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(s) => parts.push(s.to_str().ok_or_else(|| {
                RuntimeError::InvalidSpec(format!("container path {path:?} is not UTF-8"))
            })?),
            Component::ParentDir => {
                return Err(RuntimeError::InvalidSpec(format!(
                    "container path {path:?} must not contain '..'"
                )))
            }
            Component::Prefix(_) => {}
        }
    }
    if !path.starts_with('/') {
        return Err(RuntimeError::InvalidSpec(format!(
            "container path {path:?} must be absolute"
        )));
    }
    let mut chain = Vec::with_capacity(parts.len());
    for i in 0..parts.len() {
        let parent = if i == 0 {
            ".".to_string()
        } else {
            parts[..i].join("/")
        };
        chain.push((cstr(&parent, "path")?, cstr(parts[i], "path")?));
    }
    Ok((parts.join("/"), chain))
}

impl Op {
    fn mount(
        source: Option<&str>,
        target: &str,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
        create: Create,
        readonly: bool,
    ) -> Result<Op, RuntimeError> {
        let (rel, chain) = container_rel(target)?;
        if rel.is_empty() {
            return Err(RuntimeError::InvalidSpec(format!(
                "mount destination {target:?} is the container root"
            )));
        }
        Ok(Op::Mount {
            source: source.map(|s| cstr(s, "mount source")).transpose()?,
            target: cstr(&rel, "mount destination")?,
            fstype: fstype.map(|s| cstr(s, "fs type")).transpose()?,
            flags,
            data: data.map(|s| cstr(s, "mount options")).transpose()?,
            create,
            chain,
            readonly,
            not_on_proc: false,
        })
    }

    /// Marks a user mount: when its path is outside `/proc` (inside it,
    /// [`check_proc_mount`] already allowed it), it must not resolve onto one.
    fn outside_proc(mut self) -> Op {
        if let Op::Mount {
            target,
            not_on_proc,
            ..
        } = &mut self
        {
            let rel = target.to_string_lossy();
            *not_on_proc = rel != "proc" && !rel.starts_with("proc/");
        }
        self
    }

    fn in_dev(name: &str) -> Result<(CString, CString), RuntimeError> {
        Ok((cstr("dev", "path")?, cstr(name, "path")?))
    }

    /// For error messages: what this step touches.
    pub(crate) fn describe(&self) -> String {
        let s = |c: &CStr| format!("/{}", c.to_string_lossy());
        match self {
            Op::Mount {
                source,
                target,
                fstype,
                ..
            } => format!(
                "mount {} ({}) on {}",
                source
                    .as_deref()
                    .map(|c| c.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                fstype
                    .as_deref()
                    .map(|c| c.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "bind".into()),
                s(target)
            ),
            Op::Mknod { dir, name, .. } => format!("mknod {}/{}", s(dir), name.to_string_lossy()),
            Op::Symlink { dir, name, .. } => {
                format!("symlink {}/{}", s(dir), name.to_string_lossy())
            }
            Op::Mask { target } => format!("masking {}", s(target)),
            Op::ReadOnly { target } => format!("making {} read-only", s(target)),
            Op::MkdirAll { target, .. } => format!("creating directory {}", s(target)),
        }
    }
}

/// Parses Docker tmpfs options: mount flags (`ro`, `noexec`...) and fs data (`size=`, `mode=`...).
pub(crate) fn tmpfs_options(options: &str) -> Result<(libc::c_ulong, String), RuntimeError> {
    let mut flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    let mut data: Vec<&str> = Vec::new();
    for o in options.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        match o {
            "ro" => flags |= libc::MS_RDONLY,
            "rw" => flags &= !libc::MS_RDONLY,
            "exec" => flags &= !libc::MS_NOEXEC,
            "noexec" => flags |= libc::MS_NOEXEC,
            "suid" => flags &= !libc::MS_NOSUID,
            "nosuid" => flags |= libc::MS_NOSUID,
            "dev" => flags &= !libc::MS_NODEV,
            "nodev" => flags |= libc::MS_NODEV,
            "noatime" => flags |= libc::MS_NOATIME,
            "strictatime" => flags |= libc::MS_STRICTATIME,
            _ => {
                let key = o.split('=').next().unwrap_or(o);
                if !matches!(
                    key,
                    "size" | "mode" | "nr_inodes" | "nr_blocks" | "uid" | "gid" | "huge"
                ) {
                    return Err(RuntimeError::InvalidSpec(format!(
                        "unknown tmpfs option {o:?} (known: size=, mode=, nr_inodes=, uid=, gid=, ro, rw, [no]exec, [no]suid, [no]dev)"
                    )));
                }
                data.push(o);
            }
        }
    }
    Ok((flags, data.join(",")))
}

/// mount(8) options of an OCI mount: the flags, and the file system's own options (data).
pub(crate) fn mount_options(options: &[String]) -> (libc::c_ulong, String) {
    let mut flags: libc::c_ulong = 0;
    let mut data: Vec<&str> = Vec::new();
    for o in options.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
        let (set, clear) = match o {
            "ro" => (libc::MS_RDONLY, 0),
            "rw" => (0, libc::MS_RDONLY),
            "nosuid" => (libc::MS_NOSUID, 0),
            "suid" => (0, libc::MS_NOSUID),
            "nodev" => (libc::MS_NODEV, 0),
            "dev" => (0, libc::MS_NODEV),
            "noexec" => (libc::MS_NOEXEC, 0),
            "exec" => (0, libc::MS_NOEXEC),
            "sync" => (libc::MS_SYNCHRONOUS, 0),
            "async" => (0, libc::MS_SYNCHRONOUS),
            "dirsync" => (libc::MS_DIRSYNC, 0),
            "mand" => (libc::MS_MANDLOCK, 0),
            "nomand" => (0, libc::MS_MANDLOCK),
            "noatime" => (libc::MS_NOATIME, 0),
            "atime" => (0, libc::MS_NOATIME),
            "nodiratime" => (libc::MS_NODIRATIME, 0),
            "diratime" => (0, libc::MS_NODIRATIME),
            "relatime" => (libc::MS_RELATIME, 0),
            "norelatime" => (0, libc::MS_RELATIME),
            "strictatime" => (libc::MS_STRICTATIME, 0),
            "nostrictatime" => (0, libc::MS_STRICTATIME),
            "defaults" => (0, 0),
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => (0, 0),
            _ => {
                data.push(o);
                (0, 0)
            }
        };
        flags = (flags | set) & !clear;
    }
    (flags, data.join(","))
}

/// Standard streams as raw descriptors the child dups onto 0, 1, 2 (all ≥ 3 and CLOEXEC).
#[derive(Debug, Default)]
pub(crate) struct StdioPlan {
    /// Keeps the descriptors open until the child has forked.
    pub owned: Vec<OwnedFd>,
    /// `None`: keep the inherited one.
    pub fds: [Option<RawFd>; 3],
    /// Pty slave: setsid + TIOCSCTTY.
    pub ctty: bool,
}

/// Moves `fd` to a CLOEXEC descriptor ≥ 3 so dup2 onto 0..2 never clobbers a source.
pub(crate) fn high_fd(fd: &impl AsRawFd) -> Result<OwnedFd, RuntimeError> {
    use std::os::fd::FromRawFd;
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we borrow returns a new one we own.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if n < 0 {
        return Err(RuntimeError::sys(
            "duplicating a stdio descriptor",
            nix::errno::Errno::last(),
        ));
    }
    // SAFETY: `n` is a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// The process part shared by `create` and `exec`.
#[derive(Debug)]
pub(crate) struct ProcPlan {
    /// Owns the strings `argv_ptrs` points into (and is `berth-init`'s command).
    pub argv: Vec<CString>,
    pub argv_ptrs: Vec<*const libc::c_char>,
    /// Owns the strings `envp_ptrs` points into.
    #[allow(dead_code)]
    pub envp: Vec<CString>,
    pub envp_ptrs: Vec<*const libc::c_char>,
    /// Paths to try with execve, in `PATH` order.
    pub candidates: Vec<CString>,
    pub cwd: CString,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub groups: Vec<libc::gid_t>,
    /// Capabilities kept (bounding, permitted, effective).
    pub caps: u64,
    /// Capabilities the kernel knows.
    pub supported: u64,
    pub no_new_privs: bool,
    pub tty: bool,
    /// The compiled seccomp filter (built here, installed by the child with one syscall).
    pub seccomp: Option<berth_seccomp::Program>,
    /// Effective, permitted, inheritable and ambient sets (default: `caps`, `caps`, none,
    /// none); the OCI config may give each.
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
    /// The umask the command starts with (022 unless the OCI config says otherwise).
    pub umask: libc::mode_t,
    /// `(RLIMIT_*, soft, hard)` set right before exec (OCI `process.rlimits`).
    pub rlimits: Vec<(libc::c_int, u64, u64)>,
}

fn env_has(env: &[String], key: &str) -> bool {
    env.iter()
        .any(|e| e.split_once('=').map(|(k, _)| k) == Some(key))
}

/// The final environment: the spec's plus PATH, HOSTNAME, HOME and TERM defaults.
pub(crate) fn build_env(process: &ProcessSpec, hostname: Option<&str>, home: &str) -> Vec<String> {
    let mut env: Vec<String> = Vec::with_capacity(process.env.len() + 4);
    if !env_has(&process.env, "PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    if let Some(h) = hostname.filter(|_| !env_has(&process.env, "HOSTNAME")) {
        env.push(format!("HOSTNAME={h}"));
    }
    env.extend(process.env.iter().cloned());
    if !env_has(&env, "HOME") {
        env.push(format!("HOME={home}"));
    }
    if process.tty && !env_has(&env, "TERM") {
        env.push("TERM=xterm".into());
    }
    env
}

fn ptrs(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

impl ProcPlan {
    pub(crate) fn new(
        process: &ProcessSpec,
        user: &ResolvedUser,
        hostname: Option<&str>,
        caps: u64,
        no_new_privs: bool,
        seccomp: Option<&berth_seccomp::Profile>,
        what: &str,
    ) -> Result<ProcPlan, RuntimeError> {
        let arg0 = process
            .args
            .first()
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                RuntimeError::InvalidSpec("no command given (process args are empty)".into())
            })?;
        let env = build_env(process, hostname, &user.home);
        let argv = process
            .args
            .iter()
            .map(|a| cstr(a, "argument"))
            .collect::<Result<Vec<_>, _>>()?;
        let envp = env
            .iter()
            .map(|e| cstr(e, "environment entry"))
            .collect::<Result<Vec<_>, _>>()?;
        let candidates = exec_candidates(arg0, &env)
            .iter()
            .map(|c| cstr(c, "command"))
            .collect::<Result<Vec<_>, _>>()?;
        let cwd = if process.cwd.is_empty() {
            "/"
        } else {
            process.cwd.as_str()
        };
        if !cwd.starts_with('/') {
            return Err(RuntimeError::InvalidSpec(format!(
                "working directory {cwd:?} must be an absolute path"
            )));
        }
        let seccomp = match seccomp {
            Some(profile) => {
                let _s = tracing::debug_span!("seccomp", what).entered();
                Some(
                    profile
                        .compile_cached(&berth_seccomp::CompileOptions::with_caps(caps))
                        .map_err(|source| RuntimeError::Seccomp {
                            what: what.to_string(),
                            source,
                        })?,
                )
            }
            None => None,
        };
        Ok(ProcPlan {
            argv_ptrs: ptrs(&argv),
            argv,
            envp_ptrs: ptrs(&envp),
            envp,
            candidates,
            cwd: cstr(cwd, "working directory")?,
            uid: user.uid,
            gid: user.gid,
            groups: user.groups.clone(),
            caps,
            supported: caps::supported_mask(),
            no_new_privs,
            tty: process.tty,
            seccomp,
            effective: caps,
            permitted: caps,
            inheritable: 0,
            ambient: 0,
            umask: 0o022,
            rlimits: Vec::new(),
        })
    }
}

/// How `/sys` is provided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SysMode {
    Sysfs,
    BindHost,
}

/// Builds the ordered rootfs operations of `spec`.
pub(crate) fn rootfs_ops(
    spec: &ContainerSpec,
    sys: SysMode,
    console: Option<&Path>,
) -> Result<Vec<Op>, RuntimeError> {
    use libc::{MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_STRICTATIME};
    let mut ops = Vec::with_capacity(32 + spec.mounts.len());
    ops.push(Op::mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MS_NOSUID | MS_NOEXEC | MS_NODEV,
        None,
        Create::Dir,
        false,
    )?);
    ops.push(Op::mount(
        Some("tmpfs"),
        "/dev",
        Some("tmpfs"),
        MS_NOSUID | MS_STRICTATIME,
        Some("mode=755,size=65536k"),
        Create::Dir,
        false,
    )?);
    let chr = libc::S_IFCHR | 0o666;
    for (name, maj, min) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let (dir, name) = Op::in_dev(name)?;
        ops.push(Op::Mknod {
            dir,
            name,
            mode: chr,
            dev: libc::makedev(maj, min),
            owner: (0, 0),
        });
    }
    ops.push(Op::mount(
        Some("devpts"),
        "/dev/pts",
        Some("devpts"),
        MS_NOSUID | MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620,gid=5"),
        Create::Dir,
        false,
    )?);
    ops.push(Op::mount(
        Some("shm"),
        "/dev/shm",
        Some("tmpfs"),
        MS_NOSUID | MS_NOEXEC | MS_NODEV,
        Some("mode=1777,size=65536k"),
        Create::Dir,
        false,
    )?);
    ops.push(Op::mount(
        Some("mqueue"),
        "/dev/mqueue",
        Some("mqueue"),
        MS_NOSUID | MS_NOEXEC | MS_NODEV,
        None,
        Create::Dir,
        false,
    )?);
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
        ("core", "/proc/kcore"),
    ] {
        let (dir, name) = Op::in_dev(name)?;
        ops.push(Op::Symlink {
            dir,
            name,
            target: cstr(target, "link")?,
        });
    }
    if let Some(c) = console {
        let src = c
            .to_str()
            .ok_or_else(|| RuntimeError::InvalidSpec(format!("pty path {c:?} is not UTF-8")))?;
        ops.push(Op::mount(
            Some(src),
            "/dev/console",
            None,
            MS_BIND,
            None,
            Create::File,
            false,
        )?);
    }
    let ro = if spec.privileged { 0 } else { MS_RDONLY };
    match sys {
        SysMode::Sysfs => ops.push(Op::mount(
            Some("sysfs"),
            "/sys",
            Some("sysfs"),
            MS_NOSUID | MS_NOEXEC | MS_NODEV | ro,
            None,
            Create::Dir,
            false,
        )?),
        SysMode::BindHost => ops.push(Op::mount(
            Some("/sys"),
            "/sys",
            None,
            MS_BIND,
            None,
            Create::Dir,
            !spec.privileged,
        )?),
    }
    for m in &spec.mounts {
        match m {
            MountSpec::Bind {
                source,
                destination,
                read_only,
            } => {
                let meta = std::fs::metadata(source)
                    .map_err(|e| RuntimeError::io("bind mount source", source, e))?;
                let src = source.to_str().ok_or_else(|| {
                    RuntimeError::InvalidSpec(format!("bind source {source:?} is not UTF-8"))
                })?;
                check_proc_mount(destination, is_procfs(source)).map_err(|why| {
                    RuntimeError::InvalidSpec(format!("bind mount of {}: {why}", source.display()))
                })?;
                let create = if meta.is_dir() {
                    Create::Dir
                } else {
                    Create::File
                };
                ops.push(
                    Op::mount(
                        Some(src),
                        destination,
                        None,
                        MS_BIND | MS_REC,
                        None,
                        create,
                        *read_only,
                    )?
                    .outside_proc(),
                );
            }
            MountSpec::Tmpfs {
                destination,
                options,
            } => {
                check_proc_mount(destination, false)
                    .map_err(|why| RuntimeError::InvalidSpec(format!("tmpfs mount: {why}")))?;
                let (flags, data) = tmpfs_options(options)?;
                let data = if data.is_empty() {
                    None
                } else {
                    Some(data.as_str())
                };
                ops.push(
                    Op::mount(
                        Some("tmpfs"),
                        destination,
                        Some("tmpfs"),
                        flags,
                        data,
                        Create::Dir,
                        false,
                    )?
                    .outside_proc(),
                );
            }
            MountSpec::Other {
                source,
                destination,
                fstype,
                options,
            } => {
                check_proc_mount(destination, fstype == "proc" && destination == "/proc")
                    .map_err(|why| RuntimeError::InvalidSpec(format!("{fstype} mount: {why}")))?;
                let (flags, data) = mount_options(options);
                let data = (!data.is_empty()).then_some(data.as_str());
                ops.push(
                    Op::mount(
                        Some(source.as_str()),
                        destination,
                        Some(fstype.as_str()),
                        flags,
                        data,
                        Create::Dir,
                        false,
                    )?
                    .outside_proc(),
                );
            }
        }
    }
    for (host, dest) in &spec.etc_files {
        let src = host
            .to_str()
            .ok_or_else(|| RuntimeError::InvalidSpec(format!("file {host:?} is not UTF-8")))?;
        if !host.is_file() {
            return Err(RuntimeError::io(
                "bind mount source",
                host,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        ops.push(Op::mount(
            Some(src),
            dest,
            None,
            MS_BIND,
            None,
            Create::File,
            false,
        )?);
    }
    for d in &spec.devices {
        ops.extend(device_ops(d)?);
    }
    if !spec.privileged {
        let masked: Vec<String> = match &spec.masked_paths {
            Some(v) => v.clone(),
            None => DEFAULT_MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
        };
        for p in &masked {
            let (rel, _) = container_rel(p)?;
            ops.push(Op::Mask {
                target: cstr(&rel, "masked path")?,
            });
        }
        let ro_paths: Vec<String> = match &spec.readonly_paths {
            Some(v) => v.clone(),
            None => DEFAULT_READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        for p in &ro_paths {
            let (rel, _) = container_rel(p)?;
            ops.push(Op::ReadOnly {
                target: cstr(&rel, "read-only path")?,
            });
        }
    }
    let cwd = if spec.process.cwd.is_empty() {
        "/"
    } else {
        spec.process.cwd.as_str()
    };
    let (rel, chain) = container_rel(cwd)?;
    if !rel.is_empty() {
        ops.push(Op::MkdirAll {
            target: cstr(&rel, "working directory")?,
            chain,
        });
    }
    Ok(ops)
}

/// The steps that create `--device` node `d`: its parent directories, then the node.
fn device_ops(d: &crate::DeviceNode) -> Result<Vec<Op>, RuntimeError> {
    let (rel, mut chain) = container_rel(&d.path)?;
    let Some((dir, name)) = chain.pop() else {
        return Err(RuntimeError::InvalidSpec(format!(
            "device path {:?} is the container root",
            d.path
        )));
    };
    let mut ops = Vec::with_capacity(2);
    if !chain.is_empty() {
        let parent = rel.rsplit_once('/').map(|(p, _)| p).unwrap_or(".");
        ops.push(Op::MkdirAll {
            target: cstr(parent, "device directory")?,
            chain,
        });
    }
    let kind = match d.kind {
        crate::DeviceType::Char => libc::S_IFCHR,
        crate::DeviceType::Block => libc::S_IFBLK,
        crate::DeviceType::Fifo => libc::S_IFIFO,
    };
    ops.push(Op::Mknod {
        dir,
        name,
        mode: kind | (d.mode & 0o7777),
        dev: libc::makedev(d.major, d.minor),
        owner: (d.uid, d.gid),
    });
    Ok(ops)
}

/// Host path of the container root as a C string.
pub(crate) fn path_cstring(p: &Path) -> Result<CString, RuntimeError> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| RuntimeError::InvalidSpec(format!("path {p:?} contains a NUL byte")))
}

/// Absolute, canonical rootfs path (the engine gives a mounted directory).
pub(crate) fn rootfs_path(p: &Path) -> Result<PathBuf, RuntimeError> {
    let c = std::fs::canonicalize(p).map_err(|e| RuntimeError::io("resolving the rootfs", p, e))?;
    if !c.is_dir() {
        return Err(RuntimeError::InvalidSpec(format!(
            "rootfs {p:?} is not a directory"
        )));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths() {
        let (rel, chain) = container_rel("/a/./b//c").unwrap();
        assert_eq!(rel, "a/b/c");
        let pairs: Vec<(String, String)> = chain
            .iter()
            .map(|(p, n)| (p.to_str().unwrap().into(), n.to_str().unwrap().into()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                (".".into(), "a".into()),
                ("a".into(), "b".into()),
                ("a/b".into(), "c".into())
            ]
        );
        assert!(container_rel("/a/../../etc").is_err());
        assert!(container_rel("relative").is_err());
        assert_eq!(container_rel("/").unwrap().0, "");
    }

    #[test]
    fn proc_mounts_follow_runc() {
        for ok in [
            "/data",
            "/procfoo",
            "/proc/cpuinfo",
            "/proc//meminfo",
            "/proc/net/dev",
            "/sys",
        ] {
            check_proc_mount(ok, false).unwrap();
        }
        check_proc_mount("/proc", true).unwrap();
        check_proc_mount("/proc/", true).unwrap();
        let e = check_proc_mount("/proc", false).unwrap_err();
        assert!(e.contains("not of type proc"), "{e}");
        for bad in [
            "/proc/sys",
            "/proc/self",
            "/proc/sys/kernel",
            "/proc/1/root",
            "/./proc/kcore",
        ] {
            let e = check_proc_mount(bad, true).unwrap_err();
            assert!(e.contains("inside /proc"), "{bad}: {e}");
        }
        assert!(is_procfs(Path::new("/proc")));
        assert!(is_procfs(Path::new("/proc/self")));
        assert!(!is_procfs(Path::new("/")));
    }

    #[test]
    fn device_nodes_get_their_directories_and_owner() {
        let d = crate::DeviceNode {
            path: "/dev/net/tun".into(),
            kind: crate::DeviceType::Char,
            major: 10,
            minor: 200,
            mode: 0o666,
            uid: 0,
            gid: 5,
        };
        let ops = device_ops(&d).unwrap();
        assert_eq!(ops.len(), 2);
        assert!(matches!(&ops[0], Op::MkdirAll { target, chain }
            if target.to_str() == Ok("dev/net") && chain.len() == 2));
        match &ops[1] {
            Op::Mknod {
                dir,
                name,
                mode,
                dev,
                owner,
            } => {
                assert_eq!(
                    (dir.to_str().unwrap(), name.to_str().unwrap()),
                    ("dev/net", "tun")
                );
                assert_eq!(*mode, libc::S_IFCHR | 0o666);
                assert_eq!(*dev, libc::makedev(10, 200));
                assert_eq!(*owner, (0, 5));
            }
            other => panic!("{other:?}"),
        }
        let top = crate::DeviceNode {
            path: "/kmsg".into(),
            ..d.clone()
        };
        assert_eq!(device_ops(&top).unwrap().len(), 1);
        assert!(device_ops(&crate::DeviceNode {
            path: "/".into(),
            ..d.clone()
        })
        .is_err());
        assert!(device_ops(&crate::DeviceNode {
            path: "/dev/../x".into(),
            ..d
        })
        .is_err());
    }

    #[test]
    fn tmpfs_option_parsing() {
        let (f, d) = tmpfs_options("size=64m,mode=1777,exec,ro").unwrap();
        assert_eq!(d, "size=64m,mode=1777");
        assert_eq!(f & libc::MS_NOEXEC, 0);
        assert_ne!(f & libc::MS_RDONLY, 0);
        assert_ne!(f & libc::MS_NOSUID, 0);
        assert!(tmpfs_options("bogus=1").is_err());
        assert_eq!(tmpfs_options("").unwrap().1, "");
    }

    #[test]
    fn env_defaults() {
        let p = ProcessSpec {
            env: vec!["A=1".into()],
            tty: true,
            ..Default::default()
        };
        let env = build_env(&p, Some("box"), "/root");
        assert_eq!(
            env,
            vec![
                format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=box".into(),
                "A=1".into(),
                "HOME=/root".into(),
                "TERM=xterm".into()
            ]
        );
        let p = ProcessSpec {
            env: vec!["PATH=/x".into(), "HOME=/h".into(), "HOSTNAME=y".into()],
            ..Default::default()
        };
        assert_eq!(build_env(&p, Some("box"), "/root"), p.env);
    }
}
