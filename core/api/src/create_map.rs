//! `POST /containers/create`'s body (Config + HostConfig + NetworkingConfig) mapped onto
//! the engine's [`CreateOptions`]. Every field berth does not implement must be absent or
//! hold its zero value (clients send many defaults); anything else is a 400 naming the
//! field — never silently ignored.

use std::{collections::BTreeMap, path::Path, time::Duration};

use berth_engine::{container::PortConfig, create::CreateOptions, health::HealthOptions, parse};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// A value clients send when they mean "not set": null, false, 0, "", and arrays or
/// objects of such values.
pub(crate) fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.iter().all(is_zero),
        Value::Object(o) => o.values().all(is_zero),
    }
}

fn bad(field: &str, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("{field}: {why}"))
}

fn unsupported(field: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{field} is not supported by berth (send it empty, or see docs/api.md for what berth implements)"
    ))
}

/// Fields of one JSON object, each taken once; what is left must be zero.
pub(crate) struct Fields<'a> {
    prefix: &'a str,
    map: Map<String, Value>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(prefix: &'a str, v: Option<Value>) -> Result<Fields<'a>, ApiError> {
        let map = match v {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(bad(prefix.trim_end_matches('.'), "must be an object")),
        };
        Ok(Fields { prefix, map })
    }

    pub(crate) fn name(&self, k: &str) -> String {
        format!("{}{k}", self.prefix)
    }

    pub(crate) fn take(&mut self, k: &str) -> Option<Value> {
        self.map.remove(k).filter(|v| !v.is_null())
    }

    pub(crate) fn string(&mut self, k: &str) -> Result<Option<String>, ApiError> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(bad(&self.name(k), "must be a string")),
        }
    }

    pub(crate) fn bool(&mut self, k: &str) -> Result<bool, ApiError> {
        match self.take(k) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(b),
            Some(_) => Err(bad(&self.name(k), "must be true or false")),
        }
    }

    pub(crate) fn i64(&mut self, k: &str) -> Result<Option<i64>, ApiError> {
        match self.take(k) {
            None => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| bad(&self.name(k), "must be an integer")),
        }
    }

    /// A string or an array of strings (Docker's `strslice`).
    pub(crate) fn strings(&mut self, k: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.take(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(vec![s])),
            Some(Value::Array(a)) => a
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(bad(&self.name(k), "must be an array of strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(bad(&self.name(k), "must be an array of strings")),
        }
    }

    pub(crate) fn string_map(&mut self, k: &str) -> Result<BTreeMap<String, String>, ApiError> {
        match self.take(k) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(m)) => m
                .into_iter()
                .map(|(key, v)| match v {
                    Value::String(s) => Ok((key, s)),
                    _ => Err(bad(&self.name(k), "values must be strings")),
                })
                .collect(),
            Some(_) => Err(bad(&self.name(k), "must be an object of strings")),
        }
    }

    /// Takes `k` if it holds one of `allowed` (or is empty).
    pub(crate) fn one_of(&mut self, k: &str, allowed: &[&str]) -> Result<(), ApiError> {
        match self.string(k)? {
            None => Ok(()),
            Some(s) if allowed.contains(&s.as_str()) => Ok(()),
            Some(s) => Err(bad(
                &self.name(k),
                format!("{s:?} is not supported by berth (supported: {allowed:?})"),
            )),
        }
    }

    /// Drops fields berth accepts without acting on them (informational for dockerd too).
    pub(crate) fn ignore(&mut self, keys: &[&str]) {
        for k in keys {
            self.map.remove(*k);
        }
    }

    /// Everything not taken must be zero.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        let mut keys: Vec<&String> = self
            .map
            .iter()
            .filter(|(_, v)| !is_zero(v))
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        match keys.first() {
            None => Ok(()),
            Some(k) => Err(unsupported(&format!("{}{k}", self.prefix))),
        }
    }
}

fn engine_bad(field: &str) -> impl Fn(berth_engine::EngineError) -> ApiError + '_ {
    move |e| bad(field, e)
}

