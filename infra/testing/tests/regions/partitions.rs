//! Silent partitions (packets dropped, no reset) while writes continue.
//!
//! - The remote region cut off from the primary: its replica keeps
//!   answering, so the edge on it hears a healthy but stale stream; it must
//!   notice through the writer's heartbeat. The edge tailing the primary
//!   across the same cut notices through stream silence.
//! - One edge cut off from its replica for 30 s: it keeps answering from its
//!   last state, reports staleness, goes unready within the bound, and
//!   catches up after the heal without a restart and without skipping.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use adcast_shared::protocol::{headers, routes};
use http::StatusCode;

use crate::world::{v4, Edge, Options, World, READY_MAX_LAG, REDIS_PORT};
use crate::{invariants, within, WriteLoad};

const WRITE_EVERY: Duration = Duration::from_millis(200);

/// What one edge showed during a partition.
#[derive(Debug, Default)]
struct Observed {
    /// Time from the cut to the first `/readyz` 503.
    unready_after: Option<Duration>,
    unready_reason: String,
    /// Highest `Adcast-Seq` answered while cut off.
    seq_while_cut: u64,
    /// Every public answer while cut off was a 200.
    answers: usize,
    /// Largest `Adcast-Staleness-Ms` seen on an answer.
    staleness_header: Option<u64>,
}

