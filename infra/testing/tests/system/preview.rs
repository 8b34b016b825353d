//! The writer's preview and explain against a caught-up edge and against the
//! shared definition of matching (`adcast_shared::matching`).
//!
//! How the comparison is made exact: an edge answers at its own clock, the
//! instant it handles the request. The test notes the clock just before the
//! request (`t0`) and just after the answer (`t1`); when no ad starts or ends
//! in between (the served set can only change at `startAt + 1 ms` and at
//! `endAt`), the edge's answer is the answer at every instant of `[t0, t1]`,
//! so it must equal the writer's preview at `at=t0`, byte for byte. Some ads
//! start and end during the run, 40 ms apart, so answers before, between and
//! after those changes are all compared; windows that straddle a change are
//! skipped (and counted). Preview at fixed instants, exact boundaries
//! included, is compared with the shared brute-force definition.

use std::collections::HashMap;
use std::time::Duration;

use adcast_shared::ad::{Ad, AdId};
use adcast_shared::json::Json;
use adcast_shared::matching;
use adcast_shared::query::PublicQuery;
use adcast_shared::timestamp::Timestamp;
use adcast_shared::wire::{parse_import_draft, public_answer_body};
use http::{Method, StatusCode};
use serde_json::{json, Value};

use adcast_testing::edge::{following, TestEdge};
use adcast_testing::writer::TestWriter;

/// xorshift64*: seeded, so a failure is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, values: &[&'a str]) -> &'a str {
        values[self.below(values.len() as u64) as usize]
    }
}

const COUNTRIES: [&str; 6] = ["TW", "JP", "US", "gb", "UK", "fr"];

/// A condition group as clients write it, variants included.
fn group(rng: &mut Rng) -> Value {
    let mut group = serde_json::Map::new();
    if rng.chance(50) {
        let a = 1 + rng.below(100);
        let b = 1 + rng.below(100);
        group.insert("ageStart".into(), json!(a.min(b)));
        if rng.chance(70) {
            group.insert("ageEnd".into(), json!(a.max(b)));
        }
    }
    if rng.chance(40) {
        group.insert("gender".into(), json!(rng.pick(&["M", "F", "f"])));
    }
    if rng.chance(50) {
        let countries: Vec<&str> = (0..1 + rng.below(3))
            .map(|_| rng.pick(&COUNTRIES))
            .collect();
        group.insert("country".into(), json!(countries));
    }
    if rng.chance(40) {
        let platforms: Vec<&str> = (0..1 + rng.below(2))
            .map(|_| rng.pick(&["android", "ios", "web", "IOS"]))
            .collect();
        group.insert("platform".into(), json!(platforms));
    }
    Value::Object(group)
}

fn iso(millis: i64) -> String {
    Timestamp::from_millis(millis).unwrap().to_string()
}

/// `count` ads: most with windows far from now (stable during the test),
/// some starting or ending at `moving_from + k * 40 ms`, several ended.
fn catalog(rng: &mut Rng, count: usize, now: i64, moving_from: i64) -> Vec<Value> {
    const HOUR: i64 = 3_600_000;
    (0..count)
        .map(|i| {
            let (start, end) = match rng.below(10) {
                0..=1 => {
                    let k = rng.below(40) as i64;
                    (moving_from + k * 40, moving_from + (k + 1 + rng.below(30) as i64) * 40)
                }
                2 => (now - 5 * HOUR, now - HOUR - rng.below(1000) as i64),
                3 => (now - HOUR, moving_from + rng.below(40) as i64 * 40),
                4 => (moving_from + rng.below(40) as i64 * 40, now + 48 * HOUR),
                // Ties on endAt are common: whole hours.
                _ => (now - HOUR, now + (1 + rng.below(20) as i64) * HOUR),
            };
            let conditions = match rng.below(10) {
                0..=1 => Value::Null,
                2..=6 => group(rng),
                _ => Value::Array((0..2 + rng.below(2)).map(|_| group(rng)).collect()),
            };
            json!({"title": format!("AD {i}"), "startAt": iso(start), "endAt": iso(end), "conditions": conditions})
        })
        .collect()
}

