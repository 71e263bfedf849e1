//! Parsers for Docker-style flag values: `-p`, `-v`, `--mount`, `--tmpfs`, `-e`,
//! `--env-file`, sizes (`512m`), `--restart`, durations (`--health-interval 30s`). Each
//! error names the flag and the value.

use std::path::Path;

use crate::{
    container::{MountConfig, PortConfig},
    EngineError,
};

fn bad(flag: &str, value: &str, why: &str) -> EngineError {
    EngineError::Invalid(format!("invalid {flag} value {value:?}: {why}"))
}

fn port_range(flag: &str, whole: &str, s: &str) -> Result<(u16, u16), EngineError> {
    let parse = |p: &str| -> Result<u16, EngineError> {
        p.parse::<u16>().map_err(|_| {
            bad(
                flag,
                whole,
                &format!("{p:?} is not a port number (1-65535)"),
            )
        })
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            if a > b || a == 0 {
                return Err(bad(flag, whole, "invalid port range"));
            }
            Ok((a, b))
        }
        None => {
            let p = parse(s)?;
            if p == 0 {
                return Err(bad(flag, whole, "port 0 is not allowed"));
            }
            Ok((p, p))
        }
    }
}

/// `-p [IP:][HOST:]CTR[/proto]` with ranges (`8000-8002:80-82`). HOST omitted = random.
pub fn parse_publish(spec: &str) -> Result<Vec<PortConfig>, EngineError> {
    const F: &str = "-p/--publish";
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if proto != "tcp" && proto != "udp" {
        return Err(bad(F, spec, "protocol must be tcp or udp"));
    }
    // An IPv6 host address is written in brackets: [::1]:8080:80
    let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, r) = r
            .split_once("]:")
            .ok_or_else(|| bad(F, spec, "unterminated [IPv6] address"))?;
        (ip.to_string(), r.to_string())
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            1 | 2 => (String::new(), rest.to_string()),
            3 => (parts[0].to_string(), format!("{}:{}", parts[1], parts[2])),
            _ => return Err(bad(F, spec, "expected [IP:][HOST_PORT:]CONTAINER_PORT")),
        }
    };
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(bad(F, spec, &format!("{ip:?} is not an IP address")));
    }
    let (host, ctr) = match rest.split_once(':') {
        Some((h, c)) => (h, c),
        None => ("", rest.as_str()),
    };
    let (c0, c1) = port_range(F, spec, ctr)?;
    let hosts = if host.is_empty() {
        None
    } else {
        Some(port_range(F, spec, host)?)
    };
    if let Some((h0, h1)) = hosts {
        if h1 - h0 != c1 - c0 && h0 != h1 {
            return Err(bad(
                F,
                spec,
                "host and container port ranges differ in size",
            ));
        }
    }
    let mut out = Vec::new();
    for (i, c) in (c0..=c1).enumerate() {
        let host_port = match hosts {
            None => 0,
            Some((h0, h1)) if h0 == h1 && c0 != c1 => h0, // Docker: one host port for a range = pick in it; keep simple
            Some((h0, _)) => h0 + i as u16,
        };
        out.push(PortConfig {
            host_ip: ip.clone(),
            host_port,
            container_port: c,
            protocol: proto.clone(),
        });
    }
    Ok(out)
}

/// Sizes like Docker's: `512`, `64k`, `512m`, `1g` (binary units, optional trailing `b`).
pub fn parse_size(flag: &str, s: &str) -> Result<i64, EngineError> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| bad(flag, s, "expected a size like 512m or 1g"))?;
    // f64 parsing accepts `nan`, `inf` and `1e999`; as a size they became 0 (no limit)
    // or i64::MAX (found by fuzzing `-m`).
    if !v.is_finite() {
        return Err(bad(flag, s, "expected a size like 512m or 1g"));
    }
    if v < 0.0 {
        if v == -1.0 && mul == 1 {
            return Ok(-1);
        }
        return Err(bad(flag, s, "size must not be negative"));
    }
    let bytes = v * mul as f64;
    // `as i64` saturates silently; a size past i64::MAX is an error, not a cap.
    if bytes >= i64::MAX as f64 {
        return Err(bad(flag, s, "size is too large"));
    }
    Ok(bytes as i64)
}

