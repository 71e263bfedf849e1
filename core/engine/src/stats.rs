//! `stats` and `top`: resource usage in Docker's stats JSON shape (`cpu_stats`,
//! `memory_stats`, `networks`, `pids_stats`, `blkio_stats`) from the isolator and `/proc`,
//! and the processes of a container.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{container::ContainerRecord, models as m, Engine, EngineError};

/// Clock ticks per second of `/proc/*/stat` and `/proc/stat` (`sysconf(_SC_CLK_TCK)`).
fn clk_tck() -> u64 {
    // SAFETY: sysconf reads a constant of the C library; no memory is passed.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Per-interface counters of `/proc/PID/net/dev` (the container's namespace), without `lo`.
pub fn parse_net_dev(text: &str) -> HashMap<String, m::ContainerNetworkStats> {
    let mut out = HashMap::new();
    for l in text.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        let g = |i: usize| Some(f.get(i).copied().unwrap_or(0));
        out.insert(
            name.to_string(),
            m::ContainerNetworkStats {
                rx_bytes: g(0),
                rx_packets: g(1),
                rx_errors: g(2),
                rx_dropped: g(3),
                tx_bytes: g(8),
                tx_packets: g(9),
                tx_errors: g(10),
                tx_dropped: g(11),
                ..Default::default()
            },
        );
    }
    out
}

/// The host's total CPU time in nanoseconds (first line of `/proc/stat`), what Docker
/// puts in `system_cpu_usage`.
pub fn parse_proc_stat_total(text: &str, tck: u64) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: u64 = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse::<u64>().ok())
        .sum();
    Some(ticks.saturating_mul(1_000_000_000 / tck.max(1)))
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// What `docker stats` prints, computed from a sample (and the sample before it, kept in
/// `precpu_stats`) the way the docker CLI computes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsSummary {
    pub cpu_percent: f64,
    pub mem_usage: u64,
    pub mem_limit: u64,
    pub mem_percent: f64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub block_read: u64,
    pub block_write: u64,
    pub pids: u64,
}

impl StatsSummary {
    pub fn of(s: &m::ContainerStatsResponse) -> StatsSummary {
        let cpu = |c: &Option<m::ContainerCpuStats>| {
            let c = c.as_ref();
            (
                c.and_then(|c| c.cpu_usage.as_ref())
                    .and_then(|u| u.total_usage)
                    .unwrap_or(0),
                c.and_then(|c| c.system_cpu_usage).unwrap_or(0),
                c.and_then(|c| c.online_cpus).unwrap_or(0),
            )
        };
        let (now_cpu, now_sys, cpus) = cpu(&s.cpu_stats);
        let (pre_cpu, pre_sys, _) = cpu(&s.precpu_stats);
        let cpu_delta = now_cpu.saturating_sub(pre_cpu) as f64;
        let sys_delta = now_sys.saturating_sub(pre_sys) as f64;
        let cpu_percent = if pre_sys > 0 && sys_delta > 0.0 && cpu_delta > 0.0 {
            cpu_delta / sys_delta * f64::from(cpus.max(1)) * 100.0
        } else {
            0.0
        };
        let mem = s.memory_stats.as_ref();
        let mem_usage = mem.and_then(|m| m.usage).unwrap_or(0);
        let mem_limit = mem.and_then(|m| m.limit).unwrap_or(0);
        let (mut net_rx, mut net_tx) = (0, 0);
        for n in s.networks.iter().flat_map(|n| n.values()) {
            net_rx += n.rx_bytes.unwrap_or(0);
            net_tx += n.tx_bytes.unwrap_or(0);
        }
        let (mut block_read, mut block_write) = (0, 0);
        for e in s
            .blkio_stats
            .iter()
            .flat_map(|b| b.io_service_bytes_recursive.iter().flatten())
        {
            match e.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("read") => block_read += e.value.unwrap_or(0),
                Some("write") => block_write += e.value.unwrap_or(0),
                _ => {}
            }
        }
        StatsSummary {
            cpu_percent,
            mem_usage,
            mem_limit,
            mem_percent: if mem_limit > 0 {
                mem_usage as f64 / mem_limit as f64 * 100.0
            } else {
                0.0
            },
            net_rx,
            net_tx,
            block_read,
            block_write,
            pids: s.pids_stats.as_ref().and_then(|p| p.current).unwrap_or(0),
        }
    }
}

