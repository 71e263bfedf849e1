//! Architecture names: Docker's `SCMP_ARCH_*` tokens and Go's `GOARCH` names, both accepted.

use libseccomp::ScmpArch;

/// An architecture a profile can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Arch(pub ScmpArch);

impl Arch {
    /// `SCMP_ARCH_X86_64`, `amd64`, `x86_64`... → the libseccomp token.
    pub(crate) fn parse(name: &str) -> Option<Arch> {
        let n = name.trim();
        let n = n
            .strip_prefix("SCMP_ARCH_")
            .unwrap_or(n)
            .to_ascii_lowercase();
        let a = match n.as_str() {
            "x86_64" | "amd64" => ScmpArch::X8664,
            "x86" | "386" | "i386" | "i686" => ScmpArch::X86,
            "x32" => ScmpArch::X32,
            "aarch64" | "arm64" => ScmpArch::Aarch64,
            "arm" => ScmpArch::Arm,
            "riscv64" => ScmpArch::Riscv64,
            "ppc64le" => ScmpArch::Ppc64Le,
            "ppc64" => ScmpArch::Ppc64,
            "ppc" => ScmpArch::Ppc,
            "s390x" => ScmpArch::S390X,
            "s390" => ScmpArch::S390,
            "mips" => ScmpArch::Mips,
            "mipsel" | "mipsle" => ScmpArch::Mipsel,
            "mips64" => ScmpArch::Mips64,
            "mipsel64" | "mips64le" => ScmpArch::Mipsel64,
            "mips64n32" => ScmpArch::Mips64N32,
            "mipsel64n32" | "mips64len32" => ScmpArch::Mipsel64N32,
            "loongarch64" | "loong64" => ScmpArch::Loongarch64,
            "parisc" => ScmpArch::Parisc,
            "parisc64" => ScmpArch::Parisc64,
            "m68k" => ScmpArch::M68k,
            _ => return None,
        };
        Some(Arch(a))
    }

    /// The architecture this library was built for (the one the filter is compiled for).
    pub(crate) fn host() -> Arch {
        #[cfg(target_arch = "x86_64")]
        let a = ScmpArch::X8664;
        #[cfg(target_arch = "aarch64")]
        let a = ScmpArch::Aarch64;
        #[cfg(target_arch = "riscv64")]
        let a = ScmpArch::Riscv64;
        #[cfg(target_arch = "s390x")]
        let a = ScmpArch::S390X;
        #[cfg(all(target_arch = "powerpc64", target_endian = "little"))]
        let a = ScmpArch::Ppc64Le;
        #[cfg(target_arch = "x86")]
        let a = ScmpArch::X86;
        #[cfg(target_arch = "arm")]
        let a = ScmpArch::Arm;
        Arch(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(Arch::parse("amd64"), Some(Arch(ScmpArch::X8664)));
        assert_eq!(Arch::parse("SCMP_ARCH_X86_64"), Arch::parse("x86_64"));
        assert_eq!(Arch::parse("SCMP_ARCH_AARCH64"), Arch::parse("arm64"));
        assert_eq!(Arch::parse("vax"), None);
        assert_eq!(Arch::host(), Arch(ScmpArch::native()));
    }
}
