//! ELF64 executables: what a loader needs from a file, checked, from untrusted bytes.
//!
//! [`parse`] reads an x86-64 ELF executable from a byte slice and returns an
//! [`Executable`]: the entry point and the `PT_LOAD` segments ([`LoadSegment`]:
//! where each goes, how big it is in memory and in the file, its R/W/X flags). It
//! never panics and never trusts a field: every offset and size is read with
//! explicit little-endian reads, bounds-checked and overflow-checked, and anything
//! the loader could not map safely is an [`ElfError`].
//!
//! The parts of the file it reads:
//! ```text
//!  offset  ELF header (64 bytes)          program header (56 bytes, e_phnum of them at e_phoff)
//!  0x00    e_ident: 7f 'E' 'L' 'F',       0x00  p_type   (1 = PT_LOAD, 3 = PT_INTERP)
//!          class 2 (64-bit), data 1 (LE), 0x04  p_flags  (PF_X 1, PF_W 2, PF_R 4)
//!          version 1                      0x08  p_offset (where the bytes are in the file)
//!  0x10    e_type (2 = ET_EXEC)           0x10  p_vaddr  (where they go in memory)
//!  0x12    e_machine (62 = x86-64)        0x18  p_paddr  (ignored)
//!  0x14    e_version (1)                  0x20  p_filesz (bytes from the file...)
//!  0x18    e_entry                        0x28  p_memsz  (...then zeros up to memsz: .bss)
//!  0x20    e_phoff                        0x30  p_align
//!  0x34    e_ehsize (64)
//!  0x36    e_phentsize (56)
//!  0x38    e_phnum
//! ```
//!
//! On top of the ELF rules, a segment must fit the way the kernel maps it, page by
//! page with its own protection: its address and file offset agree modulo the page
//! size, it lies in the lower (user) half, and no two segments share a page.
//! Position-independent executables (`ET_DYN`) are refused: the kernel does not
//! relocate; user programs are linked at a fixed address (`--no-pie`).
//!
//! Neighbours: [`crate::vma`] supplies [`VmProt`], which [`SegmentFlags::prot`]
//! produces for each segment's VMA; the kernel's process code loads the segments.

use core::fmt;

use crate::addr::PAGE_SIZE;
use crate::vma::VmProt;

/// `e_type` of an executable with fixed addresses.
pub const ET_EXEC: u16 = 2;
/// `e_type` of a position-independent executable or shared library.
pub const ET_DYN: u16 = 3;
/// `e_machine` of x86-64.
pub const EM_X86_64: u16 = 62;
/// `p_type` of a loadable segment.
pub const PT_LOAD: u32 = 1;
/// `p_type` of the segment naming a dynamic linker.
pub const PT_INTERP: u32 = 3;
/// The most `PT_LOAD` segments an [`Executable`] holds (a linker makes 3 or 4).
pub const MAX_LOAD_SEGMENTS: usize = 16;

/// Size of the ELF64 file header.
const EHDR_SIZE: usize = 64;
/// Size of one ELF64 program header.
const PHDR_SIZE: usize = 56;
/// The end of the lower canonical half: user addresses are below it.
const USER_END: u64 = 0x0000_8000_0000_0000;