impl Engine {
    /// One sample of a container's usage in Docker's stats shape. With `previous` (the
    /// sample before, as a streaming `stats` keeps it), `precpu_stats` and `preread` are
    /// filled so CPU percentages can be computed; without it they are empty.
    pub fn container_stats(
        &self,
        c: &ContainerRecord,
        previous: Option<&m::ContainerStatsResponse>,
    ) -> Result<m::ContainerStatsResponse, EngineError> {
        let iso = self.plugins.isolator()?;
        let live = c.state.is_live();
        let s = if live {
            iso.stats(&c.id)
                .map_err(|e| EngineError::plugin(format!("reading the usage of {}", c.name), e))?
        } else {
            Default::default()
        };
        let system = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|t| parse_proc_stat_total(&t, clk_tck()));
        let networks = if live && c.pid > 0 {
            std::fs::read_to_string(format!("/proc/{}/net/dev", c.pid))
                .ok()
                .map(|t| parse_net_dev(&t))
        } else {
            None
        };
        let blk = |op: &str, v: Option<u64>| {
            v.map(|v| m::ContainerBlkioStatEntry {
                major: Some(0),
                minor: Some(0),
                op: Some(op.into()),
                value: Some(v),
            })
        };
        let io = [blk("read", s.io_read_bytes), blk("write", s.io_write_bytes)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>();
        let cpu_stats = m::ContainerCpuStats {
            cpu_usage: Some(m::ContainerCpuUsage {
                total_usage: Some(s.cpu_usage_ns.unwrap_or(0)),
                usage_in_kernelmode: Some(0),
                usage_in_usermode: Some(0),
                percpu_usage: None,
            }),
            system_cpu_usage: if live { system } else { None },
            online_cpus: Some(crate::parse::host_cpus() as u32),
            throttling_data: Some(Default::default()),
        };
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        Ok(m::ContainerStatsResponse {
            name: Some(format!("/{}", c.name)),
            id: Some(c.id.clone()),
            read: Some(now),
            preread: Some(
                previous
                    .and_then(|p| p.read.clone())
                    .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            ),
            pids_stats: Some(m::ContainerPidsStats {
                current: s.pids_current,
                limit: s.pids_limit,
            }),
            blkio_stats: Some(m::ContainerBlkioStats {
                io_service_bytes_recursive: Some(io),
                ..Default::default()
            }),
            num_procs: Some(0),
            storage_stats: Some(Default::default()),
            cpu_stats: Some(cpu_stats),
            precpu_stats: Some(
                previous
                    .and_then(|p| p.cpu_stats.clone())
                    .unwrap_or_default(),
            ),
            memory_stats: Some(m::ContainerMemoryStats {
                usage: Some(s.memory_current.unwrap_or(0)),
                max_usage: s.memory_peak,
                limit: Some(s.memory_limit.unwrap_or_else(host_memory)),
                failcnt: Some(s.oom_kills),
                ..Default::default()
            }),
            networks,
        })
    }

    /// `docker top CONTAINER` / `GET /containers/{id}/top`: the container's processes with
    /// `ps -ef`'s columns.
    pub fn top(&self, what: &str) -> Result<m::ContainerTopResponse, EngineError> {
        let c = self.container(what)?;
        if !c.state.is_live() {
            return Err(EngineError::Conflict(format!(
                "container {} is not running",
                c.name
            )));
        }
        let pids = match self.plugins.isolator().and_then(|i| {
            i.pids(&c.id)
                .map_err(|e| EngineError::plugin("listing processes", e))
        }) {
            Ok(p) if !p.is_empty() => p,
            _ => vec![c.pid],
        };
        let tck = clk_tck();
        let boot = std::fs::read_to_string("/proc/stat").ok().and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<i64>().ok())
        });
        let mut processes = Vec::new();
        for pid in pids {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue; // exited meanwhile
            };
            let Some(row) = top_row(pid, &stat, tck, boot) else {
                continue;
            };
            processes.push(row);
        }
        Ok(m::ContainerTopResponse {
            titles: Some(
                ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
                    .map(String::from)
                    .to_vec(),
            ),
            processes: Some(processes),
        })
    }
}

