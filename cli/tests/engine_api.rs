//! The engine's typed API through the CLI: Docker's inspect shapes, list filters and Go
//! templates for containers, images, networks and volumes (as root, the real binary).

mod common;

use common::{free_port, Env};

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn inspect_shapes_filters_and_templates() {
    let env = Env::new("api");
    env.import_busybox();
    let port = free_port();
    let id = env.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-l",
        "app=x",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
    ]);
    let id = id.trim().to_string();
    let o = env.run(&[
        "run",
        "--name",
        "done",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3));

    // Docker's maps for ports.
    let v = json(&env.ok(&["inspect", "web"]));
    let c = &v[0];
    assert_eq!(c["Name"], "/web");
    assert_eq!(c["State"]["Status"], "running");
    let pb = &c["HostConfig"]["PortBindings"]["80/tcp"][0];
    assert_eq!(
        (pb["HostIp"].as_str(), pb["HostPort"].as_str()),
        (Some("127.0.0.1"), Some(port.to_string().as_str())),
        "{c}"
    );
    let np = &c["NetworkSettings"]["Ports"]["80/tcp"][0];
    assert_eq!(
        np["HostPort"].as_str(),
        Some(port.to_string().as_str()),
        "{c}"
    );
    assert_eq!(c["HostConfig"]["RestartPolicy"]["Name"], "no");
    assert_eq!(c["Config"]["Labels"]["app"], "x");

    // Go templates: several fields, functions, range; an unknown field is an error.
    let out = env.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{json .Config.Labels}} {{upper .Name}}",
        "web",
    ]);
    assert_eq!(out.trim(), r#"running {"app":"x"} /WEB"#);
    let out = env.ok(&[
        "inspect",
        "-f",
        "{{range $p, $b := .NetworkSettings.Ports}}{{$p}}={{(index $b 0).HostPort}}{{end}}",
        "web",
    ]);
    assert_eq!(out.trim(), format!("80/tcp={port}"));
    let o = env.run(&["inspect", "-f", "{{.Nope}}", "web"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("map has no entry for key \"Nope\""),
        "{o:?}"
    );

    // inspect any kind, --type, image inspect -f.
    let img = json(&env.ok(&["inspect", "busybox"]));
    assert!(
        img[0]["RepoTags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "busybox:latest"),
        "{img}"
    );
    assert_eq!(
        env.ok(&["image", "inspect", "-f", "{{.Os}}", "busybox"])
            .trim(),
        "linux"
    );
    assert!(!env
        .run(&["inspect", "--type", "image", "web"])
        .status
        .success());
    let host = json(&env.ok(&["inspect", "--type", "network", "host"]));
    assert_eq!(host[0]["Driver"], "host");

    // ps filters and formats.
    let q = |args: &[&str]| -> String { env.ok(args).trim().to_string() };
    assert_eq!(
        q(&["ps", "-q", "--no-trunc", "--filter", "label=app=x"]),
        id
    );
    assert_eq!(q(&["ps", "-q", "--filter", "label=app=y"]), "");
    assert_eq!(
        q(&["ps", "--filter", "status=exited", "--format", "{{.Names}}"]),
        "done"
    );
    assert_eq!(
        q(&["ps", "-a", "--filter", "exited=3", "--format", "{{.Names}}"]),
        "done"
    );
    assert_eq!(
        q(&["ps", "--filter", "publish=80", "--format", "{{.Names}}"]),
        "web"
    );
    assert_eq!(
        q(&["ps", "--filter", "publish=81", "--format", "{{.Names}}"]),
        ""
    );
    assert_eq!(
        q(&[
            "ps",
            "-a",
            "--filter",
            "ancestor=busybox",
            "--filter",
            "name=web",
            "--format",
            "{{.Names}}"
        ]),
        "web"
    );
    assert_eq!(
        q(&[
            "ps",
            "-a",
            "--filter",
            "network=none",
            "--format",
            "{{.Names}}"
        ]),
        "done"
    );
    assert_eq!(
        q(&[
            "ps",
            "-a",
            "--filter",
            "since=web",
            "--format",
            "{{.Names}}"
        ]),
        "done"
    );
    assert_eq!(
        q(&[
            "ps",
            "-a",
            "--filter",
            "before=done",
            "--format",
            "{{.Names}}"
        ]),
        "web"
    );
    let o = env.run(&["ps", "--filter", "colour=red"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("invalid filter 'colour'"),
        "{o:?}"
    );
    let t = env.ok(&["ps", "-a", "--format", "table {{.Names}}\t{{.State}}"]);
    let mut lines = t.lines();
    assert!(lines.next().unwrap().starts_with("NAMES"), "{t}");
    assert!(t.contains("exited") && t.contains("running"), "{t}");
    let o = env.run(&["ps", "--format", "{{.Nope}}"]);
    assert!(!o.status.success(), "an unknown field is an error");

    // images filters.
    assert_eq!(
        q(&[
            "images",
            "-f",
            "dangling=false",
            "--format",
            "{{.Repository}}:{{.Tag}}"
        ]),
        "busybox:latest"
    );
    assert_eq!(
        q(&[
            "images",
            "-f",
            "reference=busy*",
            "--format",
            "{{.Repository}}"
        ]),
        "busybox"
    );
    assert_eq!(q(&["images", "-q", "-f", "dangling=true"]), "");
    assert_eq!(q(&["images", "-q", "-f", "label=nope"]), "");
    assert!(!env.run(&["images", "-f", "colour=red"]).status.success());

    // networks: the predefined ones, filters, templates.
    let names = q(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    for want in ["bridge bridge", "host host", "none null"] {
        assert!(names.lines().any(|l| l == want), "{names}");
    }
    assert_eq!(q(&["network", "ls", "-f", "type=custom", "-q"]), "");
    env.ok(&["network", "create", "--label", "team=a", "apinet"]);
    assert_eq!(
        q(&[
            "network",
            "ls",
            "-f",
            "label=team=a",
            "--format",
            "{{.Name}}"
        ]),
        "apinet"
    );
    assert_eq!(
        q(&[
            "network",
            "ls",
            "-f",
            "dangling=true",
            "--format",
            "{{.Name}}"
        ]),
        "apinet"
    );
    assert!(!env.run(&["network", "rm", "host"]).status.success());
    env.ok(&["network", "rm", "apinet"]);

    // volumes.
    env.ok(&["volume", "create", "--label", "a=b", "v1"]);
    assert_eq!(
        q(&["volume", "ls", "-f", "label=a=b", "--format", "{{.Name}}"]),
        "v1"
    );
    assert_eq!(
        q(&["volume", "inspect", "-f", "{{.Labels.a}} {{.Driver}}", "v1"]),
        "b local"
    );
    assert_eq!(q(&["volume", "ls", "-q", "-f", "dangling=true"]), "v1");
    assert!(!env.run(&["volume", "ls", "-f", "id=x"]).status.success());

    // stats and top.
    let s = env.ok(&["stats", "--no-stream", "--format", "json", "web"]);
    let s = json(s.lines().next().unwrap());
    assert_eq!(s["Name"], "web");
    assert!(s["MemLimit"].as_u64().unwrap() > 0, "{s}");
    let top = env.ok(&["top", "web"]);
    assert!(top.starts_with("UID") && top.contains("httpd"), "{top}");

    // prunes report what went.
    let p = env.ok(&["container", "prune", "-f"]);
    assert!(p.contains("Total reclaimed space"), "{p}");
    assert_eq!(q(&["ps", "-aq", "--filter", "status=exited"]), "");
    env.ok(&["rm", "-f", "web"]);
    let p = env.ok(&["volume", "prune", "-a", "-f"]);
    assert!(p.contains("v1"), "{p}");
    let df = env.ok(&["system", "df", "--format", "json"]);
    let df = json(&df);
    assert!(
        df["Images"].as_array().is_some_and(|a| a.len() == 1),
        "{df}"
    );
    assert!(df["LayersSize"].as_i64().is_some(), "{df}");
}
