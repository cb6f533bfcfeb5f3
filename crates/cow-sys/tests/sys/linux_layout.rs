//! Layouts and constants of the Linux bindings, checked two ways: against
//! the installed kernel headers through a C probe compiled at test time
//! (skipped loudly when `cc` or the headers are missing), and always against
//! the documented numbers of the UAPI.
#![cfg(any(target_os = "linux", target_os = "android"))]

use crate::common;

use std::mem::{align_of, offset_of, size_of};

use cow_sys::linux::*;

/// The C probe: prints `key value` lines for every size, alignment, offset,
/// opcode and flag the bindings mirror.
const PROBE: &str = r#"
#include <stdio.h>
#include <stddef.h>
#include <linux/fs.h>
#include <linux/fiemap.h>

#define SIZE(t) printf("size %s %zu\nalign %s %zu\n", #t, sizeof(struct t), #t, _Alignof(struct t))
#define OFF(t, f) printf("offset %s.%s %zu\n", #t, #f, offsetof(struct t, f))
#define CONST(c) printf("const %s %llu\n", #c, (unsigned long long)(c))

int main(void) {
    SIZE(file_clone_range);
    OFF(file_clone_range, src_fd);
    OFF(file_clone_range, src_offset);
    OFF(file_clone_range, src_length);
    OFF(file_clone_range, dest_offset);

    SIZE(file_dedupe_range);
    OFF(file_dedupe_range, src_offset);
    OFF(file_dedupe_range, src_length);
    OFF(file_dedupe_range, dest_count);
    OFF(file_dedupe_range, reserved1);
    OFF(file_dedupe_range, reserved2);
    OFF(file_dedupe_range, info);

    SIZE(file_dedupe_range_info);
    OFF(file_dedupe_range_info, dest_fd);
    OFF(file_dedupe_range_info, dest_offset);
    OFF(file_dedupe_range_info, bytes_deduped);
    OFF(file_dedupe_range_info, status);
    OFF(file_dedupe_range_info, reserved);

    SIZE(fiemap);
    OFF(fiemap, fm_start);
    OFF(fiemap, fm_length);
    OFF(fiemap, fm_flags);
    OFF(fiemap, fm_mapped_extents);
    OFF(fiemap, fm_extent_count);
    OFF(fiemap, fm_reserved);
    OFF(fiemap, fm_extents);

    SIZE(fiemap_extent);
    OFF(fiemap_extent, fe_logical);
    OFF(fiemap_extent, fe_physical);
    OFF(fiemap_extent, fe_length);
    OFF(fiemap_extent, fe_reserved64);
    OFF(fiemap_extent, fe_flags);
    OFF(fiemap_extent, fe_reserved);

    CONST(FICLONE);
    CONST(FICLONERANGE);
    CONST(FIDEDUPERANGE);
    CONST(FS_IOC_FIEMAP);
    CONST(FILE_DEDUPE_RANGE_SAME);
    CONST(FILE_DEDUPE_RANGE_DIFFERS);
    CONST(FIEMAP_MAX_OFFSET);

    CONST(FIEMAP_FLAG_SYNC);
    CONST(FIEMAP_FLAG_XATTR);
    CONST(FIEMAP_FLAG_CACHE);

    CONST(FIEMAP_EXTENT_LAST);
    CONST(FIEMAP_EXTENT_UNKNOWN);
    CONST(FIEMAP_EXTENT_DELALLOC);
    CONST(FIEMAP_EXTENT_ENCODED);
    CONST(FIEMAP_EXTENT_DATA_ENCRYPTED);
    CONST(FIEMAP_EXTENT_NOT_ALIGNED);
    CONST(FIEMAP_EXTENT_DATA_INLINE);
    CONST(FIEMAP_EXTENT_DATA_TAIL);
    CONST(FIEMAP_EXTENT_UNWRITTEN);
    CONST(FIEMAP_EXTENT_MERGED);
    CONST(FIEMAP_EXTENT_SHARED);
    return 0;
}
"#;

