//! Multi-process behaviour: concurrent child processes and a SIGKILLed import.
//! Children are this test binary re-executed on the ignored `child_helper` test.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_image::{ImageStore, Reference};
use common::*;

const ENV_MODE: &str = "BT_IMAGE_CHILD_MODE";
const ENV_DIR: &str = "BT_IMAGE_CHILD_DIR";
const ENV_ID: &str = "BT_IMAGE_CHILD_ID";

fn child(mode: &str, dir: &Path, id: usize) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "child_helper",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ENV_MODE, mode)
    .env(ENV_DIR, dir)
    .env(ENV_ID, id.to_string());
    c
}

/// Runs only as a child process (see `child`).
#[test]
#[ignore = "helper run by the other tests in a child process"]
fn child_helper() {
    let (Ok(mode), Ok(dir), Ok(id)) = (
        std::env::var(ENV_MODE),
        std::env::var(ENV_DIR),
        std::env::var(ENV_ID),
    ) else {
        return;
    };
    let store = ImageStore::open(Path::new(&dir)).unwrap();
    let never = |_: &berth_image::Image| false;
    match mode.as_str() {
        "stdin-import" => {
            let mut stdin = std::io::stdin().lock();
            store
                .import(
                    &mut stdin,
                    Some(&Reference::parse("localhost/killed:1").unwrap()),
                    &[],
                )
                .unwrap();
        }
        "churn" => {
            let id: u64 = id.parse().unwrap();
            for i in 0..5u64 {
                let name = format!("localhost/p{id}:{i}");
                let tar = generated_rootfs(2, 8192, id * 100 + i);
                store
                    .import(&mut &tar[..], Some(&Reference::parse(&name).unwrap()), &[])
                    .unwrap();
                store
                    .tag(&name, &Reference::parse("localhost/common:latest").unwrap())
                    .unwrap();
                if i % 2 == 0 {
                    store.remove(&name, &never, false).unwrap();
                }
            }
        }
        other => panic!("unknown mode {other}"),
    }
}

#[test]
fn concurrent_processes_keep_store_consistent() {
    let dir = tempfile::tempdir().unwrap();
    ImageStore::open(dir.path()).unwrap();
    let children: Vec<_> = (0..4)
        .map(|i| {
            child("churn", dir.path(), i)
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let store = ImageStore::open(dir.path()).unwrap();
    store.cleanup().unwrap();
    let images = store.list().unwrap();
    let tags: usize = images.iter().map(|i| i.tags.len()).sum();
    // Each child keeps tags 1 and 3; `common:latest` exists once.
    assert_eq!(tags, 4 * 2 + 1, "{images:#?}");
    for img in &images {
        for i in 0..img.manifest.layers().len() {
            std::io::copy(
                &mut store.layer_reader(img, i).unwrap(),
                &mut std::io::sink(),
            )
            .unwrap();
        }
    }
}

#[test]
fn sigkilled_import_leaves_store_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let tar = generated_rootfs(64, 64 * 1024, 7);
    let mut c = child("stdin-import", dir.path(), 0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    stdin.write_all(&tar[..tar.len() / 2]).unwrap();
    stdin.flush().unwrap();
    // Wait (bounded) until the child has started writing its temp file.
    let deadline = Instant::now() + Duration::from_secs(60);
    while temp_files(dir.path())
        .iter()
        .all(|f| !f.starts_with("blob-"))
    {
        assert!(Instant::now() < deadline, "child never started writing");
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = c.wait();
    drop(stdin);
    assert!(
        !temp_files(dir.path()).is_empty(),
        "partial temp file should be left"
    );
    // Readers ignore the partial data.
    assert!(store.list().unwrap().is_empty());
    assert!(store.resolve("localhost/killed:1").is_err());
    // The next writer removes it and succeeds.
    let img = store
        .import(
            &mut &tar[..],
            Some(&Reference::parse("localhost/killed:1").unwrap()),
            &[],
        )
        .unwrap();
    assert!(
        temp_files(dir.path()).is_empty(),
        "{:?}",
        temp_files(dir.path())
    );
    assert_eq!(store.resolve("localhost/killed:1").unwrap().id, img.id);
}
