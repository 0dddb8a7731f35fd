//! Chain analysis per message: `chain::analyse` on messages of 2, 6 and 12 Received fields
//! drawn from the labelled corpus, with the live hop from milter macros as in the daemon.
//!
//! Each iteration analyses the next message of the set, so the time per iteration is the
//! mean time per message over the whole corpus.

mod common;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tls_milter::chain::{self, LiveSource};

fn analyse_messages(criterion: &mut Criterion) {
    let fields = common::corpus_fields();
    let trust = common::default_trust();
    let live = common::live_tls13();
    let mut group = criterion.benchmark_group("analyse");

    for hops in [2, 6, 12] {
        let messages = common::messages(&fields, hops);
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("hops", hops), &messages, |bencher, messages| {
            let mut next = 0;
            bencher.iter(|| {
                let message = &messages[next];
                next = (next + 1) % messages.len();
                chain::analyse(black_box(message), message.len(), LiveSource::Macros(&live), &trust)
            });
        });
    }
    group.finish();
}

/// Benchmarks one Received field through the parser alone, so the analysis time can be split
/// into parsing and the chain rules.
fn parse_fields(criterion: &mut Criterion) {
    let fields = common::corpus_fields();
    let mut group = criterion.benchmark_group("received");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_one_field", |bencher| {
        let mut next = 0;
        bencher.iter(|| {
            let field = &fields[next];
            next = (next + 1) % fields.len();
            tls_milter::received::parse(black_box(field))
        });
    });
    group.finish();
}

criterion_group!(benches, analyse_messages, parse_fields);
criterion_main!(benches);
