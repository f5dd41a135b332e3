//! `--progress`: an indicatif bar on stderr for a relay, drawn by its own
//! thread from the relay's counters every 200 ms, so the data path does no
//! extra work. Only when stderr is a terminal; a regular file on stdin gives
//! the bar a known total.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

use crate::engine::relay::Counters;
use crate::engine::splice::{self, Kind};

pub struct Progress {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts drawing, or does nothing when stderr is not a terminal.
    pub fn start(counters: &Arc<Counters>) -> Option<Progress> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let total = match splice::kind(libc::STDIN_FILENO) {
            Kind::File(len) if len > 0 => Some(len),
            _ => None,
        };
        let bar = match total {
            Some(len) => {
                let b = ProgressBar::new(len);
                b.set_style(
                    ProgressStyle::with_template(
                        "{elapsed_precise} [{bar:30}] {bytes}/{total_bytes} sent {msg} ({bytes_per_sec}, eta {eta})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                b
            }
            None => {
                let b = ProgressBar::new_spinner();
                b.set_style(
                    ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                b
            }
        };
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, counters) = (stop.clone(), counters.clone());
        let handle = thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                let mut last = (0u64, 0u64);
                let tick = Duration::from_millis(200);
                while !flag.load(Ordering::Relaxed) {
                    let (sent, received) = (counters.sent(), counters.received());
                    let rate = (sent + received - last.0 - last.1) as f64 / tick.as_secs_f64();
                    last = (sent, received);
                    if total.is_some() {
                        bar.set_position(sent);
                        bar.set_message(format!("received {}", HumanBytes(received)));
                    } else {
                        bar.set_message(format!(
                            "sent {}, received {}, {}/s",
                            HumanBytes(sent),
                            HumanBytes(received),
                            HumanBytes(rate as u64)
                        ));
                        bar.tick();
                    }
                    thread::sleep(tick);
                }
                bar.finish_and_clear();
            })
            .ok()?;
        Some(Progress {
            stop,
            handle: Some(handle),
        })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
