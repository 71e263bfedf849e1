//! `docker import -c` / `docker commit -c` change instructions applied to an
//! image configuration.

use std::collections::HashMap;

use oci_spec::image::Config;

use crate::error::ImageError;

/// Applies each change (`CMD ["sh"]`, `ENV A=1`, `EXPOSE 80/tcp`, ...) to `config`.
pub fn apply_changes(config: &mut Config, changes: &[String]) -> Result<(), ImageError> {
    for change in changes {
        apply_one(config, change)?;
    }
    Ok(())
}

fn apply_one(config: &mut Config, change: &str) -> Result<(), ImageError> {
    let err = |reason: &str| ImageError::InvalidChange {
        change: change.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = change.trim();
    let (instr, rest) = match trimmed.split_once(char::is_whitespace) {
        Some((i, r)) => (i, r.trim()),
        None => (trimmed, ""),
    };
    if instr.is_empty() {
        return Err(err("empty change"));
    }
    if rest.is_empty() {
        return Err(err(&format!("{} needs an argument", instr.to_uppercase())));
    }
    match instr.to_ascii_uppercase().as_str() {
        "CMD" => {
            config.set_cmd(Some(exec_or_shell(rest, &err)?));
        }
        "ENTRYPOINT" => {
            config.set_entrypoint(Some(exec_or_shell(rest, &err)?));
        }
        "ENV" => {
            let mut env = config.env().clone().unwrap_or_default();
            for (k, v) in key_values(rest, &err)? {
                env.retain(|e| e.split('=').next() != Some(k.as_str()));
                env.push(format!("{k}={v}"));
            }
            config.set_env(Some(env));
        }
        "LABEL" => {
            let mut labels: HashMap<String, String> = config.labels().clone().unwrap_or_default();
            for (k, v) in key_values(rest, &err)? {
                labels.insert(k, v);
            }
            config.set_labels(Some(labels));
        }
        "WORKDIR" => {
            let dir = single_word(rest, &err)?;
            let dir = if dir.starts_with('/') {
                dir
            } else {
                let base = config.working_dir().clone().unwrap_or_else(|| "/".into());
                format!("{}/{dir}", base.trim_end_matches('/'))
            };
            config.set_working_dir(Some(dir));
        }
        "USER" => {
            config.set_user(Some(single_word(rest, &err)?));
        }
        "STOPSIGNAL" => {
            config.set_stop_signal(Some(single_word(rest, &err)?));
        }
        "EXPOSE" => {
            let mut ports = config.exposed_ports().clone().unwrap_or_default();
            for word in words(rest, &err)? {
                let (port, proto) = word.split_once('/').unwrap_or((word.as_str(), "tcp"));
                let proto = proto.to_ascii_lowercase();
                let valid_port = |p: &str| p.parse::<u16>().is_ok_and(|n| n > 0);
                let port_ok = match port.split_once('-') {
                    Some((a, b)) => valid_port(a) && valid_port(b),
                    None => valid_port(port),
                };
                if !port_ok || !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
                    return Err(err(&format!(
                        "invalid port {word:?}: want PORT[/tcp|udp|sctp] with 1 <= PORT <= 65535"
                    )));
                }
                let p = format!("{port}/{proto}");
                if !ports.contains(&p) {
                    ports.push(p);
                }
            }
            config.set_exposed_ports(Some(ports));
        }
        "VOLUME" => {
            let mut vols = config.volumes().clone().unwrap_or_default();
            let new = if rest.starts_with('[') {
                json_array(rest, &err)?
            } else {
                words(rest, &err)?
            };
            for v in new {
                if v.is_empty() {
                    return Err(err("VOLUME paths may not be empty"));
                }
                if !vols.contains(&v) {
                    vols.push(v);
                }
            }
            config.set_volumes(Some(vols));
        }
        other => {
            return Err(err(&format!(
                "unsupported instruction {other:?}; supported: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR"
            )))
        }
    }
    Ok(())
}