/// A random Public API query string.
fn query(rng: &mut Rng, ads: usize) -> String {
    let mut parts = Vec::new();
    if rng.chance(50) {
        parts.push(format!("age={}", 1 + rng.below(100)));
    }
    if rng.chance(40) {
        parts.push(format!("gender={}", rng.pick(&["M", "F", "m"])));
    }
    if rng.chance(50) {
        parts.push(format!("country={}", rng.pick(&COUNTRIES)));
    }
    if rng.chance(40) {
        parts.push(format!("platform={}", rng.pick(&["android", "ios", "web"])));
    }
    if rng.chance(40) {
        parts.push(format!("offset={}", rng.below((ads as u64 / 2).max(1))));
    }
    if rng.chance(60) {
        parts.push(format!("limit={}", 1 + rng.below(100)));
    }
    parts.join("&")
}

/// The writer with the catalog imported, an edge caught up with it, and
/// the ads as stored (read back through the export).
async fn setup(seed: u64, count: usize) -> (TestWriter, TestEdge, Vec<Ad>, i64, u64) {
    let writer = TestWriter::spawn().await;
    let edge = TestEdge::start(following(&writer)).await;
    let mut rng = Rng(seed);
    let now = Timestamp::now().as_millis();
    let moving_from = now + 4_000;
    let bodies = catalog(&mut rng, count, now, moving_from);
    let ndjson: String = bodies.iter().map(|ad| format!("{ad}\n")).collect();
    let imported = writer
        .request(
            Method::POST,
            "/api/v1/admin/ad/import",
            &[("content-type", "application/x-ndjson")],
            Some(&ndjson),
        )
        .await;
    assert_eq!(imported.status, StatusCode::CREATED, "{:?}", imported.body);
    let seq = imported.seq();
    edge.wait_for_seq(seq).await;
    let exported = writer.get("/api/v1/admin/ad/export").await;
    let ads = std::str::from_utf8(&exported.body)
        .unwrap()
        .lines()
        .map(|line| {
            let json = Json::parse(line.as_bytes()).unwrap();
            let id: Value = serde_json::from_str(line).unwrap();
            let draft = parse_import_draft(&json).unwrap();
            Ad::from_draft(AdId::new(id["id"].as_i64().unwrap()).unwrap(), draft)
        })
        .collect();
    (writer, edge, ads, moving_from, seq)
}

/// No ad starts being served or stops in `(t0, t1]`.
fn stable(ads: &[Ad], t0: i64, t1: i64) -> bool {
    ads.iter().all(|ad| {
        let joins = ad.window.start().as_millis() + 1;
        let leaves = ad.window.end().as_millis();
        let within = |instant: i64| t0 < instant && instant <= t1;
        !within(joins) && !within(leaves)
    })
}

fn expected_body(ads: &[Ad], query: &str, at: Timestamp) -> Vec<u8> {
    let params = PublicQuery::parse(query).unwrap();
    public_answer_body(matching::answer(
        ads,
        &params.audience,
        params.offset,
        params.limit,
        at,
    ))
}

