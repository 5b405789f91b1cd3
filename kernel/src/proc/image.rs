//! Program images that VMAs can be backed by: byte slices of the embedded ELF files.
//!
//! The loader registers, for each loadable segment, the file bytes that belong in
//! its pages (starting at the segment's first page boundary, ending at its last
//! file byte) and gets an id. A VMA with `Backing::Image { id, offset }` fills a
//! faulting page with the bytes at `offset + (page - vma.start)`; bytes past the
//! end of the slice are zero, which is how `.bss` comes out zeroed.

use alloc::vec::Vec;

use crate::mm::PAGE_SIZE;
use crate::sync::IrqMutex;

static IMAGES: IrqMutex<Vec<&'static [u8]>> = IrqMutex::new(Vec::new());

/// Reserves room for the images of every embedded program (four segments each).
pub fn init() {
    IMAGES.lock().reserve(4 * crate::user_programs::all().count());
}

/// Registers `bytes` (or finds it registered already) and returns its id.
pub fn register(bytes: &'static [u8]) -> u32 {
    let mut images = IMAGES.lock();
    if let Some(id) = images.iter().position(|b| b.as_ptr() == bytes.as_ptr() && b.len() == bytes.len()) {
        return id as u32;
    }
    images.push(bytes);
    (images.len() - 1) as u32
}

/// Returns the bytes of image `id` for the page at `offset` (at most 4096, maybe none).
pub fn page_bytes(id: u32, offset: u64) -> &'static [u8] {
    let bytes = IMAGES.lock()[id as usize];
    let start = (offset as usize).min(bytes.len());
    let end = (offset + PAGE_SIZE).min(bytes.len() as u64) as usize;
    &bytes[start..end]
}
