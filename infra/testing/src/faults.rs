//! A fault proxy for the links between regions, on Toxiproxy's model.
//!
//! A [`Link`] is a named TCP listener that forwards every connection to an
//! upstream address. A test switches its [`Faults`] on and off at any time;
//! a change applies at once to the connections already open and to new ones:
//!
//! - **latency** with **jitter**, per direction: each chunk read is
//!   delivered `latency ± jitter` later, never before the chunk read before
//!   it (TCP keeps order, so jitter cannot reorder bytes);
//! - **bandwidth**, per direction: bytes per second;
//! - **black hole**: the connection stays open and every byte is swallowed,
//!   with no reset (a half-open link). A connection that was open while the
//!   black hole was on stays swallowed for good, as a half-open TCP
//!   connection never recovers (bytes were lost, the stream cannot go on);
//!   new connections after it is lifted work. A connection made during it
//!   is accepted and never reaches the upstream;
//! - **reset**: open connections are reset (`SO_LINGER` 0, then close: an
//!   RST, as a crashed peer or a firewall sends), new ones are reset at once;
//! - **switching the upstream**: new connections go to the new address
//!   (two servers behind one address; a promoted replica).
//!
//! Silent partitions that heal without loss (packets dropped, TCP
//! retransmits) are not the proxy's: they are `iptables` rules in a region
//! ([`crate::netns`]).
//!
//! Everything runs on the test's tokio runtime; dropping a link closes its
//! listener and every connection through it.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Largest chunk read at once: small enough that bandwidth pacing is smooth.
const CHUNK: usize = 16 * 1024;
/// Chunks in flight per direction (delayed, not yet written) before the
/// proxy stops reading: backpressure, as a full network path gives.
const IN_FLIGHT: usize = 256;
/// Bound on connecting to the upstream.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The faults of one direction of a link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionFaults {
    pub latency: Duration,
    /// Each chunk's delay is `latency` plus a uniform offset in
    /// `[-jitter, +jitter]` (never below zero, never reordering).
    pub jitter: Duration,
    /// Bytes per second; `None` is unlimited.
    pub bandwidth: Option<u64>,
}

/// What a link does to its traffic. The default forwards faithfully.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// From the client (who connected to the link) to the upstream.
    pub to_upstream: DirectionFaults,
    /// From the upstream back to the client.
    pub to_client: DirectionFaults,
    pub black_hole: bool,
    pub reset: bool,
}

impl Faults {
    /// `latency ± jitter` each way: a round trip of twice that.
    pub fn latency(latency: Duration, jitter: Duration) -> Faults {
        let direction = DirectionFaults {
            latency,
            jitter,
            bandwidth: None,
        };
        Faults {
            to_upstream: direction,
            to_client: direction,
            ..Faults::default()
        }
    }
}

/// When chunks of one direction are due: `latency ± jitter` after they were
/// read, and never before the previous chunk (the pure part of the proxy).
#[derive(Debug, Default)]
pub struct Schedule {
    last_due: Option<Instant>,
}

impl Schedule {
    /// The delivery time of a chunk read at `now`; `unit` in `[-1, 1]` picks
    /// the jitter offset.
    pub fn due(&mut self, now: Instant, faults: &DirectionFaults, unit: f64) -> Instant {
        let delay =
            faults.latency.as_secs_f64() + faults.jitter.as_secs_f64() * unit.clamp(-1.0, 1.0);
        let due = now + Duration::from_secs_f64(delay.max(0.0));
        let due = self.last_due.map_or(due, |last| due.max(last));
        self.last_due = Some(due);
        due
    }
}

/// How long `bytes` take at `bandwidth` bytes per second.
pub fn transmit_time(bytes: usize, bandwidth: Option<u64>) -> Duration {
    match bandwidth {
        Some(rate) if rate > 0 => Duration::from_secs_f64(bytes as f64 / rate as f64),
        Some(_) => Duration::MAX,
        None => Duration::ZERO,
    }
}

/// Counters of a link, for a test to look at.
#[derive(Debug, Default)]
pub struct LinkStats {
    pub connections: AtomicU64,
    pub bytes_to_upstream: AtomicU64,
    pub bytes_to_client: AtomicU64,
}

struct Control {
    faults: watch::Sender<Faults>,
    upstream: Mutex<SocketAddr>,
    stats: LinkStats,
}