#[tokio::test]
async fn preview_equals_a_caught_up_edge_answering_at_the_same_instant() {
    let (writer, edge, ads, moving_from, seq) = setup(0x5EED_0011, 300).await;
    let seq = seq.to_string();
    let mut rng = Rng(42);
    let (mut compared, mut skipped, mut while_changing) = (0, 0, 0);
    let last_change = moving_from + 80 * 40;
    while Timestamp::now().as_millis() < last_change + 300 {
        let query = query(&mut rng, ads.len());
        let t0 = Timestamp::now();
        let served = edge
            .request(
                Method::GET,
                &format!("/api/v1/ad?{query}"),
                &[("adcast-min-seq", &seq)],
                None,
            )
            .await;
        let t1 = Timestamp::now();
        assert_eq!(served.status, StatusCode::OK);
        if !stable(&ads, t0.as_millis(), t1.as_millis()) {
            skipped += 1;
            continue;
        }
        let preview = writer
            .get(&format!("/api/v1/admin/preview?{query}&at={t0}"))
            .await;
        assert_eq!(preview.status, StatusCode::OK);
        assert_eq!(
            String::from_utf8_lossy(&preview.body),
            String::from_utf8_lossy(&served.body),
            "preview at {t0} and the edge in [{t0}, {t1}] disagree on {query}"
        );
        assert_eq!(
            preview.body,
            expected_body(&ads, &query, t0),
            "preview and the shared definition disagree on {query} at {t0}"
        );
        compared += 1;
        if (moving_from..=last_change).contains(&t0.as_millis()) {
            while_changing += 1;
        }
        // Also before and after the moving ads change, not just during.
        if t0.as_millis() < moving_from - 500 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    eprintln!("compared {compared} answers ({while_changing} while ads started and ended), skipped {skipped} that straddled a change");
    assert!(compared >= 50, "compared only {compared}");
    assert!(
        while_changing >= 10,
        "few answers covered the changes: {while_changing}"
    );
}

#[tokio::test]
async fn preview_at_exact_boundaries_equals_the_shared_definition() {
    let (writer, _edge, ads, _, _) = setup(0x5EED_0022, 200).await;
    let mut rng = Rng(7);
    let mut instants: Vec<i64> = Vec::new();
    for ad in ads.iter().step_by(3) {
        for edge_of in [ad.window.start().as_millis(), ad.window.end().as_millis()] {
            instants.extend([edge_of - 1, edge_of, edge_of + 1]);
        }
    }
    for at in instants {
        let at = Timestamp::from_millis(at).unwrap();
        let query = query(&mut rng, ads.len());
        let preview = writer
            .get(&format!("/api/v1/admin/preview?{query}&at={at}"))
            .await;
        assert_eq!(preview.status, StatusCode::OK);
        assert_eq!(
            String::from_utf8_lossy(&preview.body),
            String::from_utf8_lossy(&expected_body(&ads, &query, at)),
            "{query} at {at}"
        );
    }
}

#[tokio::test]
async fn explain_served_and_position_agree_with_preview_for_every_ad() {
    let (writer, _edge, ads, moving_from, _) = setup(0x5EED_0033, 120).await;
    let by_title: HashMap<String, i64> = ads
        .iter()
        .map(|ad| (ad.title.as_str().to_owned(), ad.id.get()))
        .collect();
    let mut rng = Rng(99);
    let instants = [
        moving_from + 20 * 40,
        moving_from + 40 * 40,
        Timestamp::now().as_millis(),
    ];
    for at in instants {
        let at = Timestamp::from_millis(at).unwrap();
        for _ in 0..3 {
            let mut user = query(&mut rng, 0);
            user = user
                .split('&')
                .filter(|part| !part.starts_with("offset") && !part.starts_with("limit"))
                .collect::<Vec<_>>()
                .join("&");
            // The whole answer, a page of 100 at a time.
            let mut order: Vec<i64> = Vec::new();
            loop {
                let page = writer
                    .get(&format!(
                        "/api/v1/admin/preview?{user}&at={at}&limit=100&offset={}",
                        order.len()
                    ))
                    .await
                    .json();
                let items = page["items"].as_array().unwrap().clone();
                order.extend(
                    items
                        .iter()
                        .map(|item| by_title[item["title"].as_str().unwrap()]),
                );
                if items.len() < 100 {
                    break;
                }
            }
            for ad in &ads {
                let explained = writer
                    .get(&format!(
                        "/api/v1/admin/ad/{}/explain?{user}&at={at}",
                        ad.id
                    ))
                    .await
                    .json();
                let place = order.iter().position(|id| *id == ad.id.get());
                assert_eq!(
                    explained["served"],
                    place.is_some(),
                    "ad {} for {user} at {at}",
                    ad.id
                );
                assert_eq!(
                    explained["position"],
                    place.map_or(Value::Null, |place| json!(place)),
                    "ad {} for {user} at {at}",
                    ad.id
                );
            }
        }
    }
}
