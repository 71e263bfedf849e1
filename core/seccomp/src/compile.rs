//! Profile → BPF for the host architecture, with libseccomp.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    os::fd::{FromRawFd, OwnedFd},
    sync::Mutex,
};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};

use crate::{
    arch::Arch,
    caps,
    profile::{parse_kernel_version, Action, Arg, Filter, Op, Profile, SyscallRule},
    Program, SeccompError,
};

/// What a profile is compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompileOptions {
    /// The capabilities the process will have (bit n = capability n, the runtime's
    /// `capability_mask`); they decide the `includes.caps` / `excludes.caps` entries.
    pub caps: u64,
    /// Kernel version (major, minor) for `minKernel`; `None` = the running kernel.
    pub kernel: Option<(u32, u32)>,
}

impl CompileOptions {
    /// For a process with the capabilities in `caps`, on the running kernel.
    pub fn with_caps(caps: u64) -> CompileOptions {
        CompileOptions { caps, kernel: None }
    }
}

fn running_kernel() -> Option<(u32, u32)> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .and_then(|s| parse_kernel_version(&s))
}

/// Architectures a filter for `host` may also cover (32-bit and alternative ABIs).
fn compatible(host: ScmpArch) -> &'static [ScmpArch] {
    match host {
        ScmpArch::X8664 => &[ScmpArch::X86, ScmpArch::X32],
        ScmpArch::Aarch64 => &[ScmpArch::Arm],
        ScmpArch::S390X => &[ScmpArch::S390],
        ScmpArch::Mips64 => &[ScmpArch::Mips, ScmpArch::Mips64N32],
        ScmpArch::Mipsel64 => &[ScmpArch::Mipsel, ScmpArch::Mipsel64N32],
        _ => &[],
    }
}

fn scmp_action(action: Action, errno: Option<u32>) -> ScmpAction {
    match action {
        Action::Allow => ScmpAction::Allow,
        Action::Errno => ScmpAction::Errno(errno.map_or(libc::EPERM, |e| e as i32)),
        Action::KillThread => ScmpAction::KillThread,
        Action::KillProcess => ScmpAction::KillProcess,
        Action::Trap => ScmpAction::Trap,
        Action::Trace => ScmpAction::Trace(errno.map_or(0, |e| e.min(u16::MAX as u32) as u16)),
        Action::Log => ScmpAction::Log,
    }
}

fn condition(a: &Arg) -> ScmpArgCompare {
    let (op, datum) = match a.op {
        Op::NotEqual => (ScmpCompareOp::NotEqual, a.value),
        Op::Less => (ScmpCompareOp::Less, a.value),
        Op::LessOrEqual => (ScmpCompareOp::LessOrEqual, a.value),
        Op::Equal => (ScmpCompareOp::Equal, a.value),
        Op::GreaterOrEqual => (ScmpCompareOp::GreaterEqual, a.value),
        Op::Greater => (ScmpCompareOp::Greater, a.value),
        // Docker: `value` is the mask, `valueTwo` the expected result.
        Op::MaskedEqual => (ScmpCompareOp::MaskedEqual(a.value), a.value_two),
    };
    ScmpArgCompare::new(a.index, op, datum)
}

/// Does the entry apply to this host, capability set and kernel (Docker's semantics:
/// `includes.caps` all present, `excludes.caps` none present)?
fn applies(rule: &SyscallRule, host: Arch, caps: u64, kernel: Option<(u32, u32)>) -> bool {
    let has = |c: &String| caps::parse(c).is_some_and(|i| caps & (1u64 << i) != 0);
    let on_host = |f: &Filter| f.arches.iter().any(|a| Arch::parse(a) == Some(host));
    let inc = &rule.includes;
    if !inc.caps.iter().all(has) || (!inc.arches.is_empty() && !on_host(inc)) {
        return false;
    }
    if let Some(min) = inc.min_kernel.as_deref().and_then(parse_kernel_version) {
        // An unknown running kernel does not get entries that need a recent one.
        if !matches!(kernel, Some(k) if k >= min) {
            return false;
        }
    }
    let exc = &rule.excludes;
    !(exc.caps.iter().any(has) || on_host(exc))
}

