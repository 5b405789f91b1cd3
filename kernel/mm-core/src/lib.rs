//! `mm-core`: the kernel's memory-management algorithms, with no hardware in them.
//!
//! Everything here works on frame numbers, page numbers and plain data, so it builds
//! for the kernel (`x86_64-unknown-none`) and for the host, where `cargo test` runs
//! its unit and randomized tests natively. The kernel crate wraps these types with
//! locks and the direct physical map; it is the only crate that says `unsafe`.
//!
//! | module | what it holds |
//! |---|---|
//! | [`addr`] | `PhysAddr`, `VirtAddr`, `Frame`, `Page`, `Order` |
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

extern crate alloc;

pub mod addr;