/// One named link: a listener forwarding to an upstream, with faults.
pub struct Link {
    name: String,
    address: SocketAddr,
    control: Arc<Control>,
    /// The accept loop; it owns every connection's task, so aborting it
    /// (on drop) closes them all.
    task: tokio::task::JoinHandle<()>,
}

impl Link {
    /// Listens on `listen` (port 0: any free port) and forwards to `upstream`.
    pub async fn start(name: &str, listen: SocketAddr, upstream: SocketAddr) -> io::Result<Link> {
        let listener = TcpListener::bind(listen).await?;
        let address = listener.local_addr()?;
        let (faults, _) = watch::channel(Faults::default());
        let control = Arc::new(Control {
            faults,
            upstream: Mutex::new(upstream),
            stats: LinkStats::default(),
        });
        let task = tokio::spawn(accept_loop(listener, control.clone()));
        Ok(Link {
            name: name.to_owned(),
            address,
            control,
            task,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where clients connect.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn upstream(&self) -> SocketAddr {
        *self
            .control
            .upstream
            .lock()
            .expect("the upstream lock is never poisoned")
    }

    pub fn faults(&self) -> Faults {
        *self.control.faults.borrow()
    }

    pub fn stats(&self) -> &LinkStats {
        &self.control.stats
    }

    /// Replaces every fault at once.
    pub fn set_faults(&self, faults: Faults) {
        self.control.faults.send_replace(faults);
    }

    /// Changes some faults, keeping the others.
    pub fn update(&self, change: impl FnOnce(&mut Faults)) {
        self.control.faults.send_modify(change);
    }

    pub fn set_latency(&self, latency: Duration, jitter: Duration) {
        self.update(|faults| {
            for direction in [&mut faults.to_upstream, &mut faults.to_client] {
                direction.latency = latency;
                direction.jitter = jitter;
            }
        });
    }

    /// Bytes per second in each direction; `None` lifts the limit.
    pub fn set_bandwidth(&self, bandwidth: Option<u64>) {
        self.update(|faults| {
            faults.to_upstream.bandwidth = bandwidth;
            faults.to_client.bandwidth = bandwidth;
        });
    }

    pub fn set_black_hole(&self, on: bool) {
        self.update(|faults| faults.black_hole = on);
    }

    pub fn set_reset(&self, on: bool) {
        self.update(|faults| faults.reset = on);
    }

    /// Back to faithful forwarding (connections swallowed by a black hole
    /// stay swallowed).
    pub fn heal(&self) {
        self.set_faults(Faults::default());
    }

    /// New connections go to `upstream`; open ones stay where they are.
    pub fn switch_upstream(&self, upstream: SocketAddr) {
        *self
            .control
            .upstream
            .lock()
            .expect("the upstream lock is never poisoned") = upstream;
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Links by name, so a scenario can say `proxy.link("replication")`.
#[derive(Default)]
pub struct FaultProxy {
    links: BTreeMap<String, Link>,
}

impl FaultProxy {
    pub fn new() -> FaultProxy {
        FaultProxy::default()
    }

    /// Starts a link; panics if the name is taken or the address cannot be bound.
    pub async fn add(&mut self, name: &str, listen: SocketAddr, upstream: SocketAddr) -> &Link {
        assert!(!self.links.contains_key(name), "link {name} exists already");
        let link = Link::start(name, listen, upstream)
            .await
            .unwrap_or_else(|error| panic!("link {name}: binding {listen}: {error}"));
        self.links.entry(name.to_owned()).or_insert(link)
    }

    pub fn link(&self, name: &str) -> &Link {
        self.links
            .get(name)
            .unwrap_or_else(|| panic!("no link named {name}"))
    }

    /// Every link back to faithful forwarding.
    pub fn heal_all(&self) {
        for link in self.links.values() {
            link.heal();
        }
    }
}

async fn accept_loop(listener: TcpListener, control: Arc<Control>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => {
                    control.stats.connections.fetch_add(1, Ordering::Relaxed);
                    connections.spawn(serve_connection(client, control.clone()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// How a connection through the link ended.
enum Ending {
    /// Both directions finished (EOF each way): close normally.
    Closed,
    /// A side failed, or the reset fault: reset both sides.
    Reset,
}

async fn serve_connection(client: TcpStream, control: Arc<Control>) {
    let _ = client.set_nodelay(true);
    let mut faults = control.faults.subscribe();
    let current = *faults.borrow_and_update();
    if current.reset {
        reset(&client);
        return;
    }
    if current.black_hole {
        swallow_forever(client, faults).await;
        return;
    }
    let upstream = *control
        .upstream
        .lock()
        .expect("the upstream lock is never poisoned");
    let upstream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream)).await {
        Ok(Ok(upstream)) => upstream,
        // Refused or unreachable upstream: the client sees a reset, as it
        // would from the real server's host.
        _ => {
            reset(&client);
            return;
        }
    };
    let _ = upstream.set_nodelay(true);
    let (mut client, mut upstream) = (client, upstream);
    let swallowed = AtomicBool::new(false);
    let ending = {
        let (client_read, client_write) = client.split();
        let (upstream_read, upstream_write) = upstream.split();
        let to_upstream = pump(
            client_read,
            upstream_write,
            |faults: &Faults| faults.to_upstream,
            faults.clone(),
            &swallowed,
            &control.stats.bytes_to_upstream,
        );
        let to_client = pump(
            upstream_read,
            client_write,
            |faults: &Faults| faults.to_client,
            faults.clone(),
            &swallowed,
            &control.stats.bytes_to_client,
        );
        let watch_faults = async {
            loop {
                if faults.changed().await.is_err() {
                    // The link is gone: its task is being aborted anyway.
                    return std::future::pending::<()>().await;
                }
                let current = *faults.borrow_and_update();
                if current.black_hole {
                    swallowed.store(true, Ordering::Relaxed);
                }
                if current.reset {
                    return;
                }
            }
        };
        tokio::select! {
            finished = async { tokio::try_join!(to_upstream, to_client) } => match finished {
                Ok(_) => Ending::Closed,
                Err(_) => Ending::Reset,
            },
            _ = watch_faults => Ending::Reset,
        }
    };
    if let Ending::Reset = ending {
        reset(&client);
        reset(&upstream);
    }
}

/// Copies one direction, applying its faults chunk by chunk. Reading and
/// writing run side by side, so delayed chunks do not stop later ones from
/// being read (latency is not bandwidth).
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    direction: impl Fn(&Faults) -> DirectionFaults,
    faults: watch::Receiver<Faults>,
    swallowed: &AtomicBool,
    bytes: &AtomicU64,
) -> io::Result<()> {
    let (chunks, mut due_chunks) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let read = async {
        // Owned here, so that EOF (the end of this block) ends the writer.
        let chunks = chunks;
        let mut schedule = Schedule::default();
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let n = from.read(&mut buffer).await?;
            if n == 0 {
                return Ok::<_, io::Error>(()); // EOF: dropping `chunks` ends the writer
            }
            let current = *faults.borrow();
            if current.black_hole {
                swallowed.store(true, Ordering::Relaxed);
            }
            if swallowed.load(Ordering::Relaxed) {
                continue;
            }
            let unit = rand::thread_rng().gen_range(-1.0..=1.0);
            let due = schedule.due(Instant::now(), &direction(&current), unit);
            if chunks.send((due, buffer[..n].to_vec())).await.is_err() {
                return Ok(());
            }
        }
    };
    let write = async {
        while let Some((due, chunk)) = due_chunks.recv().await {
            tokio::time::sleep_until(due).await;
            if swallowed.load(Ordering::Relaxed) {
                continue;
            }
            to.write_all(&chunk).await?;
            bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            let pace = transmit_time(chunk.len(), direction(&faults.borrow()).bandwidth);
            if !pace.is_zero() {
                tokio::time::sleep(pace).await;
            }
        }
        if swallowed.load(Ordering::Relaxed) {
            // A half-open link never delivers the close either.
            return std::future::pending().await;
        }
        to.shutdown().await
    };
    tokio::try_join!(read, write).map(drop)
}

/// A connection made while the black hole is on: accepted, never forwarded,
/// never closed by the proxy (only a reset fault ends it).
async fn swallow_forever(mut client: TcpStream, mut faults: watch::Receiver<Faults>) {
    let mut buffer = vec![0u8; CHUNK];
    loop {
        tokio::select! {
            read = client.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            changed = faults.changed() => {
                if changed.is_err() {
                    return;
                }
                if faults.borrow_and_update().reset {
                    reset(&client);
                    return;
                }
            }
        }
    }
}

/// Makes the coming close an RST (`SO_LINGER` 0); the caller then drops it.
fn reset(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direction(latency_ms: u64, jitter_ms: u64) -> DirectionFaults {
        DirectionFaults {
            latency: Duration::from_millis(latency_ms),
            jitter: Duration::from_millis(jitter_ms),
            bandwidth: None,
        }
    }

    #[test]
    fn a_chunk_is_due_latency_plus_jitter_after_it_was_read() {
        let start = Instant::now();
        let faults = direction(50, 10);
        assert_eq!(
            Schedule::default().due(start, &faults, 0.0),
            start + Duration::from_millis(50)
        );
        assert_eq!(
            Schedule::default().due(start, &faults, 1.0),
            start + Duration::from_millis(60)
        );
        assert_eq!(
            Schedule::default().due(start, &faults, -1.0),
            start + Duration::from_millis(40)
        );
    }

    #[test]
    fn jitter_never_reorders_chunks() {
        let start = Instant::now();
        let faults = direction(50, 40);
        let mut schedule = Schedule::default();
        let first = schedule.due(start, &faults, 1.0); // 90 ms
        let second = schedule.due(start + Duration::from_millis(1), &faults, -1.0); // would be 11 ms
        assert_eq!(second, first);
    }

    #[test]
    fn jitter_larger_than_latency_never_delivers_before_reading() {
        let start = Instant::now();
        let due = Schedule::default().due(start, &direction(5, 50), -1.0);
        assert_eq!(due, start);
    }

    #[test]
    fn transmit_time_follows_the_bandwidth() {
        assert_eq!(transmit_time(1_000, None), Duration::ZERO);
        assert_eq!(
            transmit_time(1_000, Some(10_000)),
            Duration::from_millis(100)
        );
        assert_eq!(transmit_time(1, Some(0)), Duration::MAX);
    }

    #[test]
    fn latency_faults_apply_to_both_directions() {
        let faults = Faults::latency(Duration::from_millis(50), Duration::from_millis(5));
        assert_eq!(faults.to_upstream, faults.to_client);
        assert!(!faults.black_hole && !faults.reset);
    }

    // --- each fault once, against real sockets -------------------------

    /// An echo server on loopback: what it reads, it writes back.
    async fn echo_server() -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut read, mut write) = stream.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        (address, task)
    }

    /// A server that answers every connection with `greeting` and closes.
    async fn greeting_server(greeting: &'static [u8]) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let _ = stream.write_all(greeting).await;
            }
        });
        (address, task)
    }

