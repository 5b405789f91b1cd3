//! The initial stack of a new program: argc, argv, envp and the auxiliary vector,
//! laid out as the System V x86-64 ABI says and Linux's `create_elf_tables` does.
//!
//! A C runtime reads all of it before `main`: musl's `_start` passes the stack
//! pointer to `__libc_start_main`, which finds argc at `[rsp]`, argv after it,
//! envp after argv's NULL, and the auxiliary vector after envp's NULL; from the
//! vector it takes the page size (`AT_PAGESZ`), the program headers (`AT_PHDR`,
//! `AT_PHNUM`: that is how it finds the `PT_TLS` segment to set up thread-local
//! storage) and 16 random bytes for the stack protector's canary (`AT_RANDOM`).
//!
//! ```text
//!  top  ->  8 zero bytes (end marker)
//!           "hello_c\0"                       AT_EXECFN points here (the program's name)
//!           "HOME=/\0" "TERM=linux\0"         environment strings
//!           "hello_c\0" "one\0" ...           argument strings
//!           "x86_64\0"                        AT_PLATFORM points here
//!           16 random bytes                   AT_RANDOM points here
//!           (padding to 16 bytes)
//!           auxv: (type, value) pairs ..., (AT_NULL, 0)
//!           NULL                              end of envp
//!           envp[0] ... envp[envc - 1]        pointers to the environment strings
//!           NULL                              end of argv
//!           argv[0] ... argv[argc - 1]        pointers to the argument strings
//!  sp   ->  argc                              sp is 16-byte aligned
//! ```
//!
//! [`build`] produces the bytes of `[sp, top)` and `sp`; the kernel copies them into
//! the new address space's stack and starts the program with `rsp = sp`. [`parse`]
//! reads such bytes back (for tests, host and in-QEMU, and for anyone who wants to
//! print what a program was given).
//!
//! Neighbours: the kernel's `proc::exec` fills in an [`ExecInfo`] from the parsed ELF
//! ([`crate::elf::Executable::phdr_vaddr`]) and calls [`build`].

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Auxiliary-vector entry types (`AT_*`, Linux's `include/uapi/linux/auxvec.h`).
pub mod at {
    /// End of the vector.
    pub const NULL: u64 = 0;
    /// Address of the program headers in memory.
    pub const PHDR: u64 = 3;
    /// Size of one program header (56).
    pub const PHENT: u64 = 4;
    /// Number of program headers.
    pub const PHNUM: u64 = 5;
    /// The page size.
    pub const PAGESZ: u64 = 6;
    /// Where the dynamic linker was loaded (0: there is none).
    pub const BASE: u64 = 7;
    /// Flags (0).
    pub const FLAGS: u64 = 8;
    /// The program's entry point.
    pub const ENTRY: u64 = 9;
    /// Real user id.
    pub const UID: u64 = 11;
    /// Effective user id.
    pub const EUID: u64 = 12;
    /// Real group id.
    pub const GID: u64 = 13;
    /// Effective group id.
    pub const EGID: u64 = 14;
    /// Address of a string naming the CPU ("x86_64").
    pub const PLATFORM: u64 = 15;
    /// CPU feature bits (CPUID leaf 1, EDX).
    pub const HWCAP: u64 = 16;
    /// Clock ticks per second, for `times()` (100).
    pub const CLKTCK: u64 = 17;
    /// Nonzero for a setuid-like program, whose environment libc must not trust.
    pub const SECURE: u64 = 23;
    /// Address of 16 random bytes.
    pub const RANDOM: u64 = 25;
    /// More CPU feature bits (0 here).
    pub const HWCAP2: u64 = 26;
    /// Address of the program's file name.
    pub const EXECFN: u64 = 31;
}

/// The size of a word on the stack.
const WORD: u64 = 8;

/// The CPU name `AT_PLATFORM` points at.
pub const PLATFORM: &str = "x86_64";

/// What the auxiliary vector says about the program; the rest is fixed or computed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecInfo {
    /// Where the program headers are in memory (`AT_PHDR`; 0 if no segment loads them).
    pub phdr_vaddr: u64,
    /// How many program headers there are (`AT_PHNUM`).
    pub nr_program_headers: u64,
    /// The entry point (`AT_ENTRY`).
    pub entry: u64,
    /// CPU feature bits (`AT_HWCAP`).
    pub hwcap: u64,
}

