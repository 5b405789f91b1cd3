//! `echo [-n] [WORD]...`: prints its arguments separated by spaces, then a newline
//! (none with `-n`).
#![no_std]
#![no_main]

ulib::entry!(main);

fn main() -> i32 {
    let mut args = ulib::argv::args().peekable();
    let is_newline = args.next_if_eq(&"-n").is_none();
    let mut line = [0u8; 4096];
    let mut len = 0;
    for (i, word) in args.enumerate() {
        let bytes = word.as_bytes();
        let sep = usize::from(i > 0);
        if len + sep + bytes.len() + 1 > line.len() {
            ulib::eprintln!("echo: line too long");
            return 1;
        }
        if sep == 1 {
            line[len] = b' ';
            len += 1;
        }
        line[len..len + bytes.len()].copy_from_slice(bytes);
        len += bytes.len();
    }
    if is_newline {
        line[len] = b'\n';
        len += 1;
    }
    match ulib::fs::write_all(1, &line[..len]) {
        Ok(()) => 0,
        Err(e) => {
            ulib::eprintln!("echo: {e}");
            1
        }
    }
}
