//! The hidden `sonda generate man|completions --dir DIR`.

use crate::cli::{GenerateArgs, GenerateWhat};
use crate::docs;
use crate::error::Exit;

pub fn run(args: GenerateArgs) -> anyhow::Result<Exit> {
    match args.what {
        GenerateWhat::Man => docs::write_man_pages(&args.dir)?,
        GenerateWhat::Completions => docs::write_completions(&args.dir)?,
    }
    Ok(Exit::Success)
}
