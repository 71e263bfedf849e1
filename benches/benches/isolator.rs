//! Isolator hot path: one container's group lifecycle — create + add_process + destroy —
//! with the cgroup1 plugin on this host (needs root and cgroup v1 hierarchies; skipped
//! with a message otherwise). The placed process (`sleep`) is spawned in the untimed setup;
//! destroy kills it, the wait for its exit is timed too (destroy waits until the group is
//! empty).

use std::{
    process::{Child, Command},
    time::Duration,
};

use berth_abi::{Isolator, Limits};
use berth_plugin_cgroup1::Cgroup1;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

fn lifecycle(c: &mut Criterion) {
    let parent = format!("bt-bench-{}", std::process::id());
    let iso = match Cgroup1::from_config_json(&format!(r#"{{"parent": "{parent}"}}"#)) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("isolator bench skipped: {e}");
            return;
        }
    };
    let limits = Limits {
        memory: Some(256 << 20),
        pids: Some(100),
        cpu_quota: Some(50_000),
        cpu_period: Some(100_000),
        ..Default::default()
    };
    let mut n = 0u64;
    let mut g = c.benchmark_group("isolator/cgroup1");
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("create+add_process+destroy", |b| {
        b.iter_batched(
            || {
                Command::new("sleep")
                    .arg("60")
                    .spawn()
                    .expect("spawn sleep")
            },
            |mut child: Child| {
                n += 1;
                let id = format!("c{n}");
                iso.create(&id, &limits).expect("create");
                iso.add_process(&id, child.id() as i32)
                    .expect("add_process");
                iso.destroy(&id).expect("destroy");
                let _ = child.wait();
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("create+destroy (no process)", |b| {
        b.iter(|| {
            n += 1;
            let id = format!("c{n}");
            iso.create(&id, &limits).expect("create");
            iso.destroy(&id).expect("destroy");
        })
    });
    g.finish();
    for h in iso.hierarchies() {
        let _ = std::fs::remove_dir(h.parent());
    }
}

criterion_group!(benches, lifecycle);
criterion_main!(benches);
