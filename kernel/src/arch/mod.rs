//! Architecture support. Only x86-64 exists; the rest of the kernel names it `arch`.

pub mod x86_64;

pub use self::x86_64::*;
