//! `hello`: the smallest program: `write`, `getpid`, exit 0.
#![no_std]
#![no_main]

use ulib::{check, println};

ulib::entry!(main);

fn main() -> i32 {
    let msg = b"hello: hello from ring 3\n";
    let written = ulib::write(1, msg);
    check!(written == Ok(msg.len()), "write returned {:?}, expected Ok({})", written, msg.len());
    let pid = ulib::getpid();
    check!(pid > 0, "getpid returned {}", pid);
    println!("hello: my pid is {}", pid);
    0
}