/// Docker's smallest memory limit and reservation (`linuxMinMemory`): below it the
/// container cannot even start its runtime.
pub const MIN_MEMORY: i64 = 6 << 20;

/// `-m/--memory` and `--memory-reservation`: a size of at least 6 MB; `0` means no limit
/// (`None`), as in Docker.
pub fn parse_memory(flag: &str, s: &str) -> Result<Option<i64>, EngineError> {
    let v = parse_size(flag, s)?;
    if v == 0 {
        return Ok(None);
    }
    if v < 0 {
        return Err(bad(flag, s, "size must not be negative"));
    }
    if v < MIN_MEMORY {
        let what = if flag.contains("reservation") {
            "reservation"
        } else {
            "limit"
        };
        return Err(bad(
            flag,
            s,
            &format!("minimum memory {what} allowed is 6MB"),
        ));
    }
    Ok(Some(v))
}

/// How many CPUs this process may run on (its affinity mask, as Docker's `NumCPU`).
pub fn host_cpus() -> usize {
    use nix::sched::{sched_getaffinity, CpuSet};
    match sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => {
            let n = (0..CpuSet::count())
                .filter(|&i| set.is_set(i).unwrap_or(false))
                .count();
            n.max(1)
        }
        Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// `--cpus N` as a CFS quota for a 100 ms period; `0` means no limit (`None`), as in
/// Docker. The range is 0.01 to the CPUs this host has (Docker's message).
pub fn parse_cpus(value: f64, host_cpus: usize) -> Result<Option<i64>, EngineError> {
    let s = value.to_string();
    if value == 0.0 {
        return Ok(None);
    }
    if !value.is_finite() || !(0.01..=host_cpus as f64).contains(&value) {
        return Err(bad(
            "--cpus",
            &s,
            &format!(
                "range of CPUs is from 0.01 to {host_cpus}.00, as there are only {host_cpus} CPUs available"
            ),
        ));
    }
    Ok(Some((value * 100_000.0).round() as i64))
}

/// Linux's first real-time signal number (glibc reserves 32 and 33; Docker uses 34).
const SIGRTMIN: i32 = 34;
/// The last signal number (`_NSIG - 1`).
const SIGRTMAX: i32 = 64;

/// A signal name or number as Docker accepts it (`--stop-signal`, `STOPSIGNAL`): `SIGTERM`,
/// `term`, `15`, `RTMIN+3`, `SIGRTMAX-2`. Returns the signal number.
pub fn parse_signal_number(flag: &str, s: &str) -> Result<i32, EngineError> {
    let why = "expected a signal name or number, e.g. SIGTERM, TERM, 15 or RTMIN+3";
    if let Ok(n) = s.parse::<i32>() {
        if (1..=SIGRTMAX).contains(&n) {
            return Ok(n);
        }
        return Err(bad(flag, s, &format!("signal numbers are 1 to {SIGRTMAX}")));
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    // Docker's names: RTMIN, RTMIN+1 … RTMIN+15, RTMAX-14 … RTMAX-1, RTMAX.
    let offset = |rest: &str, sign: char, max: i32| -> Option<i32> {
        if rest.is_empty() {
            return Some(0);
        }
        let digits = rest.strip_prefix(sign)?;
        let n = digits
            .parse::<i32>()
            .ok()
            .filter(|n| (1..=max).contains(n))?;
        (n.to_string() == digits).then_some(n)
    };
    let rt_num = if let Some(rest) = name.strip_prefix("RTMIN") {
        offset(rest, '+', 15).map(|o| SIGRTMIN + o)
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        offset(rest, '-', 14).map(|o| SIGRTMAX - o)
    } else {
        None
    };
    if let Some(n) = rt_num {
        return Ok(n);
    }
    // Docker's aliases that nix does not know.
    let name = match name {
        "CLD" => "CHLD",
        "POLL" => "IO",
        "IOT" => "ABRT",
        other => other,
    };
    format!("SIG{name}")
        .parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| bad(flag, s, why))
}

/// `-v SRC:DST[:OPTS]`. SRC starting with `/` or `.` is a bind mount, otherwise a named
/// volume; `-v /path` alone is an anonymous volume.
pub fn parse_volume(spec: &str, cwd: &Path) -> Result<MountConfig, EngineError> {
    const F: &str = "-v/--volume";
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => return Err(bad(F, spec, "expected SOURCE:DESTINATION[:ro|rw]")),
    };
    if !dst.starts_with('/') {
        return Err(bad(F, spec, "the container path must be absolute"));
    }
    let mut read_only = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "z" | "Z" | "rprivate" | "private" | "rslave" | "slave" | "shared" | "rshared"
            | "nocopy" => {}
            other => return Err(bad(F, spec, &format!("unknown option {other:?}"))),
        }
    }
    if src.is_empty() {
        proc_rule(F, spec, dst, false)?;
        return Ok(MountConfig {
            kind: "volume".into(),
            source: String::new(),
            destination: dst.into(),
            read_only,
            options: String::new(),
        });
    }
    if src.starts_with('/') || src.starts_with('.') {
        let p = cwd.join(src);
        let p = p.canonicalize().map_err(|_| {
            bad(
                F,
                spec,
                &format!("the host path {} does not exist", p.display()),
            )
        })?;
        proc_rule(F, spec, dst, berth_runtime::is_procfs(&p))?;
        return Ok(MountConfig {
            kind: "bind".into(),
            source: p.display().to_string(),
            destination: dst.into(),
            read_only,
            options: String::new(),
        });
    }
    validate_volume_name(src).map_err(|why| bad(F, spec, &why))?;
    proc_rule(F, spec, dst, false)?;
    Ok(MountConfig {
        kind: "volume".into(),
        source: src.into(),
        destination: dst.into(),
        read_only,
        options: String::new(),
    })
}

