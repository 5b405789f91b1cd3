//! The command-line front end: `cargo run -p sim -- <model> [options]`; `--help` lists
//! every model. All the work is in the library (`sim::run`), so tests run the same code.

use std::process::ExitCode;

fn main() -> ExitCode {
    let words: Vec<String> = std::env::args().skip(1).collect();
    match sim::run(&words) {
        Ok(output) => {
            print!("{}", output.text);
            if output.is_success {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("sim: {error}");
            ExitCode::from(2)
        }
    }
}
