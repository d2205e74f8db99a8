//! runtime-mio end to end on loopback, with std sockets as clients: delivery,
//! partial writes to a reader that stops reading, and a clean stop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use natrium_engine::{Config, Server};
use natrium_runtime_mio::Runtime;

fn start() -> (
    std::net::SocketAddr,
    natrium_runtime_mio::Stopper,
    thread::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let rt = Runtime::new().unwrap();
    let stop = rt.stopper();
    let server = Server::new(Config::default(), 7);
    let h = thread::spawn(move || rt.serve(server, listener, None).unwrap());
    (addr, stop, h)
}

fn client(addr: std::net::SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut info = String::new();
    r.read_line(&mut info).unwrap();
    assert!(info.starts_with("INFO "), "{info}");
    (s, r)
}

fn line(r: &mut BufReader<TcpStream>) -> String {
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    l
}

/// A subscriber that does not read while 16 MiB is published to it gets
/// everything, in order, once it reads: the runtime holds what the socket
/// would not take and writes it as the socket drains.
#[test]
fn partial_writes_deliver_everything_in_order() {
    let (addr, stop, h) = start();
    let (mut sub, mut sr) = client(addr);
    sub.write_all(b"CONNECT {\"verbose\":false}\r\nSUB big 1\r\nPING\r\n")
        .unwrap();
    assert_eq!(line(&mut sr), "PONG\r\n");
    let (mut publ, mut pr) = client(addr);
    let payload = vec![b'x'; 16 * 1024];
    let n = 1024;
    let mut batch = Vec::new();
    for i in 0..n {
        batch.extend_from_slice(format!("PUB big {}\r\n", payload.len() + 8).as_bytes());
        batch.extend_from_slice(format!("{i:08}").as_bytes());
        batch.extend_from_slice(&payload);
        batch.extend_from_slice(b"\r\n");
    }
    publ.write_all(b"CONNECT {\"verbose\":false}\r\n").unwrap();
    publ.write_all(&batch).unwrap();
    publ.write_all(b"PING\r\n").unwrap();
    assert_eq!(line(&mut pr), "PONG\r\n");
    for i in 0..n {
        let hdr = line(&mut sr);
        assert_eq!(hdr, format!("MSG big 1 {}\r\n", payload.len() + 8));
        let mut body = vec![0u8; payload.len() + 10];
        sr.read_exact(&mut body).unwrap();
        assert_eq!(&body[..8], format!("{i:08}").as_bytes());
        assert_eq!(&body[body.len() - 2..], b"\r\n");
    }
    stop.stop();
    h.join().unwrap();
}

/// Stopping closes every client (they read end of stream) and `serve` returns.
#[test]
fn stop_closes_clients_and_returns() {
    let (addr, stop, h) = start();
    let (mut c, mut r) = client(addr);
    c.write_all(b"CONNECT {\"verbose\":false}\r\nSUB a 1\r\nPUB a 2\r\nhi\r\n")
        .unwrap();
    assert_eq!(line(&mut r), "MSG a 1 2\r\n");
    assert_eq!(line(&mut r), "hi\r\n");
    stop.stop();
    h.join().unwrap();
    let mut rest = Vec::new();
    let _ = r.read_to_end(&mut rest);
    assert!(!String::from_utf8_lossy(&rest).contains("MSG"), "{rest:?}");
}
