//! Parsing (and planning) a generated ~200-instruction multi-stage Dockerfile.

use std::collections::BTreeMap;

use berth_dockerfile::{plan, Dockerfile};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn dockerfile() -> String {
    let mut s = String::from("# syntax=docker/dockerfile:1\nARG BASE=debian:12\n");
    for stage in 0..4 {
        s.push_str(&format!("FROM ${{BASE}} AS s{stage}\n"));
        for i in 0..12 {
            s.push_str(&format!("ENV K{i}=v{i} P{i}=\"a b {i}\"\n"));
            s.push_str(&format!("RUN --mount=type=cache,target=/c{i} apt-get install -y \\\n    pkg{i} \\\n    other{i}\n"));
            s.push_str(&format!("COPY --chown=1:1 src/{i} /app/{i}/\n"));
            s.push_str(&format!("LABEL l{i}=x{i}\n"));
        }
        s.push_str("RUN <<EOF\nset -e\necho heredoc\nEOF\n");
        s.push_str("CMD [\"/bin/app\", \"--serve\"]\n");
    }
    s.push_str("FROM scratch\nCOPY --from=s3 /app /app\n");
    s
}

fn bench_parse(c: &mut Criterion) {
    let text = dockerfile();
    let count = Dockerfile::parse("Dockerfile", &text)
        .expect("bench Dockerfile parses")
        .instructions()
        .count();
    assert!(count >= 200, "only {count} instructions");
    let mut g = c.benchmark_group("dockerfile");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function(format!("parse_{count}_instructions"), |b| {
        b.iter(|| Dockerfile::parse("Dockerfile", std::hint::black_box(&text)).expect("parse"))
    });
    let df = Dockerfile::parse("Dockerfile", &text).expect("parse");
    g.bench_function("plan", |b| {
        b.iter(|| plan(&df, None, &BTreeMap::new()).expect("plan"))
    });
    g.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