/// Why a byte slice is not an executable the kernel can load.
///
/// `index` is the position of the offending program header in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Shorter than the 64-byte ELF header.
    TooShort,
    /// Does not start with `7f 'E' 'L' 'F'`.
    BadMagic,
    /// Not a 64-bit ELF file (`EI_CLASS`).
    NotElf64,
    /// Not little-endian (`EI_DATA`).
    NotLittleEndian,
    /// `EI_VERSION` or `e_version` is not 1.
    BadVersion,
    /// Built for another CPU (the `e_machine` value).
    WrongMachine(u16),
    /// A position-independent executable or shared library (`ET_DYN`).
    PositionIndependent,
    /// Neither an executable nor a shared object (the `e_type` value: 1 = object file, 4 = core).
    WrongType(u16),
    /// `e_ehsize` is not 64 or `e_phentsize` is not 56.
    BadHeaderSize,
    /// The program header table runs past the end of the file.
    HeadersOutOfFile,
    /// More than [`MAX_LOAD_SEGMENTS`] loadable segments (or `e_phnum` = `PN_XNUM`).
    TooManySegments,
    /// No loadable segment with a nonzero size.
    NoLoadSegments,
    /// The file asks for a dynamic linker (`PT_INTERP`); only static executables load.
    NeedsInterpreter,
    /// A segment's file bytes run past the end of the file.
    SegmentOutOfFile {
        /// Program header index.
        index: u16,
    },
    /// A segment has more bytes in the file than in memory.
    FileSizeExceedsMemSize {
        /// Program header index.
        index: u16,
    },
    /// `p_align` is not a power of two, or `p_vaddr` and `p_offset` differ modulo
    /// the alignment or the page size, so the segment cannot be mapped page by page.
    Unaligned {
        /// Program header index.
        index: u16,
    },
    /// A segment reaches past the lower (user) half of the address space.
    NotInUserHalf {
        /// Program header index.
        index: u16,
    },
    /// Loadable segments are not in ascending address order, as ELF requires.
    Unsorted {
        /// Program header index.
        index: u16,
    },
    /// A segment shares a page with the one before it.
    Overlap {
        /// Program header index.
        index: u16,
    },
    /// The entry point is not inside an executable segment.
    EntryNotExecutable,
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ElfError::TooShort => write!(f, "file shorter than an ELF header"),
            ElfError::BadMagic => write!(f, "not an ELF file (bad magic)"),
            ElfError::NotElf64 => write!(f, "not a 64-bit ELF file"),
            ElfError::NotLittleEndian => write!(f, "not little-endian"),
            ElfError::BadVersion => write!(f, "unknown ELF version"),
            ElfError::WrongMachine(m) => write!(f, "built for machine {m}, not x86-64 ({EM_X86_64})"),
            ElfError::PositionIndependent => {
                write!(f, "position-independent (ET_DYN): link at a fixed address with --no-pie")
            }
            ElfError::WrongType(t) => write!(f, "ELF type {t} is not an executable"),
            ElfError::BadHeaderSize => write!(f, "unexpected ELF or program header size"),
            ElfError::HeadersOutOfFile => write!(f, "program headers past the end of the file"),
            ElfError::TooManySegments => write!(f, "more than {MAX_LOAD_SEGMENTS} loadable segments"),
            ElfError::NoLoadSegments => write!(f, "no loadable segment"),
            ElfError::NeedsInterpreter => write!(f, "dynamically linked (PT_INTERP); link statically"),
            ElfError::SegmentOutOfFile { index } => write!(f, "segment {index} runs past the end of the file"),
            ElfError::FileSizeExceedsMemSize { index } => write!(f, "segment {index}: p_filesz > p_memsz"),
            ElfError::Unaligned { index } => write!(f, "segment {index}: address and file offset misaligned"),
            ElfError::NotInUserHalf { index } => write!(f, "segment {index} is not in the user half"),
            ElfError::Unsorted { index } => write!(f, "segment {index} is below the one before it"),
            ElfError::Overlap { index } => write!(f, "segment {index} shares a page with the one before it"),
            ElfError::EntryNotExecutable => write!(f, "entry point outside every executable segment"),
        }
    }
}

/// The permission bits of a segment (`p_flags`).
///
/// The ELF bit order (X = 1, W = 2, R = 4) is the reverse of `PROT_*`; use
/// [`SegmentFlags::prot`] to get a [`VmProt`].
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentFlags(u32);

impl SegmentFlags {
    /// `PF_X`: the segment may be executed.
    pub const EXEC: SegmentFlags = SegmentFlags(1);
    /// `PF_W`: the segment may be written.
    pub const WRITE: SegmentFlags = SegmentFlags(2);
    /// `PF_R`: the segment may be read.
    pub const READ: SegmentFlags = SegmentFlags(4);

    /// Creates flags from `p_flags`, keeping only R, W and X.
    pub const fn from_bits_truncate(bits: u32) -> SegmentFlags {
        SegmentFlags(bits & 7)
    }

