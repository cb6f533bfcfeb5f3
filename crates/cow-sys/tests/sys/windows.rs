//! The Windows bindings: layouts against the documented numbers and the
//! `windows-sys` definitions, and live calls on the volume of the temp
//! directory (NTFS on GitHub's runners, where block cloning must fail; a
//! ReFS volume clones for real).
#![cfg(windows)]

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::mem::{align_of, offset_of, size_of};
use std::os::windows::fs::MetadataExt;
use std::os::windows::io::AsHandle;

use cow_sys::windows::*;
use cow_test_support::pattern;
use windows_sys::Win32::System::Ioctl as ioctl;

const ERROR_INVALID_FUNCTION: i32 = 1;
const ERROR_NOT_SUPPORTED: i32 = 50;
const FILE_ATTRIBUTE_SPARSE_FILE: u32 = 0x200;

#[test]
fn duplicate_extents_data_layout() {
    // LARGE_INTEGER is 8-aligned, so the handle is padded to 8 bytes even
    // on 32-bit Windows.
    assert_eq!(size_of::<DuplicateExtentsData>(), 32);
    assert_eq!(align_of::<DuplicateExtentsData>(), 8);
    assert_eq!(offset_of!(DuplicateExtentsData, FileHandle), 0);
    assert_eq!(offset_of!(DuplicateExtentsData, SourceFileOffset), 8);
    assert_eq!(offset_of!(DuplicateExtentsData, TargetFileOffset), 16);
    assert_eq!(offset_of!(DuplicateExtentsData, ByteCount), 24);
}

#[test]
fn integrity_information_layout_matches_windows_sys() {
    type Sys = ioctl::FSCTL_GET_INTEGRITY_INFORMATION_BUFFER;
    assert_eq!(size_of::<IntegrityInformation>(), 16);
    assert_eq!(size_of::<Sys>(), 16);
    assert_eq!(align_of::<IntegrityInformation>(), align_of::<Sys>());
    let ours = [
        offset_of!(IntegrityInformation, checksum_algorithm),
        offset_of!(IntegrityInformation, reserved),
        offset_of!(IntegrityInformation, flags),
        offset_of!(IntegrityInformation, checksum_chunk_size_in_bytes),
        offset_of!(IntegrityInformation, cluster_size_in_bytes),
    ];
    let sys = [
        offset_of!(Sys, ChecksumAlgorithm),
        offset_of!(Sys, Reserved),
        offset_of!(Sys, Flags),
        offset_of!(Sys, ChecksumChunkSizeInBytes),
        offset_of!(Sys, ClusterSizeInBytes),
    ];
    assert_eq!(ours, sys);
    assert_eq!(ours, [0, 2, 4, 8, 12]);

    type Set = ioctl::FSCTL_SET_INTEGRITY_INFORMATION_BUFFER;
    assert_eq!(size_of::<Set>(), 8);
    assert_eq!(
        [
            offset_of!(Set, ChecksumAlgorithm),
            offset_of!(Set, Reserved),
            offset_of!(Set, Flags)
        ],
        [0, 2, 4]
    );
    assert_eq!(size_of::<ioctl::FILE_SET_SPARSE_BUFFER>(), 1);
}

#[test]
fn fs_size_information_layout() {
    assert_eq!(size_of::<FsSizeInformation>(), 24);
    assert_eq!(offset_of!(FsSizeInformation, total_allocation_units), 0);
    assert_eq!(offset_of!(FsSizeInformation, available_allocation_units), 8);
    assert_eq!(
        offset_of!(FsSizeInformation, sectors_per_allocation_unit),
        16
    );
    assert_eq!(offset_of!(FsSizeInformation, bytes_per_sector), 20);
}

