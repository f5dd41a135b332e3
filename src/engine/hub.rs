//! `listen -k`: stdin fanned out to every connected client.
//!
//! One thread reads stdin and hands each chunk to every client's bounded
//! queue; a writer thread per client drains its queue into its socket. A
//! client that does not read fills its queue and then blocks the fan-out (as
//! ncat's broker does), so memory stays bounded by clients x queue depth x
//! chunk size. At stdin's EOF every current client is half-closed, and so is
//! every client that joins later.

use std::io;
use std::net::Shutdown;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use super::buf::AlignedBuf;
use super::relay::Counters;
use super::stdio;
use super::transport::Stream;

/// Chunks a client may have queued before the fan-out waits for it.
const QUEUE_DEPTH: usize = 4;
/// Bytes per stdin read in the fan-out.
const CHUNK: usize = 64 * 1024;

/// One read of stdin, shared by every client queue.
pub type Chunk = Arc<[u8]>;

#[derive(Default)]
struct State {
    clients: Vec<(u64, SyncSender<Chunk>)>,
    stdin_ended: bool,
}

#[derive(Default)]
pub struct Hub {
    state: Mutex<State>,
}

impl Hub {
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub::default())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds client `id`; its queue receives every chunk of stdin read from
    /// now on. `None` when stdin has already ended.
    pub fn join(&self, id: u64) -> Option<Receiver<Chunk>> {
        let mut st = self.state();
        if st.stdin_ended {
            return None;
        }
        let (tx, rx) = sync_channel(QUEUE_DEPTH);
        st.clients.push((id, tx));
        Some(rx)
    }

    /// Removes client `id`; its writer sees the end of its queue.
    pub fn leave(&self, id: u64) {
        self.state().clients.retain(|(c, _)| *c != id);
    }

    /// Reads stdin until EOF, handing each chunk to every client. At EOF,
    /// every queue is closed, which half-closes the clients.
    pub fn pump_stdin(&self) -> io::Result<()> {
        let mut buf = AlignedBuf::zeroed(CHUNK);
        let result = loop {
            let n = match stdio::read_stdin(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) => break Err(e),
            };
            let chunk: Chunk = Arc::from(&buf[..n]);
            // Send outside the lock: a slow client must not stop others from
            // joining or leaving.
            let queues: Vec<SyncSender<Chunk>> = self
                .state()
                .clients
                .iter()
                .map(|(_, tx)| tx.clone())
                .collect();
            for q in queues {
                // A client that left has dropped its receiver; skip it.
                let _ = q.send(chunk.clone());
            }
        };
        let mut st = self.state();
        st.stdin_ended = true;
        st.clients.clear();
        result
    }
}

/// A client's writer: its queue into its socket. When the queue ends (stdin
/// EOF, or the client left) the socket is half-closed if `half_close`.
pub fn write_queue(
    sock: &dyn Stream,
    queue: Option<Receiver<Chunk>>,
    counters: &Counters,
    half_close: bool,
) {
    if let Some(queue) = queue {
        for chunk in queue {
            if sock.send_all(&chunk).is_err() {
                // The client is gone; its reader reports the end.
                return;
            }
            counters.add_sent(chunk.len());
        }
    }
    if half_close {
        let _ = sock.shutdown(Shutdown::Write);
    }
}
