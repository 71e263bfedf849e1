//! Docker's seccomp profile JSON format: parsing and validation.
//!
//! The format is the one `docker run --security-opt seccomp=PROFILE.json` reads: a default
//! action, the architectures the filter covers, and a list of syscall entries, each with an
//! action, optional argument conditions and optional `includes`/`excludes` that make the
//! entry depend on capabilities, the architecture or the kernel version.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{arch::Arch, SeccompError};

/// What the filter does with a system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Action {
    /// Let the call through.
    #[serde(rename = "SCMP_ACT_ALLOW")]
    Allow,
    /// Fail the call with an errno (`errnoRet`, EPERM when absent).
    #[serde(rename = "SCMP_ACT_ERRNO")]
    Errno,
    /// Kill the calling thread (`SCMP_ACT_KILL` is the old name).
    #[serde(rename = "SCMP_ACT_KILL_THREAD", alias = "SCMP_ACT_KILL")]
    KillThread,
    /// Kill the whole process.
    #[serde(rename = "SCMP_ACT_KILL_PROCESS")]
    KillProcess,
    /// Send SIGSYS.
    #[serde(rename = "SCMP_ACT_TRAP")]
    Trap,
    /// Notify a ptrace tracer (`errnoRet` is the message value); ENOSYS without one.
    #[serde(rename = "SCMP_ACT_TRACE")]
    Trace,
    /// Let the call through and log it.
    #[serde(rename = "SCMP_ACT_LOG")]
    Log,
}

/// A comparison of one system call argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    #[serde(rename = "SCMP_CMP_NE")]
    NotEqual,
    #[serde(rename = "SCMP_CMP_LT")]
    Less,
    #[serde(rename = "SCMP_CMP_LE")]
    LessOrEqual,
    #[serde(rename = "SCMP_CMP_EQ")]
    Equal,
    #[serde(rename = "SCMP_CMP_GE")]
    GreaterOrEqual,
    #[serde(rename = "SCMP_CMP_GT")]
    Greater,
    /// `(arg & value) == valueTwo`.
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEqual,
}

/// One argument condition of a syscall entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    /// Argument number, 0..=5.
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: Op,
}

/// Conditions under which a syscall entry applies (`includes`) or does not (`excludes`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// Capabilities (`CAP_SYS_ADMIN`): `includes` needs all of them, `excludes` any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<String>,
    /// Architectures (`amd64`, `arm64`, `x86`, `SCMP_ARCH_X86_64`...), compared with the host's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arches: Vec<String>,
    /// `includes` only: the lowest kernel version (`"4.8"`) the entry applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<String>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.caps.is_empty() && self.arches.is_empty() && self.min_kernel.is_none()
    }
}

/// One entry of `syscalls`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    /// System call names; names the host architecture does not have are skipped.
    #[serde(default)]
    pub names: Vec<String>,
    /// Old single-name form of `names`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub action: Action,
    /// errno for `SCMP_ACT_ERRNO` (EPERM when absent), message for `SCMP_ACT_TRACE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    /// Conditions, all of which must hold (conditions on the same argument are alternatives).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Arg>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    #[serde(default, skip_serializing_if = "Filter::is_empty")]
    pub includes: Filter,
    #[serde(default, skip_serializing_if = "Filter::is_empty")]
    pub excludes: Filter,
}

impl SyscallRule {
    /// `names` plus the legacy `name`.
    pub fn all_names(&self) -> impl Iterator<Item = &str> {
        self.names
            .iter()
            .map(String::as_str)
            .chain(self.name.as_deref())
    }

    /// For messages: the first names of the entry.
    pub(crate) fn label(&self) -> String {
        let names: Vec<&str> = self.all_names().take(3).collect();
        let more = self.all_names().count().saturating_sub(3);
        if more > 0 {
            format!("{} (+{more} more)", names.join(", "))
        } else {
            names.join(", ")
        }
    }
}

/// An architecture and the compatible ones a filter for it also covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: String,
    #[serde(default)]
    pub sub_architectures: Vec<String>,
}

/// A seccomp profile in Docker's JSON format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: Action,
    /// errno of `defaultAction: SCMP_ACT_ERRNO` (EPERM when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// Old form: the architectures the filter covers (those foreign to the host are skipped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    /// New form: per host architecture, the compatible ones the filter also covers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arch_map: Vec<ArchMap>,
    #[serde(default)]
    pub syscalls: Vec<SyscallRule>,
}

