//! What every model produces: an [`Exercise`], printed three ways.
//!
//! - **worked** (the default): the setup, then each question with the steps that answer
//!   it and the answer, then a summary: a trace a student can follow line by line;
//! - **quiz** (`--quiz`): the setup and the questions only, numbered, to be answered on
//!   paper or in a file;
//! - **check** (`--check FILE`): the student's file (one `ID ANSWER` per line) graded
//!   against the answers, with the worked steps of every wrong one.
//!
//! Answers compare as numbers when both sides are numbers (`817`, `0x331` and
//! `0b1100110001` are the same answer), else as words, ignoring case and spaces.

use crate::args::parse_number;
use std::fmt::Write as _;

/// One question of an exercise, with its worked answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// Lines given before the question (shown in every mode): a new phase of the setup.
    pub intro: Vec<String>,
    /// What the student writes before the answer in a `--check` file: `1`, `faults`, ...
    pub id: String,
    /// The question, e.g. `VA 0x00f1 (241): physical address?`.
    pub prompt: String,
    /// The steps that lead to the answer, shown in worked mode.
    pub work: Vec<String>,
    /// The answer, e.g. `817` or `fault`.
    pub answer: String,
}

/// A model's output: setup lines, questions with their work, summary lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exercise {
    /// What the student is given: parameters, tables, the trace.
    pub setup: Vec<String>,
    /// The questions, in order.
    pub questions: Vec<Question>,
    /// Results shown after the questions in worked mode (tables, totals).
    pub summary: Vec<String>,
    /// Setup lines given after some questions: the next question's intro.
    pending: Vec<String>,
}

impl Exercise {
    /// Adds a setup line (before the next question, if questions were already asked).
    pub fn given(&mut self, line: impl Into<String>) {
        if self.questions.is_empty() {
            self.setup.push(line.into());
        } else {
            self.pending.push(line.into());
        }
    }

    /// Adds a question numbered after the numbered ones before it (1, 2, ...).
    pub fn ask(&mut self, prompt: impl Into<String>, work: Vec<String>, answer: impl Into<String>) {
        let nr_numbered = self
            .questions
            .iter()
            .filter(|q| q.id.parse::<u64>().is_ok())
            .count();
        let id = (nr_numbered + 1).to_string();
        self.ask_named(id, prompt, work, answer);
    }

    /// Adds a question with its own id (`faults`, `hit-rate`, ...).
    pub fn ask_named(
        &mut self,
        id: impl Into<String>,
        prompt: impl Into<String>,
        work: Vec<String>,
        answer: impl Into<String>,
    ) {
        let intro = std::mem::take(&mut self.pending);
        self.questions.push(Question {
            intro,
            id: id.into(),
            prompt: prompt.into(),
            work,
            answer: answer.into(),
        });
    }

    /// Adds a summary line.
    pub fn sum_up(&mut self, line: impl Into<String>) {
        self.summary.push(line.into());
    }

    /// Returns the answer to question `id`, if there is one.
    pub fn answer(&self, id: &str) -> Option<&str> {
        self.questions
            .iter()
            .find(|q| q.id == id)
            .map(|q| q.answer.as_str())
    }

    /// Returns the worked trace: setup, every question with its steps and answer, summary.
    pub fn worked(&self) -> String {
        let mut out = self.questions_text(true);
        if !self.summary.is_empty() {
            writeln!(out).unwrap();
            self.summary
                .iter()
                .for_each(|line| writeln!(out, "{line}").unwrap());
        }
        out
    }

    /// Returns the setup and the bare questions, and how to get them graded.
    pub fn quiz(&self) -> String {
        let mut out = self.questions_text(false);
        writeln!(
            out,
            "(write one `ID ANSWER` per line in a file, then rerun with --check FILE)"
        )
        .unwrap();
        out
    }

    /// Returns the setup, every question (with its steps and answer when
    /// `with_work`), and the lines after the last question.
    fn questions_text(&self, with_work: bool) -> String {
        let mut out = String::new();
        self.setup
            .iter()
            .for_each(|line| writeln!(out, "{line}").unwrap());
        for question in &self.questions {
            question
                .intro
                .iter()
                .for_each(|line| writeln!(out, "{line}").unwrap());
            writeln!(out, "[{}] {}", question.id, question.prompt).unwrap();
            if with_work {
                question
                    .work
                    .iter()
                    .for_each(|line| writeln!(out, "      {line}").unwrap());
                writeln!(out, "      answer: {}", question.answer).unwrap();
            }
        }
        self.pending.iter().for_each(|line| writeln!(out, "{line}").unwrap());
        out
    }

