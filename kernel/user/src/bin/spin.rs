//! `spin`: a runaway program: says so and then computes forever, never making a
//! syscall. Only a kill ends it (Ctrl-C when it is the console's foreground
//! process, or `kill PID`); the tests of the console and the shell use it.
#![no_std]
#![no_main]

ulib::entry!(main);

fn main() -> i32 {
    ulib::println!("spin: pid {} running until killed", ulib::getpid());
    let mut x: u64 = 1;
    loop {
        x = core::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}