/// Every fact as `(probe key, Rust value, documented value)`. The documented
/// numbers are those of the x86-64/arm64 UAPI; the layouts use only fixed-size
/// fields, so they hold on every Linux architecture.
fn facts() -> Vec<(&'static str, u64, u64)> {
    let u = |n: usize| n as u64;
    vec![
        ("size file_clone_range", u(size_of::<FileCloneRange>()), 32),
        ("align file_clone_range", u(align_of::<FileCloneRange>()), 8),
        (
            "offset file_clone_range.src_fd",
            u(offset_of!(FileCloneRange, src_fd)),
            0,
        ),
        (
            "offset file_clone_range.src_offset",
            u(offset_of!(FileCloneRange, src_offset)),
            8,
        ),
        (
            "offset file_clone_range.src_length",
            u(offset_of!(FileCloneRange, src_length)),
            16,
        ),
        (
            "offset file_clone_range.dest_offset",
            u(offset_of!(FileCloneRange, dest_offset)),
            24,
        ),
        (
            "size file_dedupe_range",
            u(size_of::<FileDedupeRange>()),
            24,
        ),
        (
            "align file_dedupe_range",
            u(align_of::<FileDedupeRange>()),
            8,
        ),
        (
            "offset file_dedupe_range.src_offset",
            u(offset_of!(FileDedupeRange, src_offset)),
            0,
        ),
        (
            "offset file_dedupe_range.src_length",
            u(offset_of!(FileDedupeRange, src_length)),
            8,
        ),
        (
            "offset file_dedupe_range.dest_count",
            u(offset_of!(FileDedupeRange, dest_count)),
            16,
        ),
        (
            "offset file_dedupe_range.reserved1",
            u(offset_of!(FileDedupeRange, reserved1)),
            18,
        ),
        (
            "offset file_dedupe_range.reserved2",
            u(offset_of!(FileDedupeRange, reserved2)),
            20,
        ),
        // The flexible `info[]` array starts right after the header.
        (
            "offset file_dedupe_range.info",
            u(size_of::<FileDedupeRange>()),
            24,
        ),
        (
            "size file_dedupe_range_info",
            u(size_of::<FileDedupeRangeInfo>()),
            32,
        ),
        (
            "align file_dedupe_range_info",
            u(align_of::<FileDedupeRangeInfo>()),
            8,
        ),
        (
            "offset file_dedupe_range_info.dest_fd",
            u(offset_of!(FileDedupeRangeInfo, dest_fd)),
            0,
        ),
        (
            "offset file_dedupe_range_info.dest_offset",
            u(offset_of!(FileDedupeRangeInfo, dest_offset)),
            8,
        ),
        (
            "offset file_dedupe_range_info.bytes_deduped",
            u(offset_of!(FileDedupeRangeInfo, bytes_deduped)),
            16,
        ),
        (
            "offset file_dedupe_range_info.status",
            u(offset_of!(FileDedupeRangeInfo, status)),
            24,
        ),
        (
            "offset file_dedupe_range_info.reserved",
            u(offset_of!(FileDedupeRangeInfo, reserved)),
            28,
        ),
        ("size fiemap", u(size_of::<Fiemap>()), 32),
        ("align fiemap", u(align_of::<Fiemap>()), 8),
        ("offset fiemap.fm_start", u(offset_of!(Fiemap, fm_start)), 0),
        (
            "offset fiemap.fm_length",
            u(offset_of!(Fiemap, fm_length)),
            8,
        ),
        (
            "offset fiemap.fm_flags",
            u(offset_of!(Fiemap, fm_flags)),
            16,
        ),
        (
            "offset fiemap.fm_mapped_extents",
            u(offset_of!(Fiemap, fm_mapped_extents)),
            20,
        ),
        (
            "offset fiemap.fm_extent_count",
            u(offset_of!(Fiemap, fm_extent_count)),
            24,
        ),
        (
            "offset fiemap.fm_reserved",
            u(offset_of!(Fiemap, fm_reserved)),
            28,
        ),
        // The flexible `fm_extents[]` array starts right after the header.
        ("offset fiemap.fm_extents", u(size_of::<Fiemap>()), 32),
        ("size fiemap_extent", u(size_of::<FiemapExtent>()), 56),
        ("align fiemap_extent", u(align_of::<FiemapExtent>()), 8),
        (
            "offset fiemap_extent.fe_logical",
            u(offset_of!(FiemapExtent, fe_logical)),
            0,
        ),
        (
            "offset fiemap_extent.fe_physical",
            u(offset_of!(FiemapExtent, fe_physical)),
            8,
        ),
        (
            "offset fiemap_extent.fe_length",
            u(offset_of!(FiemapExtent, fe_length)),
            16,
        ),
        (
            "offset fiemap_extent.fe_reserved64",
            u(offset_of!(FiemapExtent, fe_reserved64)),
            24,
        ),
        (
            "offset fiemap_extent.fe_flags",
            u(offset_of!(FiemapExtent, fe_flags)),
            40,
        ),
        (
            "offset fiemap_extent.fe_reserved",
            u(offset_of!(FiemapExtent, fe_reserved)),
            44,
        ),
        (
            "const FILE_DEDUPE_RANGE_SAME",
            FILE_DEDUPE_RANGE_SAME as u64,
            0,
        ),
        (
            "const FILE_DEDUPE_RANGE_DIFFERS",
            FILE_DEDUPE_RANGE_DIFFERS as u64,
            1,
        ),
        ("const FIEMAP_MAX_OFFSET", FIEMAP_MAX_OFFSET, u64::MAX),
        (
            "const FIEMAP_FLAG_SYNC",
            FiemapFlags::SYNC.bits().into(),
            0x1,
        ),
        (
            "const FIEMAP_FLAG_XATTR",
            FiemapFlags::XATTR.bits().into(),
            0x2,
        ),
        (
            "const FIEMAP_FLAG_CACHE",
            FiemapFlags::CACHE.bits().into(),
            0x4,
        ),
        (
            "const FIEMAP_EXTENT_LAST",
            FiemapExtentFlags::LAST.bits().into(),
            0x1,
        ),
        (
            "const FIEMAP_EXTENT_UNKNOWN",
            FiemapExtentFlags::UNKNOWN.bits().into(),
            0x2,
        ),
        (
            "const FIEMAP_EXTENT_DELALLOC",
            FiemapExtentFlags::DELALLOC.bits().into(),
            0x4,
        ),
        (
            "const FIEMAP_EXTENT_ENCODED",
            FiemapExtentFlags::ENCODED.bits().into(),
            0x8,
        ),
        (
            "const FIEMAP_EXTENT_DATA_ENCRYPTED",
            FiemapExtentFlags::DATA_ENCRYPTED.bits().into(),
            0x80,
        ),
        (
            "const FIEMAP_EXTENT_NOT_ALIGNED",
            FiemapExtentFlags::NOT_ALIGNED.bits().into(),
            0x100,
        ),
        (
            "const FIEMAP_EXTENT_DATA_INLINE",
            FiemapExtentFlags::DATA_INLINE.bits().into(),
            0x200,
        ),
        (
            "const FIEMAP_EXTENT_DATA_TAIL",
            FiemapExtentFlags::DATA_TAIL.bits().into(),
            0x400,
        ),
        (
            "const FIEMAP_EXTENT_UNWRITTEN",
            FiemapExtentFlags::UNWRITTEN.bits().into(),
            0x800,
        ),
        (
            "const FIEMAP_EXTENT_MERGED",
            FiemapExtentFlags::MERGED.bits().into(),
            0x1000,
        ),
        (
            "const FIEMAP_EXTENT_SHARED",
            FiemapExtentFlags::SHARED.bits().into(),
            0x2000,
        ),
    ]
}

