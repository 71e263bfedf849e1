//! Capability names ↔ bit numbers (bit n = capability number n, as in the runtime's masks).

use std::str::FromStr;

/// `CAP_SYS_ADMIN`, `sys_admin` → its number.
pub(crate) fn parse(name: &str) -> Option<u8> {
    caps::Capability::from_str(&caps::to_canonical(name.trim()))
        .ok()
        .map(|c| c.index())
}

/// Capability mask from names (`CAP_` optional, any case). Unknown names are returned as the error.
pub fn cap_mask<S: AsRef<str>>(names: &[S]) -> Result<u64, String> {
    names.iter().try_fold(0u64, |m, n| {
        parse(n.as_ref())
            .map(|i| m | (1u64 << i))
            .ok_or_else(|| n.as_ref().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(parse("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(parse("sys_admin"), Some(21));
        assert_eq!(cap_mask(&["CHOWN", "CAP_SYS_BOOT"]), Ok(1 | (1 << 22)));
        assert_eq!(cap_mask(&["NOPE"]), Err("NOPE".to_string()));
    }
}
