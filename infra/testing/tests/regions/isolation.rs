//! An edge restarted while its region is cut off from everything: it boots
//! from its own data directory and serves; it is unready, honestly, and
//! catches up once the region is reachable again.

use std::path::Path;
use std::time::{Duration, Instant};

use adcast_shared::protocol::routes;
use http::StatusCode;

use crate::world::{wait_until, Options, World, FAR_EDGE_PORT, LOCAL_EDGE_PORT, READY_MAX_LAG};
use crate::{create_all, invariants, last_seq, ms, within};

fn newest_saved(dir: &Path) -> u64 {
    adcast_shared::snapshot::list_files(dir)
        .unwrap_or_default()
        .iter()
        .map(|(seq, _)| *seq)
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root and network namespaces: run infra/regions.sh"]
async fn an_edge_restarted_while_its_region_is_cut_off_boots_from_its_own_data_dir() {
    within("edge restarted in an isolated region", Duration::from_secs(120), async {
        let mut world = World::start(Options::default()).await;
        let before = create_all(&world.admin, "isolation", 0..30, 0, 4).await;
        let saved = last_seq(&before);
        world.wait_all_at(saved, Duration::from_secs(20)).await;
        for edge in world.edges.values() {
            wait_until(&format!("{} saved change {saved}", edge.service.name), Duration::from_secs(10), || async {
                newest_saved(&edge.data_dir) >= saved
            })
            .await;
        }

        // Nothing crosses the region's link any more, except the test's
        // own requests to the two edges.
        let isolation = world.remote.isolate(&[LOCAL_EDGE_PORT, FAR_EDGE_PORT]);
        let isolated_at = Instant::now();
        let missed = create_all(&world.admin, "isolation", 30..40, 0, 4).await;
        for name in ["local", "far"] {
            let restarted_after = isolated_at.elapsed();
            world.restart_edge(name);
            let edge = world.edge(name);
            let first_answer = wait_until(&format!("the restarted {name} edge answers"), Duration::from_secs(30), || async {
                matches!(edge.get(&format!("{}?limit=1", routes::ADS)).await, Ok(response) if response.status == StatusCode::OK)
            })
            .await;
            let seq = edge.seq().await.expect("the restarted edge answers");
            assert_eq!(seq, saved, "{name} boots from the state it saved");
            println!(
                "isolation: {name} edge restarted {:.1} s into the isolation: first answer (change {seq}, from its own data dir) {} after the start",
                restarted_after.as_secs_f64(),
                ms(first_answer)
            );
        }
        // Once the bound has passed, neither may claim to be current: the
        // far edge reaches no Redis at all; the local one reads its
        // region's replica, whose heartbeat stopped at the cut.
        let settled = READY_MAX_LAG + Duration::from_millis(1_500);
        tokio::time::sleep(settled.saturating_sub(isolated_at.elapsed())).await;
        for name in ["local", "far"] {
            let ready = world.edge(name).get("/readyz").await.expect("an answer");
            assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "{name} is unready while cut off");
            let reason = ready.json()["error"]["message"].as_str().unwrap_or("").to_owned();
            println!("  {name} edge {:.1} s into the isolation: /readyz 503 ({reason})", isolated_at.elapsed().as_secs_f64());
        }
        // The answers of the isolated edges are a true prefix of history.
        invariants::check(&world).await;

        drop(isolation);
        let healed_at = Instant::now();
        let committed = world.committed().await;
        assert_eq!(committed, last_seq(&missed));
        world.wait_all_at(committed, Duration::from_secs(45)).await;
        world.wait_all_ready(Duration::from_secs(30)).await;
        println!(
            "  after the heal both edges served all {committed} changes and were ready within {:.2} s",
            healed_at.elapsed().as_secs_f64()
        );
        invariants::check(&world).await;
    })
    .await;
}
