//! Pull/push/login against a real `docker-registry` (distribution 2.8) on loopback.

mod common;

use std::sync::{Arc, Mutex};

use berth_distribution::testing::TestAuth;
use berth_distribution::{
    login, logout, pull, push, Credentials, Direction, DistributionError, ImageStore,
    PlainTransferProgress, PullOptions, PushOptions, Registry, RegistryOptions, OCI_CONFIG,
    OCI_INDEX, OCI_MANIFEST,
};
use common::*;

fn sha(data: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);
impl std::io::Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn push_then_pull_round_trip_skips_and_mounts() {
    let Some(reg) = registry(TestAuth::None) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (store, img) = busybox_store(&dir.path().join("a"), "localhost/bt-rt:1", b"rt");
    let remote = format!("{}/bt/rt:1", reg.host());
    let pushed = push(
        &store,
        "localhost/bt-rt:1",
        &remote,
        &PushOptions::default(),
    )
    .unwrap();
    assert_eq!(pushed.digest, img.manifest_digest);
    assert_eq!(pushed.blobs_uploaded, 2);

    let store_b = ImageStore::open(&dir.path().join("b")).unwrap();
    let lines = Buf::default();
    let opts = PullOptions {
        progress: Some(Arc::new(PlainTransferProgress::new(
            lines.clone(),
            Direction::Pull,
        ))),
        ..Default::default()
    };
    let pulled = pull(&store_b, &remote, &opts).unwrap();
    assert_eq!(pulled.manifest_digest, img.manifest_digest);
    assert_eq!(pulled.digest, img.manifest_digest);
    assert_eq!(pulled.image.id, img.id);
    assert_eq!(layer_digests(&pulled.image), layer_digests(&img));
    assert_eq!(pulled.layers_downloaded, 1);
    assert!(!pulled.up_to_date);
    let out = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    assert!(out.contains("Pull complete"), "{out}");
    // The pulled image is usable: its layer reads back with a verified diff_id.
    let stored = store_b.resolve(&remote).unwrap();
    std::io::copy(
        &mut store_b.layer_reader(&stored, 0).unwrap(),
        &mut std::io::sink(),
    )
    .unwrap();
    assert!(temp_files(&dir.path().join("b")).is_empty());

    // Again: nothing to fetch.
    let again = pull(&store_b, &remote, &PullOptions::default()).unwrap();
    assert!(again.up_to_date);
    assert_eq!(again.layers_present, 1);

    // Pushing again finds every blob in place.
    let re = push(
        &store,
        "localhost/bt-rt:1",
        &remote,
        &PushOptions::default(),
    )
    .unwrap();
    assert_eq!((re.blobs_present, re.blobs_uploaded), (2, 0));

    // From store b (which knows where its blobs came from) to another repo: mounts.
    let other = format!("{}/bt/other:2", reg.host());
    let mounted = push(&store_b, &remote, &other, &PushOptions::default()).unwrap();
    assert_eq!(mounted.blobs_mounted, 2, "{mounted:?}");
    assert_eq!(mounted.digest, img.manifest_digest);
    let store_c = ImageStore::open(&dir.path().join("c")).unwrap();
    let p = pull(&store_c, &other, &PullOptions::default()).unwrap();
    assert_eq!(p.manifest_digest, img.manifest_digest);
}

#[test]
fn chunked_push_of_a_zstd_layer() {
    let Some(reg) = registry(TestAuth::None) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&dir.path().join("a")).unwrap();
    let zst = zstd::encode_all(&busybox_rootfs(b"zstd")[..], 3).unwrap();
    let img = store
        .import(
            &mut &zst[..],
            Some(&"localhost/bt-zst:1".parse().unwrap()),
            &[],
        )
        .unwrap();
    assert!(img.manifest.layers()[0]
        .media_type()
        .to_string()
        .ends_with("zstd"));
    let remote = format!("{}/bt/zst:1", reg.host());
    let opts = PushOptions {
        chunk_size: Some(256 * 1024),
        ..Default::default()
    };
    let pushed = push(&store, "localhost/bt-zst:1", &remote, &opts).unwrap();
    assert_eq!(pushed.blobs_uploaded, 2);
    let store_b = ImageStore::open(&dir.path().join("b")).unwrap();
    let pulled = pull(&store_b, &remote, &PullOptions::default()).unwrap();
    assert_eq!(pulled.manifest_digest, img.manifest_digest);
    assert_eq!(pulled.image.diff_ids(), img.diff_ids());
}

