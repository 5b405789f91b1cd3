//! Host tests: the MADT QEMU 7.2 gives a 4-CPU `pc` machine (captured with the
//! kernel's `acpi_dump` command-line word, in `testdata/`), synthetic RSDP chains
//! around it, and broken tables.

extern crate std;

use super::*;
use std::collections::BTreeMap;

/// The MADT of `qemu-system-x86_64 -machine pc -smp 4` (QEMU 7.2, SeaBIOS).
fn qemu_madt() -> Vec<u8> {
    let hex: std::string::String =
        include_str!("../testdata/qemu-7.2-pc-smp4.madt.hex").split_whitespace().collect();
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

/// Physical memory made of a few byte arrays at given addresses.
#[derive(Default)]
struct FakeMemory(BTreeMap<u64, Vec<u8>>);

impl PhysMemory for FakeMemory {
    fn read(&self, phys: u64, buf: &mut [u8]) -> bool {
        for (&start, bytes) in &self.0 {
            if phys >= start && phys + buf.len() as u64 <= start + bytes.len() as u64 {
                let at = (phys - start) as usize;
                buf.copy_from_slice(&bytes[at..at + buf.len()]);
                return true;
            }
        }
        false
    }
}

/// Sets byte `at` so that `bytes[range]` sums to 0.
fn fix_checksum(bytes: &mut [u8], range: core::ops::Range<usize>, at: usize) {
    bytes[at] = 0;
    let sum = bytes[range].iter().fold(0u8, |s, &b| s.wrapping_add(b));
    bytes[at] = 0u8.wrapping_sub(sum);
}

/// A table header with `signature` around `body`, checksummed.
fn table(signature: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; HEADER_LEN];
    t[0..4].copy_from_slice(signature);
    t[4..8].copy_from_slice(&((HEADER_LEN + body.len()) as u32).to_le_bytes());
    t[8] = 1;
    t.extend_from_slice(body);
    let len = t.len();
    fix_checksum(&mut t, 0..len, 9);
    t
}

/// A machine with an ACPI 1.0 RSDP at 0xf0000 -> RSDT at 0x1000 -> (a FACP at
/// 0x2000, the MADT at 0x3000).
fn acpi1_machine(madt: Vec<u8>) -> FakeMemory {
    let mut rsdp = b"RSD PTR ".to_vec();
    rsdp.extend_from_slice(&[0, b'Q', b'E', b'M', b'U', 0, 0, 0]); // checksum, OEM id, revision 0
    rsdp.extend_from_slice(&0x1000u32.to_le_bytes());
    fix_checksum(&mut rsdp, 0..20, 8);
    let mut pointers = 0x2000u32.to_le_bytes().to_vec();
    pointers.extend_from_slice(&0x3000u32.to_le_bytes());
    let mut mem = FakeMemory::default();
    mem.0.insert(0xf0000, rsdp);
    mem.0.insert(0x1000, table(b"RSDT", &pointers));
    mem.0.insert(0x2000, table(b"FACP", &[0; 8]));
    mem.0.insert(0x3000, madt);
    mem
}

#[test]
fn qemus_madt_lists_four_cpus_one_io_apic_and_the_isa_overrides() {
    let madt = Madt::parse(&qemu_madt()).unwrap();
    assert_eq!(madt.local_apic_address, 0xfee0_0000);
    assert!(madt.has_8259);
    let ids: Vec<u32> = madt.usable_cpus().map(|c| c.apic_id).collect();
    assert_eq!(ids, [0, 1, 2, 3]);
    assert_eq!(madt.io_apics, [IoApic { id: 0, address: 0xfec0_0000, gsi_base: 0 }]);
    assert_eq!(madt.overrides.len(), 5);
    assert_eq!(madt.nr_nmi_entries, 1);
    // The PIT (ISA IRQ 0) arrives on pin 2; the PCI lines are level-triggered.
    assert_eq!(madt.isa_irq(0), (2, Polarity::ActiveHigh, Trigger::Edge));
    assert_eq!(madt.isa_irq(11), (11, Polarity::ActiveHigh, Trigger::Level));
    assert_eq!(madt.isa_irq(4), (4, Polarity::ActiveHigh, Trigger::Edge), "no override: identity, ISA defaults");
    assert_eq!(madt.io_apic_for(11, |_| 24).map(|(a, pin)| (a.id, pin)), Some((0, 11)));
    assert_eq!(madt.io_apic_for(24, |_| 24), None);
}

#[test]
fn the_madt_is_found_through_an_acpi1_rsdt() {
    let mem = acpi1_machine(qemu_madt());
    let found = find_table(&mem, 0xf0000, MADT_SIGNATURE).unwrap();
    assert_eq!(found, qemu_madt());
    assert_eq!(find_table(&mem, 0xf0000, *b"HPET"), Err(Error::NotFound(*b"HPET")));
}