    /// Returns the `PF_*` bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Returns true if the segment may be read.
    pub const fn is_readable(self) -> bool {
        self.0 & Self::READ.0 != 0
    }

    /// Returns true if the segment may be written.
    pub const fn is_writable(self) -> bool {
        self.0 & Self::WRITE.0 != 0
    }

    /// Returns true if the segment may be executed.
    pub const fn is_executable(self) -> bool {
        self.0 & Self::EXEC.0 != 0
    }

    /// Returns the protection for the segment's VMA.
    pub const fn prot(self) -> VmProt {
        let mut bits = 0;
        if self.is_readable() {
            bits |= VmProt::READ.bits();
        }
        if self.is_writable() {
            bits |= VmProt::WRITE.bits();
        }
        if self.is_executable() {
            bits |= VmProt::EXEC.bits();
        }
        VmProt::from_bits_truncate(bits)
    }
}

impl fmt::Debug for SegmentFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bit = |is: bool, c: char| if is { c } else { '-' };
        write!(f, "{}{}{}", bit(self.is_readable(), 'r'), bit(self.is_writable(), 'w'), bit(self.is_executable(), 'x'))
    }
}

/// One loadable segment: `filesz` bytes from the file at `file_offset` go to `vaddr`,
/// followed by zeros up to `memsz` (the `.bss`).
///
/// Guaranteed by [`parse`]: `0 < memsz`, `filesz <= memsz`, the file bytes are
/// inside the file, `vaddr + memsz` is in the user half, and `vaddr` and
/// `file_offset` are equal modulo the page size. `vaddr` itself need not be
/// page-aligned. The file bytes after `filesz` in the segment's last page belong
/// to something else: the loader must zero them, not map them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LoadSegment {
    /// Where the segment starts in memory.
    pub vaddr: u64,
    /// Its size in memory.
    pub memsz: u64,
    /// Where its bytes start in the file.
    pub file_offset: u64,
    /// How many bytes come from the file.
    pub filesz: u64,
    /// Its permissions.
    pub flags: SegmentFlags,
    /// `p_align` as written (0 or a power of two).
    pub align: u64,
}

impl LoadSegment {
    /// Returns the end (exclusive) of the segment in memory.
    pub const fn end(&self) -> u64 {
        self.vaddr + self.memsz
    }

    /// Returns the page-aligned range `[start, end)` the segment occupies.
    pub const fn page_range(&self) -> (u64, u64) {
        (self.vaddr / PAGE_SIZE * PAGE_SIZE, self.end().div_ceil(PAGE_SIZE) * PAGE_SIZE)
    }

    /// Returns true if `addr` is inside the segment in memory.
    pub const fn contains(&self, addr: u64) -> bool {
        self.vaddr <= addr && addr < self.end()
    }
}

/// A parsed executable: its entry point and loadable segments, in address order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Executable<'a> {
    file: &'a [u8],
    entry: u64,
    segments: [LoadSegment; MAX_LOAD_SEGMENTS],
    nr_segments: usize,
    phoff: u64,
    phnum: u16,
}

impl<'a> Executable<'a> {
    /// Returns the entry point (`e_entry`): where the program starts.
    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// Returns the loadable segments, sorted by address, none of them empty.
    pub fn segments(&self) -> &[LoadSegment] {
        &self.segments[..self.nr_segments]
    }

    /// Returns the number of program headers (`e_phnum`), of every type.
    pub fn nr_program_headers(&self) -> u16 {
        self.phnum
    }

    /// Returns where the program headers are in memory once the segments are
    /// loaded, or `None` if no loadable segment carries them from the file.
    ///
    /// This is the `AT_PHDR` a C runtime reads to find `PT_TLS` (Linux computes it
    /// the same way: the `PT_LOAD` whose file bytes contain `e_phoff`).
    pub fn phdr_vaddr(&self) -> Option<u64> {
        let table_len = u64::from(self.phnum) * PHDR_SIZE as u64;
        self.segments()
            .iter()
            .find(|s| s.file_offset <= self.phoff && self.phoff + table_len <= s.file_offset + s.filesz)
            .map(|s| s.vaddr + (self.phoff - s.file_offset))
    }

