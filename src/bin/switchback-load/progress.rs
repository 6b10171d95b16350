//! A one-line live display on a terminal (indicatif), plain lines once a second when piped.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    last_plain: Option<Instant>,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed} {msg}") {
                bar.set_style(style);
            }
            bar
        });
        Progress { bar, last_plain: if quiet { None } else { Some(Instant::now()) } }
    }

    /// `done` of `sent` came back after `elapsed` seconds of measuring (`total` since the start).
    pub fn update(&mut self, total: Duration, sent: u64, done: u64, elapsed: f64) {
        let rate = if elapsed > 0.0 { done as f64 / elapsed } else { 0.0 };
        let msg = format!("sent {sent} done {done} ({rate:.0}/s)");
        if let Some(bar) = &self.bar {
            bar.set_message(msg);
            bar.tick();
        } else if let Some(last) = &mut self.last_plain
            && last.elapsed() >= Duration::from_secs(1)
        {
            *last = Instant::now();
            eprintln!("{:.1}s {msg}", total.as_secs_f64());
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
