//! A replica link broken long enough to force a full resynchronisation;
//! then the primary killed and the replica promoted while it holds fewer
//! entries than the writer had published. The writer, re-pointed at the new
//! primary, republishes from its outbox; every edge converges and nothing
//! acknowledged is lost.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::clients::{redis_command, redis_info, stream_last};
use crate::world::{wait_until, Options, World};
use crate::{create_all, invariants, last_seq, within};

/// The primary's replication backlog: Redis' minimum, so that a short break
/// with a few dozen writes outgrows it.
const BACKLOG: &str = "16kb";

fn stat(info: &BTreeMap<String, String>, field: &str) -> u64 {
    info.get(field)
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("INFO has no {field}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root and network namespaces: run infra/regions.sh"]
async fn a_promoted_replica_that_missed_writes_is_filled_from_the_outbox() {
    within("full resync, then a promoted replica", Duration::from_secs(150), async {
        let mut world = World::start(Options {
            primary_redis_args: vec!["--repl-backlog-size".into(), BACKLOG.into()],
            ..Options::default()
        })
        .await;
        let (primary, replica) = (world.redis_address("primary"), world.redis_address("replica"));
        let mut acked = create_all(&world.admin, "before", 0..20, 0, 4).await;
        world.wait_all_at(last_seq(&acked), Duration::from_secs(20)).await;
        let before = redis_info(primary).await;

        // 1. The replica's link breaks (reset), writes outgrow the backlog.
        world.link("replication").set_reset(true);
        wait_until("the replica sees its link down", Duration::from_secs(10), || async {
            redis_info(replica).await.get("master_link_status").map(String::as_str) == Some("down")
        })
        .await;
        acked.extend(create_all(&world.admin, "resync", 20..140, 200, 4).await);
        let during = redis_info(primary).await;
        let written = stat(&during, "master_repl_offset") - stat(&before, "master_repl_offset");
        assert!(written > stat(&during, "repl_backlog_size"), "the break outgrew the backlog ({written} bytes)");
        let heal = Instant::now();
        world.link("replication").set_reset(false);
        wait_until("the replica is back in sync", Duration::from_secs(30), || async {
            redis_info(replica).await.get("master_link_status").map(String::as_str) == Some("up")
                && stream_last(replica).await == last_seq(&acked)
        })
        .await;
        let resynced_in = heal.elapsed();
        let after = redis_info(primary).await;
        assert_eq!(stat(&after, "sync_full"), stat(&before, "sync_full") + 1, "one full resynchronisation");
        assert!(stat(&after, "sync_partial_err") > stat(&before, "sync_partial_err"), "the partial resync was refused");
        world.wait_all_at(last_seq(&acked), Duration::from_secs(20)).await;

        // 2. The replica falls behind again (its link swallows everything)
        //    while the writer publishes more to the primary.
        world.link("replication").set_black_hole(true);
        acked.extend(create_all(&world.admin, "missed", 140..160, 0, 4).await);
        let published = last_seq(&acked);
        let far = world.edge("far");
        wait_until("the far edge has everything published", Duration::from_secs(20), || async {
            far.seq().await.is_some_and(|seq| seq >= published)
        })
        .await;
        assert_eq!(stream_last(primary).await, published);
        let replica_had = stream_last(replica).await;
        assert!(replica_had < published, "the replica holds fewer entries ({replica_had}) than were published ({published})");

        // 3. The primary dies; the replica is promoted; clients are
        //    re-pointed at it (the writer's Redis endpoint, the far edge's).
        world.redis.get_mut("primary").expect("a primary").kill();
        let promoted_at = Instant::now();
        let _: () = redis_command(replica, redis::cmd("REPLICAOF").arg("NO").arg("ONE")).await;
        world.link("redis-for-writer").switch_upstream(replica);
        world.link("primary-for-remote").switch_upstream(replica);
        wait_until("the writer republishes from its outbox", Duration::from_secs(30), || async {
            stream_last(replica).await >= published
        })
        .await;
        let republished_in = promoted_at.elapsed();

        // 4. Writes go on against the new primary; every edge converges.
        acked.extend(create_all(&world.admin, "after", 160..170, 0, 4).await);
        let committed = world.committed().await;
        assert_eq!(committed, last_seq(&acked), "every acknowledged write is committed");
        world.wait_all_at(committed, Duration::from_secs(30)).await;
        let converged_in = promoted_at.elapsed();
        assert_eq!(stream_last(replica).await, committed, "the new primary holds all of history");

        println!("full resync: a {written}-byte break against a {BACKLOG} backlog; the replica was back in sync {:.2} s after the heal (sync_full {} → {})",
            resynced_in.as_secs_f64(), stat(&before, "sync_full"), stat(&after, "sync_full"));
        println!(
            "promotion: the replica held {replica_had} of {published} published entries; the writer republished the missing {} within {:.2} s of the promotion; both edges served all {committed} changes after {:.2} s",
            published - replica_had,
            republished_in.as_secs_f64(),
            converged_in.as_secs_f64()
        );
        println!("  {} writes acknowledged, none lost", acked.len());
        invariants::check(&world).await;
    })
    .await;
}
