//! berth-image's handling of untrusted JSON and archives: `ImageStore::load` of
//! docker-archive / oci-archive files (manifest.json, index.json, nested indexes, image
//! manifests, configs, member links) and reading a store whose `index.json` was edited.
//! Errors are fine; panics are bugs.
//!
//! The first input byte picks what the rest of the input is:
//! 0 the whole archive;  1 a docker-archive `manifest.json`;  2 the image config of a
//! docker-archive;  3 an oci-archive `index.json`;  4 the image manifest an oci-archive's
//! index points at;  5 a nested image index;  6 the store's own `index.json`.
//! The other files are valid, so the fuzzer spends its time in the JSON handling.
//!
//! With `BERTH_FUZZ_SEEDS=<dir>` set, the first run writes one valid seed per mode there.

#![no_main]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use berth_image::{sha256_digest, ImageStore};
use libfuzzer_sys::fuzz_target;

const MT_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MT_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MT_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MT_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// Valid blobs every mode builds on.
struct Blobs {
    layer: Vec<u8>,
    config: Vec<u8>,
    manifest: Vec<u8>,
    nested_index: Vec<u8>,
    docker_manifest: Vec<u8>,
    oci_index: Vec<u8>,
    /// index.json of a store that holds the image (ref-name annotation).
    store_index: Vec<u8>,
}

fn hex_of(d: &str) -> &str {
    d.strip_prefix("sha256:").unwrap_or(d)
}

fn descriptor(mt: &str, blob: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "mediaType": mt,
        "digest": sha256_digest(blob),
        "size": blob.len(),
    })
}

fn blobs() -> &'static Blobs {
    static B: OnceLock<Blobs> = OnceLock::new();
    B.get_or_init(|| {
        let mut layer = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        layer
            .append_data(&mut h, "hello", &b"hi\n"[..])
            .expect("layer tar");
        let layer = layer.into_inner().expect("layer tar");
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha256_digest(&layer)]},
            "history": [{"created_by": "fuzz"}],
        }))
        .expect("json");
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": descriptor(MT_CONFIG, &config),
            "layers": [descriptor(MT_LAYER, &layer)],
        }))
        .expect("json");
        let mut mdesc = descriptor(MT_MANIFEST, &manifest);
        mdesc["platform"] = serde_json::json!({"architecture": "amd64", "os": "linux"});
        let nested_index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MT_INDEX,
            "manifests": [mdesc],
        }))
        .expect("json");
        let docker_manifest = serde_json::to_vec(&serde_json::json!([{
            "Config": format!("{}.json", hex_of(&sha256_digest(&config))),
            "RepoTags": ["fuzz:1"],
            "Layers": ["layer/layer.tar"],
        }]))
        .expect("json");
        let mut tagged = descriptor(MT_MANIFEST, &manifest);
        tagged["annotations"] = serde_json::json!({
            "org.opencontainers.image.ref.name": "docker.io/library/fuzz:1",
            "io.containerd.image.name": "docker.io/library/fuzz:1",
        });
        let mut nested = descriptor(MT_INDEX, &nested_index);
        nested["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": "2"});
        let oci_index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [tagged, nested],
        }))
        .expect("json");
        let mut stored = descriptor(MT_MANIFEST, &manifest);
        stored["annotations"] =
            serde_json::json!({"org.opencontainers.image.ref.name": "docker.io/library/fuzz:1"});
        let store_index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "manifests": [stored],
        }))
        .expect("json");
        Blobs {
            layer,
            config,
            manifest,
            nested_index,
            docker_manifest,
            oci_index,
            store_index,
        }
    })
}

struct Member<'a> {
    name: String,
    data: &'a [u8],
    /// Symlink target instead of data.
    link: Option<&'a str>,
}

fn member<'a>(name: impl Into<String>, data: &'a [u8]) -> Member<'a> {
    Member {
        name: name.into(),
        data,
        link: None,
    }
}

fn blob_member(data: &[u8]) -> Member<'_> {
    member(
        format!("blobs/sha256/{}", hex_of(&sha256_digest(data))),
        data,
    )
}

