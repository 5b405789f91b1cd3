//! A writer of "newc" cpio archives, the format Linux unpacks as its initramfs.
//!
//! Each entry is a 110-byte ASCII header, the path, then the file's bytes:
//!
//! ```text
//! "070701"  then 13 fields of 8 hex digits: ino mode uid gid nlink mtime filesize
//!           devmajor devminor rdevmajor rdevminor namesize check
//! path + NUL, padded with NULs to a multiple of 4 bytes (counted from the header)
//! data, padded with NULs to a multiple of 4 bytes
//! ```
//!
//! The archive ends with an entry named `TRAILER!!!`. Paths have no leading `/`;
//! a directory must come before what is in it. Everything is owned by root, dated
//! 0, and gets its own inode number (no hard links). See the kernel's
//! `Documentation/driver-api/early-userspace/buffer-format.rst`.
//! `linux_peer::initramfs` is the user.

/// The file-type bits of `mode` (`S_IFMT`) for a directory, a regular file, a
/// character device.
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFCHR: u32 = 0o020_000;

/// The name of the last entry.
pub const TRAILER: &str = "TRAILER!!!";

/// One entry's header fields that vary; the others are 0.
#[derive(Clone, Copy, Default)]
struct Header {
    ino: u32,
    mode: u32,
    nlink: u32,
    filesize: u32,
    rdev_major: u32,
    rdev_minor: u32,
}

/// A newc archive being written in memory.
pub struct NewcArchive {
    bytes: Vec<u8>,
    next_ino: u32,
}

impl NewcArchive {
    /// Creates an empty archive.
    pub fn new() -> Self {
        NewcArchive { bytes: Vec::new(), next_ino: 1 }
    }

    /// Adds directory `path` with permissions `perm` (e.g. `0o755`).
    pub fn dir(&mut self, path: &str, perm: u32) {
        let ino = self.take_ino();
        self.entry(path, Header { ino, mode: S_IFDIR | perm, nlink: 2, ..Header::default() }, &[]);
    }

