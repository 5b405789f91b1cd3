//! `explain ADDR [PID]`: what the memory manager knows about one address of a
//! process (without PID: this tool's own address space), and what the next page
//! fault there would do for a read, a write and an instruction fetch.
//!
//! ```text
//!  $ explain 0x7ff000010000 12
//!  explain 0x7ff000010000 in pid 12
//!  page-table walk:
//!    PML4[255] = 0x0000000002f3c067  P W U A D          -> next table at frame 0x2f3c
//!    ...
//!    PT  [ 16] = 0xffffff...fffe2   not present: swap entry, slot 29
//!  VMA   7ff000000000-7ff000400000 rw-p anonymous
//!  frame none (the page is on the swap disk, slot 29)
//!  next fault here:
//!    read   major fault: read the page back from swap slot 29
//! ```
//! The kernel fills an `abi::Explain` (syscall 1020) using the fault handler's own
//! decision code; this program only prints it. A bad address or PID: a message and
//! exit code 1.
#![no_std]
#![no_main]

use abi::Explain;
use abi::explain::{self, FRAME_FLAG_NAMES, VMA_FLAG_NAMES, next_fault};
use ulib::{print, println};

ulib::entry!(main);

/// An entry's flag bits, as the walk prints them (bit, name).
const ENTRY_BITS: [(u32, &str); 8] =
    [(0, "P"), (1, "W"), (2, "U"), (5, "A"), (6, "D"), (7, "PS"), (9, "COW"), (63, "NX")];

fn main() -> i32 {
    let (Some(addr_arg), pid_arg) = (ulib::argv::arg(1), ulib::argv::arg(2)) else {
        ulib::eprintln!("usage: explain ADDR [PID]   (ADDR in hex, 0x...; PID: default this tool)");
        return 1;
    };
    let Some(addr) = parse_addr(addr_arg) else {
        ulib::eprintln!("explain: bad address {addr_arg:?} (hex, like 0x7ff000000000)");
        return 1;
    };
    let pid = match pid_arg.map(str::parse::<ulib::Pid>) {
        None => 0,
        Some(Ok(pid)) => pid,
        Some(Err(_)) => {
            ulib::eprintln!("explain: bad pid {:?}", pid_arg.unwrap_or_default());
            return 1;
        }
    };
    match ulib::explain(pid, addr) {
        Ok(e) => {
            print_explain(&e, if pid == 0 { ulib::getpid() } else { pid });
            0
        }
        Err(e) => {
            ulib::eprintln!("explain: {addr_arg} in pid {}: {e}", pid_arg.unwrap_or("self"));
            1
        }
    }
}

/// Parses `0x...` hex, or decimal.
fn parse_addr(text: &str) -> Option<u64> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

fn print_explain(e: &Explain, pid: ulib::Pid) {
    println!("explain {:#x} in pid {pid}", e.addr);
    println!("page-table walk (PML4 -> PDPT -> PD -> PT):");
    for (i, &entry) in e.entries[..e.nr_levels as usize].iter().enumerate() {
        let level = 4 - i as u32;
        let name = ["PT  ", "PD  ", "PDPT", "PML4"][level as usize - 1];
        let index = (e.addr >> (12 + 9 * (level - 1))) & 511;
        print!("  {name}[{index:3}] = {entry:#018x} ");
        if entry & 1 == 0 {
            if entry == 0 {
                println!(" not present (empty: nothing was ever mapped here)");
            } else if level == 1 && e.swap_slot != explain::NONE {
                println!(" not present: swap entry, slot {}", e.swap_slot);
            } else {
                println!(" not present");
            }
            continue;
        }
        for (bit, name) in ENTRY_BITS {
            let is_meaningful = match name {
                "PS" => level == 2 || level == 3,
                "COW" => level == 1,
                _ => true,
            };
            if is_meaningful && entry & (1 << bit) != 0 {
                print!(" {name}");
            }
        }
        let frame = (entry & 0x000f_ffff_ffff_f000) >> 12;
        if level == 1 || entry & (1 << 7) != 0 {
            println!("   -> page at frame {frame:#x}");
        } else {
            println!("   -> next table at frame {frame:#x}");
        }
    }
    print_vma(e);
    print_frame(e);
    println!("next fault here:");
    for (i, name) in ["read ", "write", "exec "].iter().enumerate() {
        let code = e.on_access[i];
        match code {
            next_fault::SWAP_IN | next_fault::SWAP_CACHE_HIT => {
                println!("  {name}  {} {}", next_fault::describe(code), e.on_access_arg[i])
            }
            _ => println!("  {name}  {}", next_fault::describe(code)),
        }
    }
}

fn print_vma(e: &Explain) {
    if e.vma_end == 0 {
        println!("VMA   none covers this address");
        return;
    }
    let p = |bit: u64, c: char| if e.vma_prot & bit != 0 { c } else { '-' };
    let shared = if e.vma_flags & 1 != 0 { 's' } else { 'p' };
    print!("VMA   {:x}-{:x} {}{}{}{shared}", e.vma_start, e.vma_end, p(1, 'r'), p(2, 'w'), p(4, 'x'));
    match e.backing {
        explain::backing::IMAGE => print!(" program image {} at offset {:#x}", e.backing_id, e.backing_offset),
        explain::backing::FILE => print!(" file (page cache {}) at offset {:#x}", e.backing_id, e.backing_offset),
        _ => print!(" anonymous"),
    }
    for (bit, name) in VMA_FLAG_NAMES {
        if bit != 1 && e.vma_flags & bit != 0 {
            print!(" {name}");
        }
    }
    println!();
}

fn print_frame(e: &Explain) {
    if e.frame == explain::NONE {
        match e.swap_slot {
            explain::NONE => println!("frame none"),
            slot => println!("frame none (the page is on the swap disk, slot {slot})"),
        }
        return;
    }
    print!("frame {:#x} ({})", e.frame, explain::frame_state::name(e.frame_state));
    if e.frame_state == explain::frame_state::NOT_RAM {
        println!();
        return;
    }
    print!(" refcount {} mapcount {}", e.refcount, e.map_count);
    for (bit, name) in FRAME_FLAG_NAMES {
        if e.frame_flags & bit != 0 {
            print!(" {name}");
        }
    }
    println!();
    if e.swap_slot != explain::NONE {
        println!("      in the swap cache for slot {}", e.swap_slot);
    }
    if e.file_id != explain::NONE {
        println!("      page cache: file {} page {}", e.file_id, e.file_index);
    }
}
