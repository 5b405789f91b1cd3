//! Base and bounds: the simplest relocation hardware.
//!
//! Every address the process issues is *virtual*, from 0 to its size. The MMU holds two
//! registers for the running process: `base` (where its memory starts physically) and
//! `bounds` (its size). A virtual address `va < bounds` becomes `base + va`; any other
//! is a segmentation violation, and the OS kills the process. Moving a process is
//! copying its memory and loading a new base: its virtual addresses do not change (the
//! "two tracers" experiment: the same trace before and after a move).

use super::{between, rng_from};
use crate::Model;
use crate::args::{ArgError, Args, arg_error, bytes};
use crate::exercise::Exercise;

/// The model's entry in the front end.
pub const MODEL: Model = Model {
    name: "bounds",
    summary: "base and bounds: translate a trace, bounds violations, relocating a process",
    options: "\
  --asize SIZE      virtual address space size (default 1K)
  --psize SIZE      physical memory size (default 16K)
  --base N          base register (default random)
  --bounds N        bounds register (default random)
  --addresses LIST  virtual addresses to translate, e.g. 0,430,0x209 (default random)
  --num N           how many random addresses (default 5)
  --move NEWBASE    then relocate the process to NEWBASE and translate the trace again",
    build_fn: exercise,
};

/// The two registers of base-and-bounds hardware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BaseBounds {
    /// Physical address of virtual address 0.
    pub base: u64,
    /// Size of the address space: legal virtual addresses are `0..bounds`.
    pub bounds: u64,
}

impl BaseBounds {
    /// Returns the physical address of `va`, or `None` for a bounds violation.
    pub fn translate(self, va: u64) -> Option<u64> {
        (va < self.bounds).then(|| self.base + va)
    }
}

/// Builds the exercise from the options.
fn exercise(args: &Args) -> Result<Exercise, ArgError> {
    let mut rng = rng_from(args)?;
    let asize = args.number_or("asize", 1 << 10)?;
    let psize = args.number_or("psize", 16 << 10)?;
    if asize == 0 || psize < asize {
        return Err(arg_error("need 0 < --asize <= --psize"));
    }
    let bounds = match args.number("bounds")? {
        Some(bounds) => bounds,
        None => between(&mut rng, asize / 4, asize),
    };
    let base = match args.number("base")? {
        Some(base) => base,
        None => rng.below(psize - bounds + 1),
    };
    if bounds > psize || base > psize - bounds {
        return Err(arg_error(format!(
            "base {base} + bounds {bounds} does not fit in {psize} bytes"
        )));
    }
    let num = args.number_or("num", 5)?;
    let addresses = match args.numbers("addresses")? {
        Some(list) => list,
        None => (0..num).map(|_| rng.below(asize)).collect(),
    };
    let new_base = args.number("move")?;
    if let Some(new_base) = new_base.filter(|&nb| nb > psize - bounds) {
        return Err(arg_error(format!(
            "--move {new_base}: bounds {bounds} do not fit in {psize} bytes there"
        )));
    }

    let mut ex = Exercise::default();
    ex.given(format!(
        "base and bounds: address space {}, physical memory {}",
        bytes(asize),
        bytes(psize)
    ));
    let regs = BaseBounds { base, bounds };
    ask_trace(&mut ex, regs, &addresses);
    if let Some(new_base) = new_base {
        let moved = BaseBounds {
            base: new_base,
            bounds,
        };
        ex.given(format!(
            "then the OS moves the process: copies its {bounds} bytes from {base} to {new_base}, sets base = {new_base}"
        ));
        ask_trace(&mut ex, moved, &addresses);
        ex.sum_up(format!(
            "after the move every virtual address is the same and every valid physical address moved by {:+}:",
            new_base as i64 - base as i64
        ));
        ex.sum_up("the process cannot tell it was moved (it never sees a physical address).");
    }
    let nr_valid = addresses
        .iter()
        .filter(|&&va| regs.translate(va).is_some())
        .count();
    ex.sum_up(format!("{nr_valid} of {} addresses valid", addresses.len()));
    Ok(ex)
}

/// Adds the registers as setup and one question per address.
fn ask_trace(ex: &mut Exercise, regs: BaseBounds, addresses: &[u64]) {
    ex.given(format!("  base   = {:#010x} ({})", regs.base, regs.base));
    ex.given(format!(
        "  bounds = {} (legal virtual addresses 0..={})",
        regs.bounds,
        regs.bounds.saturating_sub(1)
    ));
    for &va in addresses {
        let prompt = format!("VA {va:#06x} ({va}): physical address, or fault?");
        match regs.translate(va) {
            Some(pa) => ex.ask(
                prompt,
                vec![
                    format!("{va} < bounds {}: valid", regs.bounds),
                    format!("PA = base + VA = {} + {va} = {pa} ({pa:#x})", regs.base),
                ],
                pa.to_string(),
            ),
            None => ex.ask(
                prompt,
                vec![format!(
                    "{va} >= bounds {}: segmentation violation, the process is killed",
                    regs.bounds
                )],
                "fault",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build;
    use mm_core::xorshift::XorShift;

    #[test]
    fn hand_worked_trace_translates_and_faults() {
        let ex = build(
            "bounds",
            &[
                "--base",
                "12418",
                "--bounds",
                "472",
                "--addresses",
                "430,521,0,471,472",
            ],
        )
        .unwrap();
        let answers: Vec<&str> = ex.questions.iter().map(|q| q.answer.as_str()).collect();
        assert_eq!(answers, ["12848", "fault", "12418", "12889", "fault"]);
    }

    #[test]
    fn relocation_keeps_virtual_addresses_and_moves_physical_ones() {
        let args = [
            "--base",
            "1000",
            "--bounds",
            "300",
            "--addresses",
            "5,299,300",
            "--move",
            "5000",
        ];
        let ex = build("bounds", &args).unwrap();
        let answers: Vec<&str> = ex.questions.iter().map(|q| q.answer.as_str()).collect();
        assert_eq!(answers, ["1005", "1299", "fault", "5005", "5299", "fault"]);
        assert!(
            build("bounds", &["--bounds", "300", "--move", "16200"]).is_err(),
            "a move past memory is refused"
        );
    }

    #[test]
    fn bounds_are_never_exceeded_without_a_fault() {
        let mut rng = XorShift(0x5eed);
        for _ in 0..10_000 {
            let psize = 1 + rng.below(1 << 16);
            let bounds = rng.below(psize + 1);
            let regs = BaseBounds {
                base: rng.below(psize - bounds + 1),
                bounds,
            };
            let va = rng.below(2 * bounds + 2);
            match regs.translate(va) {
                Some(pa) => {
                    assert!(va < bounds);
                    assert!(regs.base <= pa && pa < regs.base + bounds && pa < psize);
                }
                None => assert!(va >= bounds),
            }
        }
    }

    #[test]
    fn random_exercises_fit_in_memory_and_grade_their_own_answers() {
        for seed in 0..200 {
            let seed = seed.to_string();
            let ex = build("bounds", &["--seed", &seed, "--num", "10"]).unwrap();
            assert!(ex.check(&ex.answer_sheet()).is_perfect());
            for q in ex.questions.iter().filter(|q| q.answer != "fault") {
                assert!(
                    q.answer.parse::<u64>().unwrap() < 16 << 10,
                    "seed {seed}: {q:?}"
                );
            }
        }
    }
}
