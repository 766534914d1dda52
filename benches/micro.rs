//! Micro-benchmarks of the hot pure functions: the request parser, the
//! reply and message encoders, and the glob matcher with the pattern index's
//! literal-prefix test. Run with `cargo bench --bench micro`; the server-level
//! comparison with redis-server is `bench/compare.sh`.

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use herald::message::{Kind, Message};
use herald::protocol::{Frame, Protocol, RequestParser};
use herald::util::glob::Pattern;

fn pipeline(n: usize, payload: usize) -> Vec<u8> {
    let body = "x".repeat(payload);
    let mut out = Vec::new();
    for i in 0..n {
        let ch = format!("channel:{i}");
        out.extend_from_slice(
            format!(
                "*3\r\n$7\r\nPUBLISH\r\n${}\r\n{}\r\n${}\r\n{}\r\n",
                ch.len(),
                ch,
                body.len(),
                body
            )
            .as_bytes(),
        );
    }
    out
}

fn parser(c: &mut Criterion) {
    let mut g = c.benchmark_group("parser");
    for payload in [64usize, 1024] {
        let input = pipeline(64, payload);
        g.throughput(Throughput::Elements(64));
        g.bench_with_input(
            BenchmarkId::new("publish_pipeline_64", payload),
            &input,
            |b, input| {
                b.iter(|| {
                    let mut p = RequestParser::new(512 << 20);
                    let mut buf = BytesMut::from(&input[..]);
                    let mut n = 0;
                    while let Ok(Some(args)) = p.next(&mut buf) {
                        n += args.len();
                    }
                    n
                })
            },
        );
    }
    let inline = b"PUBLISH news \"hello world\"\r\n".repeat(64);
    g.bench_function("inline_64", |b| {
        b.iter(|| {
            let mut p = RequestParser::new(512 << 20);
            let mut buf = BytesMut::from(&inline[..]);
            let mut n = 0;
            while let Ok(Some(args)) = p.next(&mut buf) {
                n += args.len();
            }
            n
        })
    });
    g.finish();
}

fn encoder(c: &mut Criterion) {
    let mut g = c.benchmark_group("encoder");
    let payload = vec![b'x'; 64];
    g.bench_function("message_resp2_and_resp3", |b| {
        b.iter(|| {
            let m = Message::new(Kind::Message, b"channel:42", &payload);
            (
                m.frame(Protocol::Resp2).len(),
                m.frame(Protocol::Resp3).len(),
            )
        })
    });
    let hello = Frame::Map(
        (0..7)
            .map(|i| (Frame::bulk(format!("key{i}")), Frame::Integer(i)))
            .collect(),
    );
    for proto in [Protocol::Resp2, Protocol::Resp3] {
        g.bench_function(format!("map7_{proto:?}"), |b| {
            let mut out = BytesMut::with_capacity(256);
            b.iter(|| {
                out.clear();
                hello.encode(proto, &mut out);
                out.len()
            })
        });
    }
    g.bench_function("integer_reply", |b| {
        let mut out = BytesMut::with_capacity(64);
        b.iter(|| {
            out.clear();
            Frame::Integer(1234).encode(Protocol::Resp2, &mut out);
            out.len()
        })
    });
    let _ = Bytes::new();
    g.finish();
}

fn glob(c: &mut Criterion) {
    let mut g = c.benchmark_group("glob");
    let cases: [(&str, &[u8], &[u8]); 4] = [
        ("literal_prefix_star", b"news.*", b"news.sports.football"),
        (
            "star_middle",
            b"logs:*:error",
            b"logs:payment-service:error",
        ),
        ("class_and_any", b"user:[0-9]?[a-f]*", b"user:42abc"),
        ("no_match", b"orders:*:created", b"invoices:2026:created"),
    ];
    for (name, pat, subject) in cases {
        let p = Pattern::new(pat);
        g.bench_function(name, |b| b.iter(|| p.matches(subject)));
    }
    g.bench_function("compile", |b| b.iter(|| Pattern::new(b"logs:*:[ew]rror?")));
    let hostile = Pattern::new(&b"a*".repeat(500));
    let subject = vec![b'a'; 2000];
    g.bench_function("hostile_500_stars", |b| {
        b.iter(|| hostile.matches(&subject))
    });
    g.finish();
}

criterion_group!(benches, parser, encoder, glob);
criterion_main!(benches);
