//! QEMU's firmware configuration device (fw_cfg): how the runner passes us a
//! command line without a bootloader that supports one.
//!
//! The `boot` runner adds `-fw_cfg name=opt/kernel/cmdline,string=...`. The device
//! has a 16-bit selector port (0x510) and an 8-bit data port (0x511): select the
//! file directory (key 0x19), find our file by name, select its key, read its bytes.
//! Directory entries are big-endian: size (u32), key (u16), reserved (u16), name[56].

use x86_64::instructions::port::Port;

const SELECTOR_PORT: u16 = 0x510;
const DATA_PORT: u16 = 0x511;
const KEY_SIGNATURE: u16 = 0x0000;
const KEY_FILE_DIR: u16 = 0x0019;

fn select(key: u16) {
    // SAFETY: writing the fw_cfg selector only changes which item the data port reads.
    unsafe { Port::<u16>::new(SELECTOR_PORT).write(key) }
}

fn read_bytes(buf: &mut [u8]) {
    let mut port = Port::<u8>::new(DATA_PORT);
    for b in buf {
        // SAFETY: reading the data port returns the next byte of the selected item.
        *b = unsafe { port.read() };
    }
}

/// Returns true if the fw_cfg device answers with its "QEMU" signature.
pub fn is_present() -> bool {
    select(KEY_SIGNATURE);
    let mut sig = [0u8; 4];
    read_bytes(&mut sig);
    &sig == b"QEMU"
}

/// Copies the contents of fw_cfg file `name` into `buf`; returns the length copied.
pub fn read_file(name: &str, buf: &mut [u8]) -> Option<usize> {
    if !is_present() {
        return None;
    }
    select(KEY_FILE_DIR);
    let mut count = [0u8; 4];
    read_bytes(&mut count);
    for _ in 0..u32::from_be_bytes(count) {
        let mut entry = [0u8; 64];
        read_bytes(&mut entry);
        let size = u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]) as usize;
        let key = u16::from_be_bytes([entry[4], entry[5]]);
        let name_len = entry[8..].iter().position(|&b| b == 0).unwrap_or(56);
        if &entry[8..8 + name_len] == name.as_bytes() {
            let len = size.min(buf.len());
            select(key);
            read_bytes(&mut buf[..len]);
            return Some(len);
        }
    }
    None
}