/// The initial stack: the bytes of `[sp, top)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialStack {
    /// The stack pointer the program starts with (16-byte aligned), pointing at argc.
    pub sp: u64,
    /// The memory from `sp` up to the top of the stack.
    pub bytes: Vec<u8>,
}

/// Why an initial stack cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackError {
    /// The strings and tables need more than `limit` bytes (Linux: `E2BIG`).
    TooBig {
        /// Bytes needed.
        needed: u64,
        /// Bytes allowed.
        limit: u64,
    },
    /// A string contains a NUL byte, which would cut it short.
    NulInString,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StackError::TooBig { needed, limit } => {
                write!(f, "arguments and environment need {needed} bytes of stack, more than {limit}")
            }
            StackError::NulInString => write!(f, "an argument or environment string contains a NUL byte"),
        }
    }
}

/// Places bytes downwards from the top of the stack.
struct Placer {
    /// The lowest address placed so far.
    at: u64,
    /// What goes where: (address, bytes).
    pieces: Vec<(u64, Vec<u8>)>,
}

impl Placer {
    /// Puts `bytes` just below everything placed so far; returns their address.
    fn push(&mut self, bytes: Vec<u8>) -> u64 {
        self.at -= bytes.len() as u64;
        self.pieces.push((self.at, bytes));
        self.at
    }

    /// Puts `text` and a NUL terminator below everything placed so far.
    fn push_str(&mut self, text: &str) -> u64 {
        let mut bytes = Vec::with_capacity(text.len() + 1);
        bytes.extend_from_slice(text.as_bytes());
        bytes.push(0);
        self.push(bytes)
    }
}

/// Builds the initial stack of a program below `top` (8-byte aligned): `argv` (the
/// first is the program's name, also `AT_EXECFN`), `envp`, the auxiliary vector
/// from `info` and the 16 `random` bytes. Fails if the result would take more than
/// `limit` bytes, or a string holds a NUL.
pub fn build(
    top: u64,
    limit: u64,
    argv: &[&str],
    envp: &[&str],
    info: &ExecInfo,
    random: [u8; 16],
) -> Result<InitialStack, StackError> {
    if argv.iter().chain(envp).any(|s| s.as_bytes().contains(&0)) {
        return Err(StackError::NulInString);
    }
    let string_bytes: u64 = argv.iter().chain(envp).map(|s| s.len() as u64 + 1).sum();
    let execfn = argv.first().copied().unwrap_or("");
    // Check the size before placing anything: a huge argv must not be copied first.
    let table_words = 1 + (argv.len() as u64 + 1) + (envp.len() as u64 + 1) + 2 * 20;
    let estimate = WORD + execfn.len() as u64 + 1 + string_bytes + PLATFORM.len() as u64 + 1 + 16 + 16 + table_words * WORD;
    if estimate > limit {
        return Err(StackError::TooBig { needed: estimate, limit });
    }
    let mut placer = Placer { at: top, pieces: Vec::new() };
    placer.push(alloc::vec![0; WORD as usize]);
    let execfn_addr = placer.push_str(execfn);
    let env_addrs: Vec<u64> = envp.iter().rev().map(|s| placer.push_str(s)).collect();
    let arg_addrs: Vec<u64> = argv.iter().rev().map(|s| placer.push_str(s)).collect();
    let platform_addr = placer.push_str(PLATFORM);
    let random_addr = placer.push(random.to_vec());

    // Linux's order (minus the vDSO and the signal-stack size, which we do not have).
    let aux = [
        (at::HWCAP, info.hwcap),
        (at::PAGESZ, crate::addr::PAGE_SIZE),
        (at::CLKTCK, 100),
        (at::PHDR, info.phdr_vaddr),
        (at::PHENT, 56),
        (at::PHNUM, info.nr_program_headers),
        (at::BASE, 0),
        (at::FLAGS, 0),
        (at::ENTRY, info.entry),
        (at::UID, 0),
        (at::EUID, 0),
        (at::GID, 0),
        (at::EGID, 0),
        (at::SECURE, 0),
        (at::RANDOM, random_addr),
        (at::HWCAP2, 0),
        (at::EXECFN, execfn_addr),
        (at::PLATFORM, platform_addr),
        (at::NULL, 0),
    ];
    let mut table: Vec<u64> = Vec::new();
    table.push(argv.len() as u64);
    table.extend(arg_addrs.iter().rev());
    table.push(0);
    table.extend(env_addrs.iter().rev());
    table.push(0);
    for (kind, value) in aux {
        table.extend([kind, value]);
    }
    let sp = (placer.at - table.len() as u64 * WORD) & !15;
    let needed = top - sp;
    if needed > limit {
        return Err(StackError::TooBig { needed, limit });
    }
    let mut bytes = alloc::vec![0u8; needed as usize];
    for (i, word) in table.iter().enumerate() {
        let at = i * WORD as usize;
        bytes[at..at + WORD as usize].copy_from_slice(&word.to_le_bytes());
    }
    for (addr, piece) in &placer.pieces {
        let at = (addr - sp) as usize;
        bytes[at..at + piece.len()].copy_from_slice(piece);
    }
    Ok(InitialStack { sp, bytes })
}

