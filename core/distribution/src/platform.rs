//! Platform matching for image indexes / manifest lists, a simplified
//! version of containerd's matcher: OS and (normalised) architecture must
//! match; variants follow the compatibility rules of arm/arm64.

use std::fmt;

/// `os/architecture[/variant]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let arch = arch.to_ascii_lowercase();
    let variant = variant
        .filter(|v| !v.is_empty())
        .map(str::to_ascii_lowercase);
    match arch.as_str() {
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), variant.filter(|v| v != "v1")),
        "i386" | "386" | "i686" => ("386".into(), None),
        "aarch64" | "arm64" => (
            "arm64".into(),
            Some(match variant.as_deref() {
                None | Some("8") | Some("v8") => "v8".to_string(),
                Some(v) => v.to_string(),
            }),
        ),
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "arm" => (
            "arm".into(),
            Some(match variant.as_deref() {
                None | Some("7") => "v7".to_string(),
                Some("6") => "v6".to_string(),
                Some("5") => "v5".to_string(),
                Some(v) => v.to_string(),
            }),
        ),
        _ => (arch, variant),
    }
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Self {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(String::from),
        }
    }

    /// The platform of this host (`linux/amd64`, `linux/arm64/v8`, ...).
    pub fn host() -> Platform {
        let (arch, variant) = normalize_arch(std::env::consts::ARCH, None);
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: arch,
            variant,
        }
    }

    /// Parses `os/arch[/variant]` (`--platform`).
    pub fn parse(s: &str) -> Option<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Some(Platform::new(os, arch, None)),
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => {
                Some(Platform::new(os, arch, Some(v)))
            }
            _ => None,
        }
    }

    /// How well `candidate` fits this (wanted) platform: `None` = not at all,
    /// lower is better.
    pub fn match_score(&self, candidate: &Platform) -> Option<u32> {
        if !self.os.eq_ignore_ascii_case(&candidate.os) {
            return None;
        }
        let (wa, wv) = normalize_arch(&self.architecture, self.variant.as_deref());
        let (ca, cv) = normalize_arch(&candidate.architecture, candidate.variant.as_deref());
        if wa != ca {
            return None;
        }
        if wv == cv {
            return Some(0);
        }
        match wa.as_str() {
            // armv7 runs v6 and v5 binaries: prefer the closest.
            "arm" => {
                let n = |v: &Option<String>| {
                    v.as_deref()
                        .and_then(|v| v.strip_prefix('v'))
                        .and_then(|n| n.parse::<u32>().ok())
                };
                match (n(&wv), n(&cv)) {
                    (Some(w), Some(c)) if c < w => Some(w - c),
                    _ => None,
                }
            }
            _ => match (&wv, &cv) {
                // No variant wanted: any variant will do, the plain one first.
                (None, Some(_)) => Some(1),
                // A variant wanted and the candidate names none.
                (Some(_), None) => Some(1),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_rules() {
        let amd = Platform::new("linux", "amd64", None);
        assert_eq!(
            amd.match_score(&Platform::new("linux", "amd64", None)),
            Some(0)
        );
        assert_eq!(
            amd.match_score(&Platform::new("linux", "x86_64", None)),
            Some(0)
        );
        assert_eq!(
            amd.match_score(&Platform::new("linux", "amd64", Some("v3"))),
            Some(1)
        );
        assert_eq!(
            amd.match_score(&Platform::new("linux", "arm64", None)),
            None
        );
        assert_eq!(
            amd.match_score(&Platform::new("windows", "amd64", None)),
            None
        );
        let arm64 = Platform::new("linux", "arm64", None);
        assert_eq!(
            arm64.match_score(&Platform::new("linux", "arm64", Some("v8"))),
            Some(0)
        );
        let armv7 = Platform::new("linux", "arm", Some("v7"));
        assert_eq!(
            armv7.match_score(&Platform::new("linux", "arm", Some("v6"))),
            Some(1)
        );
        assert_eq!(
            armv7.match_score(&Platform::new("linux", "arm", None)),
            Some(0)
        );
        let armv6 = Platform::new("linux", "arm", Some("v6"));
        assert_eq!(
            armv6.match_score(&Platform::new("linux", "arm", Some("v7"))),
            None
        );
        assert_eq!(Platform::parse("linux/arm/v7"), Some(armv7));
        assert_eq!(Platform::parse("linux"), None);
        assert_eq!(
            Platform::new("linux", "arm64", Some("v8")).to_string(),
            "linux/arm64/v8"
        );
    }
}