/// runc refuses mounts over `/proc` (unless of a procfs) and inside it (but for a few
/// files); say so at create, naming the flag, rather than when the container starts.
fn proc_rule(flag: &str, spec: &str, dst: &str, source_is_procfs: bool) -> Result<(), EngineError> {
    berth_runtime::check_proc_mount(dst, source_is_procfs).map_err(|why| bad(flag, spec, &why))
}

pub fn validate_volume_name(name: &str) -> Result<(), String> {
    let ok = name.len() >= 2
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid volume name: use [a-zA-Z0-9][a-zA-Z0-9_.-]+ (or an absolute path for a bind mount)"
        ))
    }
}

/// `--mount type=bind|volume|tmpfs,source=..,target=..[,readonly][,tmpfs-size=..]`.
pub fn parse_mount(spec: &str, cwd: &Path) -> Result<MountConfig, EngineError> {
    const F: &str = "--mount";
    let mut kind = "volume".to_string();
    let (mut src, mut dst, mut ro, mut opts) = (String::new(), String::new(), false, Vec::new());
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => kind = v.to_string(),
            "source" | "src" => src = v.to_string(),
            "target" | "destination" | "dst" => dst = v.to_string(),
            "readonly" | "ro" => ro = v.is_empty() || v == "true" || v == "1",
            "tmpfs-size" => opts.push(format!("size={v}")),
            "tmpfs-mode" => opts.push(format!("mode={v}")),
            "bind-propagation" | "volume-nocopy" | "consistency" => {}
            other => return Err(bad(F, spec, &format!("unknown field {other:?}"))),
        }
    }
    if !dst.starts_with('/') {
        return Err(bad(F, spec, "target must be an absolute path"));
    }
    match kind.as_str() {
        "bind" => {
            let p = cwd.join(&src);
            let p = p.canonicalize().map_err(|_| {
                bad(
                    F,
                    spec,
                    &format!("bind source path {} does not exist", p.display()),
                )
            })?;
            proc_rule(F, spec, &dst, berth_runtime::is_procfs(&p))?;
            src = p.display().to_string();
        }
        "volume" => {
            if !src.is_empty() {
                validate_volume_name(&src).map_err(|why| bad(F, spec, &why))?;
            }
            proc_rule(F, spec, &dst, false)?;
        }
        "tmpfs" => {
            if !src.is_empty() {
                return Err(bad(F, spec, "tmpfs mounts take no source"));
            }
            proc_rule(F, spec, &dst, false)?;
        }
        other => {
            return Err(bad(
                F,
                spec,
                &format!("unknown type {other:?} (bind, volume, tmpfs)"),
            ))
        }
    }
    Ok(MountConfig {
        kind,
        source: src,
        destination: dst,
        read_only: ro,
        options: opts.join(","),
    })
}