/// One `ps -ef` row from `/proc/PID/stat` (and `status`, `cmdline`).
fn top_row(pid: i32, stat: &str, tck: u64, boot: Option<i64>) -> Option<Vec<String>> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = &stat[open + 1..close];
    let f: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let ppid = f.get(1).copied().unwrap_or("0").to_string();
    let secs = (num(11) + num(12)) / tck.max(1);
    let tty = match num(4) {
        0 => "?".to_string(),
        n => {
            let major = (n >> 8) & 0xfff;
            let minor = (n & 0xff) | ((n >> 12) & 0xfff00);
            if major == 136 {
                format!("pts/{minor}")
            } else {
                format!("tty{minor}")
            }
        }
    };
    let stime = boot
        .map(|b| b + (num(19) / tck.max(1)) as i64)
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| t.with_timezone(&chrono::Local).format("%H:%M").to_string())
        .unwrap_or_default();
    let uid = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Uid:")?
                    .split_whitespace()
                    .nth(1)
                    .map(String::from)
            })
        })
        .unwrap_or_default();
    let user = uid
        .parse::<u32>()
        .ok()
        .and_then(|u| {
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(u))
                .ok()
                .flatten()
        })
        .map(|u| u.name)
        .unwrap_or(uid);
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    let cmd = if cmd.is_empty() {
        format!("[{comm}]")
    } else {
        cmd
    };
    Some(vec![
        user,
        pid.to_string(),
        ppid,
        "0".into(),
        stime,
        tty,
        format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
        cmd,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    1500      10    1    2    0     0          0         0     2500      20    3    4    0     0       0          0
";

    #[test]
    fn net_dev_per_interface_without_lo() {
        let n = parse_net_dev(NET_DEV);
        assert_eq!(n.len(), 1);
        let e = &n["eth0"];
        assert_eq!(
            (e.rx_bytes, e.rx_packets, e.rx_errors, e.rx_dropped),
            (Some(1500), Some(10), Some(1), Some(2))
        );
        assert_eq!(
            (e.tx_bytes, e.tx_packets, e.tx_errors, e.tx_dropped),
            (Some(2500), Some(20), Some(3), Some(4))
        );
    }

    #[test]
    fn proc_stat_total_in_nanoseconds() {
        let t = "cpu  10 0 20 70 0 0 0 0 0 0\ncpu0 5 0 10 35 0 0 0 0 0 0\n";
        assert_eq!(parse_proc_stat_total(t, 100), Some(100 * 10_000_000));
        assert_eq!(parse_proc_stat_total("intr 1", 100), None);
    }

    #[test]
    fn summary_computes_like_the_docker_cli() {
        let s = m::ContainerStatsResponse {
            cpu_stats: Some(m::ContainerCpuStats {
                cpu_usage: Some(m::ContainerCpuUsage {
                    total_usage: Some(300),
                    ..Default::default()
                }),
                system_cpu_usage: Some(2000),
                online_cpus: Some(2),
                ..Default::default()
            }),
            precpu_stats: Some(m::ContainerCpuStats {
                cpu_usage: Some(m::ContainerCpuUsage {
                    total_usage: Some(100),
                    ..Default::default()
                }),
                system_cpu_usage: Some(1000),
                online_cpus: Some(2),
                ..Default::default()
            }),
            memory_stats: Some(m::ContainerMemoryStats {
                usage: Some(25),
                limit: Some(100),
                ..Default::default()
            }),
            networks: Some(parse_net_dev(NET_DEV)),
            blkio_stats: Some(m::ContainerBlkioStats {
                io_service_bytes_recursive: Some(vec![
                    m::ContainerBlkioStatEntry {
                        op: Some("read".into()),
                        value: Some(7),
                        ..Default::default()
                    },
                    m::ContainerBlkioStatEntry {
                        op: Some("Write".into()),
                        value: Some(9),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            pids_stats: Some(m::ContainerPidsStats {
                current: Some(3),
                limit: None,
            }),
            ..Default::default()
        };
        let v = StatsSummary::of(&s);
        assert!((v.cpu_percent - 40.0).abs() < 1e-9, "{v:?}");
        assert!((v.mem_percent - 25.0).abs() < 1e-9);
        assert_eq!((v.net_rx, v.net_tx), (1500, 2500));
        assert_eq!((v.block_read, v.block_write, v.pids), (7, 9, 3));
        // The first sample of a stream has no previous one: 0%, not a division by zero.
        let first = m::ContainerStatsResponse {
            precpu_stats: Some(Default::default()),
            ..s
        };
        assert_eq!(StatsSummary::of(&first).cpu_percent, 0.0);
    }

    #[test]
    fn top_rows_from_proc() {
        let stat =
            "42 (sleep) S 1 42 42 34816 42 4194560 100 0 0 0 250 150 0 0 20 0 1 0 500 1000 100";
        let row = top_row(42, stat, 100, Some(0)).unwrap();
        assert_eq!(row[1], "42");
        assert_eq!(row[2], "1");
        assert_eq!(row[5], "pts/0");
        assert_eq!(row[6], "00:00:04");
    }
}
