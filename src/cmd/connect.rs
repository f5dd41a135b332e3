//! `sonda connect HOST PORT`: connect within a deadline, then relay.

use crate::cli::{ConnectArgs, TimeoutMethodArg};
use crate::engine::addr::resolve;
use crate::engine::connect::{connect_any, Attempt, ConnectOpts, TimeoutMethod};
use crate::engine::relay::{relay, End};
use crate::engine::socket::display_addr;
use crate::error::Exit;
use crate::report;

use super::Global;

pub fn run(global: &Global, args: ConnectArgs) -> anyhow::Result<Exit> {
    let addrs = resolve(&args.host, args.port, global.family)?;
    let opts = ConnectOpts {
        timeout: args.timeout.filter(|d| !d.is_zero()),
        method: match args.timeout_method {
            TimeoutMethodArg::Poll => TimeoutMethod::Poll,
            TimeoutMethodArg::Alarm => TimeoutMethod::Alarm,
        },
        source: args.source,
        sock: args.socket.to_opts(),
    };
    let total = addrs.len();
    let mut tried = 0;
    let (stream, peer, took) = connect_any(&addrs, &opts, |attempt| match attempt {
        Attempt::Trying(addr) => {
            tried += 1;
            report::info(format!(
                "trying {} ({tried} of {total})",
                display_addr(addr)
            ));
        }
        Attempt::Failed(_, err) => report::info(err),
    })?;
    if report::verbose() {
        let local = stream
            .local_addr()
            .map(|a| display_addr(&a))
            .unwrap_or_else(|_| "?".into());
        report::info(format!(
            "connected to {} from {local} in {}",
            display_addr(&peer),
            report::duration(took)
        ));
    }
    let (stats, result) = relay(stream, peer, &args.relay.to_opts());
    report::info(format!(
        "{}: sent {}, received {} in {}",
        display_addr(&peer),
        report::bytes(stats.sent),
        report::bytes(stats.received),
        report::duration(stats.elapsed)
    ));
    match result? {
        End::Done | End::StdoutClosed => Ok(Exit::Success),
    }
}