/// `--tmpfs /path[:opts]`.
pub fn parse_tmpfs(spec: &str) -> Result<MountConfig, EngineError> {
    let (dst, opts) = spec.split_once(':').unwrap_or((spec, ""));
    if !dst.starts_with('/') {
        return Err(bad("--tmpfs", spec, "the container path must be absolute"));
    }
    proc_rule("--tmpfs", spec, dst, false)?;
    Ok(MountConfig {
        kind: "tmpfs".into(),
        source: String::new(),
        destination: dst.into(),
        read_only: false,
        options: opts.into(),
    })
}

/// `-e KEY=VALUE` or `-e KEY` (taken from berth's own environment, skipped if unset).
pub fn parse_env(spec: &str) -> Result<Option<String>, EngineError> {
    if spec.is_empty() || spec.starts_with('=') {
        return Err(bad("-e/--env", spec, "expected KEY=VALUE or KEY"));
    }
    if spec.contains('=') {
        return Ok(Some(spec.to_string()));
    }
    Ok(std::env::var(spec).ok().map(|v| format!("{spec}={v}")))
}

/// `--env-file FILE`, with Docker's rules: a UTF-8 BOM on the first line is dropped, leading
/// whitespace is trimmed, blank lines and `#` comments are skipped, `NAME=VALUE` is taken as is
/// (the value keeps its spaces and quotes), a bare `NAME` takes its value from berth's
/// environment (left out when unset). A name that is empty or contains a space or tab
/// (`export D=4`) rejects the whole file, naming the file and the line.
pub fn parse_env_file(path: &Path) -> Result<Vec<String>, EngineError> {
    let bytes = std::fs::read(path)
        .map_err(|e| EngineError::io(format!("--env-file {}", path.display()), e))?;
    parse_env_lines(&bytes, |k| std::env::var(k).ok()).map_err(|(n, why)| {
        EngineError::Invalid(format!("--env-file {}: line {n}: {why}", path.display()))
    })
}

/// The body of [`parse_env_file`]; an error is `(line number, reason)`.
fn parse_env_lines(
    bytes: &[u8],
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, (usize, String)> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut out = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let n = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = std::str::from_utf8(raw)
            .map_err(|_| (n, "not valid UTF-8".to_string()))?
            .trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        if name.contains([' ', '\t']) {
            return Err((
                n,
                format!("poorly formatted environment: variable '{name}' contains whitespaces"),
            ));
        }
        if name.is_empty() {
            return Err((
                n,
                format!("poorly formatted environment: no variable name on line '{line}'"),
            ));
        }
        match value {
            Some(v) => out.push(format!("{name}={v}")),
            None => out.extend(lookup(name).map(|v| format!("{name}={v}"))),
        }
    }
    Ok(out)
}

