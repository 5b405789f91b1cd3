//! The book's ext2 chapter shows real output: the ```text block of
//! docs/10-files.md that starts with `$ cargo test -p ext2 --test docs` must hold
//! exactly what [`tour`] prints (a small disk made by mke2fs, its block groups, a
//! file written by this crate and its block map, e2fsck's verdict). After changing
//! the layout code, regenerate with `UPDATE_DOCS=1 cargo test -p ext2 --test docs`
//! and read the diff.

mod common;

use std::fmt::Write;
use std::path::PathBuf;

use blockdev::{BlockDevice, RamDisk};
use common::*;
use ext2::ROOT_INO;

const PROMPT: &str = "$ cargo test -p ext2 --test docs";

/// Writes `blocks` as ranges: "100..103, 107".
fn ranges(blocks: &[u32]) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    while i < blocks.len() {
        let mut j = i;
        while j + 1 < blocks.len() && blocks[j + 1] == blocks[j] + 1 {
            j += 1;
        }
        out.push(if i == j { format!("{}", blocks[i]) } else { format!("{}..{}", blocks[i], blocks[j]) });
        i = j + 1;
    }
    out.join(", ")
}

/// Makes a disk, writes a file through the double indirect block and describes both.
fn tour() -> String {
    let mut out = String::new();
    let staging = TempDir::new("staging");
    std::fs::write(staging.join("hello.txt"), b"hello, ext2\n").unwrap();
    let args = ["-O", "^resize_inode", "-g", "2048", "-N", "192"];
    writeln!(out, "$ mke2fs -q -t ext2 -b 1024 {} -d staging disk.img 6144", args.join(" ")).unwrap();
    let disk = RamDisk::from_bytes("root", make_image(&staging.0, 1024, 6144, &args));
    let mut fs = mount(&disk);
    let sb = fs.superblock().clone();
    writeln!(
        out,
        "{} blocks of {} bytes in {} groups of {}; {} inodes of {} bytes, {} per group ({} table blocks)",
        sb.nr_blocks,
        sb.block_size,
        sb.nr_groups,
        sb.blocks_per_group,
        sb.nr_inodes,
        sb.inode_size,
        sb.inodes_per_group,
        sb.inode_table_blocks()
    )
    .unwrap();
    writeln!(out, "group  blocks      block bitmap  inode bitmap  inode table  free blocks  free inodes  dirs").unwrap();
    for (g, d) in fs.groups().iter().enumerate() {
        let first = sb.group_first_block(g as u32);
        let last = first + sb.group_nr_blocks(g as u32) - 1;
        writeln!(
            out,
            "{g:<6} {:<11} {:<13} {:<13} {:<12} {:<12} {:<12} {}",
            format!("{first}..{last}"),
            d.block_bitmap,
            d.inode_bitmap,
            format!("{}..{}", d.inode_table, d.inode_table + sb.inode_table_blocks() - 1),
            d.nr_free_blocks,
            d.nr_free_inodes,
            d.nr_dirs
        )
        .unwrap();
    }
    let hello = fs.lookup(ROOT_INO, b"hello.txt").unwrap();
    let hello_block = fs.block_of(hello, 0).unwrap().unwrap();
    writeln!(out, "/hello.txt: inode {}, {} bytes, block {hello_block}", hello.0, fs.stat(hello).unwrap().size).unwrap();

    let data = pattern(300 * 1024, 1);
    let big = fs.create(ROOT_INO, b"big", 0o644).unwrap();
    fs.write_at(big, 0, &data).unwrap();
    fs.sync().unwrap();
    let inode = fs.read_inode(big).unwrap();
    writeln!(out, "wrote /big: inode {} (group {}), {} bytes, i_blocks {} (sectors of 512 bytes)",
        big.0, (big.0 - 1) / sb.inodes_per_group, inode.size, inode.nr_sectors).unwrap();
    let file_blocks: Vec<u32> = (0..300).map(|n| fs.block_of(big, n).unwrap().unwrap()).collect();
    writeln!(out, "  block[0..12]  direct          -> data {}", ranges(&file_blocks[..12])).unwrap();
    writeln!(out, "  block[12]     indirect {:<6} -> data {}", inode.block[12], ranges(&file_blocks[12..268])).unwrap();
    let mut first_level = vec![0u8; 1024];
    disk.read(u64::from(inode.block[13]) * 2, &mut first_level).unwrap();
    let second = u32::from_le_bytes(first_level[..4].try_into().unwrap());
    writeln!(out, "  block[13]     double   {:<6} -> [0] {second} -> data {}", inode.block[13], ranges(&file_blocks[268..])).unwrap();
    let data_blocks = file_blocks.len() as u32;
    writeln!(out, "  {data_blocks} data + 3 map blocks = {} blocks = {} sectors", data_blocks + 3, (data_blocks + 3) * 2).unwrap();
    let (status, _) = e2fsck(&disk.to_bytes());
    writeln!(out, "$ e2fsck -fn disk.img  # exit status {status}").unwrap();
    out
}

#[test]
fn files_chapter_shows_real_output() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/10-files.md");
    let text = std::fs::read_to_string(&path).expect("docs/10-files.md");
    let start = text.find(&format!("```text\n{PROMPT}\n")).expect("the chapter has a block starting with the prompt");
    let body_start = start + "```text\n".len() + PROMPT.len() + 1;
    let body_end = body_start + text[body_start..].find("```").expect("closed block");
    let real = tour();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let updated = format!("{}{}{}", &text[..body_start], real, &text[body_end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert_eq!(
        text[body_start..body_end],
        real,
        "docs/10-files.md does not show what the code prints; UPDATE_DOCS=1 cargo test -p ext2 --test docs"
    );
}
