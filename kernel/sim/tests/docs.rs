//! The book's simulator chapter shows real output: every ```text block of
//! docs/simulators.md that starts with `$ cargo run -p sim -- ARGS` must hold exactly
//! what `sim` prints for ARGS. Paths starting with `docs/` are taken from the
//! workspace root. After changing a model, regenerate the chapter with
//! `UPDATE_DOCS=1 cargo test -p sim --test docs` and read the diff.

use std::path::PathBuf;

const PROMPT: &str = "$ cargo run -p sim -- ";

/// Returns the workspace root (this crate is kernel/sim).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Returns what `sim` prints for a command line of the chapter.
fn output_of(command: &str) -> String {
    let words: Vec<String> = command
        .split_whitespace()
        .map(|w| {
            if w.starts_with("docs/") {
                root().join(w).display().to_string()
            } else {
                w.to_string()
            }
        })
        .collect();
    match sim::run(&words) {
        Ok(output) => output.text,
        Err(error) => format!("sim: {error}\n"),
    }
}

#[test]
fn simulator_chapter_shows_real_output() {
    let path = root().join("docs/simulators.md");
    let text = std::fs::read_to_string(&path).expect("docs/simulators.md");
    let lines: Vec<&str> = text.lines().collect();
    let (mut rebuilt, mut mismatches, mut nr_blocks) = (Vec::new(), Vec::new(), 0);
    let mut i = 0;
    while i < lines.len() {
        rebuilt.push(lines[i].to_string());
        let Some(command) = lines[i]
            .strip_prefix(PROMPT)
            .filter(|_| i > 0 && lines[i - 1] == "```text")
        else {
            i += 1;
            continue;
        };
        nr_blocks += 1;
        let end = i
            + 1
            + lines[i + 1..]
                .iter()
                .position(|l| *l == "```")
                .expect("an unclosed ```text block");
        let shown = lines[i + 1..end].join("\n");
        let real = output_of(command);
        if shown.trim_end() != real.trim_end() {
            mismatches.push(format!(
                "`{command}`:\n--- the chapter shows:\n{shown}\n--- sim prints:\n{real}"
            ));
        }
        rebuilt.extend(real.trim_end().lines().map(String::from));
        i = end;
    }
    assert!(
        nr_blocks >= 10,
        "the chapter runs only {nr_blocks} commands"
    );
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, rebuilt.join("\n") + "\n").expect("write docs/simulators.md");
        return;
    }
    assert!(
        mismatches.is_empty(),
        "{} blocks differ (UPDATE_DOCS=1 regenerates them):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
