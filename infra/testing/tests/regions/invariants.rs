//! The invariant checker, run after every scenario.
//!
//! 1. Every answer an edge gives equals a model built from the database at
//!    the edge's `Adcast-Seq`: the outbox events `1..=seq` replayed
//!    (decoded with the shared event format), then a brute-force query with
//!    the shared matching rule. This is "a prefix of the writer's history,
//!    never a state that skipped or reordered an event".
//! 2. The `Adcast-Seq` values one edge process reported to a sequential
//!    observer never decrease.
//!
//! Ad windows lie far from the present (active from 2020 to the 2090s, or
//! starting in 2089), so the answer does not depend on the instant.

use std::collections::BTreeMap;

use adcast_shared::ad::{Ad, AdId, AudienceQuery, Gender, Platform};
use adcast_shared::country::Country;
use adcast_shared::event::Change;
use adcast_shared::protocol::routes;
use adcast_shared::timestamp::Timestamp;
use http::StatusCode;
use serde_json::{json, Value};
use sqlx::{PgPool, Row};

use crate::clients::items;
use crate::world::{Edge, Sample, Samples, World};

/// Every change the writer committed, from its outbox, in order.
pub struct History {
    events: Vec<(u64, Change)>,
}

impl History {
    pub async fn load(db: &PgPool) -> History {
        let rows = sqlx::query("SELECT seq, payload FROM outbox ORDER BY seq")
            .fetch_all(db)
            .await
            .expect("reading the outbox");
        let events: Vec<(u64, Change)> = rows
            .iter()
            .map(|row| {
                let seq = row.get::<i64, _>("seq") as u64;
                let payload: Vec<u8> = row.get("payload");
                let change = Change::decode(&payload)
                    .unwrap_or_else(|error| panic!("outbox event {seq} does not decode: {error}"));
                (seq, change)
            })
            .collect();
        for (expected, (seq, _)) in (1..).zip(&events) {
            assert_eq!(
                *seq, expected,
                "the outbox must hold all of history (nothing pruned) for the model"
            );
        }
        History { events }
    }

    pub fn last(&self) -> u64 {
        self.events.last().map_or(0, |(seq, _)| *seq)
    }

    /// The ads after change `seq`, replaying from `from` (a state at an
    /// earlier seq) to spare replays from the start.
    fn advance(&self, ads: &mut BTreeMap<AdId, Ad>, from: u64, to: u64) {
        assert!(
            to <= self.last(),
            "an edge served change {to}, beyond the writer's history ({})",
            self.last()
        );
        for (_, change) in &self.events[from as usize..to as usize] {
            match change {
                Change::Upsert(ad) => {
                    ads.insert(ad.id, ad.clone());
                }
                Change::Delete(id) => {
                    ads.remove(id);
                }
            }
        }
    }

    pub fn state_at(&self, seq: u64) -> BTreeMap<AdId, Ad> {
        let mut ads = BTreeMap::new();
        self.advance(&mut ads, 0, seq);
        ads
    }
}

/// The fixed queries every edge is asked: `(query string, the audience)`.
fn queries() -> Vec<(&'static str, AudienceQuery)> {
    let country = |code| Country::parse(code).expect("a country");
    let gender = |text| Gender::parse(text).expect("a gender");
    let platform = |text| Platform::parse(text).expect("a platform");
    vec![
        ("", AudienceQuery::default()),
        (
            "age=25",
            AudienceQuery {
                age: Some(25),
                ..Default::default()
            },
        ),
        (
            "age=70&gender=F",
            AudienceQuery {
                age: Some(70),
                gender: Some(gender("F")),
                ..Default::default()
            },
        ),
        (
            "country=TW&platform=ios",
            AudienceQuery {
                country: Some(country("TW")),
                platform: Some(platform("ios")),
                ..Default::default()
            },
        ),
        (
            "country=JP&gender=M&platform=web",
            AudienceQuery {
                country: Some(country("JP")),
                gender: Some(gender("M")),
                platform: Some(platform("web")),
                ..Default::default()
            },
        ),
        (
            "age=40&country=US&gender=F&platform=android",
            AudienceQuery {
                age: Some(40),
                country: Some(country("US")),
                gender: Some(gender("F")),
                platform: Some(platform("android")),
            },
        ),
    ]
}

/// `(title, endAt)` of the answer the model gives.
pub fn expected(
    ads: &BTreeMap<AdId, Ad>,
    audience: &AudienceQuery,
    offset: usize,
    limit: usize,
) -> Vec<(String, String)> {
    let now = Timestamp::now();
    let mut matching: Vec<&Ad> = ads
        .values()
        .filter(|ad| ad.window.is_active_at(now) && ad.targeting.matches(audience))
        .collect();
    matching.sort_by_key(|ad| (ad.window.end(), ad.id));
    matching
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|ad| (ad.title.as_str().to_owned(), ad.window.end().to_string()))
        .collect()
}

