//! Apply/diff round trips and malicious layers (run as root: owners, devices, xattrs).

use std::io::Write;
use std::path::Path;

use berth_layer_tar::testing::{build_full_tree, list_all, manifest, tar_names};
use berth_layer_tar::{
    apply_layer, copy_tree, diff_overlay_upper, diff_trees, DeletingWhiteouts, DiffOptions,
    OverlayWhiteouts,
};

fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("bt-ltar-")
        .tempdir()
        .unwrap()
}

#[test]
fn tree_diff_round_trip_reproduces_everything() {
    let t = tmp();
    let (lower, upper, out) = (
        t.path().join("lower"),
        t.path().join("upper"),
        t.path().join("out"),
    );
    for d in [&lower, &upper, &out] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::create_dir_all(lower.join("gone-dir/sub")).unwrap();
    std::fs::write(lower.join("gone-dir/sub/f"), b"x").unwrap();
    std::fs::write(lower.join("gone-file"), b"x").unwrap();
    std::fs::write(lower.join("kept"), b"same").unwrap();
    copy_tree(&lower, &upper).unwrap();
    assert_eq!(manifest(&lower), manifest(&upper), "copy_tree is exact");
    std::fs::remove_dir_all(upper.join("gone-dir")).unwrap();
    std::fs::remove_file(upper.join("gone-file")).unwrap();
    build_full_tree(&upper);

    let mut tar = Vec::new();
    diff_trees(Some(&lower), &upper, &mut tar, DiffOptions::default()).unwrap();
    let names = tar_names(&tar);
    assert!(names.contains(&".wh.gone-dir".to_string()), "{names:?}");
    assert!(names.contains(&".wh.gone-file".to_string()), "{names:?}");
    assert!(
        !names.iter().any(|n| n == "kept"),
        "unchanged file not in diff: {names:?}"
    );
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries sorted by path");

    copy_tree(&lower, &out).unwrap();
    apply_layer(&out, &mut tar.as_slice(), &mut DeletingWhiteouts).unwrap();
    assert_eq!(manifest(&upper), manifest(&out));
    let m = manifest(&out);
    assert!(
        m[Path::new("sparse")].contains("sparse=true"),
        "{}",
        m[Path::new("sparse")]
    );
    assert!(m[Path::new("usr/bin/ping")].contains("security.capability"));
    assert_eq!(
        m[Path::new("hardlink")].split(" linkgroup=").nth(1),
        m[Path::new("etc/app/config")].split(" linkgroup=").nth(1)
    );

    // An empty parent: the whole tree.
    let mut full = Vec::new();
    diff_trees(
        None,
        &upper,
        &mut full,
        DiffOptions {
            clamp_mtime: Some(1_000),
        },
    )
    .unwrap();
    let mut a = tar::Archive::new(full.as_slice());
    for e in a.entries().unwrap() {
        assert!(e.unwrap().header().mtime().unwrap() <= 1_000, "clamped");
    }
}

