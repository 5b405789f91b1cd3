//! `sim`: simulators for the memory chapter, for what x86-64 in long mode cannot show.
//!
//! The kernel runs one mechanism: 4-level paging with a hardware-walked TLB. An OS
//! course teaches more, and works small examples by hand: base-and-bounds relocation,
//! segmentation, free-list allocation, linear, multi-level and inverted page tables of
//! any geometry, a software-managed TLB, replacement policies. Each of those is a
//! *model* here, run from the command line:
//!
//! ```text
//! cargo run -p sim -- <model> [options]        a worked trace
//! cargo run -p sim -- <model> --seed 7 --quiz  a random exercise, questions only
//! cargo run -p sim -- <model> --seed 7 --check answers.txt   graded
//! ```
//!
//! | module | model |
//! |---|---|
//! | [`models::bounds`] | base and bounds: translation, violations, relocation |
//! | [`models::segmentation`] | code/heap/stack segments, growth direction, protection, external fragmentation |
//! | [`models::freelist`] | best/worst/first/next fit with splitting and coalescing, and the kernel's buddy allocator |
//! | [`models::paging`] | linear, multi-level and inverted (hashed) page tables of any geometry |
//! | [`models::tlb`] | a set-associative TLB: replacement, flush vs ASIDs, hardware vs software refill |
//! | [`models::replacement`] | the kernel's replacement policies and OPT on reference strings |
//!
//! Where the kernel has the real thing, the model calls it: the buddy allocator and
//! the replacement policies are `mm-core`'s, the very code the kernel runs.
//! Every model returns an [`exercise::Exercise`]; [`run`] prints it worked, as a quiz,
//! or grades a student's answers. The crate is host-only (`std`) and has no `unsafe`.
#![forbid(unsafe_code)]

pub mod args;
pub mod exercise;
pub mod models;

use args::{ArgError, Args, arg_error};
use exercise::Exercise;

/// One simulator: its command name, what it shows, its options, and the function
/// that builds its exercise.
pub struct Model {
    /// The name on the command line.
    pub name: &'static str,
    /// One line: what the model shows.
    pub summary: &'static str,
    /// Its options, one per line, for `--help`.
    pub options: &'static str,
    /// Builds the exercise from the options.
    pub build_fn: fn(&Args) -> Result<Exercise, ArgError>,
}

/// Every model, in the order of the chapter.
pub const MODELS: &[Model] = &[
    models::bounds::MODEL,
    models::segmentation::MODEL,
    models::freelist::MODEL,
    models::paging::MODEL,
    models::tlb::MODEL,
    models::replacement::MODEL,
];

/// Options every model understands.
const COMMON_OPTIONS: &str = "\
  --seed N          a random exercise (the same N gives the same exercise)
  --quiz            print only the setup and the questions
  --check FILE      grade FILE: one `ID ANSWER` per line (numbers in any base)";

/// What a run printed, and whether it succeeded (for the exit status).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// The text to print.
    pub text: String,
    /// False when answers were graded and some were wrong.
    pub is_success: bool,
}

/// Returns option lines indented for `--help`: options by 2, their continuations by 20.
///
/// (A `\` line continuation in the option strings eats the first line's indentation,
/// so it is put back here rather than trusted.)
fn format_options(options: &str) -> String {
    let indent_fn = |line: &str| {
        let line = line.trim_start();
        if line.starts_with("--") {
            format!("  {line}\n")
        } else {
            format!("{:20}{line}\n", "")
        }
    };
    options
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(indent_fn)
        .collect()
}

/// Returns the `--help` text: every model with its options.
pub fn help() -> String {
    let mut text = String::from(
        "usage: cargo run -p sim -- <model> [options]\n\
         Simulators of the memory chapter; each prints a worked trace.\n\nmodels:\n",
    );
    for model in MODELS {
        text += &format!("  {:<13} {}\n", model.name, model.summary);
    }
    text += &format!(
        "\noptions of every model:\n{}",
        format_options(COMMON_OPTIONS)
    );
    for model in MODELS {
        text += &format!(
            "\n{} options:\n{}",
            model.name,
            format_options(model.options)
        );
    }
    text
}

/// Finds the model called `name`.
pub fn find_model(name: &str) -> Option<&'static Model> {
    MODELS.iter().find(|model| model.name == name)
}

/// Builds the exercise of `model` from the option words (no --quiz/--check handling).
pub fn build(model: &str, words: &[&str]) -> Result<Exercise, ArgError> {
    let model = find_model(model).ok_or_else(|| arg_error(format!("no model `{model}`")))?;
    let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    let args = Args::parse(&words)?;
    let exercise = (model.build_fn)(&args)?;
    args.finish()?;
    Ok(exercise)
}

/// Runs a command line (the words after `cargo run -p sim --`).
pub fn run(words: &[String]) -> Result<Output, ArgError> {
    let Some((name, rest)) = words.split_first() else {
        return Ok(Output {
            text: help(),
            is_success: true,
        });
    };
    if name == "--help" || name == "-h" || name == "help" {
        return Ok(Output {
            text: help(),
            is_success: true,
        });
    }
    let model = find_model(name).ok_or_else(|| {
        arg_error(format!(
            "no model `{name}`; the models are listed by --help"
        ))
    })?;
    let args = Args::parse(rest)?;
    if args.flag("help") {
        let text = format!(
            "{}: {}\n{}{}",
            model.name,
            model.summary,
            format_options(model.options),
            format_options(COMMON_OPTIONS)
        );
        return Ok(Output {
            text,
            is_success: true,
        });
    }
    let is_quiz = args.flag("quiz");
    let check_path = args.text("check").map(String::from);
    let exercise = (model.build_fn)(&args)?;
    args.finish()?;
    if let Some(path) = check_path {
        let answers = std::fs::read_to_string(&path)
            .map_err(|e| arg_error(format!("--check {path}: {e}")))?;
        let grade = exercise.check(&answers);
        return Ok(Output {
            is_success: grade.is_perfect(),
            text: grade.report,
        });
    }
    let text = if is_quiz {
        exercise.quiz()
    } else {
        exercise.worked()
    };
    Ok(Output {
        text,
        is_success: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn help_lists_every_model_and_its_options() {
        let text = run(&words("--help")).unwrap().text;
        for model in MODELS {
            assert!(
                text.contains(&format!("\n  {:<13} {}", model.name, model.summary)),
                "{}",
                model.name
            );
            assert!(
                text.contains(&format!("\n{} options:\n  --", model.name)),
                "{}",
                model.name
            );
        }
        assert_eq!(run(&[]).unwrap().text, text, "no model: the help");
    }

    #[test]
    fn every_model_runs_worked_and_as_a_quiz() {
        for model in MODELS {
            let worked = run(&words(&format!("{} --seed 5", model.name))).unwrap();
            let quiz = run(&words(&format!("{} --seed 5 --quiz", model.name))).unwrap();
            assert!(
                worked.text.contains("answer: ") && !quiz.text.contains("answer: "),
                "{}",
                model.name
            );
        }
        assert!(
            run(&words("paging --levles 2"))
                .unwrap_err()
                .0
                .contains("--levles")
        );
        assert!(run(&words("nosuchmodel")).is_err());
    }
}
