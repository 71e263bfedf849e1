//! `berth serve` driven by real clients: the docker CLI (Debian's docker.io, its client
//! only: no dockerd is ever started), curl for raw requests, and docker-py. Each test
//! starts its own server on a socket under its own root and kills it at the end.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
};

use common::Env;

/// A running `berth serve`, killed (and reaped) on drop.
struct Server {
    child: Child,
    socket: PathBuf,
    docker_config: PathBuf,
}

impl Server {
    fn start(env: &Env) -> Server {
        let socket = env.root.join("api.sock");
        let docker_config = env.root.join("docker-config");
        std::fs::create_dir_all(&docker_config).unwrap();
        let log = std::fs::File::create(env.root.join("serve.log")).unwrap();
        let child = env
            .cmd(&["serve", "-H", &format!("unix://{}", socket.display())])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting berth serve");
        let s = Server {
            child,
            socket,
            docker_config,
        };
        // Bounded wait for the socket to answer (start-up, not a timing assertion).
        for _ in 0..200 {
            if s.curl(&["-s", "http://berth/_ping"]).stdout == b"OK" {
                return s;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!(
            "berth serve did not answer on {}: {}",
            s.socket.display(),
            std::fs::read_to_string(env.root.join("serve.log")).unwrap_or_default()
        );
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", &self.docker_config)
            .env("DOCKER_BUILDKIT", "0")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .stdin(Stdio::null());
        c
    }

    fn docker(&self, args: &[&str]) -> Output {
        self.docker_cmd(args).output().expect("running docker")
    }

    /// Runs the docker CLI, asserts success, returns stdout.
    fn docker_ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn curl(&self, args: &[&str]) -> Output {
        Command::new("curl")
            .arg("--unix-socket")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running curl")
    }

    /// (status, body) of one request.
    fn request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let mut args = vec![
            "-s",
            "-X",
            method,
            "-w",
            "\n%{http_code}",
            "-H",
            "Content-Type: application/json",
        ];
        if let Some(b) = body {
            args.extend(["--data-binary", b]);
        }
        let url = format!("http://berth{path}");
        args.push(&url);
        let o = self.curl(&args);
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn prerequisites() -> bool {
    berth_testkit::require_root()
        && berth_testkit::require_command("docker", "apt-get install docker.io (its client only)")
        && berth_testkit::require_command("curl", "apt-get install curl")
}

#[test]
fn docker_cli_runs_lists_logs_stops_and_removes() {
    if !prerequisites() {
        return;
    }
    let env = Env::new("api-cli");
    env.import_busybox();
    let s = Server::start(&env);

    let v = s.docker_ok(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.Os}}",
    ]);
    assert_eq!(v.trim(), "1.43 linux");
    let info = s.docker_ok(&["info", "--format", "{{.Driver}} {{.OSType}} {{.Images}}"]);
    assert_eq!(info.trim(), "overlayfs linux 1");

    // Foreground run: attach, wait for removal, output printed, exit code passed on.
    let out = s.docker_ok(&["run", "--rm", "busybox", "echo", "hello from berth"]);
    assert_eq!(out, "hello from berth\n");
    let o = s.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    // --rm containers are gone.
    assert_eq!(env.ok(&["ps", "-aq"]), "");

    // Detached with a published port (the host port chosen at start).
    let id = s.docker_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "127.0.0.1::8080",
        "busybox",
        "sh",
        "-c",
        "echo started; httpd -f -p 8080 -h /etc",
    ]);
    assert_eq!(id.trim().len(), 64, "{id}");
    let port = s.docker_ok(&["port", "web", "8080/tcp"]);
    let host_port: u16 = port
        .trim()
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("docker port: {port:?}"));
    let page = common::http_get(host_port, "/passwd").expect("the published port answers");
    assert!(page.contains("root:x:0:0"), "{page}");
    let ps = s.docker_ok(&["ps", "--format", "{{.Names}} {{.State}} {{.Image}}"]);
    assert_eq!(ps.trim(), "web running busybox");
    assert_eq!(
        s.docker_ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.Config.Image}} {{.Name}}",
            "web"
        ])
        .trim(),
        "running busybox /web"
    );
    // The CLI and the API are two views of one store.
    assert!(env.ok(&["ps"]).contains("web"));
    assert_eq!(s.docker_ok(&["logs", "web"]), "started\n");
    s.docker_ok(&["stop", "-t", "1", "web"]);
    let ps = s.docker_ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    assert_eq!(ps.trim(), "web exited");
    s.docker_ok(&["rm", "web"]);
    assert_eq!(s.docker_ok(&["ps", "-aq"]), "");

    // Errors come back as Docker's: the CLI prints the message.
    let o = s.docker(&["rm", "nosuch"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("No such container: nosuch"),
        "{o:?}"
    );
    let images = s.docker_ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(images.trim(), "busybox:latest");
}

