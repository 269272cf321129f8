//! The client protocol parser (PUB and HPUB, 16 B to 64 KiB, whole and split
//! across reads) and the encoder of what the server sends (MSG and HMSG).
//!
//! Run: `cargo bench -p natrix-bench --bench protocol`.

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use natrix_core::protocol::encode::{write_hmsg, write_msg};
use natrix_core::protocol::parser::{Parser, ParserLimits};

/// Payload sizes.
const SIZES: [usize; 5] = [16, 128, 1024, 16 * 1024, 64 * 1024];

/// Bytes of input per iteration: a socket read's worth of ops.
const INPUT_BYTES: usize = 256 * 1024;

/// A header block like a JetStream publish carries.
const HEADERS: &[u8] = b"NATS/1.0\r\nNats-Msg-Id: 0123456789abcdef\r\n\r\n";

/// `count` PUBs (or HPUBs) of `size` bytes back to back.
fn input(size: usize, headers: bool) -> (Bytes, u64) {
    let payload = vec![b'x'; size];
    let mut buf = Vec::with_capacity(INPUT_BYTES + size + 128);
    let mut count = 0;
    while buf.len() < INPUT_BYTES || count == 0 {
        if headers {
            let total = HEADERS.len() + size;
            buf.extend_from_slice(
                format!(
                    "HPUB orders.eu.created _INBOX.abc.1 {} {total}\r\n",
                    HEADERS.len()
                )
                .as_bytes(),
            );
            buf.extend_from_slice(HEADERS);
        } else {
            buf.extend_from_slice(format!("PUB orders.eu.created {size}\r\n").as_bytes());
        }
        buf.extend_from_slice(&payload);
        buf.extend_from_slice(b"\r\n");
        count += 1;
    }
    (Bytes::from(buf), count)
}

/// Feeds `input` in reads of `chunk` bytes and counts the ops.
fn parse_all(parser: &mut Parser, input: &Bytes, chunk: usize) -> u64 {
    let mut ops = 0;
    let mut off = 0;
    while off < input.len() {
        let end = (off + chunk).min(input.len());
        let mut piece = input.slice(off..end);
        while let Some(op) = parser.next_op(&mut piece).expect("valid input") {
            black_box(op);
            ops += 1;
        }
        off = end;
    }
    ops
}

fn parser(c: &mut Criterion) {
    let limits = ParserLimits {
        max_control_line_bytes: 4096,
        max_payload_bytes: 1024 * 1024,
    };
    for (group, headers) in [("parser/pub", false), ("parser/hpub", true)] {
        let mut g = c.benchmark_group(group);
        for size in SIZES {
            let (buf, count) = input(size, headers);
            g.throughput(Throughput::Elements(count));
            let mut p = Parser::new(limits);
            g.bench_function(BenchmarkId::new("whole", size), |b| {
                b.iter(|| assert_eq!(parse_all(&mut p, &buf, buf.len()), count))
            });
            // 1460 bytes, a TCP segment: ops straddle reads, which forces
            // the parser to hold partial lines and payloads.
            g.bench_function(BenchmarkId::new("split_1460", size), |b| {
                b.iter(|| assert_eq!(parse_all(&mut p, &buf, 1460), count))
            });
        }
        g.finish();
    }
}

fn encoder(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    for size in SIZES {
        let payload = vec![b'x'; size];
        let mut out = BytesMut::with_capacity(INPUT_BYTES + 2 * size);
        g.bench_function(BenchmarkId::new("msg", size), |b| {
            b.iter(|| {
                if out.len() > INPUT_BYTES {
                    out.clear();
                }
                write_msg(
                    &mut out,
                    b"orders.eu.created",
                    b"17",
                    None,
                    black_box(&payload),
                );
            })
        });
        g.bench_function(BenchmarkId::new("hmsg_reply", size), |b| {
            b.iter(|| {
                if out.len() > INPUT_BYTES {
                    out.clear();
                }
                write_hmsg(
                    &mut out,
                    b"orders.eu.created",
                    b"17",
                    Some(b"_INBOX.abc.1"),
                    HEADERS,
                    black_box(&payload),
                );
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    // Short runs: the benches share two cores with builds.
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = parser, encoder }
criterion_main!(benches);