#[test]
fn control_codes_and_flags_match_documented_numbers() {
    // CTL_CODE(FILE_DEVICE_FILE_SYSTEM, function, method, access).
    assert_eq!(ioctl::FSCTL_DUPLICATE_EXTENTS_TO_FILE, 0x0009_8344);
    assert_eq!(ioctl::FSCTL_GET_INTEGRITY_INFORMATION, 0x0009_027C);
    assert_eq!(ioctl::FSCTL_SET_INTEGRITY_INFORMATION, 0x0009_C280);
    assert_eq!(ioctl::FSCTL_SET_SPARSE, 0x0009_00C4);
    assert_eq!(FILE_SUPPORTS_BLOCK_REFCOUNTING, 0x0800_0000);
    assert_eq!(FILE_SUPPORTS_INTEGRITY_STREAMS, 0x0400_0000);
    assert_eq!(FILE_SUPPORTS_SPARSE_FILES, 0x0000_0040);
    assert_eq!(
        (CHECKSUM_TYPE_NONE, CHECKSUM_TYPE_CRC32, CHECKSUM_TYPE_CRC64),
        (0, 1, 2)
    );
    assert_eq!(FSCTL_INTEGRITY_FLAG_CHECKSUM_ENFORCEMENT_OFF, 1);
}

fn rw(path: &std::path::Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap()
}

#[test]
fn volume_facts_of_the_temp_directory() {
    let dir = tempfile::tempdir().unwrap();
    let f = rw(&dir.path().join("f"));
    let flags = volume_flags(f.as_handle()).expect("GetVolumeInformationByHandleW");
    let name = filesystem_name(f.as_handle()).expect("file system name");
    let cluster = cluster_size(f.as_handle()).expect("cluster size");
    eprintln!(
        "temp volume: {name}, flags {flags:#010x}, cluster {cluster}, wine {:?}",
        wine_version()
    );
    assert!(!name.is_empty());
    assert!(
        cluster >= 512 && cluster.is_power_of_two(),
        "cluster size {cluster}"
    );
    let size = volume_size_information(f.as_handle()).unwrap();
    assert!(size.total_allocation_units > 0 && size.available_allocation_units >= 0);
    if is_wine() {
        // Wine 8 calls a Unix directory "NTFS" but reports (on ext4)
        // 0x0000000a, case-preserved names and persistent ACLs only: no
        // sparse files and no block refcounting.
        assert_eq!(name, "NTFS", "Wine names its Unix drives NTFS");
        assert_eq!(flags & FILE_SUPPORTS_SPARSE_FILES, 0, "{flags:#x}");
        assert_eq!(flags & FILE_SUPPORTS_BLOCK_REFCOUNTING, 0, "{flags:#x}");
        return;
    }
    match name.as_str() {
        "NTFS" => {
            assert_eq!(
                flags & FILE_SUPPORTS_BLOCK_REFCOUNTING,
                0,
                "NTFS claims block cloning"
            );
            assert_ne!(
                flags & FILE_SUPPORTS_SPARSE_FILES,
                0,
                "NTFS denies sparse files"
            );
        }
        "ReFS" => {
            assert_ne!(flags & FILE_SUPPORTS_BLOCK_REFCOUNTING, 0);
            assert_ne!(flags & FILE_SUPPORTS_SPARSE_FILES, 0);
        }
        other => panic!("temp directory on {other}: expected NTFS or ReFS"),
    }
}

#[test]
fn wine_is_detected_by_ntdll_alone() {
    // Under Wine, the Wine environment is visible; on Windows it is not.
    let under_wine = std::env::var_os("WINEPREFIX").is_some();
    match wine_version() {
        Some(v) => {
            assert!(v.chars().next().is_some_and(|c| c.is_ascii_digit()), "{v}");
            assert!(is_wine());
        }
        None => {
            assert!(!is_wine());
            assert!(
                !under_wine,
                "WINEPREFIX is set but ntdll has no wine_get_version"
            );
        }
    }
    if under_wine {
        assert!(is_wine(), "WINEPREFIX is set, wine_get_version not found");
    }
}