    /// Returns the `filesz` bytes of `segment` from the file.
    ///
    /// Returns an empty slice for a segment outside the file's bounds (which no
    /// segment from [`Executable::segments`] is).
    pub fn file_bytes(&self, segment: &LoadSegment) -> &'a [u8] {
        let start = usize::try_from(segment.file_offset).unwrap_or(usize::MAX);
        let len = usize::try_from(segment.filesz).unwrap_or(usize::MAX);
        start.checked_add(len).and_then(|end| self.file.get(start..end)).unwrap_or(&[])
    }
}

/// Reads `N` bytes at `offset`, or fails with `err` if they are not all in `bytes`.
fn read_bytes<const N: usize>(bytes: &[u8], offset: u64, err: ElfError) -> Result<[u8; N], ElfError> {
    usize::try_from(offset)
        .ok()
        .and_then(|start| bytes.get(start..))
        .and_then(|rest| rest.first_chunk::<N>())
        .copied()
        .ok_or(err)
}

fn read_u16(bytes: &[u8], offset: u64, err: ElfError) -> Result<u16, ElfError> {
    read_bytes(bytes, offset, err).map(u16::from_le_bytes)
}

fn read_u32(bytes: &[u8], offset: u64, err: ElfError) -> Result<u32, ElfError> {
    read_bytes(bytes, offset, err).map(u32::from_le_bytes)
}

fn read_u64(bytes: &[u8], offset: u64, err: ElfError) -> Result<u64, ElfError> {
    read_bytes(bytes, offset, err).map(u64::from_le_bytes)
}

/// The fields of the ELF header that matter once it is known to be ours.
struct Header {
    entry: u64,
    phoff: u64,
    phnum: u16,
}

/// Checks the identification and the fixed fields of the ELF header.
fn parse_header(bytes: &[u8]) -> Result<Header, ElfError> {
    let ident: [u8; 16] = read_bytes(bytes, 0, ElfError::TooShort)?;
    if bytes.len() < EHDR_SIZE {
        return Err(ElfError::TooShort);
    }
    if ident[..4] != *b"\x7fELF" {
        return Err(ElfError::BadMagic);
    }
    if ident[4] != 2 {
        return Err(ElfError::NotElf64);
    }
    if ident[5] != 1 {
        return Err(ElfError::NotLittleEndian);
    }
    let e = ElfError::TooShort; // every read below is inside the 64 checked bytes
    if ident[6] != 1 || read_u32(bytes, 0x14, e)? != 1 {
        return Err(ElfError::BadVersion);
    }
    match read_u16(bytes, 0x10, e)? {
        ET_EXEC => {}
        ET_DYN => return Err(ElfError::PositionIndependent),
        other => return Err(ElfError::WrongType(other)),
    }
    let machine = read_u16(bytes, 0x12, e)?;
    if machine != EM_X86_64 {
        return Err(ElfError::WrongMachine(machine));
    }
    if usize::from(read_u16(bytes, 0x34, e)?) != EHDR_SIZE || usize::from(read_u16(bytes, 0x36, e)?) != PHDR_SIZE {
        return Err(ElfError::BadHeaderSize);
    }
    let header =
        Header { entry: read_u64(bytes, 0x18, e)?, phoff: read_u64(bytes, 0x20, e)?, phnum: read_u16(bytes, 0x38, e)? };
    if header.phnum == u16::MAX {
        return Err(ElfError::TooManySegments); // PN_XNUM: the count is elsewhere; we do not go there
    }
    let table_end = (header.phnum as u64 * PHDR_SIZE as u64).checked_add(header.phoff);
    if table_end.is_none_or(|end| end > bytes.len() as u64) {
        return Err(ElfError::HeadersOutOfFile);
    }
    Ok(header)
}