#[test]
fn the_madt_is_found_through_an_acpi2_xsdt() {
    let mut rsdp = b"RSD PTR ".to_vec();
    rsdp.extend_from_slice(&[0, b'Q', b'E', b'M', b'U', 0, 0, 2]); // revision 2
    rsdp.extend_from_slice(&0u32.to_le_bytes()); // no RSDT
    rsdp.extend_from_slice(&36u32.to_le_bytes());
    rsdp.extend_from_slice(&0x1_0000_0000u64.to_le_bytes()); // the XSDT above 4 GiB
    rsdp.extend_from_slice(&[0; 4]); // extended checksum, reserved
    fix_checksum(&mut rsdp, 0..20, 8);
    fix_checksum(&mut rsdp, 0..36, 32);
    let mut mem = FakeMemory::default();
    mem.0.insert(0xe0000, rsdp);
    mem.0.insert(0x1_0000_0000, table(b"XSDT", &0x3000u64.to_le_bytes()));
    mem.0.insert(0x3000, qemu_madt());
    assert_eq!(find_table(&mem, 0xe0000, MADT_SIGNATURE).unwrap(), qemu_madt());
}

#[test]
fn bad_checksums_and_signatures_are_errors() {
    let mut madt = qemu_madt();
    madt[50] ^= 1;
    assert_eq!(find_table(&acpi1_machine(madt), 0xf0000, MADT_SIGNATURE), Err(Error::BadChecksum(*b"APIC")));
    let mut mem = acpi1_machine(qemu_madt());
    mem.0.get_mut(&0xf0000).unwrap()[0] = b'X';
    assert_eq!(find_table(&mem, 0xf0000, MADT_SIGNATURE), Err(Error::BadRsdpSignature));
    let mut mem = acpi1_machine(qemu_madt());
    mem.0.get_mut(&0xf0000).unwrap()[9] ^= 0xff;
    assert_eq!(find_table(&mem, 0xf0000, MADT_SIGNATURE), Err(Error::BadChecksum(*b"RSDP")));
    assert_eq!(find_table(&mem, 0x5000, MADT_SIGNATURE), Err(Error::Unreadable(0x5000)));
    let mem = acpi1_machine(qemu_madt());
    assert_eq!(
        read_table(&mem, 0x3000, *b"FACP"),
        Err(Error::WrongSignature { expected: *b"FACP", found: MADT_SIGNATURE })
    );
}

#[test]
fn entries_running_past_the_table_are_truncated_not_panics() {
    let good = qemu_madt();
    // Claim the last entry (the 6-byte NMI entry) is longer than what is left.
    let mut bad = good.clone();
    let last = bad.len() - 6;
    assert_eq!(bad[last], 4, "the last entry is the local APIC NMI");
    bad[last + 1] = 20;
    assert_eq!(Madt::parse(&bad), Err(Error::Truncated(MADT_SIGNATURE)));
    // A zero-length entry would loop forever.
    let mut bad = good.clone();
    bad[last + 1] = 0;
    assert_eq!(Madt::parse(&bad), Err(Error::Truncated(MADT_SIGNATURE)));
    // A local APIC entry too short for its fields.
    let mut body = vec![0u8; 8];
    body.extend_from_slice(&[0u8, 4, 0, 0]);
    assert_eq!(Madt::parse(&table(b"APIC", &body)), Err(Error::Truncated(MADT_SIGNATURE)));
    // Every prefix of the real table is refused or parses: never a panic.
    for len in 0..good.len() {
        let _ = Madt::parse(&good[..len]);
    }
}

#[test]
fn x2apic_entries_disabled_cpus_and_the_address_override_are_decoded() {
    let mut body = 0xfee0_0000u32.to_le_bytes().to_vec();
    body.extend_from_slice(&0u32.to_le_bytes()); // no 8259
    body.extend_from_slice(&[0, 8, 0, 0, 1, 0, 0, 0]); // CPU apic 0, enabled
    body.extend_from_slice(&[0, 8, 1, 1, 2, 0, 0, 0]); // CPU apic 1, online-capable only
    let mut x2 = vec![9u8, 16, 0, 0];
    x2.extend_from_slice(&300u32.to_le_bytes()); // x2APIC id 300
    x2.extend_from_slice(&1u32.to_le_bytes()); // enabled
    x2.extend_from_slice(&7u32.to_le_bytes()); // uid 7
    body.extend_from_slice(&x2);
    let mut addr = vec![5u8, 12, 0, 0];
    addr.extend_from_slice(&0x1_fee0_0000u64.to_le_bytes());
    body.extend_from_slice(&addr);
    body.extend_from_slice(&[0x7f, 2]); // an unknown entry type: skipped
    let madt = Madt::parse(&table(b"APIC", &body)).unwrap();
    assert!(!madt.has_8259);
    assert_eq!(madt.local_apic_address, 0x1_fee0_0000);
    assert_eq!(madt.cpus.len(), 3);
    assert!(!madt.cpus[1].is_enabled && madt.cpus[1].is_online_capable);
    assert_eq!(madt.cpus[2], LocalApic { processor_uid: 7, apic_id: 300, is_enabled: true, is_online_capable: false });
    assert_eq!(madt.usable_cpus().map(|c| c.apic_id).collect::<Vec<_>>(), [0, 300]);
}

#[test]
fn active_low_level_overrides_are_decoded() {
    let mut body = 0xfee0_0000u32.to_le_bytes().to_vec();
    body.extend_from_slice(&1u32.to_le_bytes());
    let mut iso = vec![2u8, 10, 0, 9];
    iso.extend_from_slice(&20u32.to_le_bytes());
    iso.extend_from_slice(&0b1111u16.to_le_bytes());
    body.extend_from_slice(&iso);
    let madt = Madt::parse(&table(b"APIC", &body)).unwrap();
    assert_eq!(madt.isa_irq(9), (20, Polarity::ActiveLow, Trigger::Level));
}