#[test]
fn docker_cli_builds_with_the_legacy_builder() {
    if !prerequisites() {
        return;
    }
    let env = Env::new("api-build");
    env.import_busybox();
    let s = Server::start(&env);
    let ctx = env.root.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nARG WHO=nobody\nCOPY greeting.txt /greeting.txt\nRUN echo \"built for $WHO\" >> /greeting.txt\nCMD [\"cat\", \"/greeting.txt\"]\n",
    )
    .unwrap();
    std::fs::write(ctx.join("greeting.txt"), "hello\n").unwrap();
    let out = s.docker_ok(&[
        "build",
        "-t",
        "built:1",
        "--build-arg",
        "WHO=docker",
        ctx.to_str().unwrap(),
    ]);
    assert!(out.contains("Successfully tagged built:1"), "{out}");
    assert_eq!(
        s.docker_ok(&["run", "--rm", "built:1"]),
        "hello\nbuilt for docker\n"
    );
    // A failing step is the build's error, shown by the client.
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN exit 7\n").unwrap();
    let o = s.docker(&["build", "-t", "broken", ctx.to_str().unwrap()]);
    assert!(!o.status.success(), "{o:?}");
    // Nothing of the failed build is left: no image, no container.
    assert!(!s.docker_ok(&["images"]).contains("broken"));
    assert_eq!(env.ok(&["ps", "-aq"]), "");
}

#[test]
fn raw_requests_get_dockers_errors() {
    if !prerequisites() {
        return;
    }
    let env = Env::new("api-raw");
    env.import_busybox();
    let s = Server::start(&env);
    // Versioned and unversioned paths; too-old clients refused as dockerd does.
    assert_eq!(s.request("GET", "/version", None).0, 200);
    assert_eq!(s.request("GET", "/v1.41/version", None).0, 200);
    let (code, body) = s.request("GET", "/v1.12/version", None);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("too old"), "{body}");
    // Unsupported fields are named, never ignored; nothing is created.
    let (code, body) = s.request(
        "POST",
        "/v1.41/containers/create",
        Some(r#"{"Image":"busybox","HostConfig":{"Dns":["192.0.2.1"]}}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("\"message\"") && body.contains("HostConfig.Dns"),
        "{body}"
    );
    let (code, body) = s.request("POST", "/containers/create", Some("{not json"));
    assert_eq!(code, 400, "{body}");
    let (code, body) = s.request(
        "POST",
        "/containers/create",
        Some(r#"{"Image":"nosuch:1"}"#),
    );
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("No such image"), "{body}");
    let (code, _) = s.request(
        "GET",
        "/containers/json?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D",
        None,
    );
    assert_eq!(code, 400);
    assert_eq!(s.request("GET", "/containers/nosuch/json", None).0, 404);
    assert_eq!(env.ok(&["ps", "-aq"]), "");
    // A name that is taken is a conflict.
    let (code, body) = s.request(
        "POST",
        "/containers/create?name=dup",
        Some(r#"{"Image":"busybox","Cmd":["true"]}"#),
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = s.request(
        "POST",
        "/containers/create?name=dup",
        Some(r#"{"Image":"busybox","Cmd":["true"]}"#),
    );
    assert_eq!(code, 409, "{body}");
    // A client that disconnects mid-upload leaves nothing behind; the server lives on.
    let big = env.root.join("big.tar");
    std::fs::write(&big, vec![0u8; 4 << 20]).unwrap();
    let _ = s.curl(&[
        "-s",
        "--max-time",
        "0.2",
        "--limit-rate",
        "1M",
        "-X",
        "POST",
        "--data-binary",
        &format!("@{}", big.display()),
        "http://berth/build?t=x",
    ]);
    assert_eq!(s.request("GET", "/_ping", None), (200, "OK".to_string()));
    let spool = env.root.join("state/run/api");
    let left: Vec<_> = std::fs::read_dir(&spool)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

fn python_docker(s: &Server, script: &str, dir: &Path) -> String {
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .env("DOCKER_HOST", s.host())
        .env("CTX", dir)
        .output()
        .expect("running python3");
    assert!(
        o.status.success(),
        "docker-py script failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn docker_py_runs_builds_and_lists() {
    if !prerequisites()
        || !berth_testkit::require(
            Command::new("python3")
                .args(["-c", "import docker"])
                .status()
                .is_ok_and(|s| s.success()),
            "python3-docker",
            "apt-get install python3-docker",
        )
    {
        return;
    }
    let env = Env::new("api-py");
    env.import_busybox();
    let s = Server::start(&env);
    let ctx = env.root.join("pyctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nRUN echo py > /py\n").unwrap();
    let out = python_docker(
        &s,
        r#"
import os, docker
c = docker.from_env()
print(c.containers.run("busybox", ["echo", "hi"], remove=True).decode().strip())
ctr = c.containers.run("busybox", ["sh", "-c", "echo x; exit 4"], detach=True, name="pyjob")
print(ctr.wait()["StatusCode"])
print(ctr.logs().decode().strip())
ctr.reload()
print(ctr.status, ctr.name)
ctr.remove()
img, logs = c.images.build(path=os.environ["CTX"], tag="pyimg:1")
print(sorted(t for i in c.images.list() for t in i.tags))
print(c.containers.run("pyimg:1", ["cat", "/py"], remove=True).decode().strip())
"#,
        &ctx,
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "hi",
            "4",
            "x",
            "exited pyjob",
            "['busybox:latest', 'pyimg:1']",
            "py"
        ],
        "{out}"
    );
    assert_eq!(env.ok(&["ps", "-aq"]), "");
}