#[test]
fn basic_auth_login_push_pull_and_wrong_password() {
    let Some(reg) = registry(TestAuth::Basic {
        user: "bt-user".into(),
        password: "s3cret".into(),
    }) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let auth_file = dir.path().join("cfg/auth.json");
    let ropts = RegistryOptions::default();

    let err = login(
        &reg.host(),
        &Credentials::new("bt-user", "wrong"),
        &auth_file,
        &ropts,
    )
    .unwrap_err();
    assert!(matches!(err, DistributionError::AuthFailed { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("authentication failed for {}", reg.host())),
        "{err}"
    );
    assert!(!auth_file.exists());

    let (store, img) = busybox_store(&dir.path().join("a"), "localhost/bt-basic:1", b"basic");
    let remote = format!("{}/bt/basic:1", reg.host());
    // No credentials: a clear "log in" error.
    let err = push(
        &store,
        "localhost/bt-basic:1",
        &remote,
        &PushOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, DistributionError::AuthRequired { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("berth login"), "{err}");

    let name = login(
        &reg.host(),
        &Credentials::new("bt-user", "s3cret"),
        &auth_file,
        &ropts,
    )
    .unwrap();
    assert_eq!(name, reg.host());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&auth_file).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let ropts = RegistryOptions {
        auth_file: Some(auth_file.clone()),
        ..Default::default()
    };
    let popts = PushOptions {
        registry: ropts.clone(),
        ..Default::default()
    };
    push(&store, "localhost/bt-basic:1", &remote, &popts).unwrap();
    let store_b = ImageStore::open(&dir.path().join("b")).unwrap();
    let pulled = pull(
        &store_b,
        &remote,
        &PullOptions {
            registry: ropts.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(pulled.manifest_digest, img.manifest_digest);

    // Stored but wrong password.
    let bad = RegistryOptions {
        credentials: Some(Credentials::new("bt-user", "nope")),
        ..Default::default()
    };
    let store_c = ImageStore::open(&dir.path().join("c")).unwrap();
    let err = pull(
        &store_c,
        &remote,
        &PullOptions {
            registry: bad,
            ..Default::default()
        },
    )
    .unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, DistributionError::AuthFailed { .. }), "{err}");
    assert!(store_c.list().unwrap().is_empty());

    assert!(logout(&reg.host(), &auth_file).unwrap());
    assert!(!logout(&reg.host(), &auth_file).unwrap());
}

#[test]
fn bearer_token_flow_reuses_one_token_per_operation() {
    let Some(reg) = registry(TestAuth::Token {
        user: "bt-tok".into(),
        password: "pw".into(),
    }) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let auth_file = dir.path().join("auth.json");
    let err = login(
        &reg.host(),
        &Credentials::new("bt-tok", "bad"),
        &auth_file,
        &RegistryOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, DistributionError::AuthFailed { .. }), "{err}");
    login(
        &reg.host(),
        &Credentials::new("bt-tok", "pw"),
        &auth_file,
        &RegistryOptions::default(),
    )
    .unwrap();
    let before = reg.token_requests();

    let ropts = RegistryOptions {
        auth_file: Some(auth_file),
        ..Default::default()
    };
    // Two layers + config: several blob requests, one token.
    let store = ImageStore::open(&dir.path().join("a")).unwrap();
    let base = store
        .import(&mut &gzip(&busybox_rootfs(b"tok"))[..], None, &[])
        .unwrap();
    let extra = store
        .write_blob(
            &mut &gzip(&busybox_rootfs(b"tok2"))[..],
            "application/vnd.oci.image.layer.v1.tar+gzip",
        )
        .unwrap();
    let mut config = base.config.clone();
    let mut diff_ids = base.diff_ids();
    diff_ids.push(sha(&busybox_rootfs(b"tok2")));
    config.rootfs_mut().set_diff_ids(diff_ids);
    let mut layers = base.manifest.layers().clone();
    layers.push(extra);
    let img = store
        .create_image(config, layers, &["localhost/bt-tok:1".parse().unwrap()])
        .unwrap();
    let remote = format!("{}/bt/tok:1", reg.host());
    let pushed = push(
        &store,
        "localhost/bt-tok:1",
        &remote,
        &PushOptions {
            registry: ropts.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(pushed.blobs_uploaded, 3);
    assert_eq!(pushed.token_requests, 1);
    let store_b = ImageStore::open(&dir.path().join("b")).unwrap();
    let pulled = pull(
        &store_b,
        &remote,
        &PullOptions {
            registry: ropts,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(pulled.manifest_digest, img.manifest_digest);
    assert_eq!(pulled.layers_downloaded, 2);
    assert_eq!(pulled.token_requests, 1);
    assert_eq!(reg.token_requests() - before, 2);

    // Anonymous against a token registry: the issuer refuses.
    let store_c = ImageStore::open(&dir.path().join("c")).unwrap();
    let err = pull(&store_c, &remote, &PullOptions::default()).unwrap_err();
    assert!(
        matches!(err, DistributionError::AuthRequired { .. }),
        "{err}"
    );
}

/// Builds and pushes an image config + manifest for `arch` sharing `layer`.
fn push_platform_manifest(
    r: &Registry,
    repo: &str,
    arch: &str,
    layer: &[u8],
    diff_id: &str,
) -> (String, usize, String) {
    let layer_digest = r.upload_blob(repo, layer).unwrap();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Env": [format!("ARCH={arch}")]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    let config_digest = r.upload_blob(repo, &config).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len()}],
    }))
    .unwrap();
    let d = r
        .put_manifest(repo, &format!("{arch}-only"), OCI_MANIFEST, &manifest)
        .unwrap();
    (d, manifest.len(), config_digest)
}

#[test]
fn multi_platform_index_picks_the_host_platform() {
    let Some(reg) = registry(TestAuth::None) else {
        return;
    };
    let r = Registry::connect(&reg.host(), &RegistryOptions::default()).unwrap();
    let tar = busybox_rootfs(b"multi");
    let layer = gzip(&tar);
    let diff_id = sha(&tar);
    let (amd, amd_size, amd_config) =
        push_platform_manifest(&r, "bt/multi", "amd64", &layer, &diff_id);
    let (arm, arm_size, _) = push_platform_manifest(&r, "bt/multi", "arm64", &layer, &diff_id);
    let index = |entries: Vec<serde_json::Value>| {
        serde_json::to_vec(
            &serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}),
        )
        .unwrap()
    };
    let arm_entry = serde_json::json!({"mediaType": OCI_MANIFEST, "digest": arm, "size": arm_size,
        "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}});
    let amd_entry = serde_json::json!({"mediaType": OCI_MANIFEST, "digest": amd, "size": amd_size,
        "platform": {"os": "linux", "architecture": "amd64"}});
    let both = index(vec![arm_entry.clone(), amd_entry]);
    let index_digest = r
        .put_manifest("bt/multi", "both", OCI_INDEX, &both)
        .unwrap();
    r.put_manifest("bt/multi", "armonly", OCI_INDEX, &index(vec![arm_entry]))
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let opts = PullOptions {
        platform: Some(berth_distribution::Platform::new("linux", "amd64", None)),
        ..Default::default()
    };
    let pulled = pull(&store, &format!("{}/bt/multi:both", reg.host()), &opts).unwrap();
    assert_eq!(pulled.digest, index_digest);
    assert_eq!(pulled.manifest_digest, amd);
    assert_eq!(pulled.image.id, amd_config);
    assert_eq!(pulled.platform.unwrap().to_string(), "linux/amd64");

    let err = pull(&store, &format!("{}/bt/multi:armonly", reg.host()), &opts).unwrap_err();
    assert!(
        matches!(err, DistributionError::NoMatchingPlatform { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("linux/amd64") && msg.contains("available platforms: linux/arm64/v8"),
        "{msg}"
    );
}

#[test]
fn corrupt_blob_in_registry_stores_nothing() {
    let Some(reg) = registry(TestAuth::None) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (store, img) = busybox_store(&dir.path().join("a"), "localhost/bt-bad:1", b"bad");
    let remote = format!("{}/bt/bad:1", reg.host());
    push(
        &store,
        "localhost/bt-bad:1",
        &remote,
        &PushOptions::default(),
    )
    .unwrap();
    let layer = layer_digests(&img).remove(0);
    let path = reg.blob_data_path(&layer);
    let mut data = std::fs::read(&path).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&path, data).unwrap();

    let root = dir.path().join("b");
    let store_b = ImageStore::open(&root).unwrap();
    let err = pull(&store_b, &remote, &PullOptions::default()).unwrap_err();
    eprintln!("{err}");
    assert!(
        matches!(err, DistributionError::DigestMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&layer), "{err}");
    assert!(!store_b.blob_path(&layer).unwrap().exists());
    assert!(store_b.list().unwrap().is_empty());
    assert!(temp_files(&root).is_empty(), "{:?}", temp_files(&root));
}

#[test]
fn unknown_tag_and_repository_are_manifest_unknown() {
    let Some(reg) = registry(TestAuth::None) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = busybox_store(&dir.path().join("a"), "localhost/bt-404:1", b"404");
    push(
        &store,
        "localhost/bt-404:1",
        &format!("{}/bt/there:1", reg.host()),
        &PushOptions::default(),
    )
    .unwrap();
    for r in [
        format!("{}/bt/there:nope", reg.host()),
        format!("{}/bt/nothere:1", reg.host()),
    ] {
        let err = pull(&store, &r, &PullOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("manifest unknown: {r} not found in registry")
        );
    }
    // A local image that does not exist.
    let err = push(
        &store,
        "localhost/bt-missing:1",
        &format!("{}/x:1", reg.host()),
        &PushOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no such image"), "{err}");
}

#[test]
fn connection_refused_names_the_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let err = pull(
        &store,
        &format!("127.0.0.1:{port}/bt/x:1"),
        &PullOptions::default(),
    )
    .unwrap_err();
    eprintln!("{err}");
    assert!(matches!(err, DistributionError::Connect { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    // A non-loopback registry is never tried over plain HTTP; invalid references are rejected.
    let err = pull(&store, "Bad/Name", &PullOptions::default()).unwrap_err();
    assert!(err.to_string().contains("invalid reference"), "{err}");
}

/// A layer the unpacker would refuse (here: a symlink to /etc, then a file written
/// through it) is refused while it downloads, naming the entry and the layer; the
/// pulling store is left as it was. Each compression the registry may serve.
#[test]
fn unsafe_layer_in_registry_is_refused_at_pull() {
    let Some(reg) = registry(TestAuth::None) else {
        return;
    };
    let malicious = {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, "etc-link", "/etc").unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(6);
        h.set_mode(0o644);
        b.append_data(&mut h, "etc-link/passwd", &b"pwned\n"[..])
            .unwrap();
        b.into_inner().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&dir.path().join("a")).unwrap();
    let base_layer = gzip(&busybox_rootfs(b"unsafe"));
    let base = store.import(&mut &base_layer[..], None, &[]).unwrap();
    // The pulling store has the base layer already (an image of its own), so the only
    // download is the refused one: what it leaves behind is all there is to see.
    let root = dir.path().join("b");
    let store_b = ImageStore::open(&root).unwrap();
    let good = store_b
        .import(
            &mut &base_layer[..],
            Some(&"localhost/bt-kept:1".parse().unwrap()),
            &[],
        )
        .unwrap();
    let blobs_before = std::fs::read_dir(root.join("blobs/sha256"))
        .unwrap()
        .count();
    let codecs: [(&str, Vec<u8>, &str); 3] = [
        (
            "tar",
            malicious.clone(),
            "application/vnd.oci.image.layer.v1.tar",
        ),
        (
            "gzip",
            gzip(&malicious),
            "application/vnd.oci.image.layer.v1.tar+gzip",
        ),
        (
            "zstd",
            zstd::encode_all(&malicious[..], 3).unwrap(),
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
    ];
    for (codec, blob, media_type) in codecs {
        // The source store takes the blob as built content (write_blob does not check
        // layers: that is what builds use), so the registry gets to serve it.
        let bad = store.write_blob(&mut &blob[..], media_type).unwrap();
        let mut config = base.config.clone();
        let mut diff_ids = base.diff_ids();
        diff_ids.push(sha(&malicious));
        config.rootfs_mut().set_diff_ids(diff_ids);
        let mut layers = base.manifest.layers().clone();
        layers.push(bad.clone());
        let tag = format!("localhost/bt-unsafe:{codec}");
        store
            .create_image(config, layers, &[tag.parse().unwrap()])
            .unwrap();
        let remote = format!("{}/bt/unsafe:{codec}", reg.host());
        push(&store, &tag, &remote, &PushOptions::default()).unwrap();

        let err = pull(&store_b, &remote, &PullOptions::default()).unwrap_err();
        eprintln!("{codec}: {err}");
        assert!(
            matches!(err, DistributionError::UnsafeLayer { .. }),
            "{codec}: {err}"
        );
        let msg = err.to_string();
        assert!(msg.contains("\"etc-link/passwd\""), "{codec}: {msg}");
        assert!(msg.contains(&bad.digest().to_string()), "{codec}: {msg}");
        let list = store_b.list().unwrap();
        assert_eq!(list.len(), 1, "{codec}");
        assert_eq!(list[0].id, good.id, "{codec}");
        assert!(!store_b.blob_path(bad.digest().as_ref()).unwrap().exists());
        assert_eq!(
            std::fs::read_dir(root.join("blobs/sha256"))
                .unwrap()
                .count(),
            blobs_before,
            "{codec}: only the good image's blobs"
        );
        assert!(temp_files(&root).is_empty(), "{:?}", temp_files(&root));
        assert!(
            partial_files(&root).is_empty(),
            "{:?}",
            partial_files(&root)
        );

        // Resumed from an interrupted download: refused the same, the partial file gone.
        let partial = root.join(".berth/partial").join(bad.digest().digest());
        std::fs::create_dir_all(partial.parent().unwrap()).unwrap();
        std::fs::write(&partial, &blob[..blob.len() / 2]).unwrap();
        let err = pull(&store_b, &remote, &PullOptions::default()).unwrap_err();
        assert!(
            matches!(err, DistributionError::UnsafeLayer { .. }),
            "{codec} resumed: {err}"
        );
        assert!(
            partial_files(&root).is_empty(),
            "{:?}",
            partial_files(&root)
        );
        assert_eq!(store_b.list().unwrap().len(), 1, "{codec} resumed");
    }
}