/// The built-in default profile (see `profiles/default.json`).
const DEFAULT_PROFILE: &str = include_str!("../profiles/default.json");

impl Profile {
    /// berth's default profile: an allow-list with the effect of Docker's default (EPERM
    /// for everything else; namespace flags of `clone` refused, `clone3` → ENOSYS,
    /// `personality` and `socket(AF_VSOCK)` restricted; mount, unshare, setns, reboot,
    /// module and ptrace-like calls unlocked by the matching capabilities).
    pub fn default_profile() -> Profile {
        match Profile::parse(DEFAULT_PROFILE, "built-in default profile") {
            Ok(p) => p,
            // The embedded file is checked by a unit test; a broken build must not
            // silently run containers unconfined, so fail closed with an empty allow-list.
            Err(e) => {
                tracing::error!(error = %e, "the built-in seccomp profile is invalid");
                Profile {
                    default_action: Action::Errno,
                    default_errno_ret: None,
                    architectures: Vec::new(),
                    arch_map: Vec::new(),
                    syscalls: Vec::new(),
                }
            }
        }
    }

    /// The JSON text of the default profile, e.g. to show or copy it.
    pub fn default_profile_json() -> &'static str {
        DEFAULT_PROFILE
    }

    /// Parses and validates a profile given as text.
    pub fn from_json(json: &str) -> Result<Profile, SeccompError> {
        Profile::parse(json, "<inline profile>")
    }

    /// Reads, parses and validates a profile file.
    pub fn from_file(path: &Path) -> Result<Profile, SeccompError> {
        let text = std::fs::read_to_string(path).map_err(|source| SeccompError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Profile::parse(&text, &path.display().to_string())
    }

    fn parse(json: &str, origin: &str) -> Result<Profile, SeccompError> {
        let p: Profile = serde_json::from_str(json).map_err(|source| SeccompError::Parse {
            origin: origin.to_string(),
            source,
        })?;
        p.validate(origin)?;
        Ok(p)
    }

    /// Checks what serde cannot: argument numbers, errno ranges, capability and
    /// architecture names, kernel versions.
    pub fn validate(&self, origin: &str) -> Result<(), SeccompError> {
        let invalid = |entry: Option<usize>, label: String, reason: String| SeccompError::Invalid {
            origin: origin.to_string(),
            entry: entry.map_or_else(|| "top level".to_string(), |i| format!("syscalls[{i}]")),
            names: label,
            reason,
        };
        if let Some(e) = self.default_errno_ret {
            if e == 0 || e > 4095 {
                return Err(invalid(
                    None,
                    "defaultErrnoRet".into(),
                    format!("errno {e} is outside 1..=4095"),
                ));
            }
        }
        for a in self.architectures.iter().chain(
            self.arch_map
                .iter()
                .flat_map(|m| std::iter::once(&m.architecture).chain(m.sub_architectures.iter())),
        ) {
            Arch::parse(a)
                .ok_or_else(|| invalid(None, a.clone(), format!("unknown architecture {a:?}")))?;
        }
        for (i, rule) in self.syscalls.iter().enumerate() {
            let label = rule.label();
            if rule.all_names().next().is_none() {
                return Err(invalid(Some(i), label, "entry names no system call".into()));
            }
            if let Some(n) = rule.all_names().find(|n| n.is_empty()) {
                return Err(invalid(
                    Some(i),
                    label,
                    format!("empty system call name {n:?}"),
                ));
            }
            match (rule.action, rule.errno_ret) {
                (Action::Errno, Some(e)) if e == 0 || e > 4095 => {
                    return Err(invalid(
                        Some(i),
                        label,
                        format!("errnoRet {e} is outside 1..=4095"),
                    ))
                }
                (Action::Trace, Some(e)) if e > u32::from(u16::MAX) => {
                    return Err(invalid(
                        Some(i),
                        label,
                        format!("errnoRet {e} of SCMP_ACT_TRACE is above 65535"),
                    ))
                }
                _ => {}
            }
            if rule.args.len() > 6 {
                return Err(invalid(
                    Some(i),
                    label,
                    "more than 6 argument conditions".into(),
                ));
            }
            if let Some(a) = rule.args.iter().find(|a| a.index > 5) {
                return Err(invalid(
                    Some(i),
                    label,
                    format!("argument index {} is above 5", a.index),
                ));
            }
            for f in [&rule.includes, &rule.excludes] {
                for c in &f.caps {
                    crate::caps::parse(c).ok_or_else(|| {
                        invalid(Some(i), label.clone(), format!("unknown capability {c:?}"))
                    })?;
                }
                for a in &f.arches {
                    Arch::parse(a).ok_or_else(|| {
                        invalid(
                            Some(i),
                            label.clone(),
                            format!("unknown architecture {a:?}"),
                        )
                    })?;
                }
                if let Some(k) = &f.min_kernel {
                    parse_kernel_version(k).ok_or_else(|| {
                        invalid(
                            Some(i),
                            label.clone(),
                            format!("minKernel {k:?} is not a version like \"4.8\""),
                        )
                    })?;
                }
            }
        }
        Ok(())
    }
}

