//! The committed man pages and completions are what the generator writes
//! now, and every page is clean roff with the sections the project requires.

#![allow(clippy::unwrap_used)] // a test that cannot set up should fail loudly

mod common;

use std::path::Path;
use std::process::Command;

const FIX: &str =
    "cargo run -- generate man --dir man && cargo run -- generate completions --dir completions";

fn generate(what: &str, dir: &Path) {
    let status = Command::new(common::bin())
        .args(["generate", what, "--dir"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
}

fn compare(what: &str, committed: &str) {
    let tmp = tempfile::tempdir().unwrap();
    generate(what, tmp.path());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(committed);
    let mut fresh: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    fresh.sort();
    let mut have: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    have.sort();
    assert_eq!(
        fresh, have,
        "{committed}/ has other files than the generator writes; run: {FIX}"
    );
    for name in fresh {
        let new = std::fs::read(tmp.path().join(&name)).unwrap();
        let old = std::fs::read(root.join(&name)).unwrap();
        assert!(
            new == old,
            "{committed}/{} is stale; regenerate with: {FIX}",
            name.to_string_lossy()
        );
    }
}

#[test]
fn man_pages_are_current() {
    compare("man", "man");
}

#[test]
fn completions_are_current() {
    compare("completions", "completions");
}

#[test]
fn man_pages_have_required_sections_and_no_groff_warnings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let have_groff = common::have("groff");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for section in [
            "NAME",
            "SYNOPSIS",
            "DESCRIPTION",
            "OPTIONS",
            "EXAMPLES",
            "EXIT STATUS",
            "SEE ALSO",
        ] {
            assert!(
                text.contains(&format!(".SH {section}"))
                    || text.contains(&format!(".SH \"{section}\"")),
                "{} lacks {section}",
                path.display()
            );
        }
        if have_groff {
            let out = Command::new("groff")
                .args(["-man", "-ww", "-z"])
                .arg(&path)
                .output()
                .unwrap();
            assert!(out.status.success(), "groff failed on {}", path.display());
            assert!(
                out.stderr.is_empty(),
                "groff warns on {}:\n{}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            eprintln!("note: groff not installed, roff warnings not checked");
        }
    }
}
