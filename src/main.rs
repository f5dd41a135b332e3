//! Parse, dispatch, map the outcome to an exit status; nothing else.

use clap::Parser;

use sonda::cli::Cli;
use sonda::error::{exit_of, hint_of, Exit};
use sonda::{cmd, report, signals};

fn main() {
    std::process::exit(run().code());
}

fn run() -> Exit {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cmd::usage_error(e),
    };
    report::set_level(cli.verbose, cli.quiet);
    if let Err(e) = signals::install() {
        report::error(format!("install signal handling: {e}"), None);
        return Exit::Failure;
    }
    match cmd::dispatch(cli) {
        Ok(exit) => exit,
        Err(e) => {
            let exit = exit_of(&e);
            // Usage errors read alike whether clap or the config layer
            // found them.
            let tail = if exit == Exit::Usage {
                cmd::usage_tail()
            } else {
                ""
            };
            report::error(format!("{e:#}{tail}"), hint_of(&e));
            exit
        }
    }
}
