//! `farfetch`: dumps another process's memory in hex, `hexdump -C` style, with
//! `process_vm_readv`.
//!
//! The tool is `farfetch PID ADDR LEN` ([`farfetch`] below); until there is a shell
//! to give it arguments, this program makes its own target: it forks a child that
//! writes a message into a page of its own, then dumps that page's first 96 bytes
//! from the outside and checks they are the child's message. Exit 0 on success.
#![no_std]
#![no_main]

use ulib::{Errno, Fork, PAGE_SIZE, WaitStatus, check, map, print, println, prot};

ulib::entry!(main);

const MESSAGE: &[u8] = b"farfetch: this line lives in the child's memory, read from its page tables\n";

/// Prints `len` bytes of process `pid` from `addr`, 16 a line: address, hex, text.
/// Returns the bytes it could read (fewer if the range runs into unmapped memory).
fn farfetch(pid: i64, addr: u64, len: usize) -> Result<usize, Errno> {
    let mut buf = [0u8; 256];
    let mut done = 0;
    while done < len {
        let want = (len - done).min(buf.len());
        let got = match ulib::process_vm_read(pid, &mut buf[..want], addr + done as u64) {
            Ok(got) => got,
            Err(e) if done > 0 => {
                println!("farfetch: stopped at {:#x}: {}", addr + done as u64, e);
                return Ok(done);
            }
            Err(e) => return Err(e),
        };
        for (i, line) in buf[..got].chunks(16).enumerate() {
            print!("{:016x} ", addr + (done + i * 16) as u64);
            for j in 0..16 {
                match line.get(j) {
                    Some(byte) => print!(" {byte:02x}"),
                    None => print!("   "),
                }
            }
            print!("  |");
            for &byte in line {
                print!("{}", if byte.is_ascii_graphic() || byte == b' ' { byte as char } else { '.' });
            }
            println!("|");
        }
        done += got;
        if got < want {
            break;
        }
    }
    Ok(done)
}

fn main() -> i32 {
    let flag = ulib::mmap(PAGE_SIZE, prot::READ | prot::WRITE, map::SHARED).expect("mmap") as *mut u64;
    let page = ulib::mmap(PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap");
    match ulib::fork().expect("fork") {
        Fork::Child => {
            for (i, &byte) in MESSAGE.iter().enumerate() {
                // SAFETY: inside our private page; no reference points into it.
                unsafe { page.add(i).write_volatile(byte) };
            }
            // SAFETY: the shared page: 1 = written, 2 = read, you may go.
            unsafe { flag.write_volatile(1) };
            // SAFETY: as above.
            while unsafe { flag.read_volatile() } != 2 {
                ulib::yield_now();
            }
            0
        }
        Fork::Parent(pid) => {
            // SAFETY: the shared page, as in the child.
            while unsafe { flag.read_volatile() } != 1 {
                ulib::yield_now();
            }
            println!("farfetch {pid} {:#x} 96", page as u64);
            let n = farfetch(pid, page as u64, 96);
            let mut copy = [0u8; 96];
            let again = ulib::process_vm_read(pid, &mut copy, page as u64);
            // SAFETY: the shared page.
            unsafe { flag.write_volatile(2) };
            let (_, status) = ulib::waitpid(pid).expect("waitpid");
            check!(n == Ok(96) && again == Ok(96), "farfetch read {:?}, then {:?}", n, again);
            check!(&copy[..MESSAGE.len()] == MESSAGE, "the child's message did not come back");
            check!(copy[MESSAGE.len()..].iter().all(|&b| b == 0), "the rest of the child's page is not zero");
            // SAFETY: our own copy of the page is still mapped.
            check!(unsafe { page.read_volatile() } == 0, "the child's write showed in the parent");
            check!(status == WaitStatus::Exited(0), "child: {:?}", status);
            0
        }
    }
}
