//! The user program's ELF file the Linux guest runs: the very bytes our kernel ran.
//!
//! The kernel embeds each user program's file unchanged (see
//! `kernel/src/user_programs.rs`), built with the kernel's own cargo profile. So the
//! runner cuts the program out of the kernel image it was given: the embedded ELF
//! file that holds the program's marker string (`Program::marker`, a piece of one
//! of its output lines only it prints; an ELF file's length is where its section or
//! program header table ends, whichever is last).

use crate::image_args::{u16_at, u64_at};

/// Returns the ELF file of program `name` embedded in `kernel_image`: the one that
/// contains `marker`.
pub fn for_kernel<'a>(kernel_image: &'a [u8], name: &str, marker: &[u8]) -> Result<&'a [u8], String> {
    embedded_elf_with(kernel_image, marker)
        .ok_or_else(|| format!("the kernel image embeds no {name} program (kernel/src/user_programs.rs)"))
}

/// Returns true if `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Returns the first ELF64 file embedded in `image` (not at its start) whose bytes
/// contain `marker`.
pub fn embedded_elf_with<'a>(image: &'a [u8], marker: &[u8]) -> Option<&'a [u8]> {
    (1..image.len().saturating_sub(4))
        .filter(|&at| image[at..].starts_with(b"\x7fELF"))
        .filter_map(|at| Some(&image[at..at + elf_len(&image[at..])?]))
        .find(|elf| contains(elf, marker))
}

/// Returns the length of the ELF64 file at the start of `bytes`, taken as the end
/// of its section header table or of its program header table, whichever is last;
/// `None` if that is past the end of `bytes` or the header is not ELF64.
fn elf_len(bytes: &[u8]) -> Option<usize> {
    if bytes.get(4) != Some(&2) {
        return None;
    }
    let table_end = |offset_at: usize, entsize_at: usize, count_at: usize| -> Option<usize> {
        let offset = usize::try_from(u64_at(bytes, offset_at)?).ok()?;
        offset.checked_add(usize::from(u16_at(bytes, entsize_at)?) * usize::from(u16_at(bytes, count_at)?))
    };
    let len = table_end(0x28, 0x3a, 0x3c)?.max(table_end(0x20, 0x36, 0x38)?);
    (len <= bytes.len() && len >= 0x40).then_some(len)
}

#[cfg(test)]
mod tests {
    use super::super::Program;
    use super::*;

    /// Returns a fake ELF64 file: its header, `body`, and a section header table of
    /// 2 entries at its end.
    fn fake_elf(body: &[u8]) -> Vec<u8> {
        let mut elf = vec![0u8; 0x40];
        elf[..5].copy_from_slice(b"\x7fELF\x02");
        elf.extend_from_slice(body);
        let shoff = elf.len() as u64;
        elf[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&0x40u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&2u16.to_le_bytes());
        elf.extend_from_slice(&[0xaa; 0x80]);
        elf
    }

    #[test]
    fn the_embedded_file_with_the_marker_is_cut_out_whole() {
        let other = fake_elf(b"hello: world");
        let swapload = fake_elf(b"...swapload: region_mib={}...");
        let bench = fake_elf(b"...bench: warm-up wrote {} pages...");
        let image = [&fake_elf(b"kernel")[..], &other, &swapload, &bench, b"more kernel data"].concat();
        assert_eq!(for_kernel(&image, "swapload", Program::Swapload.marker()), Ok(&swapload[..]));
        assert_eq!(for_kernel(&image, "bench", Program::Bench.marker()), Ok(&bench[..]));
        let err = for_kernel(&image, "other", b"not there").unwrap_err();
        assert!(err.contains("embeds no other program"), "{err}");
    }

    #[test]
    fn a_file_cut_short_is_not_taken() {
        let swapload = fake_elf(b"swapload: region_mib=");
        let image = [b"kernel".as_slice(), &swapload[..swapload.len() - 1]].concat();
        assert_eq!(embedded_elf_with(&image, Program::Swapload.marker()), None);
    }

}
