//! Capability sets: Docker's defaults, `--cap-add`/`--cap-drop`, `--privileged`.
//!
//! Everything is computed in the parent as 64-bit masks (bit = capability number) so the
//! container child only issues `prctl`/`capset` system calls.

use std::{collections::BTreeSet, str::FromStr, sync::OnceLock};

use caps::Capability;

use crate::RuntimeError;

/// Docker's default capability set (names without the `CAP_` prefix).
pub const DEFAULT_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// Capabilities the running kernel knows (cached; asks the bounding set once).
pub(crate) fn supported() -> &'static [Capability] {
    static SUPPORTED: OnceLock<Vec<Capability>> = OnceLock::new();
    SUPPORTED.get_or_init(|| {
        let mut v: Vec<Capability> = caps::runtime::thread_all_supported().into_iter().collect();
        v.sort_by_key(|c| c.index());
        v
    })
}

/// Bitmask of every capability the kernel supports.
pub(crate) fn supported_mask() -> u64 {
    supported().iter().fold(0, |m, c| m | c.bitmask())
}

/// Capabilities this process can hand out: its own bounding set (a privileged container
/// cannot get more than the engine has, e.g. no CAP_SYS_RESOURCE on a restricted host).
pub(crate) fn available_mask() -> u64 {
    static AVAILABLE: OnceLock<u64> = OnceLock::new();
    *AVAILABLE.get_or_init(|| match caps::read(None, caps::CapSet::Bounding) {
        Ok(set) => set.iter().fold(0, |m, c| m | c.bitmask()),
        Err(_) => supported_mask(),
    })
}

/// Parses a Docker capability name (`net_admin`, `CAP_NET_ADMIN`); `ALL` is handled by callers.
pub fn parse_capability(name: &str) -> Result<Capability, RuntimeError> {
    Capability::from_str(&caps::to_canonical(name.trim()))
        .map_err(|_| RuntimeError::UnknownCapability(name.to_string()))
}

/// The mask of exactly these capabilities (no defaults, no `ALL`).
pub(crate) fn names_mask(names: &[String]) -> Result<u64, RuntimeError> {
    names
        .iter()
        .try_fold(0u64, |m, n| Ok(m | parse_capability(n)?.bitmask()))
}

fn is_all(name: &str) -> bool {
    let n = name.trim().to_ascii_uppercase();
    n == "ALL" || n == "CAP_ALL"
}

/// The capability mask of a process: Docker's defaults (or everything when privileged),
/// then `cap_add`, then `cap_drop` (Docker's order: drop wins, `ALL` on either side).
pub fn capability_mask(
    privileged: bool,
    cap_add: &[String],
    cap_drop: &[String],
) -> Result<u64, RuntimeError> {
    let all = available_mask();
    if privileged {
        return Ok(all);
    }
    let mut mask = 0u64;
    for name in DEFAULT_CAPS {
        mask |= parse_capability(name)?.bitmask();
    }
    for name in cap_add {
        if is_all(name) {
            mask = all;
        } else {
            let c = parse_capability(name)?;
            if all & c.bitmask() == 0 {
                return Err(RuntimeError::InvalidSpec(format!(
                    "cannot add capability {c}: the runtime itself does not have it in its bounding set"
                )));
            }
            mask |= c.bitmask();
        }
    }
    // Docker: `--cap-drop ALL --cap-add X` keeps X.
    let drop_all = cap_drop.iter().any(|n| is_all(n));
    if drop_all {
        let mut added = 0u64;
        for name in cap_add.iter().filter(|n| !is_all(n)) {
            added |= parse_capability(name)?.bitmask();
        }
        mask = added;
    }
    for name in cap_drop.iter().filter(|n| !is_all(n)) {
        mask &= !parse_capability(name)?.bitmask();
    }
    Ok(mask & all)
}

/// Names (`CAP_X`) of the capabilities in `mask`, sorted by number.
pub fn mask_names(mask: u64) -> Vec<String> {
    let set: BTreeSet<u8> = (0..64u8).filter(|i| mask & (1u64 << i) != 0).collect();
    supported()
        .iter()
        .filter(|c| set.contains(&c.index()))
        .map(|c| c.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(m: u64) -> Vec<String> {
        mask_names(m)
    }

    #[test]
    fn default_set_is_dockers() {
        let m = capability_mask(false, &[], &[]).unwrap();
        assert_eq!(m.count_ones(), 14);
        // Docker's `CapBnd` with the default set.
        assert_eq!(m, 0x00000000a80425fb);
        assert!(names(m).contains(&"CAP_AUDIT_WRITE".to_string()));
    }

    #[test]
    fn add_and_drop_with_or_without_prefix() {
        let m = capability_mask(
            false,
            &["net_admin".into(), "CAP_SYS_PTRACE".into()],
            &["CHOWN".into(), "cap_kill".into()],
        )
        .unwrap();
        let n = names(m);
        assert!(n.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(n.contains(&"CAP_SYS_PTRACE".to_string()));
        assert!(!n.contains(&"CAP_CHOWN".to_string()));
        assert!(!n.contains(&"CAP_KILL".to_string()));
        assert_eq!(n.len(), 14);
    }

    #[test]
    fn drop_all_keeps_added_and_add_all_gives_everything() {
        assert_eq!(capability_mask(false, &[], &["ALL".into()]).unwrap(), 0);
        let m = capability_mask(false, &["NET_ADMIN".into()], &["all".into()]).unwrap();
        assert_eq!(names(m), vec!["CAP_NET_ADMIN".to_string()]);
        assert_eq!(
            capability_mask(false, &["ALL".into()], &[]).unwrap(),
            available_mask()
        );
        assert_eq!(
            capability_mask(true, &[], &["ALL".into()]).unwrap(),
            available_mask()
        );
        assert_eq!(available_mask() & !supported_mask(), 0);
    }

    #[test]
    fn unknown_name_is_an_error() {
        let e = capability_mask(false, &["NOT_A_CAP".into()], &[]).unwrap_err();
        assert!(e.to_string().contains("NOT_A_CAP"), "{e}");
    }
}