/// One look at an edge while it is cut off.
async fn observe(edge: &Edge, cut_at: Instant, observed: &mut Observed) {
    let answer = edge
        .get(&format!("{}?limit=5", routes::ADS))
        .await
        .unwrap_or_else(|error| panic!("{} stopped answering: {error}", edge.service.name));
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{} answers from its last state",
        edge.service.name
    );
    observed.answers += 1;
    observed.seq_while_cut = observed.seq_while_cut.max(answer.seq());
    if let Some(ms) = answer
        .header(headers::ADCAST_STALENESS_MS)
        .and_then(|v| v.parse().ok())
    {
        observed.staleness_header = observed.staleness_header.max(Some(ms));
    }
    if observed.unready_after.is_none() {
        let ready = edge.get("/readyz").await.expect("the edge answers /readyz");
        if ready.status == StatusCode::SERVICE_UNAVAILABLE {
            observed.unready_after = Some(cut_at.elapsed());
            observed.unready_reason = ready.json()["error"]["message"]
                .as_str()
                .unwrap_or("")
                .to_owned();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root and network namespaces: run infra/regions.sh"]
async fn a_replica_cut_off_from_its_primary_is_noticed_through_the_heartbeat() {
    within("replica cut off from the primary", Duration::from_secs(120), async {
        let world = World::start(Options::default()).await;
        let load = WriteLoad::start(world.admin.clone(), "replica-cut", WRITE_EVERY);
        tokio::time::sleep(Duration::from_secs(2)).await;
        world.wait_all_at(load.last_seq(), Duration::from_secs(20)).await;

        // Everything from the remote region to the primary's region: the
        // replica's link and the far edge's.
        let cut_at = Instant::now();
        let cuts = [
            world.remote.cut(v4(world.link("replication").address())),
            world.remote.cut(v4(world.link("primary-for-remote").address())),
        ];
        let (mut local, mut far) = (Observed::default(), Observed::default());
        while (local.unready_after.is_none() || far.unready_after.is_none() || cut_at.elapsed() < READY_MAX_LAG + Duration::from_secs(2))
            && cut_at.elapsed() < Duration::from_secs(15)
        {
            observe(world.edge("local"), cut_at, &mut local).await;
            observe(world.edge("far"), cut_at, &mut far).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let written = load.last_seq();
        let local_edge = world.edge("local");
        let silence = local_edge.gauge("adcast_edge_stream_silence_seconds").await.expect("a silence gauge");
        let staleness = local_edge.gauge("adcast_edge_staleness_seconds").await.expect("a staleness gauge");
        let cut_for = cut_at.elapsed();
        drop(cuts);
        let healed_at = Instant::now();

        println!("replica cut off from the primary for {:.1} s while writes continued (to change {written}):", cut_for.as_secs_f64());
        for (name, observed) in [("edge on the replica", &local), ("edge tailing the primary", &far)] {
            println!(
                "  {name}: /readyz 503 after {:.2} s ({}); {} answers, all 200, served up to change {}; Adcast-Staleness-Ms up to {}",
                observed.unready_after.map_or(f64::NAN, |d| d.as_secs_f64()),
                observed.unready_reason,
                observed.answers,
                observed.seq_while_cut,
                observed.staleness_header.map_or("none".to_owned(), |ms| ms.to_string()),
            );
        }
        println!("  edge on the replica at the end of the cut: stream silence {silence:.1} s (the replica answers), staleness {staleness:.1} s");

        let bound = READY_MAX_LAG + Duration::from_secs(1);
        let noticed = local.unready_after.expect("the edge on the replica must notice through the heartbeat");
        assert!(noticed <= bound, "the edge on the replica noticed after {noticed:?}, bound {bound:?}");
        assert!(local.unready_reason.contains("heartbeat"), "noticed through the heartbeat: {}", local.unready_reason);
        assert!(silence < READY_MAX_LAG.as_secs_f64(), "the replica kept answering the tailer (silence {silence} s)");
        assert!(staleness > READY_MAX_LAG.as_secs_f64(), "staleness {staleness} s");
        assert!(local.staleness_header.is_some_and(|ms| ms > READY_MAX_LAG.as_millis() as u64), "answers carry Adcast-Staleness-Ms");
        assert!(local.seq_while_cut < written, "the replica really was cut off (it served {} of {written})", local.seq_while_cut);
        let far_noticed = far.unready_after.expect("the far edge must notice the silent stream");
        assert!(far_noticed <= bound + Duration::from_millis(500), "the far edge noticed after {far_noticed:?}");

        // The heal: both catch up, without a restart.
        let target = load.last_seq();
        for name in ["local", "far"] {
            let edge = world.edge(name);
            crate::world::wait_until(&format!("{name} catches up after the heal"), Duration::from_secs(45), || async {
                edge.seq().await.is_some_and(|seq| seq >= target) && edge.ready().await
            })
            .await;
            println!("  {name}: current and ready again {:.2} s after the heal", healed_at.elapsed().as_secs_f64());
        }
        let (_, failures) = load.stop();
        assert!(failures.is_empty(), "writes failed: {failures:?}");
        world.wait_all_at(world.committed().await, Duration::from_secs(20)).await;
        invariants::check(&world).await;
    })
    .await;
}

const EDGE_CUT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root and network namespaces: run infra/regions.sh"]
async fn an_edge_cut_off_from_its_replica_for_30_s_keeps_answering_and_catches_up() {
    within("edge cut off from its replica", Duration::from_secs(150), async {
        let mut world = World::start(Options::default()).await;
        let load = WriteLoad::start(world.admin.clone(), "edge-cut", WRITE_EVERY);
        tokio::time::sleep(Duration::from_secs(2)).await;
        world.wait_all_at(load.last_seq(), Duration::from_secs(20)).await;
        let pid = world.edges.get_mut("local").unwrap().service.pid();

        let cut_at = Instant::now();
        let cut = world.remote.cut(v4(SocketAddr::from(([127, 0, 0, 1], REDIS_PORT))));
        let mut observed = Observed::default();
        let mut seq_after_a_second = None;
        while cut_at.elapsed() < EDGE_CUT {
            observe(world.edge("local"), cut_at, &mut observed).await;
            if cut_at.elapsed() > Duration::from_secs(1) && seq_after_a_second.is_none() {
                seq_after_a_second = Some(observed.seq_while_cut);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let written = load.last_seq();
        let edge = world.edge("local");
        let staleness = edge.gauge("adcast_edge_staleness_seconds").await.expect("a staleness gauge");
        let lag_events = edge.gauge("adcast_edge_lag_events").await.expect("a lag gauge");
        let far_seq = world.edge("far").seq().await.expect("the far edge answers");
        drop(cut);
        let healed_at = Instant::now();

        println!("edge cut off from its replica for {} s while writes continued (to change {written}):", EDGE_CUT.as_secs());
        println!(
            "  /readyz 503 after {:.2} s ({}); {} answers, all 200, Adcast-Seq stayed at {} (the far edge meanwhile at {far_seq})",
            observed.unready_after.map_or(f64::NAN, |d| d.as_secs_f64()),
            observed.unready_reason,
            observed.answers,
            observed.seq_while_cut,
        );
        println!(
            "  at the end: {} changes behind (Adcast-Seq {} vs the writer's {written}); staleness gauge {staleness:.1} s, Adcast-Staleness-Ms {}; lag gauge {lag_events} events (it counts only what the edge could see)",
            written - observed.seq_while_cut,
            observed.seq_while_cut,
            observed.staleness_header.map_or("none".to_owned(), |ms| ms.to_string())
        );
        let unready = observed.unready_after.expect("the cut-off edge goes unready");
        assert!(unready <= READY_MAX_LAG + Duration::from_secs(1), "unready after {unready:?}");
        assert_eq!(Some(observed.seq_while_cut), seq_after_a_second, "nothing reaches a cut-off edge");
        assert!(observed.seq_while_cut < written, "writes continued past what the edge serves");
        assert!(staleness >= (EDGE_CUT - Duration::from_secs(3)).as_secs_f64(), "staleness {staleness} s after a {EDGE_CUT:?} cut");
        assert!(
            observed.staleness_header.is_some_and(|ms| ms >= (EDGE_CUT - Duration::from_secs(3)).as_millis() as u64),
            "answers say how stale they are"
        );

        let target = load.last_seq();
        let edge = world.edge("local");
        let caught_up = crate::world::wait_until("the edge catches up after the heal", Duration::from_secs(45), || async {
            edge.seq().await.is_some_and(|seq| seq >= target)
        })
        .await;
        crate::world::wait_until("the edge is ready again", Duration::from_secs(20), || edge.ready()).await;
        let resyncs = edge.gauge("adcast_edge_resyncs_total").await.unwrap_or(-1.0);
        println!(
            "  after the heal: caught up with change {target} in {:.2} s, ready again after {:.2} s, without a restart ({resyncs} snapshot resyncs: it continued from the stream)",
            caught_up.as_secs_f64(),
            healed_at.elapsed().as_secs_f64()
        );
        let service = &mut world.edges.get_mut("local").unwrap().service;
        assert!(service.is_running() && service.pid() == pid, "the same process caught up");
        let (_, failures) = load.stop();
        assert!(failures.is_empty(), "writes failed: {failures:?}");
        world.wait_all_at(world.committed().await, Duration::from_secs(20)).await;
        invariants::check(&world).await;
    })
    .await;
}