/// `logs --since/--until`, with the forms Docker's CLI takes: a Go duration before `now`
/// (`10m`, `1h30m`, `1.5s`), RFC 3339 with or without fractional seconds, with a zone (`Z`,
/// `+01:00`) or without one (local time), shortened to `2026-12-02T01:07`, `2026-12-02T01` or
/// `2026-12-02`, and Unix timestamps `1764637620` / `1764637620.5`.
pub fn parse_log_time(
    flag: &str,
    s: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, EngineError> {
    use chrono::{TimeZone, Utc};
    let v = s.trim();
    if v != "0" {
        if let Some(d) = go_duration(v) {
            return Ok(now - d);
        }
    }
    if let Some(t) = unix_time(v) {
        return Ok(t);
    }
    let why = "use RFC 3339 (2026-12-02T01:07:00, zone optional), a date (2026-12-02), \
               a Unix timestamp or a duration like 10m";
    // Go's `Z07:00`: `Z` or `z` is UTC, else a `+hh:mm`/`-hh:mm` suffix.
    let (body, zone) = if let Some(b) = v.strip_suffix(['Z', 'z']) {
        (b, Some(chrono::FixedOffset::east_opt(0)))
    } else {
        match v.rfind(['+', '-']) {
            Some(i) if i > 10 || (i == 10 && v.len() == 16) => {
                let off = &v[i..];
                let parsed = chrono::DateTime::parse_from_str(
                    &format!("2000-01-01T00:00:00{off}"),
                    "%Y-%m-%dT%H:%M:%S%:z",
                )
                .ok()
                .map(|t| *t.offset());
                (&v[..i], Some(parsed))
            }
            _ => (v, None),
        }
    };
    let naive = naive_time(body).ok_or_else(|| bad(flag, s, why))?;
    let t = match zone {
        Some(Some(off)) => off.from_local_datetime(&naive).single(),
        Some(None) => None,
        None => chrono::Local
            .from_local_datetime(&naive)
            .earliest()
            .map(|t| t.fixed_offset()),
    };
    t.map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| bad(flag, s, why))
}

/// `2026-12-02[T15[:04[:05[.999]]]]` without a zone.
fn naive_time(s: &str) -> Option<chrono::NaiveDateTime> {
    let (date, time) = match s.split_once(['T', 't']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let time = match time {
        None => chrono::NaiveTime::MIN,
        Some(t) => {
            let full = match t.matches(':').count() {
                0 => format!("{t}:00:00"),
                1 => format!("{t}:00"),
                _ => t.to_string(),
            };
            chrono::NaiveTime::parse_from_str(&full, "%H:%M:%S%.f").ok()?
        }
    };
    Some(date.and_time(time))
}

/// `SECONDS[.FRACTION]` since the epoch.
fn unix_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let all_digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    if secs.is_empty() || !all_digits(secs) || !all_digits(frac) || frac.len() > 9 {
        return None;
    }
    let nanos: u32 = format!("{frac:0<9}").parse().ok()?;
    chrono::DateTime::from_timestamp(secs.parse().ok()?, nanos)
}

/// A Go `time.ParseDuration` string, signed: the Dockerfile front end's parser
/// (`berth_dockerfile::parse_go_duration`) after an optional `-`.
fn go_duration(s: &str) -> Option<chrono::Duration> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let d = chrono::Duration::from_std(berth_dockerfile::parse_go_duration(rest)?).ok()?;
    Some(if neg { -d } else { d })
}

/// `--restart`.
pub fn parse_restart(s: &str) -> Result<String, EngineError> {
    let (name, n) = s.split_once(':').unwrap_or((s, ""));
    match name {
        "no" | "always" | "unless-stopped" if n.is_empty() => Ok(s.to_string()),
        "on-failure" if n.is_empty() || n.parse::<u32>().is_ok() => Ok(s.to_string()),
        _ => Err(bad(
            "--restart",
            s,
            "expected no, on-failure[:MAX_RETRIES], always or unless-stopped",
        )),
    }
}

