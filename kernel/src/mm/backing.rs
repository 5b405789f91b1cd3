//! Backing objects: what supplies the contents of a VMA's pages on the first touch.
//!
//! An anonymous VMA's pages start as zeros. Any other VMA points at a *backing
//! object* (`Backing::Image { id, offset }` in the VMA: object `id`, and the byte
//! offset of the VMA's first page in it), and a fault on page `index` of the object
//! asks it to fill a fresh frame: [`BackingObject::read_page`]. Linux's equivalent
//! is a VMA's `vm_file` and its `address_space_operations::read_folio`.
//!
//! ```text
//!   VMA [start, end), Backing::Image { id, offset }
//!   fault at addr  -> index = (offset + (addr - start)) / PAGE_SIZE
//!                  -> OBJECTS[id].read_page(index, new frame)    (no address-space state)
//! ```
//! Today the only objects are **program images**: the file bytes of an ELF
//! segment embedded in the kernel, registered by the loader (`proc::exec`), one
//! object per segment; bytes past the end of the slice are zero, which is how
//! `.bss` comes out zeroed. Files will be objects too (an inode, whose pages come
//! through the page cache), so `read_page` is shaped like a file read: it gets a
//! page index and a destination frame, nothing about the faulting process.
//!
//! Lock state: `OBJECTS` is held only to find an object; `read_page` runs with no
//! lock of this module held.
#![deny(unsafe_code)]

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::PAGE_SIZE;
use super::frame::NewPage;
use crate::sync::IrqMutex;

/// Something whose pages a VMA can map: it fills a frame with the bytes of one page.
pub trait BackingObject: Send + Sync {
    /// Copies page `index` of the object (bytes `index * PAGE_SIZE ..`) into `dst`,
    /// which arrives zero-filled; bytes past the end of the object stay zero.
    fn read_page(&self, index: u64, dst: &mut NewPage);
}

/// Names an object so that registering the same one twice finds the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKey {
    /// A program image: the address and length of its bytes.
    Image {
        /// Address of the first byte.
        addr: usize,
        /// Length in bytes.
        len: usize,
    },
}

/// A program image: bytes of an ELF file embedded in the kernel, from a segment's
/// first page boundary to its last file byte.
pub struct ProgramImage {
    bytes: &'static [u8],
}

impl BackingObject for ProgramImage {
    fn read_page(&self, index: u64, dst: &mut NewPage) {
        let start = index.saturating_mul(PAGE_SIZE).min(self.bytes.len() as u64) as usize;
        let end = (start + PAGE_SIZE as usize).min(self.bytes.len());
        dst.write_bytes(0, &self.bytes[start..end]);
    }
}

/// Every registered object, by id (its index here). Objects are never removed.
static OBJECTS: IrqMutex<Vec<(ObjectKey, Arc<dyn BackingObject>)>> =
    IrqMutex::new_ranked(crate::sync::LockRank::BackingObjects, Vec::new());

/// Reserves room for `nr_objects` more objects (the loader's images, at boot).
pub fn reserve(nr_objects: usize) {
    OBJECTS.lock().reserve(nr_objects);
}

/// Returns the id of the object named `key`, registering `make_fn()` under it if
/// there is none yet.
pub fn find_or_register(key: ObjectKey, make_fn: impl FnOnce() -> Arc<dyn BackingObject>) -> u32 {
    let mut objects = OBJECTS.lock();
    if let Some(id) = objects.iter().position(|(k, _)| *k == key) {
        return id as u32;
    }
    objects.push((key, make_fn()));
    (objects.len() - 1) as u32
}

/// Registers the program image `bytes` (or finds it registered) and returns its id.
pub fn register_image(bytes: &'static [u8]) -> u32 {
    let key = ObjectKey::Image { addr: bytes.as_ptr() as usize, len: bytes.len() };
    find_or_register(key, || Arc::new(ProgramImage { bytes }))
}

/// Fills `dst` with page `index` of object `id` (see [`BackingObject::read_page`]).
/// Panics if no object has that id: every id in a VMA came from registration.
pub fn read_page(id: u32, index: u64, dst: &mut NewPage) {
    let object = match OBJECTS.lock().get(id as usize) {
        Some((_, object)) => object.clone(),
        None => panic!("backing::read_page: no object {id}"),
    };
    object.read_page(index, dst);
}
