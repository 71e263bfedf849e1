//! Device access lists on cgroup v2. The v2 hierarchy has no device controller: the kernel
//! asks the `BPF_PROG_TYPE_CGROUP_DEVICE` programs attached to a group (and its ancestors)
//! on every `open` and `mknod` of a device node. [`program`] translates a rule list into
//! such a program, [`attach`] loads it with `bpf(BPF_PROG_LOAD)` and attaches it to the
//! group with `BPF_PROG_ATTACH` and `BPF_F_ALLOW_MULTI` (as runc does), replacing the
//! program attached before. Programs live as long as the group: removing the group
//! (`rmdir`) detaches and frees them.
//!
//! The program (instructions hand-assembled, checked by the tests below with a small
//! interpreter):
//!
//! ```text
//!     r2 = ctx->access_type          ; (access << 16) | type
//!     w3 = w2; w3 >>= 16             ; access: mknod 1, read 2, write 4
//!     w2 &= 0xffff                   ; type: block 1, char 2
//!     r4 = ctx->major; r5 = ctx->minor
//!   one block per rule, last rule first (the last matching rule decides):
//!     if r2 != TYPE goto next        ; unless the rule is for `a`
//!     w1 = w3; w1 &= ACCESS; if r1 != r3 goto next   ; unless the rule covers rwm
//!     if r4 != MAJOR goto next       ; unless `*`
//!     if r5 != MINOR goto next       ; unless `*`
//!     w0 = VERDICT; exit
//!   next: …
//!     w0 = 0; exit                   ; nothing matched: deny
//! ```

use std::{
    ffi::CString,
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::Path,
};

use berth_abi::{DeviceKind, DeviceRule};
use berth_cgroup_common::{CgError, CgResult};

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// `dst_reg` in the low nibble, `src_reg` in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes (linux/bpf_common.h, linux/bpf.h).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const ALU32_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// struct bpf_cgroup_dev_ctx and its constants.
const CTX_ACCESS_TYPE: i16 = 0;
const CTX_MAJOR: i16 = 4;
const CTX_MINOR: i16 = 8;
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

// Registers.
const R0: u8 = 0;
const R1: u8 = 1;
const R_TYPE: u8 = 2;
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

/// The largest major/minor a jump immediate holds unchanged (the kernel's are 12 and 20
/// bits wide).
const MAX_NUMBER: u32 = i32::MAX as u32;

fn bpf_access(access: u8) -> i32 {
    let mut a = 0;
    for (ours, bpf) in [
        (DeviceRule::READ, ACC_READ),
        (DeviceRule::WRITE, ACC_WRITE),
        (DeviceRule::MKNOD, ACC_MKNOD),
    ] {
        if access & ours != 0 {
            a |= bpf;
        }
    }
    a
}

fn invalid(reason: String) -> CgError {
    CgError::InvalidLimit {
        limit: "devices",
        reason,
    }
}

/// The device program for `rules` (a list as [`DeviceRule::check_list`] accepts).
pub fn program(rules: &[DeviceRule]) -> CgResult<Vec<Insn>> {
    DeviceRule::check_list(rules).map_err(|e| invalid(e.message().to_string()))?;
    let mut p = vec![
        insn(LDX_MEM_W, R_TYPE, R1, CTX_ACCESS_TYPE, 0),
        insn(ALU32_MOV_X, R_ACCESS, R_TYPE, 0, 0),
        insn(ALU32_RSH_K, R_ACCESS, 0, 0, 16),
        insn(ALU32_AND_K, R_TYPE, 0, 0, 0xffff),
        insn(LDX_MEM_W, R_MAJOR, R1, CTX_MAJOR, 0),
        insn(LDX_MEM_W, R_MINOR, R1, CTX_MINOR, 0),
    ];
    let mut catch_all = false;
    for r in rules.iter().rev() {
        // Jumps first with offset 0, patched once the block's length is known.
        let mut block: Vec<Insn> = Vec::new();
        match r.kind {
            DeviceKind::All => {}
            DeviceKind::Char => block.push(insn(JNE_K, R_TYPE, 0, 0, DEV_CHAR)),
            DeviceKind::Block => block.push(insn(JNE_K, R_TYPE, 0, 0, DEV_BLOCK)),
        }
        if r.access & DeviceRule::ALL_ACCESS != DeviceRule::ALL_ACCESS {
            block.push(insn(ALU32_MOV_X, R1, R_ACCESS, 0, 0));
            block.push(insn(ALU32_AND_K, R1, 0, 0, bpf_access(r.access)));
            block.push(insn(JNE_X, R1, R_ACCESS, 0, 0));
        }
        for (n, reg, what) in [(r.major, R_MAJOR, "major"), (r.minor, R_MINOR, "minor")] {
            if let Some(n) = n {
                if n > MAX_NUMBER {
                    return Err(invalid(format!("rule `{r}`: {what} {n} is out of range")));
                }
                block.push(insn(JNE_K, reg, 0, 0, n as i32));
            }
        }
        block.push(insn(ALU32_MOV_K, R0, 0, 0, i32::from(r.allow)));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.code == JNE_K || ins.code == JNE_X {
                // Past the rest of this block: to the next rule's first instruction.
                ins.off = i16::try_from(len - i - 1)
                    .map_err(|_| invalid("device program too long".into()))?;
            }
        }
        let unconditional = len == 2;
        p.extend(block);
        if unconditional {
            // Matches every access: the earlier rules can never decide.
            catch_all = true;
            break;
        }
    }
    if !catch_all {
        p.push(insn(ALU32_MOV_K, R0, 0, 0, 0));
        p.push(insn(EXIT, 0, 0, 0, 0));
    }
    Ok(p)
}

