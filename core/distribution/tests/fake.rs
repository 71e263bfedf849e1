//! Registry misbehaviour that a real registry will not produce, from a tiny
//! fake HTTP server on loopback.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

use berth_distribution::{pull, DistributionError, ImageStore, PullOptions};

/// Serves `handler(path) -> (status, content-type, body)` on 127.0.0.1 until dropped.
struct Fake {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Fake {
    fn start(handler: fn(&str) -> (u16, &'static str, Vec<u8>)) -> Fake {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while !s.load(std::sync::atomic::Ordering::SeqCst)
                && std::time::Instant::now() < deadline
            {
                let Ok((mut conn, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                // Skip headers.
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                        break;
                    }
                }
                let path = line.split(' ').nth(1).unwrap_or("/").to_string();
                let (status, ct, body) = handler(&path);
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&body);
            }
        });
        Fake { port, stop }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn pull_err(fake: &Fake, tag: &str) -> DistributionError {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let err = pull(
        &store,
        &format!("127.0.0.1:{}/bt/x:{tag}", fake.port),
        &PullOptions::default(),
    )
    .unwrap_err();
    assert!(store.list().unwrap().is_empty());
    err
}

fn handler(path: &str) -> (u16, &'static str, Vec<u8>) {
    match path {
        "/v2/" => (200, "application/json", b"{}".to_vec()),
        "/v2/bt/x/manifests/huge" => (
            200,
            "application/vnd.oci.image.manifest.v1+json",
            vec![b' '; 5 << 20],
        ),
        "/v2/bt/x/manifests/garbage" => (
            200,
            "application/vnd.oci.image.manifest.v1+json",
            b"{not json".to_vec(),
        ),
        "/v2/bt/x/manifests/schema1" => (
            200,
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            br#"{"schemaVersion":1,"name":"bt/x","tag":"schema1","fsLayers":[]}"#.to_vec(),
        ),
        "/v2/bt/x/manifests/artifact" => (
            200,
            "application/vnd.oci.image.manifest.v1+json",
            format!(
                r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"sha256:{}","size":2}},"layers":[]}}"#,
                "a".repeat(64)
            )
            .into_bytes(),
        ),
        _ => (404, "application/json", br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"x"}]}"#.to_vec()),
    }
}

#[test]
fn oversized_malformed_and_unsupported_manifests_are_rejected() {
    let fake = Fake::start(handler);
    let err = pull_err(&fake, "huge");
    assert!(
        matches!(err, DistributionError::TooLarge { limit: 4194304, .. }),
        "{err}"
    );
    let err = pull_err(&fake, "garbage");
    assert!(matches!(err, DistributionError::Malformed { .. }), "{err}");
    let err = pull_err(&fake, "schema1");
    assert!(
        matches!(err, DistributionError::UnsupportedMediaType { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("schema 1"), "{err}");
    let err = pull_err(&fake, "artifact");
    assert!(
        matches!(err, DistributionError::UnsupportedMediaType { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("helm"), "{err}");
    let err = pull_err(&fake, "missing");
    assert!(
        matches!(err, DistributionError::ManifestUnknown { .. }),
        "{err}"
    );
}