/// Reads and checks program header `index` (at `offset`), which has type `PT_LOAD`.
fn parse_load_segment(bytes: &[u8], file_size: u64, offset: u64, index: u16) -> Result<LoadSegment, ElfError> {
    let e = ElfError::HeadersOutOfFile; // the table was checked to be inside the file
    let segment = LoadSegment {
        flags: SegmentFlags::from_bits_truncate(read_u32(bytes, offset + 0x04, e)?),
        file_offset: read_u64(bytes, offset + 0x08, e)?,
        vaddr: read_u64(bytes, offset + 0x10, e)?,
        filesz: read_u64(bytes, offset + 0x20, e)?,
        memsz: read_u64(bytes, offset + 0x28, e)?,
        align: read_u64(bytes, offset + 0x30, e)?,
    };
    let file_end = segment.file_offset.checked_add(segment.filesz);
    if file_end.is_none_or(|end| end > file_size) {
        return Err(ElfError::SegmentOutOfFile { index });
    }
    if segment.filesz > segment.memsz {
        return Err(ElfError::FileSizeExceedsMemSize { index });
    }
    // Mapped page by page: the address and the file offset must agree within a
    // page, and modulo p_align too when that is larger, as ELF requires.
    let modulus = segment.align.max(PAGE_SIZE);
    if !modulus.is_power_of_two() || !segment.vaddr.wrapping_sub(segment.file_offset).is_multiple_of(modulus) {
        return Err(ElfError::Unaligned { index });
    }
    if segment.vaddr.checked_add(segment.memsz).is_none_or(|end| end > USER_END) {
        return Err(ElfError::NotInUserHalf { index });
    }
    Ok(segment)
}

/// Parses an x86-64 ELF executable and checks that every loadable segment can be
/// mapped; see the [module documentation](self) for what is checked.
///
/// Segments with `p_memsz` = 0 are skipped. Program headers other than `PT_LOAD`
/// (`PT_GNU_STACK`, `PT_GNU_RELRO`, `PT_PHDR`, notes, ...) are ignored, except
/// `PT_INTERP`, which means the file needs a dynamic linker.
pub fn parse(bytes: &[u8]) -> Result<Executable<'_>, ElfError> {
    parse_headers(bytes, bytes.len() as u64)
}

/// Parses an executable from its first bytes, `head`, when the whole file is
/// `file_size` bytes long: the ELF header and the program headers must be in
/// `head`; the segments are checked against `file_size`. What `execve` reads
/// when the segments are mapped from the page cache: one page, not the file
/// (a whole file in one kernel buffer is a high-order allocation that memory
/// pressure may refuse). [`Executable::file_bytes`] sees `head` only.
pub fn parse_headers(head: &[u8], file_size: u64) -> Result<Executable<'_>, ElfError> {
    let bytes = head;
    let header = parse_header(bytes)?;
    let mut exe = Executable {
        file: bytes,
        entry: header.entry,
        segments: [LoadSegment::default(); MAX_LOAD_SEGMENTS],
        nr_segments: 0,
        phoff: header.phoff,
        phnum: header.phnum,
    };
    for index in 0..header.phnum {
        let offset = header.phoff + u64::from(index) * PHDR_SIZE as u64;
        match read_u32(bytes, offset, ElfError::HeadersOutOfFile)? {
            PT_INTERP => return Err(ElfError::NeedsInterpreter),
            PT_LOAD => {}
            _ => continue,
        }
        let segment = parse_load_segment(bytes, file_size, offset, index)?;
        if segment.memsz == 0 {
            continue;
        }
        if let Some(prev) = exe.segments().last() {
            if segment.vaddr < prev.vaddr {
                return Err(ElfError::Unsorted { index });
            }
            if segment.page_range().0 < prev.page_range().1 {
                return Err(ElfError::Overlap { index });
            }
        }
        let slot = exe.segments.get_mut(exe.nr_segments).ok_or(ElfError::TooManySegments)?;
        *slot = segment;
        exe.nr_segments += 1;
    }
    if exe.nr_segments == 0 {
        return Err(ElfError::NoLoadSegments);
    }
    if !exe.segments().iter().any(|s| s.flags.is_executable() && s.contains(exe.entry)) {
        return Err(ElfError::EntryNotExecutable);
    }
    Ok(exe)
}

#[cfg(test)]
mod tests;