    async fn link_to(upstream: SocketAddr) -> Link {
        Link::start("test", "127.0.0.1:0".parse().unwrap(), upstream)
            .await
            .unwrap()
    }

    async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> io::Result<Vec<u8>> {
        stream.write_all(message).await?;
        let mut answer = vec![0u8; message.len()];
        stream.read_exact(&mut answer).await?;
        Ok(answer)
    }

    #[tokio::test]
    async fn a_healthy_link_forwards_both_ways() {
        let (echo, _server) = echo_server().await;
        let link = link_to(echo).await;
        let mut stream = TcpStream::connect(link.address()).await.unwrap();
        assert_eq!(round_trip(&mut stream, b"hello").await.unwrap(), b"hello");
    }

    #[tokio::test]
    async fn a_close_travels_through_the_link() {
        let (echo, _server) = echo_server().await;
        let link = link_to(echo).await;
        let mut stream = TcpStream::connect(link.address()).await.unwrap();
        stream.write_all(b"last words").await.unwrap();
        stream.shutdown().await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut answer))
            .await
            .expect("the echo server's close arrives")
            .unwrap();
        assert_eq!(answer, b"last words");
    }

    #[tokio::test]
    async fn latency_delays_each_direction_also_on_an_open_connection() {
        let (echo, _server) = echo_server().await;
        let link = link_to(echo).await;
        let mut stream = TcpStream::connect(link.address()).await.unwrap();
        round_trip(&mut stream, b"warm").await.unwrap();
        link.set_latency(Duration::from_millis(100), Duration::from_millis(10));
        let started = std::time::Instant::now();
        round_trip(&mut stream, b"ping").await.unwrap();
        let rtt = started.elapsed();
        assert!(
            rtt >= Duration::from_millis(180),
            "round trip {rtt:?}, expected ≥ 2 × (100 − 10) ms"
        );
        assert!(rtt < Duration::from_millis(1_000), "round trip {rtt:?}");
        link.heal();
        let started = std::time::Instant::now();
        round_trip(&mut stream, b"pong").await.unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "healed: {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn bandwidth_limits_bytes_per_second() {
        let (echo, _server) = echo_server().await;
        let link = link_to(echo).await;
        link.update(|faults| faults.to_client.bandwidth = Some(200_000));
        let mut stream = TcpStream::connect(link.address()).await.unwrap();
        let payload = vec![7u8; 100_000];
        let started = std::time::Instant::now();
        assert_eq!(round_trip(&mut stream, &payload).await.unwrap(), payload);
        let took = started.elapsed();
        // 100 kB at 200 kB/s: half a second (the last chunk's pause is not
        // waited for by the reader, so allow one chunk less).
        assert!(took >= Duration::from_millis(400), "took {took:?}");
    }

    #[tokio::test]
    async fn a_black_hole_swallows_bytes_without_closing() {
        let (echo, _server) = echo_server().await;
        let link = link_to(echo).await;
        let mut open = TcpStream::connect(link.address()).await.unwrap();
        round_trip(&mut open, b"before").await.unwrap();
        link.set_black_hole(true);
        let mut during = TcpStream::connect(link.address()).await.unwrap();
        for stream in [&mut open, &mut during] {
            stream
                .write_all(b"lost")
                .await
                .expect("writes still succeed");
            let mut buffer = [0u8; 16];
            let read =
                tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buffer)).await;
            assert!(
                read.is_err(),
                "nothing comes back, not even a close: {read:?}"
            );
        }
        link.set_black_hole(false);
        let mut after = TcpStream::connect(link.address()).await.unwrap();
        assert_eq!(round_trip(&mut after, b"after").await.unwrap(), b"after");
        // The connection that lost bytes stays half-open.
        let mut buffer = [0u8; 16];
        open.write_all(b"again").await.unwrap();
        let read = tokio::time::timeout(Duration::from_millis(300), open.read(&mut buffer)).await;
        assert!(
            read.is_err(),
            "a swallowed connection stays swallowed: {read:?}"
        );
    }

    #[tokio::test]
    async fn reset_resets_open_and_new_connections() {
        let (echo, _server) = echo_server().await;
        let link = link_to(echo).await;
        let mut open = TcpStream::connect(link.address()).await.unwrap();
        round_trip(&mut open, b"before").await.unwrap();
        link.set_reset(true);
        let mut buffer = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(2), open.read(&mut buffer))
            .await
            .expect("the reset arrives at once");
        assert_eq!(
            read.map_err(|e| e.kind()).err(),
            Some(io::ErrorKind::ConnectionReset)
        );
        let mut new = TcpStream::connect(link.address()).await.unwrap();
        let read = tokio::time::timeout(Duration::from_secs(2), new.read(&mut buffer))
            .await
            .expect("the reset arrives at once");
        assert_eq!(
            read.map_err(|e| e.kind()).err(),
            Some(io::ErrorKind::ConnectionReset)
        );
        link.set_reset(false);
        let mut after = TcpStream::connect(link.address()).await.unwrap();
        assert_eq!(round_trip(&mut after, b"after").await.unwrap(), b"after");
    }

    #[tokio::test]
    async fn switching_the_upstream_sends_new_connections_elsewhere() {
        let (first, _a) = greeting_server(b"first").await;
        let (second, _b) = greeting_server(b"second").await;
        let link = link_to(first).await;
        let greeting = |address| async move {
            let mut stream = TcpStream::connect(address).await.unwrap();
            let mut text = Vec::new();
            stream.read_to_end(&mut text).await.unwrap();
            text
        };
        assert_eq!(greeting(link.address()).await, b"first");
        link.switch_upstream(second);
        assert_eq!(greeting(link.address()).await, b"second");
        assert_eq!(link.upstream(), second);
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_a_reset() {
        let unused = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let link = link_to(unused).await;
        let mut stream = TcpStream::connect(link.address()).await.unwrap();
        let mut buffer = [0u8; 4];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("answered at once");
        assert_eq!(
            read.map_err(|e| e.kind()).err(),
            Some(io::ErrorKind::ConnectionReset)
        );
    }
}