/// The ioctl opcodes. Their documented values depend on the architecture's
/// `_IOC` encoding; these are the asm-generic ones (x86, arm, arm64, riscv).
fn opcodes() -> Vec<(&'static str, u64, Option<u64>)> {
    let generic = cfg!(any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "riscv64"
    ));
    let doc = |v: u64| generic.then_some(v);
    vec![
        ("const FICLONE", FICLONE as u64, doc(0x4004_9409)),
        ("const FICLONERANGE", FICLONERANGE as u64, doc(0x4020_940d)),
        (
            "const FIDEDUPERANGE",
            FIDEDUPERANGE as u64,
            doc(0xc018_9436),
        ),
        (
            "const FS_IOC_FIEMAP",
            FS_IOC_FIEMAP as u64,
            doc(0xc020_660b),
        ),
    ]
}

#[test]
fn layouts_match_documented_numbers() {
    common::check_facts(&facts(), None);
    for (key, rust, documented) in opcodes() {
        if let Some(documented) = documented {
            assert_eq!(
                rust, documented,
                "{key}: Rust has {rust:#x}, documented {documented:#x}"
            );
        }
    }
}

#[test]
fn layouts_match_installed_kernel_headers() {
    let c = common::run_c_probe(PROBE, &["linux/fs.h", "linux/fiemap.h"]);
    // The documented numbers are asserted either way.
    let mut checked = common::check_facts(&facts(), c.as_ref());
    let Some(c) = c else {
        return;
    };
    for (key, rust, _) in opcodes() {
        let from_c = c[key];
        assert_eq!(
            rust, from_c,
            "{key}: Rust has {rust:#x}, <linux/fs.h> has {from_c:#x}"
        );
        checked += 1;
    }
    assert_eq!(
        checked,
        c.len(),
        "every value the probe printed was compared"
    );
    eprintln!("compared {checked} sizes, offsets and constants with the installed kernel headers");
}

#[test]
fn fiemap_max_extents_matches_the_kernel_limit() {
    assert_eq!(FIEMAP_MAX_EXTENTS, u32::MAX / 56);
}