#[test]
fn set_sparse_sets_and_clears_the_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse");
    let f = rw(&path);
    let attr = || std::fs::metadata(&path).unwrap().file_attributes() & FILE_ATTRIBUTE_SPARSE_FILE;
    set_sparse(f.as_handle(), true).expect("FSCTL_SET_SPARSE");
    if is_wine() {
        // Wine accepts the call and marks nothing.
        assert_eq!(attr(), 0, "Wine now keeps the sparse attribute");
        return;
    }
    assert_ne!(
        volume_flags(f.as_handle()).unwrap() & FILE_SUPPORTS_SPARSE_FILES,
        0
    );
    assert_ne!(attr(), 0);
    set_sparse(f.as_handle(), false).expect("FSCTL_SET_SPARSE(false)");
    assert_eq!(attr(), 0);
}

#[test]
fn allocated_ranges_map_data_and_holes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("holes");
    let mut f = rw(&path);
    let (len, at) = (8u64 << 20, 4u64 << 20);
    set_sparse(f.as_handle(), true).unwrap();
    f.set_len(len).unwrap();
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(at)).unwrap();
    f.write_all(&pattern(65_536, 2)).unwrap();
    f.sync_all().unwrap();
    let ranges = allocated_ranges(f.as_handle(), 0, len);
    if is_wine() {
        let e = ranges.expect_err("Wine 8 has no FSCTL_QUERY_ALLOCATED_RANGES");
        assert_eq!(e.raw_os_error(), Some(ERROR_NOT_SUPPORTED), "{e}");
        return;
    }
    let ranges = ranges.expect("FSCTL_QUERY_ALLOCATED_RANGES");
    // One allocated range holding the written bytes, nothing at the start.
    assert_eq!(ranges.len(), 1, "{ranges:?}");
    let r = ranges[0];
    assert!(r.offset <= at && r.offset + r.len >= at + 65_536, "{r:?}");
    assert!(r.offset > 0 && r.offset + r.len < len, "{r:?}");
    // A file that is not sparse is allocated whole.
    let plain = dir.path().join("plain");
    std::fs::write(&plain, pattern(100_000, 3)).unwrap();
    let p = File::open(&plain).unwrap();
    assert_eq!(
        allocated_ranges(p.as_handle(), 0, 100_000).unwrap(),
        [AllocatedRange {
            offset: 0,
            len: 100_000
        }]
    );
}

#[test]
fn cluster_runs_of_a_written_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    std::fs::write(&path, pattern(1 << 20, 4)).unwrap();
    let f = File::open(&path).unwrap();
    f.sync_all().ok();
    let runs = cluster_runs(f.as_handle(), false);
    let refcounted = cluster_runs(f.as_handle(), true);
    if is_wine() {
        // Wine's FSCTL_GET_RETRIEVAL_POINTERS is a stub (one run, VCN
        // 1..0): refused as no extent map; the refcount variant is absent.
        let e = runs.expect_err("Wine's stub passed as an extent map");
        assert_eq!(e.kind(), std::io::ErrorKind::Unsupported, "{e}");
        let e = refcounted.expect_err("Wine has no refcounts");
        assert_eq!(e.raw_os_error(), Some(ERROR_NOT_SUPPORTED), "{e}");
        return;
    }
    let runs = runs.expect("FSCTL_GET_RETRIEVAL_POINTERS");
    let cluster = u64::from(cluster_size(f.as_handle()).unwrap());
    let clusters: u64 = runs.iter().map(|r| r.next_vcn - r.vcn).sum();
    assert_eq!(clusters, (1u64 << 20).div_ceil(cluster), "{runs:?}");
    assert!(runs.iter().all(|r| r.lcn.is_some()), "{runs:?}");
    let flags = volume_flags(f.as_handle()).unwrap();
    if flags & FILE_SUPPORTS_BLOCK_REFCOUNTING != 0 {
        let runs = refcounted.expect("ReFS refcounts");
        assert!(
            runs.iter().all(|r| r.reference_count == Some(1)),
            "{runs:?}"
        );
    } else {
        let e = refcounted.expect_err("refcounts without block refcounting");
        let code = e.raw_os_error().expect("a Win32 error");
        assert!(
            [ERROR_INVALID_FUNCTION, ERROR_NOT_SUPPORTED].contains(&code),
            "{e}"
        );
    }
}