// ---------------------------------------------------------------------------------------
// bpf(2).

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// `union bpf_attr` for BPF_PROG_LOAD (the prefix berth fills).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// For BPF_PROG_ATTACH / BPF_PROG_DETACH.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// For BPF_PROG_QUERY.
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// For BPF_PROG_GET_FD_BY_ID.
#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialised `#[repr(C)]` prefix of `union bpf_attr` for
    // `cmd`, and its exact size is passed; the kernel reads (and for QUERY writes) only
    // that many bytes, and any pointers inside it point to buffers the caller keeps alive.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: a descriptor the kernel just returned to us from bpf(); nobody else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) }
}

/// Loads `insns` as a cgroup device program; the verifier's log is in the error.
pub fn load(insns: &[Insn]) -> io::Result<OwnedFd> {
    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..10].copy_from_slice(b"berth_devs");
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..Default::default()
    };
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned(fd)),
        Err(e)
            if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::EACCES) =>
        {
            // Again with the verifier's log, to say why.
            let mut log = vec![0u8; 64 * 1024];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            match bpf(BPF_PROG_LOAD, &mut attr) {
                Ok(fd) => Ok(owned(fd)),
                Err(e2) => {
                    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                    let text = String::from_utf8_lossy(&log[..end]);
                    Err(io::Error::new(
                        e2.kind(),
                        format!("{e2}; verifier log: {}", text.trim()),
                    ))
                }
            }
        }
        Err(e) => Err(e),
    }
}

/// Ids of the device programs attached directly to the group open at `dir`.
fn attached(dir: &OwnedFd) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = QueryAttr {
        target_fd: dir.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr)?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

fn open_dir(dir: &Path) -> CgResult<OwnedFd> {
    let c = CString::new(dir.as_os_str().as_encoded_bytes()).map_err(|_| {
        CgError::io(
            "open cgroup",
            dir,
            io::Error::from(io::ErrorKind::InvalidInput),
        )
    })?;
    // SAFETY: open(2) on a NUL-terminated path; the result is checked.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(CgError::io("open cgroup", dir, io::Error::last_os_error()));
    }
    // SAFETY: a descriptor open(2) just returned.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Loads the program for `rules` and attaches it to the group at `dir`, then detaches
/// the device programs that were attached there before (so the list is replaced; with
/// ALLOW_MULTI every attached program must allow an access, so the old and the new list
/// are both in force for a moment, never neither).
pub fn attach(dir: &Path, rules: &[DeviceRule]) -> CgResult<()> {
    let insns = program(rules)?;
    let prog = load(&insns).map_err(|e| CgError::io("load the device program for", dir, e))?;
    let cg = open_dir(dir)?;
    let before = attached(&cg).map_err(|e| CgError::io("query the device programs of", dir, e))?;
    let mut a = AttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut a)
        .map_err(|e| CgError::io("attach the device program to", dir, e))?;
    tracing::debug!(dir = %dir.display(), insns = insns.len(), replaced = before.len(), "device program attached");
    for id in before {
        let mut g = GetFdAttr {
            prog_id: id,
            ..Default::default()
        };
        let old = owned(
            bpf(BPF_PROG_GET_FD_BY_ID, &mut g)
                .map_err(|e| CgError::io("open the previous device program of", dir, e))?,
        );
        let mut d = AttachAttr {
            target_fd: cg.as_raw_fd() as u32,
            attach_bpf_fd: old.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        bpf(BPF_PROG_DETACH, &mut d)
            .map_err(|e| CgError::io("detach the previous device program of", dir, e))?;
    }
    Ok(())
}

/// Number of device programs attached directly to the group at `dir` (tests, diagnostics).
pub fn attached_count(dir: &Path) -> CgResult<usize> {
    let cg = open_dir(dir)?;
    attached(&cg)
        .map(|v| v.len())
        .map_err(|e| CgError::io("query the device programs of", dir, e))
}