/// The argument-condition sets of an entry: all conditions together, or (libseccomp cannot
/// AND two conditions on one argument) one set per condition when an argument repeats,
/// which is how runc reads such entries.
fn condition_sets(args: &[Arg]) -> Vec<Vec<ScmpArgCompare>> {
    let repeats = args
        .iter()
        .enumerate()
        .any(|(i, a)| args[..i].iter().any(|b| b.index == a.index));
    if repeats {
        args.iter().map(|a| vec![condition(a)]).collect()
    } else {
        vec![args.iter().map(condition).collect()]
    }
}

impl Profile {
    /// Compiles the profile for the host architecture and the capabilities in `opts`.
    /// System call names the host does not know are skipped.
    pub fn compile(&self, opts: &CompileOptions) -> Result<Program, SeccompError> {
        let span = tracing::debug_span!("seccomp_compile", caps = format!("{:#x}", opts.caps));
        let _g = span.enter();
        let top = |op: &'static str, e: libseccomp::error::SeccompError| SeccompError::Compile {
            entry: "top level".into(),
            names: String::new(),
            op,
            reason: e.to_string(),
        };
        let host = Arch::host();
        let kernel = opts.kernel.or_else(running_kernel);
        let default = scmp_action(self.default_action, self.default_errno_ret);
        let mut ctx = ScmpFilterContext::new(default).map_err(|e| top("creating the filter", e))?;
        // A binary tree of syscall numbers instead of a linear list, where supported.
        if let Err(e) = ctx.set_ctl_optimize(2) {
            tracing::debug!(error = %e, "libseccomp cannot build a binary tree; linear filter");
        }

        let mut extra: Vec<ScmpArch> = Vec::new();
        if let Some(m) = self
            .arch_map
            .iter()
            .find(|m| Arch::parse(&m.architecture) == Some(host))
        {
            extra.extend(
                m.sub_architectures
                    .iter()
                    .filter_map(|a| Arch::parse(a))
                    .map(|a| a.0),
            );
        }
        extra.extend(
            self.architectures
                .iter()
                .filter_map(|a| Arch::parse(a))
                .map(|a| a.0),
        );
        for a in extra {
            if a == host.0 || !compatible(host.0).contains(&a) {
                continue;
            }
            let present = ctx
                .is_arch_present(a)
                .map_err(|e| top("checking an architecture", e))?;
            if !present {
                ctx.add_arch(a)
                    .map_err(|e| top("adding an architecture", e))?;
            }
        }

        let mut skipped = 0usize;
        for (i, rule) in self.syscalls.iter().enumerate() {
            if !applies(rule, host, opts.caps, kernel) {
                continue;
            }
            let action = scmp_action(rule.action, rule.errno_ret);
            if action == default {
                continue;
            }
            let sets = condition_sets(&rule.args);
            for name in rule.all_names() {
                let Ok(sc) = ScmpSyscall::from_name(name) else {
                    tracing::trace!(name, "system call unknown on this architecture; skipped");
                    skipped += 1;
                    continue;
                };
                for conds in &sets {
                    ctx.add_rule_conditional(action, sc, conds).map_err(|e| {
                        SeccompError::Compile {
                            entry: format!("syscalls[{i}]"),
                            names: rule.label(),
                            op: "adding the rule for",
                            reason: format!("{name}: {e}"),
                        }
                    })?;
                }
            }
        }

        let program = export(&ctx)?;
        tracing::debug!(
            instructions = program.len(),
            skipped,
            "seccomp profile compiled"
        );
        Ok(program)
    }
}

/// Programs compiled by [`Profile::compile_cached`]: (profile, options) → program.
type Cache = Vec<(Profile, CompileOptions, Program)>;
static CACHE: Mutex<Cache> = Mutex::new(Vec::new());
const CACHE_ENTRIES: usize = 16;