fn health(v: Option<Value>) -> Result<HealthOptions, ApiError> {
    let mut h = HealthOptions::default();
    let mut f = Fields::new("Healthcheck.", v)?;
    if let Some(test) = f.strings("Test")? {
        match test.first().map(String::as_str) {
            None => {}
            Some("NONE") => h.disable = true,
            Some("CMD-SHELL") => {
                h.cmd = Some(test[1..].join(" "));
            }
            Some("CMD") => return Err(bad(
                "Healthcheck.Test",
                "the [\"CMD\", …] form is not supported by berth: use [\"CMD-SHELL\", \"command\"]",
            )),
            Some(other) => return Err(bad("Healthcheck.Test", format!("unknown form {other:?}"))),
        }
    }
    let dur = |f: &mut Fields, k: &str| -> Result<Option<Duration>, ApiError> {
        Ok(match f.i64(k)? {
            None | Some(0) => None,
            Some(n) if n < 0 => return Err(bad(&f.name(k), "must not be negative")),
            Some(n) => Some(Duration::from_nanos(n as u64)),
        })
    };
    h.interval = dur(&mut f, "Interval")?;
    h.timeout = dur(&mut f, "Timeout")?;
    h.start_period = dur(&mut f, "StartPeriod")?;
    h.start_interval = dur(&mut f, "StartInterval")?;
    h.retries = match f.i64("Retries")? {
        None | Some(0) => None,
        Some(n) => Some(u32::try_from(n).map_err(|_| bad("Healthcheck.Retries", "out of range"))?),
    };
    f.finish()?;
    Ok(h)
}

fn port_bindings(v: Option<Value>) -> Result<Vec<PortConfig>, ApiError> {
    const F: &str = "HostConfig.PortBindings";
    let mut out = Vec::new();
    let Some(v) = v else { return Ok(out) };
    let Value::Object(m) = v else {
        return Err(bad(F, "must be an object"));
    };
    for (port, bindings) in m {
        let (p, proto) = port.split_once('/').unwrap_or((port.as_str(), "tcp"));
        let container_port: u16 = p
            .parse()
            .map_err(|_| bad(F, format!("invalid container port {port:?}")))?;
        if !matches!(proto, "tcp" | "udp") {
            return Err(bad(
                F,
                format!("protocol {proto:?} is not supported (tcp, udp)"),
            ));
        }
        let list = match bindings {
            Value::Null => vec![Value::Object(Map::new())],
            Value::Array(a) if a.is_empty() => vec![Value::Object(Map::new())],
            Value::Array(a) => a,
            _ => return Err(bad(F, format!("{port}: must be an array of bindings"))),
        };
        for b in list {
            let mut f = Fields::new("HostConfig.PortBindings[].", Some(b))?;
            let host_ip = f.string("HostIp")?.unwrap_or_default();
            let host_port = match f.string("HostPort")? {
                None => 0,
                Some(s) => s
                    .parse::<u16>()
                    .map_err(|_| bad(F, format!("{port}: invalid HostPort {s:?}")))?,
            };
            f.finish()?;
            out.push(PortConfig {
                host_ip,
                host_port,
                container_port,
                protocol: proto.to_string(),
            });
        }
    }
    Ok(out)
}

fn mounts(v: Option<Value>, o: &mut CreateOptions) -> Result<(), ApiError> {
    const F: &str = "HostConfig.Mounts";
    let Some(v) = v else { return Ok(()) };
    let Value::Array(list) = v else {
        return Err(bad(F, "must be an array"));
    };
    for m in list {
        let mut f = Fields::new("HostConfig.Mounts[].", Some(m))?;
        let kind = f.string("Type")?.unwrap_or_else(|| "volume".into());
        let mut spec = format!("type={kind}");
        if let Some(s) = f.string("Source")? {
            spec.push_str(&format!(",source={s}"));
        }
        let target = f
            .string("Target")?
            .ok_or_else(|| bad(F, "Target is required"))?;
        spec.push_str(&format!(",target={target}"));
        if f.bool("ReadOnly")? {
            spec.push_str(",readonly");
        }
        f.one_of(
            "Consistency",
            &["default", "consistent", "cached", "delegated"],
        )?;
        let mut t = Fields::new("HostConfig.Mounts[].TmpfsOptions.", f.take("TmpfsOptions"))?;
        if let Some(n) = t.i64("SizeBytes")?.filter(|n| *n > 0) {
            spec.push_str(&format!(",tmpfs-size={n}"));
        }
        if let Some(n) = t.i64("Mode")?.filter(|n| *n > 0) {
            spec.push_str(&format!(",tmpfs-mode={n:o}"));
        }
        t.finish()?;
        // Propagation and nocopy only; labels or a driver config are refused.
        let mut b = Fields::new("HostConfig.Mounts[].BindOptions.", f.take("BindOptions"))?;
        b.ignore(&["Propagation"]);
        b.finish()?;
        let mut vo = Fields::new(
            "HostConfig.Mounts[].VolumeOptions.",
            f.take("VolumeOptions"),
        )?;
        vo.ignore(&["NoCopy"]);
        vo.finish()?;
        f.finish()?;
        if spec.contains(",,") {
            return Err(bad(F, "fields must not contain commas"));
        }
        o.mounts
            .push(parse::parse_mount(&spec, Path::new("/")).map_err(engine_bad(F))?);
    }
    Ok(())
}

