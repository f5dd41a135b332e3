//! `sonda probe --reproduce [PORT]`: make TIME-WAIT on loopback and show
//! EADDRINUSE, then SO_REUSEADDR succeeding. A demonstration for teaching;
//! every socket it opens is closed before it returns.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use crate::engine::diag::trial::{trial, BindOpts, BindTarget, Target};
use crate::engine::diag::State;
use crate::engine::socket::{listen_on, tcp_connect, Proto, SocketOpts};
use crate::error::{Error, Exit};

use super::print_stdout;
use super::probe::{gather, render_table};

/// The demonstration on `port` (0: a free one).
pub fn run(port: u16) -> anyhow::Result<Exit> {
    let listener = listen_reuseaddr(port)?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("getsockname", &e))?;
    let port = addr.port();
    print_stdout(&format!(
        "1. a server listens on {addr} (with SO_REUSEADDR, as servers set it)\n"
    ))?;

    let fail = |what: &str, e: std::io::Error| Error::io(what, &e);
    let mut client = tcp_connect(&addr).map_err(|e| fail("connect", e))?;
    let (server_side, peer) = listener.accept().map_err(|e| fail("accept", e))?;
    print_stdout(&format!("2. a client connects from {peer}\n"))?;

    // The server closes first (active close), so its end enters TIME-WAIT;
    // the client reads that EOF and closes too.
    drop(server_side);
    drop(listener);
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| fail("set timeout", e))?;
    let mut sink = [0u8; 64];
    let _ = client.read(&mut sink);
    drop(client);
    wait_for_time_wait(port)?;
    let table = gather(Proto::Tcp, port)?;
    print_stdout(&format!(
        "3. the server closed first, then the client: the server's end of the connection is now in TIME-WAIT for 2*MSL (60 s)\n{}",
        render_table(&table, port, Proto::Tcp)
    ))?;

    let target = Target {
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        v6only: None,
    };
    let plain = trial(
        &BindTarget::Inet(target, Proto::Tcp, SocketOpts::default()),
        BindOpts::Plain,
    );
    let plain_text = match (&plain.errno, &plain.error) {
        (Some(n), Some(e)) => format!("{n} ({e})"),
        _ => "ok".to_string(),
    };
    print_stdout(&format!(
        "4. a restarted server binds {addr} without SO_REUSEADDR: {plain_text}\n"
    ))?;

    let second = listen_reuseaddr(port)?;
    let table = gather(Proto::Tcp, port)?;
    print_stdout(&format!(
        "5. the same with SO_REUSEADDR: ok, it listens beside the TIME-WAIT entry\n{}",
        render_table(&table, port, Proto::Tcp)
    ))?;
    drop(second);

    let shown = plain.raw_errno == Some(libc::EADDRINUSE);
    print_stdout(&format!(
        "6. cleaned up: every socket opened here is closed; the TIME-WAIT entry expires by itself.\n\
         lesson: {}\n",
        if shown {
            "EADDRINUSE after a restart is TIME-WAIT from the old connections; SO_REUSEADDR (which sonda listen sets by default) lets the new listener bind"
        } else {
            "this kernel let the plain bind through, unexpectedly; the table above shows why"
        }
    ))?;
    Ok(if shown { Exit::Success } else { Exit::Failure })
}

/// A loopback listener with SO_REUSEADDR on `port` (0: a free one).
fn listen_reuseaddr(port: u16) -> Result<TcpListener, Error> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let opts = SocketOpts {
        reuseaddr: true,
        ..SocketOpts::default()
    };
    listen_on(addr, &opts, 16, None)
}

/// Polls (bounded) until the socket table shows TIME-WAIT on `port`: the
/// last ACK of the close may still be in flight when we look first.
fn wait_for_time_wait(port: u16) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let table = gather(Proto::Tcp, port)?;
        if table
            .sockets
            .iter()
            .any(|s| s.entry.state == State::TIME_WAIT)
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::new(
                Exit::Failure,
                "reproduce TIME-WAIT",
                "no TIME-WAIT entry appeared within 3 s",
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