impl Profile {
    /// [`Profile::compile`] with a small process-wide cache (16 most recent profile and
    /// option pairs): compiling the default profile for x86_64 with its x86 and x32
    /// sub-architectures takes tens of milliseconds, a lookup microseconds.
    pub fn compile_cached(&self, opts: &CompileOptions) -> Result<Program, SeccompError> {
        let lock = |c: &'static Mutex<Cache>| c.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = lock(&CACHE)
            .iter()
            .find(|(p, o, _)| o == opts && p == self)
            .map(|(_, _, prog)| prog.clone())
        {
            return Ok(hit);
        }
        let prog = match disk::load(self, opts) {
            Some(prog) => prog,
            None => {
                let prog = self.compile(opts)?;
                disk::store(self, opts, &prog);
                prog
            }
        };
        let mut cache = lock(&CACHE);
        if cache.len() >= CACHE_ENTRIES {
            cache.remove(0);
        }
        cache.push((self.clone(), *opts, prog.clone()));
        Ok(prog)
    }
}

/// Where [`Profile::compile_cached`] keeps programs across processes (every `berth run`
/// is a new process, and compiling the default profile costs ~30 ms): set once by the
/// engine with [`set_cache_dir`]. Unset = memory only.
static CACHE_DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Keeps compiled programs in `dir` (created on first use), keyed by a hash of the
/// profile, the options, the running kernel and the libseccomp version. The first call
/// wins; later calls are ignored.
pub fn set_cache_dir(dir: impl Into<std::path::PathBuf>) {
    let _ = CACHE_DIR.set(dir.into());
}

mod disk {
    use std::io::Write;

    use sha2::{Digest, Sha256};

    use super::{CompileOptions, Profile, Program, CACHE_DIR};

    fn path(profile: &Profile, opts: &CompileOptions) -> Option<std::path::PathBuf> {
        let dir = CACHE_DIR.get()?;
        let json = serde_json::to_vec(profile).ok()?;
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let lib = libseccomp::ScmpVersion::current()
            .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
            .unwrap_or_default();
        let mut h = Sha256::new();
        h.update(&json);
        h.update(format!(
            "\0{opts:?}\0{}\0{lib}\0{}",
            kernel.trim(),
            std::env::consts::ARCH
        ));
        Some(dir.join(format!("{}.bpf", hex::encode(h.finalize()))))
    }

    /// A program compiled earlier by any process; unreadable or damaged entries are misses.
    pub(super) fn load(profile: &Profile, opts: &CompileOptions) -> Option<Program> {
        let bytes = std::fs::read(path(profile, opts)?).ok()?;
        Program::from_bytes(&bytes).ok().filter(|p| !p.is_empty())
    }

    /// Best effort: a write that fails only costs the next process a compile. Written to
    /// a temporary file and renamed, so readers never see half a program.
    pub(super) fn store(profile: &Profile, opts: &CompileOptions, prog: &Program) {
        let Some(path) = path(profile, opts) else {
            return;
        };
        let Some(dir) = path.parent() else { return };
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(dir)?;
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            tmp.write_all(&prog.to_bytes())?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        };
        if let Err(e) = write() {
            tracing::debug!(error = %e, path = %path.display(), "seccomp program cache not written");
        }
    }
}