/// `"5.10"`, `"5.10.3"`, `"6.18.0-rc1"` → (major, minor).
pub(crate) fn parse_kernel_version(s: &str) -> Option<(u32, u32)> {
    let mut parts = s.trim().split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = match parts.next() {
        Some(m) => m.parse().ok()?,
        None => 0,
    };
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_parses_and_is_an_allow_list() {
        let p = Profile::parse(DEFAULT_PROFILE, "default").unwrap();
        assert_eq!(p.default_action, Action::Errno);
        assert_eq!(p.default_errno_ret, Some(1));
        let allowed: Vec<&str> = p
            .syscalls
            .iter()
            .filter(|r| {
                r.action == Action::Allow
                    && r.args.is_empty()
                    && r.includes.is_empty()
                    && r.excludes.is_empty()
            })
            .flat_map(|r| r.all_names())
            .collect();
        for must in [
            "read",
            "write",
            "execve",
            "openat",
            "wait4",
            "capset",
            "setresuid",
        ] {
            assert!(allowed.contains(&must), "{must} missing");
        }
        for never in [
            "mount",
            "unshare",
            "setns",
            "reboot",
            "kexec_load",
            "init_module",
            "keyctl",
            "clone",
            "clone3",
            "ptrace",
            "io_uring_setup",
            "socket",
        ] {
            assert!(
                !allowed.contains(&never),
                "{never} is allowed unconditionally"
            );
        }
        assert_eq!(Profile::default_profile(), p);
    }

    #[test]
    fn parse_errors_name_the_origin_and_entry() {
        let e = Profile::from_json("{\"defaultAction\": \"SCMP_ACT_NOPE\"}").unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("<inline profile>") && m.contains("SCMP_ACT_NOPE"),
            "{m}"
        );

        let j = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["read"],"action":"SCMP_ACT_ALLOW"},
            {"names":["mkdir","rmdir"],"action":"SCMP_ACT_ERRNO","args":[{"index":7,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#;
        let m = Profile::from_json(j).unwrap_err().to_string();
        assert!(
            m.contains("syscalls[1]") && m.contains("mkdir, rmdir") && m.contains("index 7"),
            "{m}"
        );

        let j = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_NOT_REAL"]}}]}"#;
        let m = Profile::from_json(j).unwrap_err().to_string();
        assert!(
            m.contains("syscalls[0]") && m.contains("CAP_NOT_REAL"),
            "{m}"
        );

        let j = r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":0}"#;
        assert!(Profile::from_json(j).is_err());
        let j = r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_VAX"]}"#;
        assert!(Profile::from_json(j)
            .unwrap_err()
            .to_string()
            .contains("VAX"));
    }

    #[test]
    fn file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bt-profile.json");
        let e = Profile::from_file(&f).unwrap_err().to_string();
        assert!(e.contains("bt-profile.json"), "{e}");
        std::fs::write(&f, "{\"defaultAction\": 3}").unwrap();
        let e = Profile::from_file(&f).unwrap_err().to_string();
        assert!(e.contains("bt-profile.json") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn legacy_name_and_kill_alias() {
        let j = r#"{"defaultAction":"SCMP_ACT_KILL","syscalls":[{"name":"read","action":"SCMP_ACT_ALLOW"}]}"#;
        let p = Profile::from_json(j).unwrap();
        assert_eq!(p.default_action, Action::KillThread);
        assert_eq!(p.syscalls[0].all_names().collect::<Vec<_>>(), vec!["read"]);
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(parse_kernel_version("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel_version("6.18.0-rc1"), Some((6, 18)));
        assert_eq!(parse_kernel_version("5"), Some((5, 0)));
        assert_eq!(parse_kernel_version("x.1"), None);
    }
}
