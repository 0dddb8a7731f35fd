//! Header rendering: `header::render` and `header::comment_for` for the analysis of a
//! 6-hop corpus message, with and without the policy tokens.

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tls_milter::chain::{self, LiveSource};
use tls_milter::header::{self, PolicyTag};

fn render_header(criterion: &mut Criterion) {
    let fields = common::corpus_fields();
    let trust = common::default_trust();
    let live = common::live_tls13();
    let message = common::messages(&fields, 6).swap_remove(0);
    let analysis = chain::analyse(&message, message.len(), LiveSource::Macros(&live), &trust);
    let policy = PolicyTag { rule: "partners".into(), action: "tag", dry_run: false };
    let mut group = criterion.benchmark_group("header");

    group.bench_function("render", |bencher| {
        bencher.iter(|| {
            let comment = header::comment_for(black_box(&analysis), false);
            header::render("mx.example.org", black_box(&analysis), None, comment.as_deref())
        });
    });
    group.bench_function("render_with_policy", |bencher| {
        bencher.iter(|| {
            let comment = header::comment_for(black_box(&analysis), false);
            header::render("mx.example.org", black_box(&analysis), Some(&policy), comment.as_deref())
        });
    });
    group.finish();
}

criterion_group!(benches, render_header);
criterion_main!(benches);