/// libseccomp writes the program to a descriptor: a memfd, read back into memory.
fn export(ctx: &ScmpFilterContext) -> Result<Program, SeccompError> {
    let io_err = |op: &'static str, e: std::io::Error| SeccompError::Compile {
        entry: "exported filter".into(),
        names: String::new(),
        op,
        reason: e.to_string(),
    };
    // SAFETY: memfd_create with a literal NUL-terminated name; the result is owned below.
    let fd = unsafe { libc::memfd_create(c"berth-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io_err("memfd_create", std::io::Error::last_os_error()));
    }
    // SAFETY: a fresh descriptor we own.
    let mut file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    ctx.export_bpf(&file).map_err(|e| SeccompError::Compile {
        entry: "exported filter".into(),
        names: String::new(),
        op: "exporting the BPF program",
        reason: e.to_string(),
    })?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| io_err("rewinding the exported program", e))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| io_err("reading the exported program", e))?;
    Program::from_bytes(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYS_ADMIN: u64 = 1 << 21;

    fn rule(json: &str) -> SyscallRule {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn includes_and_excludes() {
        let host = Arch::host();
        let r = rule(
            r#"{"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN","CAP_SYS_BOOT"]}}"#,
        );
        assert!(!applies(&r, host, SYS_ADMIN, None));
        assert!(applies(&r, host, SYS_ADMIN | 1 << 22, None));
        let r = rule(
            r#"{"names":["clone"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_SYS_ADMIN"]}}"#,
        );
        assert!(applies(&r, host, 0, None));
        assert!(!applies(&r, host, SYS_ADMIN, None));
        let r = rule(
            r#"{"names":["ptrace"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"4.8"}}"#,
        );
        assert!(applies(&r, host, 0, Some((4, 8))));
        assert!(!applies(&r, host, 0, Some((4, 7))));
        assert!(!applies(&r, host, 0, None));
        let r = rule(
            r#"{"names":["x"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["SCMP_ARCH_M68K"]}}"#,
        );
        assert!(!applies(&r, host, 0, None));
        let r = rule(r#"{"names":["x"],"action":"SCMP_ACT_ALLOW","excludes":{"arches":["m68k"]}}"#);
        assert!(applies(&r, host, 0, None));
    }

    #[test]
    fn repeated_argument_means_alternatives() {
        let args: Vec<Arg> = serde_json::from_str(
            r#"[{"index":0,"value":0,"op":"SCMP_CMP_EQ"},{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]"#,
        )
        .unwrap();
        assert_eq!(condition_sets(&args).len(), 2);
        let args: Vec<Arg> = serde_json::from_str(
            r#"[{"index":0,"value":0,"op":"SCMP_CMP_EQ"},{"index":1,"value":8,"op":"SCMP_CMP_EQ"}]"#,
        )
        .unwrap();
        let sets = condition_sets(&args);
        assert_eq!((sets.len(), sets[0].len()), (1, 2));
    }

    #[test]
    fn default_profile_compiles_and_depends_on_caps() {
        let p = Profile::default_profile();
        let plain = p.compile(&CompileOptions::with_caps(0)).unwrap();
        let admin = p.compile(&CompileOptions::with_caps(SYS_ADMIN)).unwrap();
        assert!(
            plain.len() > 100 && plain.len() <= crate::MAX_INSTRUCTIONS,
            "{}",
            plain.len()
        );
        assert_ne!(plain, admin);
        // Deterministic.
        assert_eq!(plain, p.compile(&CompileOptions::with_caps(0)).unwrap());
    }

    #[test]
    fn cached_compile_is_the_same_program() {
        let p = Profile::default_profile();
        let o = CompileOptions::with_caps(1 << 22);
        assert_eq!(p.compile_cached(&o).unwrap(), p.compile(&o).unwrap());
        assert_eq!(p.compile_cached(&o).unwrap(), p.compile(&o).unwrap());
    }

    #[test]
    fn unknown_names_are_skipped() {
        let p = Profile::from_json(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
                {"names":["no_such_syscall_bt","mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
        )
        .unwrap();
        assert!(p.compile(&CompileOptions::default()).is_ok());
    }
}

#[cfg(test)]
mod disk_tests {
    use super::*;

    #[test]
    fn program_bytes_round_trip() {
        let p = Profile::default_profile()
            .compile(&CompileOptions::with_caps(0))
            .unwrap();
        assert_eq!(Program::from_bytes(&p.to_bytes()).unwrap(), p);
    }
}