fn security_opts(list: Vec<String>, o: &mut CreateOptions) -> Result<(), ApiError> {
    const F: &str = "HostConfig.SecurityOpt";
    for s in list {
        match s.as_str() {
            "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => {
                o.no_new_privileges = true
            }
            "no-new-privileges:false" | "no-new-privileges=false" => {}
            "seccomp=unconfined" | "seccomp:unconfined" => o.seccomp = Some("unconfined".into()),
            other => match other
                .strip_prefix("seccomp=")
                .or_else(|| other.strip_prefix("seccomp:"))
            {
                // The API carries the profile's text (the client read the file).
                Some(text) => {
                    berth_seccomp::Profile::from_json(text).map_err(|e| bad(F, e))?;
                    o.seccomp = Some(text.to_string());
                }
                None => {
                    return Err(bad(
                        F,
                        format!("{other:?} is not supported by berth (no-new-privileges, seccomp=unconfined, seccomp=<profile JSON>)"),
                    ))
                }
            },
        }
    }
    Ok(())
}

fn limits(h: &mut Fields, o: &mut CreateOptions) -> Result<(), ApiError> {
    let l = &mut o.limits;
    let positive = |h: &mut Fields, k: &str| -> Result<Option<i64>, ApiError> {
        Ok(h.i64(k)?.filter(|v| *v != 0))
    };
    if let Some(m) = positive(h, "Memory")? {
        l.memory = parse::parse_memory("HostConfig.Memory", &m.to_string())
            .map_err(engine_bad("HostConfig.Memory"))?;
    }
    l.memory_swap = positive(h, "MemorySwap")?;
    if let Some(m) = positive(h, "MemoryReservation")? {
        l.memory_reservation = parse::parse_memory("HostConfig.MemoryReservation", &m.to_string())
            .map_err(engine_bad("HostConfig.MemoryReservation"))?;
    }
    let nano = positive(h, "NanoCpus")?;
    let quota = positive(h, "CpuQuota")?;
    let period = positive(h, "CpuPeriod")?;
    if let Some(n) = nano {
        if quota.is_some() {
            return Err(bad(
                "HostConfig.NanoCpus",
                "conflicts with HostConfig.CpuQuota (set one)",
            ));
        }
        l.cpu_quota = parse::parse_cpus(n as f64 / 1e9, parse::host_cpus())
            .map_err(engine_bad("HostConfig.NanoCpus"))?;
    }
    if let Some(q) = quota {
        if period.is_some_and(|p| p != 100_000) {
            return Err(bad(
                "HostConfig.CpuPeriod",
                "berth supports only the default period of 100000 µs (use NanoCpus)",
            ));
        }
        l.cpu_quota = Some(q);
    } else if period.is_some_and(|p| p != 100_000) {
        return Err(bad(
            "HostConfig.CpuPeriod",
            "berth supports only the default period of 100000 µs (use NanoCpus)",
        ));
    }
    l.cpu_shares = positive(h, "CpuShares")?.map(|v| v as u64);
    l.cpuset_cpus = h.string("CpusetCpus")?;
    l.cpuset_mems = h.string("CpusetMems")?;
    l.pids = positive(h, "PidsLimit")?;
    if let Some(w) = positive(h, "BlkioWeight")? {
        if !(10..=1000).contains(&w) {
            return Err(bad(
                "HostConfig.BlkioWeight",
                format!("{w}: must be between 10 and 1000"),
            ));
        }
        l.blkio_weight = Some(w as u16);
    }
    // -1 is Docker's "not set" for swappiness.
    if let Some(s) = h.i64("MemorySwappiness")? {
        if s != -1 {
            return Err(unsupported("HostConfig.MemorySwappiness"));
        }
    }
    Ok(())
}

