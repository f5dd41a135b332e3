//! SIGINT and SIGTERM end the process with 130 and 143; SIGHUP, SIGQUIT,
//! SIGUSR1 and SIGUSR2 with 128 + their number, socket files removed.
//!
//! Both are blocked in every thread and taken by one thread with sigwait(2),
//! so no relay call is ever interrupted half-way and the exit status is the
//! documented one rather than death by signal. Payload is written unbuffered,
//! so there is nothing left to flush. SIGALRM stays deliverable to the main
//! thread for `connect --timeout-method alarm` and is blocked in the waiting
//! thread so the timer always lands on the thread in connect(2).

use std::io;
use std::sync::Mutex;
use std::thread;

use nix::sys::signal::{SigSet, SigmaskHow, Signal};

use crate::error::Exit;

type Hook = Box<dyn Fn() + Send>;

/// Signals that end the process by default and are caught only so its
/// socket files go with it (no summary: that is for SIGINT and SIGTERM).
const OTHER_ENDINGS: [Signal; 4] = [
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

static AT_INTERRUPT: Mutex<Option<Hook>> = Mutex::new(None);

/// Runs `hook` (a summary line, say) when SIGINT or SIGTERM ends the process.
pub fn at_interrupt(hook: impl Fn() + Send + 'static) {
    *AT_INTERRUPT.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(hook));
}

fn run_hook() {
    // Socket files a listener made go with the process, as on any other end.
    crate::engine::transport::unix::remove_bound_files();
    if let Some(hook) = AT_INTERRUPT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        hook();
    }
}

/// Call first in `main`, before any other thread exists, so every thread
/// inherits the mask.
pub fn install() -> io::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    // Their default would end the process without removing the socket
    // files it made (a closed terminal sends SIGHUP): end as the
    // shell would report it, 128 + the signal, after the same cleanup.
    for sig in OTHER_ENDINGS {
        set.add(sig);
    }
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    thread::Builder::new()
        .name("signals".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut alarm = SigSet::empty();
            alarm.add(Signal::SIGALRM);
            let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&alarm), None);
            loop {
                match set.wait() {
                    Ok(Signal::SIGINT) => {
                        run_hook();
                        std::process::exit(Exit::Interrupted.code())
                    }
                    Ok(Signal::SIGTERM) => {
                        run_hook();
                        std::process::exit(Exit::Terminated.code())
                    }
                    Ok(sig) if OTHER_ENDINGS.contains(&sig) => {
                        crate::engine::transport::unix::remove_bound_files();
                        std::process::exit(128 + sig as i32)
                    }
                    _ => continue,
                }
            }
        })?;
    Ok(())
}
