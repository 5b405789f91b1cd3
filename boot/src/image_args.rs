//! Runner options a kernel image carries itself, in an ELF section named `.runner_args`.
//!
//! Most test images run with the defaults, but a few need a machine of their own: a
//! swap test wants 64 MiB of RAM so that a modest working set overflows it, and the
//! I/O-error test needs a swap disk that fails on purpose (`--swap-blkdebug`). A test
//! binary cannot pass flags to the runner (cargo starts the runner, not the test), so
//! the image says what it needs: `kernel::runner_args!(b"--memory 64M")` puts the bytes
//! in the section, and [`read`] finds them before QEMU starts. The words are parsed
//! like flags given after the kernel path; flags on the real command line come later
//! and win.
//!
//! Only the ELF64 section headers are read: `e_shoff`, `e_shentsize`, `e_shnum`,
//! `e_shstrndx` in the file header, then each section's name, offset and size.

use std::path::Path;

/// The section name the kernel's `runner_args!` macro uses.
pub const SECTION: &str = ".runner_args";

/// Returns the little-endian `u16` at `offset` of `bytes`, if it is inside.
pub(crate) fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(offset..offset + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(offset..offset + 4)?.try_into().ok()?))
}

/// Returns the little-endian `u64` at `offset` of `bytes`, if it is inside.
pub(crate) fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(offset..offset + 8)?.try_into().ok()?))
}

/// Returns the bytes of section `name` of the ELF64 file `elf`, if it has one.
///
/// `None` for anything that is not a little-endian ELF64 file with sane section
/// headers: the caller then runs with no image arguments.
pub fn section<'a>(elf: &'a [u8], name: &str) -> Option<&'a [u8]> {
    if elf.get(0..4)? != b"\x7fELF" || *elf.get(4)? != 2 || *elf.get(5)? != 1 {
        return None;
    }
    let shoff = usize::try_from(u64_at(elf, 0x28)?).ok()?;
    let shentsize = usize::from(u16_at(elf, 0x3a)?);
    let shnum = usize::from(u16_at(elf, 0x3c)?);
    let shstrndx = usize::from(u16_at(elf, 0x3e)?);
    if shentsize < 0x40 {
        return None;
    }
    let header = |i: usize| -> Option<(u32, usize, usize)> {
        let at = shoff.checked_add(i.checked_mul(shentsize)?)?;
        let name = u32_at(elf, at)?;
        let offset = usize::try_from(u64_at(elf, at + 0x18)?).ok()?;
        let size = usize::try_from(u64_at(elf, at + 0x20)?).ok()?;
        Some((name, offset, size))
    };
    let (_, strtab_offset, strtab_size) = header(shstrndx)?;
    let strtab = elf.get(strtab_offset..strtab_offset.checked_add(strtab_size)?)?;
    (0..shnum).find_map(|i| {
        let (name_offset, offset, size) = header(i)?;
        let rest = strtab.get(name_offset as usize..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        (&rest[..end] == name.as_bytes()).then(|| elf.get(offset..offset.checked_add(size)?)).flatten()
    })
}

/// Returns the runner arguments stored in `kernel`'s `.runner_args` section (none if
/// it has no such section). Fails only if the file cannot be read or the section
/// is not UTF-8.
pub fn read(kernel: &Path) -> Result<Vec<String>, String> {
    let elf = std::fs::read(kernel).map_err(|e| format!("reading {}: {e}", kernel.display()))?;
    let Some(bytes) = section(&elf, SECTION) else {
        return Ok(Vec::new());
    };
    let text = std::str::from_utf8(bytes).map_err(|_| format!("{SECTION} of {} is not UTF-8", kernel.display()))?;
    Ok(text.trim_end_matches('\0').split_whitespace().map(String::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a minimal ELF64 with a null section, `.shstrtab` and one named section.
    fn tiny_elf(name: &str, contents: &[u8]) -> Vec<u8> {
        let mut strtab = b"\0.shstrtab\0".to_vec();
        let name_offset = strtab.len() as u32;
        strtab.extend_from_slice(name.as_bytes());
        strtab.push(0);
        let mut elf = vec![0u8; 0x40];
        elf[0..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        let strtab_at = elf.len();
        elf.extend_from_slice(&strtab);
        let contents_at = elf.len();
        elf.extend_from_slice(contents);
        let shoff = elf.len();
        let mut push_header = |name: u32, offset: usize, size: usize| {
            let mut h = vec![0u8; 0x40];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(offset as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            elf.extend_from_slice(&h);
        };
        push_header(0, 0, 0);
        push_header(1, strtab_at, strtab.len());
        push_header(name_offset, contents_at, contents.len());
        elf[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&0x40u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        elf
    }

    #[test]
    fn finds_the_named_section() {
        let elf = tiny_elf(SECTION, b"--memory 64M");
        assert_eq!(section(&elf, SECTION), Some(&b"--memory 64M"[..]));
        assert_eq!(section(&elf, ".other"), None);
    }

    #[test]
    fn garbage_is_not_an_elf() {
        assert_eq!(section(b"not an elf file at all, but long enough to have a header......", SECTION), None);
        let mut elf = tiny_elf(SECTION, b"x");
        elf[0x28] = 0xff; // section headers past the end
        assert_eq!(section(&elf, SECTION), None);
    }
}