/// What [`parse`] reads from an initial stack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedStack {
    /// The argument strings.
    pub argv: Vec<String>,
    /// The environment strings.
    pub envp: Vec<String>,
    /// The auxiliary vector, `AT_NULL` left out, in order.
    pub auxv: Vec<(u64, u64)>,
}

impl ParsedStack {
    /// Returns the value of auxiliary entry `kind`, if present.
    pub fn aux(&self, kind: u64) -> Option<u64> {
        self.auxv.iter().find(|(k, _)| *k == kind).map(|(_, v)| *v)
    }
}

/// Reads `bytes`, the memory from address `sp` upwards, as an initial stack.
/// Returns `None` if a pointer or string leaves `bytes` or a table is unterminated.
pub fn parse(bytes: &[u8], sp: u64) -> Option<ParsedStack> {
    let word = |index: usize| -> Option<u64> {
        let at = index.checked_mul(WORD as usize)?;
        bytes.get(at..at + WORD as usize).map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
    };
    let string = |addr: u64| -> Option<String> {
        let start = usize::try_from(addr.checked_sub(sp)?).ok()?;
        let rest = bytes.get(start..)?;
        let len = rest.iter().position(|&b| b == 0)?;
        String::from_utf8(rest[..len].to_vec()).ok()
    };
    let argc = usize::try_from(word(0)?).ok()?;
    let mut parsed = ParsedStack::default();
    for i in 0..argc {
        parsed.argv.push(string(word(1 + i)?)?);
    }
    let mut index = 1 + argc;
    if word(index)? != 0 {
        return None;
    }
    index += 1;
    while word(index)? != 0 {
        parsed.envp.push(string(word(index)?)?);
        index += 1;
    }
    index += 1;
    loop {
        let (kind, value) = (word(index)?, word(index + 1)?);
        if kind == at::NULL {
            return Some(parsed);
        }
        parsed.auxv.push((kind, value));
        index += 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const TOP: u64 = 0x7fff_ffff_f000;
    const INFO: ExecInfo = ExecInfo { phdr_vaddr: 0x40_0040, nr_program_headers: 6, entry: 0x40_104e, hwcap: 0x178b_fbff };
    const RANDOM: [u8; 16] = [7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

    fn sample() -> InitialStack {
        build(TOP, 64 * 1024, &["hello_c", "one", "two"], &["HOME=/", "TERM=linux"], &INFO, RANDOM).expect("build")
    }

    #[test]
    fn argc_argv_envp_read_back() {
        let stack = sample();
        let parsed = parse(&stack.bytes, stack.sp).expect("parse");
        assert_eq!(parsed.argv, ["hello_c", "one", "two"]);
        assert_eq!(parsed.envp, ["HOME=/", "TERM=linux"]);
    }

    #[test]
    fn sp_is_16_byte_aligned_and_bytes_reach_the_top() {
        for nr_args in 0..6 {
            let argv = vec!["x"; nr_args + 1];
            let stack = build(TOP, 64 * 1024, &argv, &[], &INFO, RANDOM).expect("build");
            assert_eq!(stack.sp % 16, 0, "{nr_args} arguments");
            assert_eq!(stack.sp + stack.bytes.len() as u64, TOP);
            assert_eq!(stack.bytes[stack.bytes.len() - 8..], [0; 8], "the end marker");
        }
    }

    #[test]
    fn auxv_has_what_musl_reads_and_ends_with_at_null() {
        let stack = sample();
        let parsed = parse(&stack.bytes, stack.sp).expect("parse");
        assert_eq!(parsed.aux(at::PAGESZ), Some(4096));
        assert_eq!(parsed.aux(at::PHDR), Some(INFO.phdr_vaddr));
        assert_eq!(parsed.aux(at::PHNUM), Some(6));
        assert_eq!(parsed.aux(at::PHENT), Some(56));
        assert_eq!(parsed.aux(at::ENTRY), Some(INFO.entry));
        assert_eq!(parsed.aux(at::SECURE), Some(0));
        assert_eq!(parsed.aux(at::UID), parsed.aux(at::EUID));
        // the vector ends ..., AT_EXECFN, AT_PLATFORM, AT_NULL in memory
        let words: Vec<u64> =
            stack.bytes.as_chunks::<8>().0.iter().map(|w| u64::from_le_bytes(*w)).collect();
        let execfn_pair = words.windows(2).position(|w| w == [at::EXECFN, parsed.aux(at::EXECFN).unwrap()]).unwrap();
        assert_eq!(words[execfn_pair + 2], at::PLATFORM);
        assert_eq!(words[execfn_pair + 4..execfn_pair + 6], [at::NULL, 0]);
    }

    #[test]
    fn pointers_lead_to_the_random_bytes_the_platform_and_the_name() {
        let stack = sample();
        let parsed = parse(&stack.bytes, stack.sp).expect("parse");
        let at = |addr: u64| (addr - stack.sp) as usize;
        let random = parsed.aux(at::RANDOM).unwrap();
        assert_eq!(stack.bytes[at(random)..at(random) + 16], RANDOM);
        let platform = parsed.aux(at::PLATFORM).unwrap();
        assert_eq!(&stack.bytes[at(platform)..at(platform) + 7], b"x86_64\0");
        let execfn = parsed.aux(at::EXECFN).unwrap();
        assert_eq!(&stack.bytes[at(execfn)..at(execfn) + 8], b"hello_c\0");
        assert!(random > stack.sp && random + 16 <= TOP);
    }

    #[test]
    fn too_much_is_refused_before_anything_is_built() {
        let long = "y".repeat(5000);
        let err = build(TOP, 4096, &["p", &long], &[], &INFO, RANDOM).unwrap_err();
        assert!(matches!(err, StackError::TooBig { limit: 4096, .. }), "{err:?}");
        assert_eq!(build(TOP, 4096, &["p\0q"], &[], &INFO, RANDOM), Err(StackError::NulInString));
    }

    #[test]
    fn no_arguments_at_all_still_terminates_every_table() {
        let stack = build(TOP, 4096, &[], &[], &INFO, RANDOM).expect("build");
        let parsed = parse(&stack.bytes, stack.sp).expect("parse");
        assert!(parsed.argv.is_empty() && parsed.envp.is_empty());
        assert_eq!(parsed.aux(at::PAGESZ), Some(4096));
    }

    #[test]
    fn parse_refuses_truncated_stacks() {
        let stack = sample();
        for cut in [8, 40, 100] {
            assert_eq!(parse(&stack.bytes[..cut], stack.sp), None, "cut at {cut}");
        }
    }
}