/// Whether this kernel loads device programs for us: `Ok` or the reason.
pub fn probe() -> Result<(), String> {
    let allow_all = [DeviceRule::everything(true)];
    let insns = program(&allow_all).map_err(|e| e.to_string())?;
    load(&insns).map(|_| ()).map_err(|e| {
        format!("the kernel refuses BPF_PROG_TYPE_CGROUP_DEVICE programs ({e}); needs CONFIG_CGROUP_BPF and CAP_BPF/CAP_SYS_ADMIN")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the subset of eBPF `program` emits.
    fn run(p: &[Insn], typ: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | typ, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0x0f) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = u64::from(ctx[(i.off / 4) as usize]);
                }
                ALU32_MOV_X => r[dst] = r[src] & 0xffff_ffff,
                ALU32_MOV_K => r[dst] = u64::from(i.imm as u32),
                ALU32_AND_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                ALU32_RSH_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                JNE_K => {
                    if r[dst] != i.imm as i64 as u64 {
                        pc += i.off as usize;
                    }
                }
                JNE_X => {
                    if r[dst] != r[src] {
                        pc += i.off as usize;
                    }
                }
                EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
        panic!("no exit");
    }

    /// What the rule list means (see `DeviceRule`): the last rule matching the device and
    /// covering the requested access decides; none: deny.
    fn reference(rules: &[DeviceRule], typ: u32, access: u8, major: u32, minor: u32) -> bool {
        rules
            .iter()
            .rev()
            .find(|r| {
                let kind_ok = match r.kind {
                    DeviceKind::All => true,
                    DeviceKind::Char => typ == DEV_CHAR as u32,
                    DeviceKind::Block => typ == DEV_BLOCK as u32,
                };
                kind_ok
                    && access & !r.access == 0
                    && r.major.into_iter().all(|m| m == major)
                    && r.minor.into_iter().all(|m| m == minor)
            })
            .is_some_and(|r| r.allow)
    }

    fn docker_like() -> Vec<DeviceRule> {
        let rwm = DeviceRule::ALL_ACCESS;
        let c = |maj, min| DeviceRule::new(true, DeviceKind::Char, Some(maj), min, rwm);
        vec![
            DeviceRule::everything(false),
            DeviceRule::new(true, DeviceKind::Char, None, None, DeviceRule::MKNOD),
            DeviceRule::new(true, DeviceKind::Block, None, None, DeviceRule::MKNOD),
            c(1, Some(3)),
            c(1, Some(5)),
            c(136, None),
            DeviceRule::new(true, DeviceKind::Block, Some(7), Some(0), DeviceRule::READ),
        ]
    }

    #[test]
    fn program_agrees_with_the_rule_semantics() {
        let lists = [
            docker_like(),
            vec![DeviceRule::everything(false)],
            vec![DeviceRule::everything(true)],
            vec![
                DeviceRule::everything(true),
                DeviceRule::new(
                    false,
                    DeviceKind::Char,
                    Some(1),
                    Some(11),
                    DeviceRule::WRITE,
                ),
                DeviceRule::new(
                    false,
                    DeviceKind::All,
                    Some(8),
                    None,
                    DeviceRule::ALL_ACCESS,
                ),
            ],
        ];
        let bits = [DeviceRule::READ, DeviceRule::WRITE, DeviceRule::MKNOD];
        for rules in &lists {
            let p = program(rules).unwrap();
            for typ in [DEV_BLOCK as u32, DEV_CHAR as u32] {
                for access in 1u8..8 {
                    let bpf: u32 = bits
                        .iter()
                        .filter(|b| access & **b != 0)
                        .map(|b| bpf_access(*b) as u32)
                        .sum();
                    for (major, minor) in
                        [(1, 3), (1, 11), (1, 5), (136, 4), (7, 0), (8, 1), (5, 1)]
                    {
                        let want = reference(rules, typ, access, major, minor);
                        let got = run(&p, typ, bpf, major, minor);
                        assert_eq!(
                            got,
                            u64::from(want),
                            "rules {rules:?}: type {typ} access {access} {major}:{minor}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn program_is_compact_and_ends_at_the_catch_all() {
        let p = program(&[
            DeviceRule::everything(false),
            DeviceRule::new(
                true,
                DeviceKind::Char,
                Some(1),
                Some(3),
                DeviceRule::ALL_ACCESS,
            ),
        ])
        .unwrap();
        let listing: Vec<(u8, u8, i16, i32)> =
            p.iter().map(|i| (i.code, i.regs, i.off, i.imm)).collect();
        assert_eq!(
            listing,
            vec![
                (LDX_MEM_W, 0x12, 0, 0),
                (ALU32_MOV_X, 0x23, 0, 0),
                (ALU32_RSH_K, 0x03, 0, 16),
                (ALU32_AND_K, 0x02, 0, 0xffff),
                (LDX_MEM_W, 0x14, 4, 0),
                (LDX_MEM_W, 0x15, 8, 0),
                // c 1:3 rwm
                (JNE_K, 0x02, 4, DEV_CHAR),
                (JNE_K, 0x04, 3, 1),
                (JNE_K, 0x05, 2, 3),
                (ALU32_MOV_K, 0x00, 0, 1),
                (EXIT, 0, 0, 0),
                // a *:* rwm deny: unconditional, and the end
                (ALU32_MOV_K, 0x00, 0, 0),
                (EXIT, 0, 0, 0),
            ]
        );
        assert!(program(&[]).is_err());
        assert!(program(&[DeviceRule::new(true, DeviceKind::Char, Some(1), Some(3), 7)]).is_err());
    }
}