#[test]
fn cluster_run_layouts_match_windows_sys() {
    assert_eq!(size_of::<ioctl::RETRIEVAL_POINTERS_BUFFER>(), 32);
    assert_eq!(offset_of!(ioctl::RETRIEVAL_POINTERS_BUFFER, StartingVcn), 8);
    assert_eq!(offset_of!(ioctl::RETRIEVAL_POINTERS_BUFFER, Extents), 16);
    assert_eq!(size_of::<ioctl::RETRIEVAL_POINTERS_BUFFER_0>(), 16);
    assert_eq!(
        offset_of!(ioctl::RETRIEVAL_POINTERS_AND_REFCOUNT_BUFFER, Extents),
        16
    );
    assert_eq!(
        size_of::<ioctl::RETRIEVAL_POINTERS_AND_REFCOUNT_BUFFER_0>(),
        24
    );
    assert_eq!(
        offset_of!(
            ioctl::RETRIEVAL_POINTERS_AND_REFCOUNT_BUFFER_0,
            ReferenceCount
        ),
        16
    );
    assert_eq!(size_of::<ioctl::FILE_ALLOCATED_RANGE_BUFFER>(), 16);
    assert_eq!(ioctl::FSCTL_QUERY_ALLOCATED_RANGES, 0x0009_40CF);
    assert_eq!(ioctl::FSCTL_GET_RETRIEVAL_POINTERS, 0x0009_0073);
    assert_eq!(
        ioctl::FSCTL_GET_RETRIEVAL_POINTERS_AND_REFCOUNT,
        0x0009_03D3
    );
}

#[test]
fn duplicate_extents_clones_on_refs_and_fails_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let len = 256 * 1024usize;
    let data = pattern(len, 1);
    let mut src = rw(&dir.path().join("src"));
    src.write_all(&data).unwrap();
    src.sync_all().unwrap();
    let dst = rw(&dir.path().join("dst"));
    dst.set_len(len as u64).unwrap();
    let flags = volume_flags(src.as_handle()).unwrap();

    let result = duplicate_extents(dst.as_handle(), src.as_handle(), 0, 0, len as u64);
    if flags & FILE_SUPPORTS_BLOCK_REFCOUNTING == 0 {
        let err = result.expect_err("block cloning on a volume without it");
        let code = err.raw_os_error().expect("a Win32 error");
        assert!(
            [ERROR_INVALID_FUNCTION, ERROR_NOT_SUPPORTED].contains(&code),
            "unexpected error {code}: {err}"
        );
        assert_eq!(
            std::fs::read(dir.path().join("dst")).unwrap(),
            vec![0u8; len]
        );
        // Integrity streams are a ReFS feature as well.
        assert!(get_integrity_information(src.as_handle()).is_err());
    } else {
        result.expect("FSCTL_DUPLICATE_EXTENTS_TO_FILE on a block-cloning volume");
        drop(dst);
        assert_eq!(std::fs::read(dir.path().join("dst")).unwrap(), data);
        let info = get_integrity_information(src.as_handle()).expect("integrity information");
        assert!(info.cluster_size_in_bytes >= 4096, "{info:?}");
    }
}

#[test]
fn file_id_names_the_file_not_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    let link = dir.path().join("a-link");
    std::fs::write(&a, b"one").unwrap();
    std::fs::write(&b, b"two").unwrap();
    std::fs::hard_link(&a, &link).unwrap();
    let id = |p: &std::path::Path| file_id(File::open(p).unwrap().as_handle()).unwrap();
    assert_eq!(id(&a), id(&a), "two handles to one file");
    assert_eq!(id(&a), id(&link), "a hard link is the same file");
    assert_ne!(id(&a), id(&b), "different files");
    assert_eq!(id(&a).volume_serial, id(&b).volume_serial, "same volume");
}