/// What the checker looked at, for the scenario's output.
#[derive(Debug, Default)]
pub struct Checked {
    pub answers: usize,
    pub samples: usize,
}

/// Runs both invariants on every edge of `world` (and on the processes a
/// restart replaced); panics on the first violation.
pub async fn check(world: &World) -> Checked {
    let history = History::load(&world.db).await;
    let mut checked = Checked::default();
    for (name, edge) in &world.edges {
        checked.answers += check_answers(name, edge, &history).await;
        checked.samples += check_samples(name, &edge.samples, &history);
    }
    for (name, samples) in &world.retired {
        checked.samples += check_samples(name, samples, &history);
    }
    println!(
        "invariants: {} answers and {} sampled answers equal the model at their Adcast-Seq; Adcast-Seq never decreased",
        checked.answers, checked.samples
    );
    checked
}

/// Every fixed query, every page, against the model at the page's seq.
async fn check_answers(name: &str, edge: &Edge, history: &History) -> usize {
    let mut answers = 0;
    for (query, audience) in queries() {
        let mut offset = 0;
        loop {
            let separator = if query.is_empty() { "" } else { "&" };
            let path = format!(
                "{}?{query}{separator}offset={offset}&limit=100",
                routes::ADS
            );
            let response = edge
                .get(&path)
                .await
                .unwrap_or_else(|error| panic!("edge {name}: {path}: {error}"));
            assert_eq!(response.status, StatusCode::OK, "edge {name}: {path}");
            let seq = response.seq();
            let got = items(&response);
            edge.samples.push(Sample { seq, items: None });
            let want = expected(&history.state_at(seq), &audience, offset, 100);
            assert_eq!(
                got, want,
                "edge {name}: {path} at Adcast-Seq {seq} differs from the model"
            );
            answers += 1;
            if got.len() < 100 {
                break;
            }
            offset += 100;
        }
    }
    // A paginated query with a small page, as clients send them.
    let path = format!("{}?country=TW&offset=3&limit=7", routes::ADS);
    let response = edge
        .get(&path)
        .await
        .unwrap_or_else(|error| panic!("edge {name}: {error}"));
    let audience = AudienceQuery {
        country: Country::parse("TW"),
        ..Default::default()
    };
    assert_eq!(
        items(&response),
        expected(&history.state_at(response.seq()), &audience, 3, 7),
        "edge {name}: {path}"
    );
    answers + 1
}

/// Seqs never decrease; each sampled first page equals the model.
fn check_samples(name: &str, samples: &Samples, history: &History) -> usize {
    let samples = samples.all();
    let mut ads = BTreeMap::new();
    let mut at = 0;
    let mut previous = 0;
    for (index, sample) in samples.iter().enumerate() {
        assert!(
            sample.seq >= previous,
            "edge {name}: Adcast-Seq went from {previous} down to {} (answer {index})",
            sample.seq
        );
        previous = sample.seq;
        let Some(items) = &sample.items else {
            continue; // a checker answer to another query, checked there
        };
        history.advance(&mut ads, at, sample.seq);
        at = sample.seq;
        assert_eq!(
            items,
            &expected(&ads, &AudienceQuery::default(), 0, 100),
            "edge {name}: a sampled answer at Adcast-Seq {} differs from the model",
            sample.seq
        );
    }
    samples.len()
}

/// A create body for ad `i` of a scenario: varied targeting, ends spread
/// over 2090–2091 with ties, one in nine scheduled for 2089 (not active).
/// `padding` lengthens the title (to fill a replication backlog).
pub fn ad(tag: &str, i: usize, padding: usize) -> Value {
    let title = format!("{tag} {i:04}{}", "·".repeat(padding));
    let start = if i % 9 == 4 {
        "2089-01-01T00:00:00Z"
    } else {
        "2020-01-01T00:00:00Z"
    };
    let base = Timestamp::parse_rfc3339("2090-01-01T00:00:00Z")
        .expect("a timestamp")
        .as_millis();
    let end =
        Timestamp::from_millis(base + ((i * 37) % 500) as i64 * 3_600_000).expect("a timestamp");
    let conditions = match i % 6 {
        0 => json!([]),
        1 => json!([{"ageStart": 20, "ageEnd": 30}]),
        2 => json!([{"country": ["TW", "JP"], "platform": ["ios"]}]),
        3 => json!([{"gender": ["F"], "ageStart": 35, "ageEnd": 80}]),
        4 => json!([{"country": ["US"], "platform": ["android", "web"]}, {"gender": ["M"]}]),
        _ => json!([{"gender": ["M"], "country": ["JP"]}]),
    };
    json!({"title": title, "startAt": start, "endAt": end.to_string(), "conditions": conditions})
}
