//! Times a cold start from a snapshot file in phases: verify and decode
//! alone (each ad dropped at once), through serde and read in place as a
//! boot reads it, then decode and index together as a boot does; then writing that state as an index image (what the
//! persister does beside each snapshot) and loading the image back (a
//! restart's boot, the file in the page cache). Runs each `RUNS` times
//! (default 3) in one process and prints the medians.
//!
//! `cargo run --release -p adcast-edge --example boot_phases -- FILE [RUNS]`

use std::time::{Duration, Instant};

use adcast_edge::image;
use adcast_edge::state::LoadedSnapshot;
use adcast_shared::ad::{Ad, EncodedAd};
use adcast_shared::snapshot::{AdSink, Snapshot};
use adcast_shared::timestamp::Timestamp;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: boot_phases FILE [RUNS]");
    let runs: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(3);
    let bytes = std::fs::read(&path).expect("readable snapshot file");
    let (mut decode, mut read, mut boot) = (Vec::new(), Vec::new(), Vec::new());
    let (mut write_image, mut load_image) = (Vec::new(), Vec::new());
    let image_path =
        std::env::temp_dir().join(format!("boot-phases-{}.adimage", std::process::id()));
    let mut image_len = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let mut count = 0usize;
        Snapshot::decode_each(&bytes, &mut |_| count += 1).expect("valid snapshot");
        decode.push(started.elapsed());
        let started = Instant::now();
        let mut in_place = Count::default();
        Snapshot::decode_each(&bytes, &mut in_place).expect("valid snapshot");
        read.push(started.elapsed());
        assert_eq!(in_place.read + in_place.decoded, count);
        let started = Instant::now();
        let loaded = LoadedSnapshot::decode(&bytes, Timestamp::now()).expect("valid snapshot");
        boot.push(started.elapsed());
        assert_eq!(loaded.ads as usize, count);
        let started = Instant::now();
        image_len = image::write(&image_path, loaded.seq, &loaded.index, Timestamp::now())
            .expect("writable image");
        write_image.push(started.elapsed());
        drop(loaded);
        let started = Instant::now();
        let from_image = image::load(&image_path).expect("a valid image");
        load_image.push(started.elapsed());
        assert!(
            from_image.ads as usize <= count,
            "the image holds the ads not ended"
        );
    }
    let _ = std::fs::remove_file(&image_path);
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2].as_secs_f64() * 1000.0
    };
    let (decode, read, boot) = (median(&mut decode), median(&mut read), median(&mut boot));
    let (write_image, load_image) = (median(&mut write_image), median(&mut load_image));
    println!(
        "{path}: decode alone {decode:.1} ms (read in place {read:.1} ms), decode and index {boot:.1} ms; index image ({:.1} MB) written in {write_image:.1} ms, loaded in {load_image:.1} ms (medians of {runs})",
        image_len as f64 / 1e6
    );
}

/// Counts ads, reading those it can in place (as a boot does).
#[derive(Default)]
struct Count {
    read: usize,
    decoded: usize,
}

impl AdSink for Count {
    const TAKES_ENCODED: bool = true;

    fn push(&mut self, _: Ad) {
        self.decoded += 1;
    }

    fn push_encoded(&mut self, _: &EncodedAd<'_>) {
        self.read += 1;
    }
}