    /// Returns the exercise's own answers as a student writes them, one `ID ANSWER`
    /// line per question (tests: a generated exercise must grade them as perfect).
    #[cfg(test)]
    pub(crate) fn answer_sheet(&self) -> String {
        self.questions
            .iter()
            .map(|q| format!("{} {}\n", q.id, q.answer))
            .collect()
    }

    /// Grades `answers` (one `ID ANSWER` per line; `#` starts a comment).
    pub fn check(&self, answers: &str) -> Grade {
        let mut given: Vec<(&str, &str)> = Vec::new();
        for line in answers.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (id, answer) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            given.push((
                id.trim_end_matches([':', ']']).trim_start_matches('['),
                answer.trim(),
            ));
        }
        let mut report = String::new();
        let mut nr_correct = 0;
        for question in &self.questions {
            match given.iter().find(|(id, _)| *id == question.id) {
                Some((_, answer)) if answers_match(&question.answer, answer) => {
                    nr_correct += 1;
                    writeln!(report, "[{}] ok: {}", question.id, question.answer).unwrap();
                }
                Some((_, answer)) => {
                    writeln!(
                        report,
                        "[{}] WRONG: you said `{answer}`, the answer is `{}`",
                        question.id, question.answer
                    )
                    .unwrap();
                    question
                        .work
                        .iter()
                        .for_each(|line| writeln!(report, "      {line}").unwrap());
                }
                None => writeln!(
                    report,
                    "[{}] missing (the answer is `{}`)",
                    question.id, question.answer
                )
                .unwrap(),
            }
        }
        for (id, _) in given
            .iter()
            .filter(|(id, _)| !self.questions.iter().any(|q| q.id == *id))
        {
            writeln!(report, "[{id}] there is no such question").unwrap();
        }
        writeln!(report, "score: {nr_correct}/{}", self.questions.len()).unwrap();
        Grade {
            nr_correct,
            nr_questions: self.questions.len(),
            report,
        }
    }
}

/// The result of grading a student's answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grade {
    /// Questions answered correctly.
    pub nr_correct: usize,
    /// Questions asked.
    pub nr_questions: usize,
    /// One line per question, then the score.
    pub report: String,
}

impl Grade {
    /// Returns true if every question was answered correctly.
    pub fn is_perfect(&self) -> bool {
        self.nr_correct == self.nr_questions
    }
}

/// Returns true if `given` is the same answer as `expected`.
///
/// Numbers compare by value (`817` = `0x331`), a fraction to 3 decimals (`0.75` =
/// `0.750`), words ignoring case and spaces.
pub fn answers_match(expected: &str, given: &str) -> bool {
    let normalize_fn = |s: &str| s.to_lowercase().split_whitespace().collect::<String>();
    if let (Ok(a), Ok(b)) = (parse_number(expected), parse_number(given)) {
        return a == b;
    }
    if let (Ok(a), Ok(b)) = (expected.trim().parse::<f64>(), given.trim().parse::<f64>()) {
        return (a - b).abs() < 0.0005;
    }
    normalize_fn(expected) == normalize_fn(given)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_questions() -> Exercise {
        let mut exercise = Exercise::default();
        exercise.given("a setup line");
        exercise.ask("VA 241?", vec!["VPN 3".into()], "817");
        exercise.ask_named("faults", "faults?", vec![], "fault");
        exercise
    }

    #[test]
    fn answers_compare_as_numbers_or_words() {
        assert!(answers_match("817", "0x331"));
        assert!(answers_match("817", "0b1100110001"));
        assert!(!answers_match("817", "816"));
        assert!(answers_match("0.750", "0.75"));
        assert!(answers_match("fault", " FAULT "));
        assert!(!answers_match("fault", "817"));
    }

    #[test]
    fn check_grades_each_question_and_shows_the_work_of_wrong_ones() {
        let exercise = two_questions();
        let perfect = exercise.check("1 0x331\nfaults: fault\n");
        assert!(perfect.is_perfect(), "{}", perfect.report);
        let wrong = exercise.check("# my answers\n1 816\n");
        assert_eq!(wrong.nr_correct, 0);
        assert!(
            wrong
                .report
                .contains("[1] WRONG: you said `816`, the answer is `817`")
        );
        assert!(wrong.report.contains("VPN 3"));
        assert!(wrong.report.contains("[faults] missing"));
        assert!(wrong.report.contains("score: 0/2"));
    }

    #[test]
    fn lines_given_after_the_last_question_are_still_printed() {
        let mut exercise = two_questions();
        exercise.given("a closing line");
        assert!(exercise.worked().contains("a closing line") && exercise.quiz().contains("a closing line"));
    }

    #[test]
    fn quiz_hides_the_answers_that_worked_shows() {
        let exercise = two_questions();
        assert!(exercise.worked().contains("answer: 817"));
        assert!(!exercise.quiz().contains("817"));
        assert!(exercise.quiz().contains("[1] VA 241?"));
    }
}