/// A Go-style duration flag (`30s`, `1m30s`, `500ms`), as HEALTHCHECK's options.
pub fn parse_duration(flag: &str, s: &str) -> Result<std::time::Duration, EngineError> {
    berth_dockerfile::parse_health_duration(s).map_err(|e| bad(flag, s, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_forms() {
        let p = parse_publish("8080:80").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].host_port, p[0].container_port), (8080, 80));
        assert_eq!(p[0].protocol, "tcp");
        let p = parse_publish("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(p[0].host_ip, "127.0.0.1");
        assert_eq!(p[0].protocol, "udp");
        let p = parse_publish("80").unwrap();
        assert_eq!(p[0].host_port, 0);
        let p = parse_publish("127.0.0.1::80").unwrap();
        assert_eq!((p[0].host_ip.as_str(), p[0].host_port), ("127.0.0.1", 0));
        let p = parse_publish("8000-8002:80-82").unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!((p[2].host_port, p[2].container_port), (8002, 82));
        let p = parse_publish("[::1]:8080:80").unwrap();
        assert_eq!(p[0].host_ip, "::1");
        for bad in [
            "",
            "x:80",
            "8080:80/sctp",
            "1.2.3:80:80",
            "70000:80",
            "8000-8001:80-85",
            "a:b:c:d",
        ] {
            let e = parse_publish(bad).unwrap_err().to_string();
            assert!(e.contains("-p/--publish"), "{bad}: {e}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("-m", "512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("-m", "1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("-m", "64kb").unwrap(), 64 << 10);
        assert_eq!(parse_size("-m", "100").unwrap(), 100);
        assert_eq!(parse_size("--memory-swap", "-1").unwrap(), -1);
        for odd in [
            "nan", "inf", "-inf", "infinity", "NaNm", "1e999", "1e300g", "1e19", "9000000t",
        ] {
            assert!(parse_size("-m", odd).is_err(), "{odd}");
        }
        assert!(parse_size("-m", "lots")
            .unwrap_err()
            .to_string()
            .contains("-m"));
    }

    #[test]
    fn volumes() {
        let tmp = std::env::temp_dir();
        let m = parse_volume(&format!("{}:/data:ro", tmp.display()), Path::new("/")).unwrap();
        assert_eq!(m.kind, "bind");
        assert!(m.read_only);
        let m = parse_volume("cache:/cache", Path::new("/")).unwrap();
        assert_eq!((m.kind.as_str(), m.source.as_str()), ("volume", "cache"));
        let m = parse_volume("/anon", Path::new("/")).unwrap();
        assert_eq!((m.kind.as_str(), m.source.as_str()), ("volume", ""));
        assert!(parse_volume("/no/such/path/bt:/x", Path::new("/"))
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
        assert!(parse_volume("data:relative", Path::new("/")).is_err());
        assert!(parse_volume("a:/x:bogus", Path::new("/")).is_err());
        assert!(parse_volume("b@d:/x", Path::new("/")).is_err());
    }

    #[test]
    fn memory_limits_like_docker() {
        assert_eq!(parse_memory("-m/--memory", "0").unwrap(), None);
        assert_eq!(parse_memory("-m/--memory", "0b").unwrap(), None);
        assert_eq!(parse_memory("-m/--memory", "6m").unwrap(), Some(6 << 20));
        assert_eq!(parse_memory("-m/--memory", "1g").unwrap(), Some(1 << 30));
        for small in ["1", "1k", "6291455", "5m"] {
            let e = parse_memory("-m/--memory", small).unwrap_err().to_string();
            assert!(e.contains("-m/--memory"), "{small}: {e}");
            assert!(
                e.contains("minimum memory limit allowed is 6MB"),
                "{small}: {e}"
            );
        }
        let e = parse_memory("--memory-reservation", "1k")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("minimum memory reservation allowed is 6MB"),
            "{e}"
        );
        assert!(parse_memory("-m/--memory", "-1").is_err());
    }

    #[test]
    fn cpus_within_the_host() {
        assert_eq!(parse_cpus(0.0, 2).unwrap(), None);
        assert_eq!(parse_cpus(0.5, 2).unwrap(), Some(50_000));
        assert_eq!(parse_cpus(2.0, 2).unwrap(), Some(200_000));
        assert_eq!(parse_cpus(0.01, 2).unwrap(), Some(1_000));
        for v in [1000.0, 2.01, 0.001, -1.0, f64::NAN, f64::INFINITY] {
            let e = parse_cpus(v, 2).unwrap_err().to_string();
            assert!(
                e.contains("--cpus")
                    && e.contains(
                        "range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
                    ),
                "{v}: {e}"
            );
        }
        assert!(host_cpus() >= 1);
    }

    #[test]
    fn signals_like_docker() {
        let sig = |s: &str| parse_signal_number("--stop-signal", s);
        assert_eq!(sig("SIGTERM").unwrap(), libc::SIGTERM);
        assert_eq!(sig("term").unwrap(), libc::SIGTERM);
        assert_eq!(sig("SIGKILL").unwrap(), libc::SIGKILL);
        assert_eq!(sig("9").unwrap(), 9);
        assert_eq!(sig("64").unwrap(), 64);
        assert_eq!(sig("usr1").unwrap(), libc::SIGUSR1);
        assert_eq!(sig("CLD").unwrap(), libc::SIGCHLD);
        assert_eq!(sig("SIGIOT").unwrap(), libc::SIGABRT);
        assert_eq!(sig("RTMIN").unwrap(), 34);
        assert_eq!(sig("RTMIN+3").unwrap(), 37);
        assert_eq!(sig("SIGRTMIN+15").unwrap(), 49);
        assert_eq!(sig("rtmax-14").unwrap(), 50);
        assert_eq!(sig("RTMAX").unwrap(), 64);
        for bad in [
            "FOO", "SIGFOO", "", "0", "65", "-1", "RTMIN+16", "RTMIN+0", "RTMIN-1", "RTMAX-15",
            "RTMAX+1", "RTMIN+03", "SIG",
        ] {
            let e = sig(bad).unwrap_err().to_string();
            assert!(e.contains("--stop-signal"), "{bad}: {e}");
        }
    }

    #[test]
    fn mounts_over_or_inside_proc_are_refused() {
        let tmp = std::env::temp_dir();
        let t = tmp.display();
        for (spec, why) in [
            (format!("{t}:/proc"), "not of type proc"),
            (format!("{t}:/proc/sys"), "inside /proc"),
            (format!("{t}:/proc/self/:ro"), "inside /proc"),
            ("data:/proc/x".to_string(), "inside /proc"),
            ("/proc/1".to_string(), "inside /proc"),
        ] {
            let e = parse_volume(&spec, Path::new("/")).unwrap_err().to_string();
            assert!(e.contains("-v/--volume") && e.contains(why), "{spec}: {e}");
        }
        // A procfs over /proc and the files lxcfs emulates are allowed, as by runc.
        parse_volume("/proc:/proc", Path::new("/")).unwrap();
        parse_volume(&format!("{t}/:/proc/cpuinfo"), Path::new("/")).unwrap();
        parse_volume(&format!("{t}:/procedures"), Path::new("/")).unwrap();
        let e = parse_mount(&format!("type=bind,src={t},dst=/proc"), Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--mount") && e.contains("not of type proc"),
            "{e}"
        );
        assert!(parse_mount("type=tmpfs,dst=/proc/sys", Path::new("/")).is_err());
        assert!(parse_mount("type=volume,dst=/proc", Path::new("/")).is_err());
        let e = parse_tmpfs("/proc").unwrap_err().to_string();
        assert!(e.contains("--tmpfs") && e.contains("/proc"), "{e}");
        parse_tmpfs("/run").unwrap();
    }

    #[test]
    fn mounts_and_env() {
        let m = parse_mount("type=tmpfs,target=/t,tmpfs-size=1m", Path::new("/")).unwrap();
        assert_eq!((m.kind.as_str(), m.options.as_str()), ("tmpfs", "size=1m"));
        assert!(parse_mount("type=nfs,target=/x", Path::new("/")).is_err());
        assert_eq!(parse_env("A=1").unwrap().as_deref(), Some("A=1"));
        assert!(parse_env("=x").is_err());
        assert!(parse_restart("on-failure:3").is_ok());
        assert!(parse_restart("sometimes").is_err());
    }

    fn env_lines(text: &[u8]) -> Result<Vec<String>, (usize, String)> {
        parse_env_lines(text, |k| (k == "SET").then(|| "from env".to_string()))
    }

    #[test]
    fn env_file_follows_docker() {
        let got = env_lines(
            b"\xEF\xBB\xBFA=1\r\n\n  # comment\n\tB= two  \nSET\nUNSET\nC=x=y\nQ=\"q\"\n",
        )
        .unwrap();
        assert_eq!(got, ["A=1", "B= two  ", "SET=from env", "C=x=y", "Q=\"q\""]);
    }

    #[test]
    fn env_file_rejects_bad_names_with_the_line() {
        let (n, why) = env_lines(b"A=1\n# c\nexport D=4\n").unwrap_err();
        assert_eq!(n, 3);
        assert_eq!(
            why,
            "poorly formatted environment: variable 'export D' contains whitespaces"
        );
        assert_eq!(env_lines(b"MY VAR\n").unwrap_err().0, 1);
        assert_eq!(env_lines(b"A=1\n=x\n").unwrap_err().0, 2);
        assert_eq!(env_lines(b"A=\xff\n").unwrap_err().0, 1);
    }

    #[test]
    fn env_file_error_names_the_file_and_line() {
        let dir = std::env::temp_dir().join(format!("berth-envfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("bad.env");
        std::fs::write(&f, "A=1\nexport D=4\n").unwrap();
        let e = parse_env_file(&f).unwrap_err().to_string();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(e.contains("bad.env: line 2:"), "{e}");
        assert!(e.contains("'export D' contains whitespaces"), "{e}");
    }

    #[test]
    fn log_times_take_dockers_forms() {
        use chrono::{TimeZone, Utc};
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap();
        let p = |s: &str| parse_log_time("--since", s, now).unwrap();
        let local = |y, mo, d, h, mi, s| {
            chrono::Local
                .with_ymd_and_hms(y, mo, d, h, mi, s)
                .earliest()
                .unwrap()
                .with_timezone(&Utc)
        };
        assert_eq!(p("10m"), now - chrono::Duration::minutes(10));
        assert_eq!(p("1h30m"), now - chrono::Duration::minutes(90));
        assert_eq!(p("1.5s"), now - chrono::Duration::milliseconds(1500));
        assert_eq!(p("2026-12-02T01:07:00"), local(2026, 12, 2, 1, 7, 0));
        assert_eq!(p("2026-12-02T01:07"), local(2026, 12, 2, 1, 7, 0));
        assert_eq!(p("2026-12-02T01"), local(2026, 12, 2, 1, 0, 0));
        assert_eq!(p("2026-12-02"), local(2026, 12, 2, 0, 0, 0));
        assert_eq!(
            p("2026-12-02T01:07:00.25"),
            local(2026, 12, 2, 1, 7, 0) + chrono::Duration::milliseconds(250)
        );
        let utc = Utc.with_ymd_and_hms(2026, 12, 2, 1, 7, 0).unwrap();
        assert_eq!(p("2026-12-02T01:07:00Z"), utc);
        assert_eq!(
            p("2026-12-02T01:07:00.5Z"),
            utc + chrono::Duration::milliseconds(500)
        );
        assert_eq!(p("2026-12-02T02:07:00+01:00"), utc);
        assert_eq!(p("2026-12-02T00:07:00-01:00"), utc);
        assert_eq!(p("2026-12-02T01:07Z"), utc);
        assert_eq!(
            p("1764637620"),
            Utc.timestamp_opt(1_764_637_620, 0).unwrap()
        );
        assert_eq!(
            p("1764637620.5"),
            Utc.timestamp_opt(1_764_637_620, 500_000_000).unwrap()
        );
        assert_eq!(p("0"), Utc.timestamp_opt(0, 0).unwrap());
        for bad in [
            "yesterday",
            "10x",
            "2026-13-02",
            "2026-12-02T25:00",
            "1.2.3",
            "",
        ] {
            let e = parse_log_time("--since", bad, now).unwrap_err().to_string();
            assert!(e.contains("--since"), "{bad}: {e}");
        }
    }
}
