//! Parser throughput on mixed client traffic, parsed the way the engine does:
//! `parse` on the unread tail of the buffer, advancing by the bytes each op used.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use natrium_engine::proto::{parse, Limits, Parsed};

fn mixed_traffic() -> Vec<u8> {
    let mut buf = Vec::new();
    buf.extend_from_slice(
        b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"protocol\":1}\r\n",
    );
    for i in 0..2_000usize {
        match i % 10 {
            0 => buf.extend_from_slice(
                format!("SUB orders.{}.* q{} {}\r\n", i % 50, i % 3, i).as_bytes(),
            ),
            1 => buf.extend_from_slice(format!("UNSUB {} 5\r\n", i).as_bytes()),
            2 => buf.extend_from_slice(b"PING\r\n"),
            3 => buf.extend_from_slice(b"PONG\r\n"),
            4 => {
                let hdr = b"NATS/1.0\r\nNats-Msg-Id: abc\r\n\r\n";
                let body = vec![b'h'; 64];
                buf.extend_from_slice(
                    format!(
                        "HPUB events.{} {} {}\r\n",
                        i,
                        hdr.len(),
                        hdr.len() + body.len()
                    )
                    .as_bytes(),
                );
                buf.extend_from_slice(hdr);
                buf.extend_from_slice(&body);
                buf.extend_from_slice(b"\r\n");
            }
            k => {
                let size = [16usize, 128, 1024, 16, 128][k - 5];
                let reply = if k == 6 { " _INBOX.abc.1" } else { "" };
                buf.extend_from_slice(
                    format!("PUB metrics.host{}.cpu{} {}\r\n", i % 97, reply, size).as_bytes(),
                );
                buf.extend(std::iter::repeat_n(b'x', size));
                buf.extend_from_slice(b"\r\n");
            }
        }
    }
    buf
}

fn bench(c: &mut Criterion) {
    let buf = mixed_traffic();
    let limits = Limits {
        max_control_line: 4096,
        max_payload: 1024 * 1024,
        headers: true,
    };
    let mut g = c.benchmark_group("parser");
    g.throughput(Throughput::Bytes(buf.len() as u64));
    g.bench_function("mixed traffic", |b| {
        b.iter(|| {
            let mut pos = 0;
            let mut ops = 0usize;
            while pos < buf.len() {
                match parse(&buf[pos..], &limits) {
                    Ok(Parsed::Op(op, used)) => {
                        std::hint::black_box(&op);
                        pos += used;
                        ops += 1;
                    }
                    other => panic!("unexpected {other:?} at {pos}"),
                }
            }
            ops
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