fn archive(members: &[Member<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in members {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_mtime(0);
        match m.link {
            Some(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, &m.name, target).expect("tar link");
            }
            None => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(m.data.len() as u64);
                b.append_data(&mut h, &m.name, m.data).expect("tar member");
            }
        }
    }
    b.into_inner().expect("tar")
}

fn docker_archive(manifest_json: &[u8], config: &[u8]) -> Vec<u8> {
    let b = blobs();
    let cname = format!("{}.json", hex_of(&sha256_digest(&b.config)));
    archive(&[
        member("manifest.json", manifest_json),
        member(cname, config),
        member("layer/layer.tar", &b.layer),
        Member {
            name: "layer/link.tar".into(),
            data: b"",
            link: Some("layer.tar"),
        },
        member("repositories", b"{}"),
    ])
}

fn oci_archive(index_json: &[u8], extra: &[&[u8]]) -> Vec<u8> {
    let b = blobs();
    let mut members = vec![
        member("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
        member("index.json", index_json),
        blob_member(&b.manifest),
        blob_member(&b.config),
        blob_member(&b.layer),
        blob_member(&b.nested_index),
    ];
    for e in extra {
        members.push(blob_member(e));
    }
    archive(&members)
}

fn index_for(mt: &str, blob: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [descriptor(mt, blob)],
    }))
    .expect("json")
}

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let parent = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        if let Ok(rd) = fs::read_dir(&parent) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = n.strip_prefix("bt-fuzz-image-") {
                    if !Path::new("/proc").join(pid).exists() {
                        let _ = fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let dir = parent.join(format!("bt-fuzz-image-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch dir");
        if let Some(out) = std::env::var_os("BERTH_FUZZ_SEEDS") {
            write_seeds(Path::new(&out));
        }
        dir
    })
}

fn write_seeds(out: &Path) {
    let b = blobs();
    fs::create_dir_all(out).expect("seed dir");
    let seeds: [(u8, Vec<u8>); 7] = [
        (0, docker_archive(&b.docker_manifest, &b.config)),
        (1, b.docker_manifest.clone()),
        (2, b.config.clone()),
        (3, b.oci_index.clone()),
        (4, b.manifest.clone()),
        (5, b.nested_index.clone()),
        (6, b.store_index.clone()),
    ];
    for (mode, data) in seeds {
        let mut f = fs::File::create(out.join(format!("seed-mode{mode}"))).expect("seed");
        f.write_all(&[mode]).expect("seed");
        f.write_all(&data).expect("seed");
    }
}

fn fresh_store(dir: &Path) -> Option<ImageStore> {
    let root = dir.join("store");
    match fs::remove_dir_all(&root) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cleaning {}: {e}", root.display()),
    }
    Some(ImageStore::open(&root).expect("open image store"))
}

fn exercise(store: &ImageStore) {
    if let Ok(images) = store.list() {
        for img in &images {
            let _ = img.diff_ids();
            let _ = img.chain_ids();
            let _ = img.short_id();
            let _ = store.config_extras(img);
            for t in &img.tags {
                let _ = store.resolve(&t.to_string());
            }
            let _ = store.resolve(&img.id);
            let _ = store.resolve(img.short_id());
        }
    }
    let _ = store.resolve("fuzz:1");
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let b = blobs();
    let Some(store) = fresh_store(dir) else {
        return;
    };
    let bytes = match mode % 7 {
        0 => rest.to_vec(),
        1 => docker_archive(rest, &b.config),
        2 => docker_archive(&b.docker_manifest, rest),
        3 => oci_archive(rest, &[]),
        4 => oci_archive(&index_for(MT_MANIFEST, rest), &[rest]),
        5 => oci_archive(&index_for(MT_INDEX, rest), &[rest]),
        _ => {
            // The store's own index.json, edited by hand or by another tool.
            for blob in [&b.manifest, &b.config, &b.layer] {
                let path = store.blob_path(&sha256_digest(blob)).expect("blob path");
                fs::write(&path, blob).expect("write blob");
            }
            fs::write(store.root().join("index.json"), rest).expect("write index.json");
            exercise(&store);
            return;
        }
    };
    let path = dir.join("archive.tar");
    fs::write(&path, &bytes).expect("write archive");
    if store.load(&path).is_ok() {
        exercise(&store);
    }
});
