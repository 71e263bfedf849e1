//! `berth pull/push/login/logout` and `build`'s base-image pull against a real registry
//! (Debian's docker-registry) on loopback.

mod common;

use berth_distribution::testing::TestRegistry;
use common::Env;

#[test]
fn push_pull_run_and_build_from_the_registry() {
    let reg = TestRegistry::start().expect("docker-registry (apt install docker-registry)");
    let env = Env::new("reg");
    env.import_busybox();
    let remote = format!("{}/bt/busybox:1", reg.host());
    env.ok(&["tag", "busybox", &remote]);
    let pushed = env.ok(&["push", &remote]);
    assert!(pushed.contains("digest: sha256:"), "{pushed}");
    let local_id = env.ok(&["images", "-q", &remote]);
    // Gone locally, then `run` pulls it (Docker's --pull missing).
    env.ok(&["rmi", &remote]);
    let o = env.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        &remote,
        "echo",
        "pulled",
    ]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "pulled\n");
    assert!(String::from_utf8_lossy(&o.stderr).contains("Unable to find image"));
    assert_eq!(
        env.ok(&["images", "-q", &remote]),
        local_id,
        "same image id after the round trip"
    );
    // An explicit pull of an up-to-date image fetches nothing.
    let again = env.ok(&["pull", &remote]);
    assert!(again.contains("Image is up to date"), "{again}");
    // build pulls a missing base image.
    env.ok(&["rmi", &remote]);
    let ctx = env.root.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {remote}\nRUN echo built > /b\nCMD [\"cat\", \"/b\"]\n"),
    )
    .unwrap();
    env.ok(&["build", "-q", "-t", "frombase", ctx.to_str().unwrap()]);
    assert_eq!(
        env.ok(&["run", "--rm", "--network", "none", "frombase"]),
        "built\n"
    );
    // Unknown tag: a clear 404 message, exit 1, nothing stored.
    let o = env.run(&["pull", &format!("{}/bt/busybox:nope", reg.host())]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn login_logout_with_basic_auth() {
    let reg = TestRegistry::with_basic_auth("bt-user", "bt-secret").expect("docker-registry");
    let env = Env::new("login");
    env.import_busybox();
    let remote = format!("{}/bt/private:1", reg.host());
    env.ok(&["tag", "busybox", &remote]);
    // Without credentials: refused, with a hint.
    let o = env.run(&["push", &remote]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("berth login"),
        "{o:?}"
    );
    // Wrong password: refused, nothing stored.
    let mut wrong = env.cmd(&["login", "-u", "bt-user", "--password-stdin", &reg.host()]);
    let o = pipe_in(&mut wrong, "nope\n");
    assert!(!o.status.success(), "{o:?}");
    let auth = env.root.join("state/auth.json");
    assert!(
        !auth.exists()
            || !std::fs::read_to_string(&auth)
                .unwrap()
                .contains(&reg.host())
    );
    let mut right = env.cmd(&["login", "-u", "bt-user", "--password-stdin", &reg.host()]);
    let o = pipe_in(&mut right, "bt-secret\n");
    assert!(o.status.success(), "{o:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&auth).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    env.ok(&["push", "-q", &remote]);
    env.ok(&["rmi", &remote]);
    env.ok(&["pull", "-q", &remote]);
    let out = env.ok(&["logout", &reg.host()]);
    assert!(out.contains("Removing login credentials"), "{out}");
    env.ok(&["rmi", &remote]);
    assert!(!env.run(&["pull", &remote]).status.success());
}

fn pipe_in(cmd: &mut std::process::Command, input: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