#[test]
fn overlay_upper_round_trip_keeps_whiteouts() {
    let t = tmp();
    let (upper, out) = (t.path().join("upper"), t.path().join("out"));
    std::fs::create_dir(&upper).unwrap();
    std::fs::create_dir(&out).unwrap();
    build_full_tree(&upper);
    // Overlay-form whiteout and opaque dir, as overlayfs writes them.
    let mut layer = Vec::new();
    {
        let mut b = tar::Builder::new(&mut layer);
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o644);
        b.append_data(&mut h, "etc/.wh.removed", std::io::empty())
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o755);
        b.append_data(&mut h, "opaque/", std::io::empty()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        b.append_data(&mut h, "opaque/.wh..wh..opq", std::io::empty())
            .unwrap();
        b.finish().unwrap();
    }
    apply_layer(&upper, &mut layer.as_slice(), &mut OverlayWhiteouts).unwrap();
    let m = manifest(&upper);
    assert!(
        m[Path::new("etc/removed")].contains("CharacterDevice")
            && m[Path::new("etc/removed")].contains("dev=0:0")
    );
    let opq = std::process::Command::new("getfattr")
        .args(["-n", "trusted.overlay.opaque", "--only-values"])
        .arg(upper.join("opaque"))
        .output();
    if let Ok(o) = opq {
        if o.status.success() {
            assert_eq!(o.stdout, b"y");
        }
    }
    let mut tar = Vec::new();
    diff_overlay_upper(&upper, &mut tar, DiffOptions::default()).unwrap();
    let names = tar_names(&tar);
    assert!(names.contains(&"etc/.wh.removed".to_string()), "{names:?}");
    assert!(
        names.contains(&"opaque/.wh..wh..opq".to_string()),
        "{names:?}"
    );
    apply_layer(&out, &mut tar.as_slice(), &mut OverlayWhiteouts).unwrap();
    // Whiteout markers carry no metadata of their own: compare their kind only.
    let strip = |m: std::collections::BTreeMap<std::path::PathBuf, String>| {
        m.into_iter()
            .map(|(k, v)| {
                if v.ends_with("dev=0:0") {
                    (k, "whiteout".to_string())
                } else {
                    (k, v)
                }
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(strip(manifest(&upper)), strip(manifest(&out)));
}

#[test]
fn deleting_whiteouts_apply_to_a_full_copy() {
    let t = tmp();
    let root = t.path().join("root");
    std::fs::create_dir_all(root.join("opq/old")).unwrap();
    std::fs::write(root.join("opq/old/f"), b"1").unwrap();
    std::fs::write(root.join("victim"), b"1").unwrap();
    let mut layer = Vec::new();
    {
        let mut b = tar::Builder::new(&mut layer);
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, "opq/-new", &b"n"[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        b.append_data(&mut h, "opq/.wh..wh..opq", std::io::empty())
            .unwrap();
        b.append_data(&mut h, ".wh.victim", std::io::empty())
            .unwrap();
        b.finish().unwrap();
    }
    apply_layer(&root, &mut layer.as_slice(), &mut DeletingWhiteouts).unwrap();
    let names = list_all(&root);
    assert_eq!(
        names,
        vec![
            Path::new("opq").to_path_buf(),
            Path::new("opq/-new").to_path_buf()
        ]
    );
}

/// A raw header whose name and link name are written unchecked (the tar crate's setters
/// refuse `..`, which is the point of these tests).
fn raw_entry(b: &mut Vec<u8>, name: &[u8], kind: tar::EntryType, link: &[u8], data: &[u8]) {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_cksum();
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(data);
    let pad = (512 - data.len() % 512) % 512;
    b.resize(b.len() + pad, 0);
}

/// A GNU sparse entry of 512 stored bytes at the end of a 4 GiB hole.
fn sparse_bomb() -> Vec<u8> {
    let real: u64 = 1 << 32;
    let mut h = tar::Header::new_gnu();
    h.set_path("bomb").unwrap();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_mode(0o644);
    h.set_size(512);
    let gnu = h.as_gnu_mut().unwrap();
    let octal = |field: &mut [u8], v: u64| {
        let s = format!("{v:0w$o}", w = field.len() - 1);
        field[..s.len()].copy_from_slice(s.as_bytes());
        field[s.len()] = 0;
    };
    octal(&mut gnu.realsize, real);
    octal(&mut gnu.sparse[0].offset, real - 512);
    octal(&mut gnu.sparse[0].numbytes, 512);
    h.set_cksum();
    let mut b = h.as_bytes().to_vec();
    b.extend_from_slice(&[b'x'; 512]);
    b
}

fn finish(mut b: Vec<u8>) -> Vec<u8> {
    b.resize(b.len() + 1024, 0);
    b
}

#[test]
fn malicious_layers_are_refused_and_write_nothing_outside() {
    use tar::EntryType::*;
    let cases: Vec<(&str, Vec<u8>)> = {
        let mut v = Vec::new();
        let mut b = Vec::new();
        raw_entry(&mut b, b"../escape", Regular, b"", b"pwned");
        v.push(("dotdot", finish(b)));
        let mut b = Vec::new();
        raw_entry(&mut b, b"a/../../escape", Regular, b"", b"pwned");
        v.push(("nested dotdot", finish(b)));
        let mut b = Vec::new();
        raw_entry(&mut b, b"link", Symlink, b"OUTSIDE", b"");
        raw_entry(&mut b, b"link/escape", Regular, b"", b"pwned");
        v.push(("through absolute symlink", finish(b)));
        let mut b = Vec::new();
        raw_entry(&mut b, b"up", Symlink, b"../outside", b"");
        v.push(("relative symlink out", finish(b)));
        let mut b = Vec::new();
        raw_entry(&mut b, b"d", Directory, b"", b"");
        raw_entry(&mut b, b"d/up", Symlink, b"../../outside", b"");
        raw_entry(&mut b, b"d/up/escape", Regular, b"", b"pwned");
        v.push(("nested relative symlink out", finish(b)));
        let mut b = Vec::new();
        raw_entry(&mut b, b"hl", Link, b"../outside/secret", b"");
        v.push(("hardlink out", finish(b)));
        let mut b = Vec::new();
        raw_entry(&mut b, b"hl", Link, b"OUTSIDE/secret", b"");
        v.push(("hardlink absolute", finish(b)));
        let mut b = Vec::new();
        raw_entry(&mut b, b"loop", Symlink, b"loop", b"");
        raw_entry(&mut b, b"loop/x", Regular, b"", b"pwned");
        v.push(("symlink loop", finish(b)));
        let mut b = Vec::new();
        raw_entry(&mut b, b"f", Regular, b"", b"");
        b.extend_from_slice(&[0xffu8; 512]);
        v.push(("garbage header", b));
        v.push(("sparse bomb", finish(sparse_bomb())));
        v
    };
    for (what, mut data) in cases {
        let t = tmp();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"s").unwrap();
        // Absolute link targets point at the sibling directory.
        let out_s = outside.display().to_string();
        if data.windows(7).any(|w| w == b"OUTSIDE") {
            data = patch(&data, &out_s);
        }
        let err = apply_layer(&root, &mut data.as_slice(), &mut DeletingWhiteouts).expect_err(what);
        eprintln!("{what}: {err}");
        assert!(err.is_invalid_input(), "{what}: {err}");
        assert_eq!(
            list_all(&outside),
            vec![Path::new("secret").to_path_buf()],
            "{what}"
        );
        assert!(!t.path().join("escape").exists(), "{what}");
    }
}

/// Rewrites the OUTSIDE placeholder in raw headers (re-computing checksums).
fn patch(data: &[u8], with: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 512 <= data.len() {
        let block = &data[i..i + 512];
        if block.iter().all(|b| *b == 0) {
            out.extend_from_slice(block);
            i += 512;
            continue;
        }
        let mut h = tar::Header::new_old();
        h.as_mut_bytes().copy_from_slice(block);
        for field in [&mut h.as_old_mut().linkname] {
            if let Some(p) = field.windows(7).position(|w| w == b"OUTSIDE") {
                let rest: Vec<u8> = field[p + 7..]
                    .iter()
                    .copied()
                    .take_while(|b| *b != 0)
                    .collect();
                let mut v = with.as_bytes().to_vec();
                v.extend(rest);
                field.fill(0);
                field[..v.len()].copy_from_slice(&v);
            }
        }
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        let size = h.size().unwrap_or(0) as usize;
        let padded = size.div_ceil(512) * 512;
        out.extend_from_slice(&data[i + 512..i + 512 + padded]);
        i += 512 + padded;
    }
    out.extend_from_slice(&data[i..]);
    out
}

#[test]
fn absolute_paths_and_inside_symlinks_stay_inside() {
    let t = tmp();
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let mut b = Vec::new();
    raw_entry(
        &mut b,
        b"/etc/hosts",
        tar::EntryType::Regular,
        b"",
        b"127.0.0.1",
    );
    raw_entry(&mut b, b"sub", tar::EntryType::Directory, b"", b"");
    raw_entry(&mut b, b"alias", tar::EntryType::Symlink, b"sub", b"");
    raw_entry(&mut b, b"alias/f", tar::EntryType::Regular, b"", b"ok");
    let data = finish(b);
    apply_layer(&root, &mut data.as_slice(), &mut DeletingWhiteouts).unwrap();
    assert_eq!(std::fs::read(root.join("etc/hosts")).unwrap(), b"127.0.0.1");
    assert_eq!(std::fs::read(root.join("sub/f")).unwrap(), b"ok");
    let _ = std::io::stdout().flush();
}

/// Property: whatever the validator accepts, the unpacker applies without error with
/// both whiteout strategies (so an image accepted at import unpacks at run time), and
/// nothing is ever written outside the target. Random short entry sequences over a small
/// alphabet of names, types and link targets chosen to collide (symlinks, links through
/// them, whiteouts, opaque markers, `..`).
#[test]
fn validator_accepts_only_what_the_unpacker_applies() {
    use berth_layer_tar::validate_tar;
    use tar::EntryType::*;
    const NAMES: &[&str] = &[
        "a",
        "b",
        "a/b",
        "a/b/c",
        "b/a",
        "/a",
        "./a/",
        "c/d",
        "a/c",
        ".wh.a",
        "a/.wh.b",
        ".wh..wh..opq",
        "a/.wh..wh..opq",
        "b/.wh.a",
        ".wh...",
        ".wh.",
        "a/../b",
        "./",
    ];
    const KINDS: &[tar::EntryType] = &[Regular, Directory, Directory, Symlink, Symlink, Link, Fifo];
    const TARGETS: &[&str] = &[
        "a", "b", "a/b", "/a", "/etc", "..", "../x", ".", "b/..", "a/b/c", "c", "/a/b", "OUTSIDE",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let t = tmp();
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..400 {
        let len = 1 + next(7);
        let mut seq = Vec::new();
        let mut b = Vec::new();
        for _ in 0..len {
            let name = NAMES[next(NAMES.len())];
            let kind = KINDS[next(KINDS.len())];
            let link = if matches!(kind, Symlink | Link) {
                TARGETS[next(TARGETS.len())]
            } else {
                ""
            };
            raw_entry(&mut b, name.as_bytes(), kind, link.as_bytes(), b"");
            seq.push((name, kind, link));
        }
        let mut data = finish(b);
        let sandbox = t.path().join(format!("case{case}"));
        let outside = sandbox.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"s").unwrap();
        if data.windows(7).any(|w| w == b"OUTSIDE") {
            data = patch(&data, &outside.display().to_string());
        }
        let verdict = validate_tar(&mut data.as_slice());
        for overlay in [false, true] {
            let root = sandbox.join(if overlay { "overlay" } else { "deleting" });
            std::fs::create_dir(&root).unwrap();
            let applied = if overlay {
                apply_layer(&root, &mut data.as_slice(), &mut OverlayWhiteouts)
            } else {
                apply_layer(&root, &mut data.as_slice(), &mut DeletingWhiteouts)
            };
            if verdict.is_ok() {
                if let Err(e) = &applied {
                    panic!("accepted but not applied (overlay={overlay}): {seq:?}: {e}");
                }
            }
            if let Err(e) = &applied {
                assert!(verdict.is_err(), "{seq:?}: {e}");
            }
            assert_eq!(
                list_all(&outside),
                vec![Path::new("secret").to_path_buf()],
                "{seq:?}"
            );
        }
        match verdict {
            Ok(_) => accepted += 1,
            Err(_) => refused += 1,
        }
        std::fs::remove_dir_all(&sandbox).unwrap();
    }
    eprintln!("{accepted} accepted, {refused} refused");
    assert!(accepted > 50 && refused > 50, "{accepted} / {refused}");
}
