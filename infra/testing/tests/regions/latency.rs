//! 100 ms round trips (with jitter) between regions: how long a write takes
//! to be served in the far region, by an edge on the region's replica and by
//! one tailing the primary across the link.

use std::time::{Duration, Instant};

use adcast_shared::protocol::{headers, routes};
use http::StatusCode;

use crate::clients::get;
use crate::world::{Options, World};
use crate::{invariants, ms, percentile, within};

/// One way; the round trip is twice this.
const ONE_WAY: Duration = Duration::from_millis(50);
const JITTER: Duration = Duration::from_millis(10);
const WRITES: usize = 120;
const WRITE_EVERY: Duration = Duration::from_millis(100);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root and network namespaces: run infra/regions.sh"]
async fn writes_reach_the_far_region_within_a_round_trip_or_two() {
    within("latency", Duration::from_secs(120), async {
        let world = World::start(Options::default()).await;
        for link in ["replication", "primary-for-remote", "writer-for-remote"] {
            world.link(link).set_latency(ONE_WAY, JITTER);
        }
        // The delay applies at once to the connections already open (the
        // replica's link, the far edge's tailer).
        let mut tasks = Vec::new();
        for i in 0..WRITES {
            let admin = world.admin.clone();
            let local = world.edge("local").address();
            let far = world.edge("far").address();
            tasks.push(tokio::spawn(async move {
                let written = Instant::now();
                let (acked, _) = admin
                    .create(&invariants::ad("latency", i, 0), None)
                    .await
                    .expect("the write is acknowledged");
                let ack = written.elapsed();
                let seq = acked.seq.to_string();
                let served = |edge| {
                    let seq = seq.clone();
                    async move {
                        let path = format!("{}?limit=1", routes::ADS);
                        let response = get(edge, &path, &[(headers::ADCAST_MIN_SEQ, seq.as_str())])
                            .await
                            .expect("the edge answers");
                        assert_eq!(response.status, StatusCode::OK, "change {seq} not served within the wait");
                        written.elapsed()
                    }
                };
                let (local, far) = tokio::join!(served(local), served(far));
                (ack, local, far)
            }));
            tokio::time::sleep(WRITE_EVERY).await;
        }
        let (mut acks, mut local, mut far) = (Vec::new(), Vec::new(), Vec::new());
        for task in tasks {
            let (a, l, f) = task.await.expect("a measuring task");
            acks.push(a);
            local.push(l);
            far.push(f);
        }
        println!(
            "latency: {WRITES} writes at {}/s, {} ± {} each way between regions (round trip {} ± {}):",
            1000 / WRITE_EVERY.as_millis(),
            ms(ONE_WAY),
            ms(JITTER),
            ms(ONE_WAY * 2),
            ms(JITTER * 2)
        );
        for (name, values) in [
            ("acknowledged by the writer (same region)", &acks),
            ("served by the edge on the local replica", &local),
            ("served by the edge tailing the primary across the link", &far),
        ] {
            println!(
                "  write sent → {name}: p50 {}, p99 {}, max {}",
                ms(percentile(values, 50.0)),
                ms(percentile(values, 99.0)),
                ms(percentile(values, 100.0))
            );
        }
        // Both paths cross the link once (the replica's stream, or the
        // XREAD reply); neither may take more than a few round trips.
        for values in [&local, &far] {
            assert!(percentile(values, 50.0) >= ONE_WAY - JITTER, "served faster than the link allows: the delay is not applied");
            assert!(percentile(values, 99.0) < Duration::from_secs(2), "p99 {:?}", percentile(values, 99.0));
        }
        for link in ["replication", "primary-for-remote", "writer-for-remote"] {
            world.link(link).heal();
        }
        invariants::check(&world).await;
    })
    .await;
}
