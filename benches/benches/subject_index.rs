//! Subject-index matching at 1k and 100k subscriptions (1M with
//! `NATRIUM_BENCH_1M=1`: building it takes a while). A tenth of the
//! subscriptions are wildcards (`*` and `>`). Matches are measured without the
//! cache (`matches_uncached`: the trie walk) for a literal-only hit and for a
//! subject that also hits wildcards, and through the cache (`matches`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use natrium_engine::subject::{Matches, SubjectIndex};

fn build(n: usize) -> SubjectIndex<u32> {
    let mut idx = SubjectIndex::new(7);
    for i in 0..n {
        let (a, b) = (i % 1000, i / 1000);
        let s = match i % 20 {
            0 => format!("svc.{a}.*.reply"),
            1 => format!("svc.{a}.{b}.>"),
            _ => format!("svc.{a}.{b}.req"),
        };
        idx.insert(s.as_bytes(), None, i as u32);
    }
    idx
}

fn bench(c: &mut Criterion) {
    let mut sizes = vec![1_000usize, 100_000];
    if std::env::var_os("NATRIUM_BENCH_1M").is_some() {
        sizes.push(1_000_000);
    }
    let mut g = c.benchmark_group("subject_index");
    for &n in &sizes {
        let mut idx = build(n);
        let mut out = Matches::new();
        // i = 505: literal `svc.505.0.req` only ("literal"); i = 500 holds
        // `svc.500.*.reply` and i = 501 `svc.501.0.>`.
        let literal = b"svc.505.0.req".as_slice();
        let wildcard = b"svc.501.0.req".as_slice();
        let star = b"svc.500.0.reply".as_slice();
        for (name, subj) in [
            ("literal", literal),
            ("wildcard >", wildcard),
            ("wildcard *", star),
        ] {
            idx.matches_uncached(subj, &mut out);
            assert!(!out.is_empty(), "{name} must match");
            g.bench_with_input(
                BenchmarkId::new(format!("uncached {name}"), n),
                &subj,
                |b, s| {
                    b.iter(|| {
                        idx.matches_uncached(s, &mut out);
                        out.plain.len()
                    })
                },
            );
        }
        let subjects: Vec<String> = (0..256)
            .map(|i| format!("svc.{}.{}.req", i * 3 % 1000, 0))
            .collect();
        g.bench_with_input(
            BenchmarkId::new("cached, 256 subjects", n),
            &subjects,
            |b, s| {
                let mut i = 0;
                b.iter(|| {
                    i = (i + 1) % s.len();
                    idx.matches(s[i].as_bytes()).plain.len()
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
