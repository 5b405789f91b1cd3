//! `sleep SECONDS`: sleeps (a decimal like `0.5` is allowed, to 10 ms). A bad
//! argument: a message and exit code 1.
#![no_std]
#![no_main]

ulib::entry!(main);

/// Parses `S` or `S.FFF` into milliseconds.
fn parse_ms(text: &str) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.len() > 3 {
        return None;
    }
    let secs: u64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let mut ms: u64 = if fraction.is_empty() { 0 } else { fraction.parse().ok()? };
    for _ in fraction.len()..3 {
        ms *= 10;
    }
    secs.checked_mul(1000)?.checked_add(ms)
}

fn main() -> i32 {
    let Some(ms) = ulib::argv::arg(1).and_then(parse_ms) else {
        ulib::eprintln!("usage: sleep SECONDS");
        return 1;
    };
    match ulib::sleep_ms(ms) {
        Ok(()) => 0,
        Err(e) => {
            ulib::eprintln!("sleep: {e}");
            1
        }
    }
}
