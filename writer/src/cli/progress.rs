//! Import progress: a bar with rate and ETA when standard error is a
//! terminal, plain periodic lines otherwise (logs, CI, pipes).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Plain lines come at most this often (and once at the end).
const LINE_EVERY: Duration = Duration::from_secs(2);

pub enum Progress {
    Bar(ProgressBar),
    Lines {
        total: u64,
        done: u64,
        started: Instant,
        last_line: Instant,
    },
}

impl Progress {
    pub fn new(total: u64) -> Progress {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:40.cyan/blue} {pos}/{len} ads  {per_sec}  ETA {eta}  {msg}",
                )
                .expect("the template is valid"),
            );
            Progress::Bar(bar)
        } else {
            let now = Instant::now();
            Progress::Lines {
                total,
                done: 0,
                started: now,
                last_line: now,
            }
        }
    }

    /// `count` more ads are done.
    pub fn advance(&mut self, count: u64) {
        match self {
            Progress::Bar(bar) => bar.inc(count),
            Progress::Lines {
                total,
                done,
                started,
                last_line,
            } => {
                *done += count;
                if last_line.elapsed() >= LINE_EVERY || *done >= *total {
                    *last_line = Instant::now();
                    eprintln!("{}", line(*done, *total, started.elapsed()));
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish();
        }
    }

    /// Prints a note without breaking the bar.
    pub fn note(&self, text: &str) {
        match self {
            Progress::Bar(bar) => bar.println(text),
            Progress::Lines { .. } => eprintln!("{text}"),
        }
    }
}

/// `import: 12000/30000 ads (40%), 5210 ads/s, ETA 3 s`
fn line(done: u64, total: u64, elapsed: Duration) -> String {
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    let eta = if rate > 0.0 {
        format!("{:.0} s", (total.saturating_sub(done)) as f64 / rate)
    } else {
        "unknown".into()
    };
    format!("import: {done}/{total} ads ({percent}%), {rate:.0} ads/s, ETA {eta}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_line_says_count_share_rate_and_eta() {
        assert_eq!(
            line(12_000, 30_000, Duration::from_secs(2)),
            "import: 12000/30000 ads (40%), 6000 ads/s, ETA 3 s"
        );
    }
}
