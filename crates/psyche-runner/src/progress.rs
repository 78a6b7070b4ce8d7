//! Progress display: an indicatif bar on terminals, silence in CI.
//!
//! The bar is driven by the log-writer thread, never by the tasks doing the work, so drawing
//! costs the hot path nothing (Inspect's users report the display dominating large runs).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// When to draw a progress bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal and no `CI` environment variable is set.
    #[default]
    Auto,
    /// Always draw a bar on stderr.
    Bar,
    /// Never draw.
    Quiet,
}

impl ProgressMode {
    /// Whether this mode draws a bar in the current environment.
    pub fn enabled(self) -> bool {
        match self {
            ProgressMode::Bar => true,
            ProgressMode::Quiet => false,
            ProgressMode::Auto => {
                std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
            }
        }
    }
}

/// Counters plus the optional bar; owned by the writer thread.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    pub(crate) done: u64,
    pub(crate) errors: u64,
    pub(crate) cached: u64,
    resumed: u64,
}

impl Progress {
    pub(crate) fn new(mode: ProgressMode, total: u64, resumed: u64) -> Self {
        let bar = mode.enabled().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_position(resumed);
            bar.reset_eta();
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let p = Self {
            bar,
            done: 0,
            errors: 0,
            cached: 0,
            resumed,
        };
        p.update_message();
        p
    }

    pub(crate) fn record(&mut self, error: bool, cached: bool) {
        self.done += 1;
        let changed = error || cached;
        self.errors += u64::from(error);
        self.cached += u64::from(cached);
        if let Some(bar) = &self.bar {
            bar.inc(1);
            if changed {
                self.update_message();
            }
        }
    }

    fn update_message(&self) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "errors {} · cache hits {} · resumed {}",
                self.errors, self.cached, self.resumed
            ));
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