/// Maps a create body onto [`CreateOptions`]; `name` is the `name` query parameter.
pub(crate) fn create_options(body: Value, name: Option<String>) -> Result<CreateOptions, ApiError> {
    let mut c = Fields::new("", Some(body))?;
    let mut o = CreateOptions {
        name: name
            .filter(|n| !n.is_empty())
            .map(|n| n.trim_start_matches('/').to_string()),
        quiet_pull: true,
        ..CreateOptions::default()
    };
    o.image = c
        .string("Image")?
        .ok_or_else(|| bad("Image", "is required"))?;
    o.hostname = c.string("Hostname")?;
    o.user = c.string("User")?;
    o.tty = c.bool("Tty")?;
    o.interactive = c.bool("OpenStdin")?;
    for e in c.strings("Env")?.unwrap_or_default() {
        // `KEY` without a value means "remove it" for dockerd; berth sets only KEY=VALUE.
        if e.contains('=') {
            o.env.push(e);
        }
    }
    o.cmd = c.strings("Cmd")?.unwrap_or_default();
    o.entrypoint = match c.strings("Entrypoint")? {
        None => None,
        Some(e) if e.is_empty() => None,
        // `--entrypoint ""`: no entrypoint at all.
        Some(e) if e.len() == 1 && e[0].is_empty() => Some(Vec::new()),
        Some(e) => Some(e),
    };
    o.workdir = c.string("WorkingDir")?;
    o.labels = c.string_map("Labels")?;
    o.stop_signal = c.string("StopSignal")?;
    o.stop_timeout = match c.i64("StopTimeout")? {
        None => None,
        Some(t) if t < 0 => None,
        Some(t) => Some(u32::try_from(t).map_err(|_| bad("StopTimeout", "out of range"))?),
    };
    o.health = health(c.take("Healthcheck"))?;
    if let Some(Value::Object(vols)) = c.take("Volumes") {
        for (dst, _) in vols {
            o.mounts
                .push(parse::parse_volume(&dst, Path::new("/")).map_err(engine_bad("Volumes"))?);
        }
    }
    let network_disabled = c.bool("NetworkDisabled")?;
    // Informational (attach decides what is streamed), or only meaningful for builds.
    c.ignore(&[
        "AttachStdin",
        "AttachStdout",
        "AttachStderr",
        "StdinOnce",
        "ArgsEscaped",
        "ExposedPorts",
        "OnBuild",
        "Shell",
    ]);
    let host = c.take("HostConfig");
    let networking = c.take("NetworkingConfig");
    c.finish()?;

    let mut h = Fields::new("HostConfig.", host)?;
    for (i, b) in h.strings("Binds")?.unwrap_or_default().iter().enumerate() {
        let field = format!("HostConfig.Binds[{i}]");
        o.mounts
            .push(parse::parse_volume(b, Path::new("/")).map_err(|e| bad(&field, e))?);
    }
    mounts(h.take("Mounts"), &mut o)?;
    if let Some(Value::Object(t)) = h.take("Tmpfs") {
        for (dst, opts) in t {
            let spec = match opts.as_str() {
                Some("") | None => dst.clone(),
                Some(opts) => format!("{dst}:{opts}"),
            };
            o.mounts
                .push(parse::parse_tmpfs(&spec).map_err(engine_bad("HostConfig.Tmpfs"))?);
        }
    }
    o.network = match h.string("NetworkMode")?.as_deref() {
        None | Some("default") => None,
        Some(n) => Some(n.to_string()),
    };
    if network_disabled {
        o.network = Some("none".into());
    }
    o.ports = port_bindings(h.take("PortBindings"))?;
    o.publish_all = h.bool("PublishAllPorts")?;
    o.readonly_rootfs = h.bool("ReadonlyRootfs")?;
    o.privileged = h.bool("Privileged")?;
    o.init = h.bool("Init")?;
    o.auto_remove = h.bool("AutoRemove")?;
    o.cap_add = h.strings("CapAdd")?.unwrap_or_default();
    o.cap_drop = h.strings("CapDrop")?.unwrap_or_default();
    security_opts(h.strings("SecurityOpt")?.unwrap_or_default(), &mut o)?;
    let mut rp = Fields::new("HostConfig.RestartPolicy.", h.take("RestartPolicy"))?;
    let policy = rp.string("Name")?;
    let retries = rp.i64("MaximumRetryCount")?.unwrap_or(0);
    rp.finish()?;
    o.restart = match policy.as_deref() {
        None | Some("no") => None,
        Some("on-failure") if retries > 0 => Some(format!("on-failure:{retries}")),
        Some(p) => {
            Some(parse::parse_restart(p).map_err(engine_bad("HostConfig.RestartPolicy.Name"))?)
        }
    };
    limits(&mut h, &mut o)?;
    if let Some(Value::Array(devs)) = h.take("Devices") {
        for d in devs {
            let mut f = Fields::new("HostConfig.Devices[].", Some(d))?;
            let host_path = f.string("PathOnHost")?.unwrap_or_default();
            let in_ctr = f
                .string("PathInContainer")?
                .unwrap_or_else(|| host_path.clone());
            let perms = f
                .string("CgroupPermissions")?
                .unwrap_or_else(|| "rwm".into());
            f.finish()?;
            o.devices.push(
                berth_engine::devices::parse_device(&format!("{host_path}:{in_ctr}:{perms}"))
                    .map_err(engine_bad("HostConfig.Devices"))?,
            );
        }
    }
    for r in h.strings("DeviceCgroupRules")?.unwrap_or_default() {
        berth_engine::devices::parse_cgroup_rule(&r)
            .map_err(engine_bad("HostConfig.DeviceCgroupRules"))?;
        o.device_cgroup_rules.push(r);
    }
    let mut log = Fields::new("HostConfig.LogConfig.", h.take("LogConfig"))?;
    log.one_of("Type", &["json-file"])?;
    log.finish()?;
    h.one_of("Isolation", &["default"])?;
    h.one_of("IpcMode", &["private", "shareable"])?;
    h.one_of("CgroupnsMode", &["private"])?;
    h.one_of("Runtime", &["berth"])?;
    h.one_of("VolumeDriver", &["local"])?;
    // Client-side only, or sizes of the terminal (set with resize).
    h.ignore(&["ConsoleSize", "ContainerIDFile"]);
    h.finish()?;

    let mut n = Fields::new("NetworkingConfig.", networking)?;
    if let Some(Value::Object(eps)) = n.take("EndpointsConfig") {
        if eps.len() > 1 {
            return Err(bad(
                "NetworkingConfig.EndpointsConfig",
                "berth attaches one network at create; connect more with POST /networks/{id}/connect",
            ));
        }
        for (net, ep) in eps {
            // The docker CLI names the default network `default`, as in NetworkMode.
            let net = if net == "default" {
                "bridge".to_string()
            } else {
                net
            };
            match o.network.as_deref() {
                None if net == "bridge" => {}
                None => o.network = Some(net.clone()),
                Some(m) if m == net => {}
                Some(m) => {
                    return Err(bad(
                        "NetworkingConfig.EndpointsConfig",
                        format!("network {net:?} differs from HostConfig.NetworkMode {m:?}"),
                    ))
                }
            }
            let mut e = Fields::new("NetworkingConfig.EndpointsConfig.*.", Some(ep))?;
            o.aliases = e.strings("Aliases")?.unwrap_or_default();
            // Filled in by dockerd itself in inspect output; clients echo them back.
            e.ignore(&[
                "NetworkID",
                "EndpointID",
                "Gateway",
                "IPAddress",
                "IPPrefixLen",
                "MacAddress",
                "DNSNames",
            ]);
            e.finish()?;
        }
    }
    n.finish()?;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// What `docker run -d -p 8080:80 --name web -e A=1 busybox httpd -f` sends (docker
    /// CLI 28, trimmed of nothing: defaults included).
    #[test]
    fn docker_cli_body_maps() {
        let body = json!({
            "Hostname": "", "Domainname": "", "User": "", "AttachStdin": false,
            "AttachStdout": false, "AttachStderr": false,
            "ExposedPorts": {"80/tcp": {}}, "Tty": false, "OpenStdin": false,
            "StdinOnce": false, "Env": ["A=1"], "Cmd": ["httpd", "-f"], "Image": "busybox",
            "Volumes": null, "WorkingDir": "", "Entrypoint": null, "OnBuild": null,
            "Labels": {},
            "HostConfig": {
                "Binds": null, "ContainerIDFile": "",
                "LogConfig": {"Type": "", "Config": {}},
                "NetworkMode": "default",
                "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
                "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
                "AutoRemove": false, "VolumeDriver": "", "VolumesFrom": null,
                "ConsoleSize": [40, 120], "CapAdd": null, "CapDrop": null,
                "CgroupnsMode": "", "Dns": [], "DnsOptions": [], "DnsSearch": [],
                "ExtraHosts": null, "GroupAdd": null, "IpcMode": "", "Cgroup": "",
                "Links": null, "OomScoreAdj": 0, "PidMode": "", "Privileged": false,
                "PublishAllPorts": false, "ReadonlyRootfs": false, "SecurityOpt": null,
                "UTSMode": "", "UsernsMode": "", "ShmSize": 0, "Isolation": "",
                "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "",
                "BlkioWeight": 0, "BlkioWeightDevice": [], "CpuPeriod": 0, "CpuQuota": 0,
                "CpusetCpus": "", "CpusetMems": "", "Devices": [], "DeviceCgroupRules": null,
                "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": null,
                "OomKillDisable": null, "PidsLimit": null, "Ulimits": null,
                "MaskedPaths": null, "ReadonlyPaths": null
            },
            "NetworkingConfig": {"EndpointsConfig": {}}
        });
        let o = create_options(body, Some("web".into())).unwrap();
        assert_eq!(o.image, "busybox");
        assert_eq!(o.name.as_deref(), Some("web"));
        assert_eq!(o.cmd, ["httpd", "-f"]);
        assert_eq!(o.env, ["A=1"]);
        assert_eq!(o.entrypoint, None);
        assert_eq!(o.network, None);
        assert_eq!(o.ports.len(), 1);
        assert_eq!(o.ports[0].host_port, 8080);
        assert_eq!(o.ports[0].container_port, 80);
        assert_eq!(o.restart, None);
    }

    #[test]
    fn unsupported_fields_are_named() {
        let err = create_options(
            json!({"Image": "busybox", "HostConfig": {"Dns": ["1.1.1.1"]}}),
            None,
        )
        .unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(err.message.contains("HostConfig.Dns"), "{}", err.message);
        let err = create_options(json!({"Image": "busybox", "Bogus": 1}), None).unwrap_err();
        assert!(err.message.contains("Bogus"), "{}", err.message);
        let err = create_options(
            json!({"Image": "b", "HostConfig": {"LogConfig": {"Type": "syslog"}}}),
            None,
        )
        .unwrap_err();
        assert!(
            err.message.contains("HostConfig.LogConfig.Type"),
            "{}",
            err.message
        );
        // Wrong types name the field too.
        let err = create_options(json!({"Image": "b", "Tty": "yes"}), None).unwrap_err();
        assert!(err.message.contains("Tty"), "{}", err.message);
        assert!(create_options(json!({"Cmd": ["true"]}), None)
            .unwrap_err()
            .message
            .contains("Image"));
    }

    #[test]
    fn compose_body_maps() {
        // docker-compose 1.29: network by name with aliases, a named volume, labels.
        let body = json!({
            "Image": "busybox", "Cmd": ["sleep", "60"], "Env": ["X=1", "UNSET"],
            "Labels": {"com.docker.compose.project": "p"},
            "HostConfig": {
                "NetworkMode": "p_default", "Binds": ["p_data:/data:rw"],
                "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
                "LogConfig": {"Type": "", "Config": {}}, "Links": [],
                "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": ""}]}
            },
            "NetworkingConfig": {"EndpointsConfig": {"p_default": {"Aliases": ["web"], "IPAMConfig": {}}}}
        });
        let o = create_options(body, Some("p_web_1".into())).unwrap();
        assert_eq!(o.network.as_deref(), Some("p_default"));
        assert_eq!(o.aliases, ["web"]);
        assert_eq!(o.env, ["X=1"]);
        assert_eq!(o.mounts[0].kind, "volume");
        assert_eq!(o.mounts[0].source, "p_data");
        assert_eq!(o.restart.as_deref(), Some("on-failure:3"));
        assert_eq!(o.ports[0].host_port, 0);
        assert_eq!(o.labels["com.docker.compose.project"], "p");
    }

    #[test]
    fn entrypoint_and_limits() {
        let o = create_options(
            json!({"Image": "b", "Entrypoint": [""], "Cmd": "echo hi",
                   "HostConfig": {"Memory": 67108864, "NanoCpus": 500000000, "PidsLimit": 20}}),
            None,
        )
        .unwrap();
        assert_eq!(o.entrypoint, Some(vec![]));
        assert_eq!(o.cmd, ["echo hi"]);
        assert_eq!(o.limits.memory, Some(67108864));
        assert_eq!(o.limits.cpu_quota, Some(50_000));
        assert_eq!(o.limits.pids, Some(20));
        let err = create_options(
            json!({"Image": "b", "HostConfig": {"CpuPeriod": 50000, "CpuQuota": 1000}}),
            None,
        )
        .unwrap_err();
        assert!(err.message.contains("CpuPeriod"));
    }
}