type ErrFn<'a> = dyn Fn(&str) -> ImageError + 'a;

fn json_array(s: &str, err: &ErrFn) -> Result<Vec<String>, ImageError> {
    serde_json::from_str::<Vec<String>>(s)
        .map_err(|e| err(&format!("invalid JSON array of strings: {e}")))
}

/// JSON (exec) form or shell form (wrapped in `/bin/sh -c`).
fn exec_or_shell(s: &str, err: &ErrFn) -> Result<Vec<String>, ImageError> {
    if s.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(s) {
            return Ok(v);
        }
        // Docker falls back to shell form when the JSON does not parse.
    }
    if s.is_empty() {
        return Err(err("empty command"));
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), s.to_string()])
}

fn words(s: &str, err: &ErrFn) -> Result<Vec<String>, ImageError> {
    shell_words::split(s).map_err(|e| err(&format!("unbalanced quotes: {e}")))
}

fn single_word(s: &str, err: &ErrFn) -> Result<String, ImageError> {
    let w = words(s, err)?;
    match w.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(err("expects exactly one argument")),
    }
}

/// `K=V K2="V 2"` or the legacy `K V with spaces` form.
fn key_values(s: &str, err: &ErrFn) -> Result<Vec<(String, String)>, ImageError> {
    let first = s.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (k, v) = s
            .split_once(char::is_whitespace)
            .ok_or_else(|| err("want KEY=VALUE or KEY VALUE"))?;
        let v = words(v.trim(), err)?.join(" ");
        return Ok(vec![(k.to_string(), v)]);
    }
    let mut out = Vec::new();
    for w in words(s, err)? {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| err(&format!("{w:?} is not KEY=VALUE")))?;
        if k.is_empty() {
            return Err(err("empty key"));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(ch: &[&str]) -> Result<Config, ImageError> {
        let mut c = Config::default();
        let ch: Vec<String> = ch.iter().map(|s| s.to_string()).collect();
        apply_changes(&mut c, &ch)?;
        Ok(c)
    }

    #[test]
    fn all_instructions() {
        let c = apply(&[
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /bin/init --x",
            "ENV A=1 B=\"two words\"",
            "ENV C three words",
            "ENV A=override",
            "WORKDIR /srv",
            "WORKDIR app",
            "EXPOSE 80 53/udp",
            "USER 1000:1000",
            "LABEL maintainer=me \"x.y\"=z",
            r#"VOLUME ["/data"]"#,
            "VOLUME /a /b",
            "STOPSIGNAL SIGTERM",
        ])
        .unwrap();
        assert_eq!(c.cmd().as_ref().unwrap(), &vec!["sh", "-c", "echo hi"]);
        assert_eq!(
            c.entrypoint().as_ref().unwrap(),
            &vec!["/bin/sh", "-c", "/bin/init --x"]
        );
        assert_eq!(
            c.env().as_ref().unwrap(),
            &vec!["B=two words", "C=three words", "A=override"]
        );
        assert_eq!(c.working_dir().as_deref(), Some("/srv/app"));
        assert_eq!(
            c.exposed_ports().as_ref().unwrap(),
            &vec!["80/tcp", "53/udp"]
        );
        assert_eq!(c.user().as_deref(), Some("1000:1000"));
        assert_eq!(c.labels().as_ref().unwrap()["x.y"], "z");
        assert_eq!(c.volumes().as_ref().unwrap(), &vec!["/data", "/a", "/b"]);
        assert_eq!(c.stop_signal().as_deref(), Some("SIGTERM"));
    }

    #[test]
    fn invalid_changes() {
        for bad in [
            "RUN ls",
            "EXPOSE 99999",
            "EXPOSE 80/foo",
            "CMD",
            "USER a b",
            "ENV =x",
            "VOLUME [\"/a\"",
        ] {
            let e = apply(&[bad]).unwrap_err();
            assert!(matches!(e, ImageError::InvalidChange { .. }), "{bad}: {e}");
        }
    }
}
