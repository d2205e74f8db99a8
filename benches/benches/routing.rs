//! Routing and MSG framing through the engine's public API: a publisher and
//! subscribers on a `Server`, driven with `handle_read` / `poll_output` like a
//! runtime would, with every `Transmit` reported written at once.

use std::net::SocketAddr;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use natrium_engine::{Config, ConnId, Instant, Output, Server};

struct Fixture {
    server: Server,
    publisher: ConnId,
    now: Instant,
}

impl Fixture {
    fn new(subscribers: usize) -> Fixture {
        let mut server = Server::new(Config::default(), 1);
        let now = Instant(1_000_000_000);
        server.set_wall_clock(now, 1_700_000_000_000_000_000);
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mut f = Fixture {
            publisher: ConnId(0),
            server,
            now,
        };
        for _ in 0..subscribers {
            let c = f.server.handle_accept(now, peer);
            f.server.handle_read(
                now,
                c,
                b"CONNECT {\"verbose\":false}\r\nSUB bench.subject 1\r\n",
            );
        }
        f.publisher = f.server.handle_accept(now, peer);
        f.server
            .handle_read(now, f.publisher, b"CONNECT {\"verbose\":false}\r\n");
        f.drain();
        f
    }

    /// Carry out every output; the bytes transmitted.
    fn drain(&mut self) -> usize {
        let mut bytes = 0;
        while let Some(o) = self.server.poll_output() {
            match o {
                Output::Transmit { conn, data } => {
                    bytes += data.len();
                    self.server.handle_written(self.now, conn, data.len());
                }
                Output::Close { conn, reason } => panic!("{conn:?} closed: {reason:?}"),
                _ => {}
            }
        }
        bytes
    }
}

fn bench(c: &mut Criterion) {
    const BATCH: usize = 100;
    let mut g = c.benchmark_group("routing");
    for subs in [1usize, 4, 16] {
        for size in [16usize, 128, 1024] {
            let mut f = Fixture::new(subs);
            let mut input = Vec::new();
            for _ in 0..BATCH {
                input.extend_from_slice(format!("PUB bench.subject {size}\r\n").as_bytes());
                input.extend(std::iter::repeat_n(b'x', size));
                input.extend_from_slice(b"\r\n");
            }
            f.server.handle_read(f.now, f.publisher, &input);
            assert!(f.drain() > BATCH * subs * size, "messages must be routed");
            g.throughput(Throughput::Elements((BATCH * subs) as u64));
            g.bench_with_input(
                BenchmarkId::new(format!("1:{subs} MSG frames"), format!("{size} B")),
                &input,
                |b, input| {
                    b.iter(|| {
                        f.server.handle_read(f.now, f.publisher, input);
                        f.drain()
                    })
                },
            );
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