    /// Adds regular file `path` with permissions `perm` and contents `data`.
    ///
    /// Panics if `data` is 4 GiB or more, which the format cannot say.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) {
        let filesize = u32::try_from(data.len()).expect("cpio::file: 4 GiB or more");
        let ino = self.take_ino();
        self.entry(path, Header { ino, mode: S_IFREG | perm, nlink: 1, filesize, ..Header::default() }, data);
    }

    /// Adds character device `path` (major, minor) with permissions `perm`.
    pub fn char_device(&mut self, path: &str, perm: u32, major: u32, minor: u32) {
        let ino = self.take_ino();
        let header =
            Header { ino, mode: S_IFCHR | perm, nlink: 1, rdev_major: major, rdev_minor: minor, ..Header::default() };
        self.entry(path, header, &[]);
    }

    /// Appends the trailer and returns the archive's bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry(TRAILER, Header { nlink: 1, ..Header::default() }, &[]);
        self.bytes
    }

    fn take_ino(&mut self) -> u32 {
        self.next_ino += 1;
        self.next_ino - 1
    }

    /// Writes one entry: header, NUL-terminated path, data, each padded to 4 bytes.
    fn entry(&mut self, path: &str, h: Header, data: &[u8]) {
        let path = path.trim_start_matches('/');
        let namesize = u32::try_from(path.len() + 1).expect("cpio::entry: path too long");
        let fields = [h.ino, h.mode, 0, 0, h.nlink, 0, h.filesize, 0, 0, h.rdev_major, h.rdev_minor, namesize, 0];
        self.bytes.extend_from_slice(b"070701");
        for field in fields {
            self.bytes.extend_from_slice(format!("{field:08X}").as_bytes());
        }
        self.bytes.extend_from_slice(path.as_bytes());
        self.bytes.push(0);
        self.pad_to_4();
        self.bytes.extend_from_slice(data);
        self.pad_to_4();
    }

    fn pad_to_4(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The length of an entry header: the magic and 13 fields of 8 hex digits.
    const HEADER_LEN: usize = 6 + 13 * 8;

    /// One entry as read back: where its header starts, and what it says.
    #[derive(Debug)]
    struct Entry {
        offset: usize,
        path: String,
        ino: u32,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        data: Vec<u8>,
    }

    /// Returns field `i` (0 = ino .. 12 = check) of the header at `at`.
    fn field(archive: &[u8], at: usize, i: usize) -> u32 {
        let start = at + 6 + 8 * i;
        u32::from_str_radix(std::str::from_utf8(&archive[start..start + 8]).unwrap(), 16).unwrap()
    }

    /// Reads every entry back, checking the magic, the NUL after each path and the
    /// padding of paths and data to 4 bytes.
    fn read_back(archive: &[u8]) -> Vec<Entry> {
        let mut at = 0;
        let mut entries = Vec::new();
        while at < archive.len() {
            assert_eq!(&archive[at..at + 6], b"070701", "magic at {at}");
            let namesize = field(archive, at, 11) as usize;
            let filesize = field(archive, at, 6) as usize;
            let name_at = at + HEADER_LEN;
            assert_eq!(archive[name_at + namesize - 1], 0, "the path ends with NUL");
            let data_at = (name_at + namesize).next_multiple_of(4);
            assert!(archive[name_at + namesize..data_at].iter().all(|&b| b == 0), "path padding");
            entries.push(Entry {
                offset: at,
                path: String::from_utf8(archive[name_at..name_at + namesize - 1].to_vec()).unwrap(),
                ino: field(archive, at, 0),
                mode: field(archive, at, 1),
                nlink: field(archive, at, 4),
                rdev: (field(archive, at, 9), field(archive, at, 10)),
                data: archive[data_at..data_at + filesize].to_vec(),
            });
            at = (data_at + filesize).next_multiple_of(4);
        }
        assert_eq!(at, archive.len(), "the archive ends after the last padded entry");
        entries
    }

    #[test]
    fn headers_carry_type_mode_size_and_name() {
        let mut archive = NewcArchive::new();
        archive.dir("/bin", 0o755);
        archive.file("bin/busybox", 0o755, b"ELF!!");
        archive.char_device("dev/console", 0o600, 5, 1);
        let bytes = archive.finish();
        // The first header, field by field: ino 1, mode 040755, nlink 2, namesize 4 ("bin\0").
        let first = [
            "070701", "00000001", "000041ED", "00000000", "00000000", "00000002", "00000000", "00000000", "00000000",
            "00000000", "00000000", "00000000", "00000004", "00000000",
        ];
        assert_eq!(std::str::from_utf8(&bytes[..HEADER_LEN]).unwrap(), first.concat());
        let entries = read_back(&bytes);
        let summary: Vec<_> = entries.iter().map(|e| (e.path.as_str(), e.mode, e.nlink, e.rdev)).collect();
        assert_eq!(
            summary,
            [
                ("bin", 0o040_755, 2, (0, 0)),
                ("bin/busybox", 0o100_755, 1, (0, 0)),
                ("dev/console", 0o020_600, 1, (5, 1)),
                (TRAILER, 0, 1, (0, 0)),
            ]
        );
        assert_eq!(entries[1].data, b"ELF!!");
    }

    #[test]
    fn every_entry_has_its_own_inode_and_the_trailer_is_last() {
        let mut archive = NewcArchive::new();
        for i in 0..5 {
            archive.file(&format!("f{i}"), 0o644, &vec![b'x'; i]);
        }
        let bytes = archive.finish();
        let entries = read_back(&bytes);
        let inodes: Vec<u32> = entries.iter().map(|e| e.ino).collect();
        assert_eq!(inodes, [1, 2, 3, 4, 5, 0]);
        let trailer = entries.last().unwrap();
        assert_eq!(trailer.path, TRAILER);
        assert_eq!(&bytes[trailer.offset + HEADER_LEN..][..11], b"TRAILER!!!\0");
        assert_eq!(field(&bytes, trailer.offset, 11), 11, "namesize counts the NUL");
        assert!(trailer.data.is_empty());
    }
}
