//! Windows: ReFS block cloning (`FSCTL_DUPLICATE_EXTENTS_TO_FILE`), integrity
//! streams (`FSCTL_GET/SET_INTEGRITY_INFORMATION`), sparse files
//! (`FSCTL_SET_SPARSE`, `FSCTL_QUERY_ALLOCATED_RANGES`), where a file's
//! clusters are and how often they are referenced
//! (`FSCTL_GET_RETRIEVAL_POINTERS[_AND_REFCOUNT]`), the volume facts a clone
//! needs (flags, file system name, cluster size), and whether the process
//! runs under Wine ([`wine_version`]), whose answers differ.
//!
//! Every call takes handles opened for synchronous I/O (as `std::fs::File`
//! opens them); an overlapped handle is not supported.
//!
//! # Block cloning rules (ReFS, Windows Server 2016+ / Windows 11 Dev Drive)
//!
//! - Source and destination are on the same ReFS volume
//!   ([`FILE_SUPPORTS_BLOCK_REFCOUNTING`] in [`volume_flags`]).
//! - Both regions begin and end on cluster boundaries ([`cluster_size`],
//!   4 KiB or 64 KiB). To clone a file whose length is not a multiple of
//!   the cluster size, callers round the length up and set the
//!   destination's real length afterwards.
//! - One call clones less than 4 GiB: split larger ranges.
//! - The destination region must not extend past the destination's end of
//!   file: set its length first; the call does not extend it.
//! - Within one file, the two regions must not overlap.
//! - Sparse and integrity-stream settings of the two files must match
//!   ([`set_sparse`], [`set_integrity_information`]).
//! - The destination handle needs write access, the source read access.

use std::io;
use std::mem::size_of;
use std::os::windows::io::{AsRawHandle, BorrowedHandle};
use std::ptr::{null, null_mut};

use windows_sys::Wdk::Storage::FileSystem::{FileFsSizeInformation, NtQueryVolumeInformationFile};
use windows_sys::Win32::Foundation::{HANDLE, RtlNtStatusToDosError};
use windows_sys::Win32::Storage::FileSystem::{
    BY_HANDLE_FILE_INFORMATION, GetFileInformationByHandle, GetVolumeInformationByHandleW,
};
use windows_sys::Win32::System::IO::{DeviceIoControl, IO_STATUS_BLOCK};
use windows_sys::Win32::System::Ioctl::{
    FILE_SET_SPARSE_BUFFER, FSCTL_DUPLICATE_EXTENTS_TO_FILE, FSCTL_GET_INTEGRITY_INFORMATION,
    FSCTL_GET_INTEGRITY_INFORMATION_BUFFER, FSCTL_GET_RETRIEVAL_POINTERS,
    FSCTL_GET_RETRIEVAL_POINTERS_AND_REFCOUNT, FSCTL_QUERY_ALLOCATED_RANGES,
    FSCTL_SET_INTEGRITY_INFORMATION, FSCTL_SET_INTEGRITY_INFORMATION_BUFFER, FSCTL_SET_SPARSE,
    STARTING_VCN_INPUT_BUFFER,
};
use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};

pub use windows_sys::Win32::System::Ioctl::{
    CHECKSUM_TYPE_CRC32, CHECKSUM_TYPE_CRC64, CHECKSUM_TYPE_NONE,
    FSCTL_INTEGRITY_FLAG_CHECKSUM_ENFORCEMENT_OFF,
};

/// `DUPLICATE_EXTENTS_DATA` from `<winioctl.h>`, the input of
/// `FSCTL_DUPLICATE_EXTENTS_TO_FILE`: `FileHandle` (the source),
/// `SourceFileOffset`, `TargetFileOffset`, `ByteCount`. 32 bytes on 64-bit
/// Windows.
pub type DuplicateExtentsData = windows_sys::Win32::System::Ioctl::DUPLICATE_EXTENTS_DATA;

/// Volume flag: the file system counts block references, so
/// `FSCTL_DUPLICATE_EXTENTS_TO_FILE` can clone (ReFS).
pub const FILE_SUPPORTS_BLOCK_REFCOUNTING: u32 = 0x0800_0000;
/// Volume flag: the file system supports sparse files.
pub const FILE_SUPPORTS_SPARSE_FILES: u32 = 0x0000_0040;
/// Volume flag: the file system supports integrity streams (ReFS).
pub const FILE_SUPPORTS_INTEGRITY_STREAMS: u32 = 0x0400_0000;

/// `FSCTL_GET_INTEGRITY_INFORMATION_BUFFER`: a file's integrity-stream
/// settings, as [`get_integrity_information`] returns them (16 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntegrityInformation {
    /// `CHECKSUM_TYPE_NONE` (integrity off), `CHECKSUM_TYPE_CRC32` or
    /// `CHECKSUM_TYPE_CRC64`.
    pub checksum_algorithm: u16,
    /// Reserved.
    pub reserved: u16,
    /// `FSCTL_INTEGRITY_FLAG_CHECKSUM_ENFORCEMENT_OFF` or 0.
    pub flags: u32,
    /// Bytes covered by one checksum.
    pub checksum_chunk_size_in_bytes: u32,
    /// The volume's cluster size in bytes.
    pub cluster_size_in_bytes: u32,
}

/// `FILE_FS_SIZE_INFORMATION` from `<ntddk.h>` (24 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsSizeInformation {
    /// Clusters on the volume.
    pub total_allocation_units: i64,
    /// Free clusters available to the caller.
    pub available_allocation_units: i64,
    /// Sectors per cluster.
    pub sectors_per_allocation_unit: u32,
    /// Bytes per sector.
    pub bytes_per_sector: u32,
}

fn raw(h: BorrowedHandle<'_>) -> HANDLE {
    h.as_raw_handle() as HANDLE
}

fn offset(value: u64, what: &str) -> io::Result<i64> {
    i64::try_from(value)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{what} over i64::MAX")))
}

/// `DeviceIoControl` on a synchronous handle with raw buffers. Returns the
/// call's result and the bytes written to `output` (which a failed call
/// with `ERROR_MORE_DATA` also fills).
///
/// # Safety
///
/// `input` must be null with `in_len` 0 or readable for `in_len` bytes,
/// `output` null with `out_len` 0 or writable for `out_len` bytes, `code`
/// a control code that reads and writes no more than that, and every
/// handle inside the input valid for the call.
unsafe fn device_io_control(
    h: BorrowedHandle<'_>,
    code: u32,
    input: *const std::ffi::c_void,
    in_len: u32,
    output: *mut std::ffi::c_void,
    out_len: u32,
) -> (io::Result<()>, u32) {
    let mut returned = 0u32;
    // SAFETY: the handle is borrowed and open; the caller vouches for the
    // buffers and the control code; `returned` is a live u32; a null
    // OVERLAPPED makes the call synchronous, which a synchronous handle
    // requires.
    let ok = unsafe {
        DeviceIoControl(
            raw(h),
            code,
            input,
            in_len,
            output,
            out_len,
            &mut returned,
            null_mut(),
        )
    };
    if ok == 0 {
        (Err(io::Error::last_os_error()), returned)
    } else {
        (Ok(()), returned)
    }
}

/// `DeviceIoControl` on a synchronous handle: sends `input` and receives
/// into `output`, returning the bytes written to `output`.
///
/// # Safety
///
/// `code` must be a control code whose input is a `In` (or nothing, when
/// `input` is `None`) and whose output fits in an `Out` (or nothing), and
/// every handle inside `input` must be valid for the call.
unsafe fn fsctl<In, Out>(
    h: BorrowedHandle<'_>,
    code: u32,
    input: Option<&In>,
    output: Option<&mut Out>,
) -> io::Result<u32> {
    let (in_ptr, in_len) = match input {
        Some(i) => ((i as *const In).cast(), size_of::<In>() as u32),
        None => (null(), 0),
    };
    let (out_ptr, out_len) = match output {
        Some(o) => ((o as *mut Out).cast(), size_of::<Out>() as u32),
        None => (null_mut(), 0),
    };
    // SAFETY: the buffers are borrowed references valid for their sizes
    // for the whole call; the caller vouches for the control code.
    let (result, returned) =
        unsafe { device_io_control(h, code, in_ptr, in_len, out_ptr, out_len) };
    result.map(|()| returned)
}

/// A control code that takes one `In` and answers a variable-length array
/// into `out`: returns the bytes written and whether more was left
/// (`ERROR_MORE_DATA`, the buffer is full and valid).
///
/// # Safety
///
/// As [`fsctl`], with an output of any length that fits `out`.
unsafe fn fsctl_array<In>(
    h: BorrowedHandle<'_>,
    code: u32,
    input: &In,
    out: &mut [u64],
) -> io::Result<(usize, bool)> {
    let out_len = u32::try_from(std::mem::size_of_val(out))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "output buffer over 4 GiB"))?;
    // SAFETY: `input` is a borrowed `In`, `out` a writable buffer of at
    // least `out_len` bytes, 8-aligned as every output structure needs.
    let (result, returned) = unsafe {
        device_io_control(
            h,
            code,
            (input as *const In).cast(),
            size_of::<In>() as u32,
            out.as_mut_ptr().cast(),
            out_len,
        )
    };
    match result {
        Ok(()) => Ok((returned as usize, false)),
        Err(e) if e.raw_os_error() == Some(ERROR_MORE_DATA) => Ok((returned as usize, true)),
        Err(e) => Err(e),
    }
}

/// `ERROR_MORE_DATA`: the output buffer was filled and more is left.
const ERROR_MORE_DATA: i32 = 234;
/// `ERROR_HANDLE_EOF`: asked past the end (a file with no clusters).
const ERROR_HANDLE_EOF: i32 = 38;

/// Makes `len` bytes of `dst` at `dst_offset` share the clusters of `src` at
/// `src_offset` (`FSCTL_DUPLICATE_EXTENTS_TO_FILE`). See the module docs for
/// the rules; a volume without block cloning (NTFS) answers
/// `ERROR_INVALID_FUNCTION` or `ERROR_NOT_SUPPORTED`.
pub fn duplicate_extents(
    dst: BorrowedHandle<'_>,
    src: BorrowedHandle<'_>,
    src_offset: u64,
    dst_offset: u64,
    len: u64,
) -> io::Result<()> {
    let data = DuplicateExtentsData {
        FileHandle: raw(src),
        SourceFileOffset: offset(src_offset, "source offset")?,
        TargetFileOffset: offset(dst_offset, "destination offset")?,
        ByteCount: offset(len, "length")?,
    };
    // SAFETY: FSCTL_DUPLICATE_EXTENTS_TO_FILE reads one
    // DUPLICATE_EXTENTS_DATA and writes nothing; the source handle inside it
    // is borrowed for this call.
    unsafe { fsctl::<_, ()>(dst, FSCTL_DUPLICATE_EXTENTS_TO_FILE, Some(&data), None) }?;
    Ok(())
}

/// The integrity-stream settings of a file (`FSCTL_GET_INTEGRITY_INFORMATION`,
/// ReFS only; NTFS answers `ERROR_INVALID_FUNCTION`).
pub fn get_integrity_information(h: BorrowedHandle<'_>) -> io::Result<IntegrityInformation> {
    let mut out = FSCTL_GET_INTEGRITY_INFORMATION_BUFFER::default();
    // SAFETY: FSCTL_GET_INTEGRITY_INFORMATION reads nothing and writes one
    // FSCTL_GET_INTEGRITY_INFORMATION_BUFFER.
    unsafe { fsctl::<(), _>(h, FSCTL_GET_INTEGRITY_INFORMATION, None, Some(&mut out)) }?;
    Ok(IntegrityInformation {
        checksum_algorithm: out.ChecksumAlgorithm,
        reserved: out.Reserved,
        flags: out.Flags,
        checksum_chunk_size_in_bytes: out.ChecksumChunkSizeInBytes,
        cluster_size_in_bytes: out.ClusterSizeInBytes,
    })
}

/// Turns integrity streams of a file on or off
/// (`FSCTL_SET_INTEGRITY_INFORMATION`): `checksum_algorithm` is one of the
/// `CHECKSUM_TYPE_*` values (as u16), `flags` 0 or
/// [`FSCTL_INTEGRITY_FLAG_CHECKSUM_ENFORCEMENT_OFF`]. Needs write access.
pub fn set_integrity_information(
    h: BorrowedHandle<'_>,
    checksum_algorithm: u16,
    flags: u32,
) -> io::Result<()> {
    let input = FSCTL_SET_INTEGRITY_INFORMATION_BUFFER {
        ChecksumAlgorithm: checksum_algorithm,
        Reserved: 0,
        Flags: flags,
    };
    // SAFETY: FSCTL_SET_INTEGRITY_INFORMATION reads one
    // FSCTL_SET_INTEGRITY_INFORMATION_BUFFER and writes nothing.
    unsafe { fsctl::<_, ()>(h, FSCTL_SET_INTEGRITY_INFORMATION, Some(&input), None) }?;
    Ok(())
}

/// Marks a file sparse or not (`FSCTL_SET_SPARSE`). Needs write access.
/// On Windows 7 / Server 2008 R2 and older, clearing the flag is only valid
/// once the file has no sparse (unallocated) ranges left.
pub fn set_sparse(h: BorrowedHandle<'_>, sparse: bool) -> io::Result<()> {
    let input = FILE_SET_SPARSE_BUFFER { SetSparse: sparse };
    // SAFETY: FSCTL_SET_SPARSE reads one FILE_SET_SPARSE_BUFFER (a BOOLEAN)
    // and writes nothing.
    unsafe { fsctl::<_, ()>(h, FSCTL_SET_SPARSE, Some(&input), None) }?;
    Ok(())
}

/// The `FILE_SUPPORTS_*` / `FILE_*` flags of the volume holding the file
/// (`GetVolumeInformationByHandleW`).
pub fn volume_flags(h: BorrowedHandle<'_>) -> io::Result<u32> {
    let mut flags = 0u32;
    volume_information(h, Some(&mut flags), None)?;
    Ok(flags)
}

/// The name of the file system holding the file: `"NTFS"`, `"ReFS"`,
/// `"FAT32"`... (`GetVolumeInformationByHandleW`).
pub fn filesystem_name(h: BorrowedHandle<'_>) -> io::Result<String> {
    // MAX_PATH + 1 is the documented maximum.
    let mut name = [0u16; 261];
    volume_information(h, None, Some(&mut name))?;
    let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
    Ok(String::from_utf16_lossy(&name[..end]))
}

/// `GetVolumeInformationByHandleW` asking only for the volume flags and/or
/// the file system name; every other optional buffer is left out.
fn volume_information(
    h: BorrowedHandle<'_>,
    flags: Option<&mut u32>,
    fs_name: Option<&mut [u16]>,
) -> io::Result<()> {
    let flags = flags.map_or(null_mut(), std::ptr::from_mut);
    let (name, name_len) = match fs_name {
        Some(n) => (n.as_mut_ptr(), n.len() as u32),
        None => (null_mut(), 0),
    };
    // SAFETY: `flags` is null or a live u32; `name` is null with size 0 or
    // a writable buffer of `name_len` u16s; the other optional buffers are
    // null with size 0, which the API allows; the handle is borrowed and
    // open.
    let ok = unsafe {
        GetVolumeInformationByHandleW(
            raw(h),
            null_mut(),
            0,
            null_mut(),
            null_mut(),
            flags,
            name,
            name_len,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Size information of the volume holding the file
/// (`NtQueryVolumeInformationFile(FileFsSizeInformation)`).
pub fn volume_size_information(h: BorrowedHandle<'_>) -> io::Result<FsSizeInformation> {
    let mut info = FsSizeInformation::default();
    let mut iosb = IO_STATUS_BLOCK::default();
    // SAFETY: `info` is a writable FILE_FS_SIZE_INFORMATION (layout tested)
    // of the length passed, `iosb` a live IO_STATUS_BLOCK; the handle is
    // borrowed and open; the call is synchronous on a synchronous handle.
    let status = unsafe {
        NtQueryVolumeInformationFile(
            raw(h),
            &mut iosb,
            (&raw mut info).cast(),
            size_of::<FsSizeInformation>() as u32,
            FileFsSizeInformation,
        )
    };
    if status < 0 {
        // SAFETY: a pure conversion of a status code to a Win32 error code.
        let code = unsafe { RtlNtStatusToDosError(status) };
        return Err(io::Error::from_raw_os_error(code as i32));
    }
    Ok(info)
}

/// The cluster size in bytes of the volume holding the file: the alignment
/// [`duplicate_extents`] needs.
pub fn cluster_size(h: BorrowedHandle<'_>) -> io::Result<u32> {
    let info = volume_size_information(h)?;
    info.sectors_per_allocation_unit
        .checked_mul(info.bytes_per_sector)
        .filter(|&n| n != 0)
        .ok_or_else(|| io::Error::other("the volume reports no cluster size"))
}

/// The identity of an open file: the volume serial number and the file
/// index, Windows' equivalent of (dev, ino).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    /// Serial number of the volume holding the file.
    pub volume_serial: u32,
    /// The file's index on that volume (stable while the file is open).
    pub index: u64,
}

/// The [`FileId`] of an open file (`GetFileInformationByHandle`): two
/// handles with equal ids name the same file, whatever paths led to them.
pub fn file_id(h: BorrowedHandle<'_>) -> io::Result<FileId> {
    let mut info = BY_HANDLE_FILE_INFORMATION::default();
    // SAFETY: `info` is a live, writable BY_HANDLE_FILE_INFORMATION, the
    // only thing the call writes; the handle is borrowed and open.
    let ok = unsafe { GetFileInformationByHandle(raw(h), &mut info) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(FileId {
        volume_serial: info.dwVolumeSerialNumber,
        index: (u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow),
    })
}

/// One allocated range of a file, as `FSCTL_QUERY_ALLOCATED_RANGES`
/// answers it (`FILE_ALLOCATED_RANGE_BUFFER`): bytes that hold data or
/// were written; what lies between ranges is a sparse hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocatedRange {
    /// Byte offset in the file.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// The allocated ranges of a file within `offset..offset + len`
/// (`FSCTL_QUERY_ALLOCATED_RANGES`, repeated while it answers
/// `ERROR_MORE_DATA`). A file that is not sparse is one range on NTFS and
/// ReFS. Wine answers `ERROR_NOT_SUPPORTED`.
pub fn allocated_ranges(
    h: BorrowedHandle<'_>,
    offset: u64,
    len: u64,
) -> io::Result<Vec<AllocatedRange>> {
    let end = offset.saturating_add(len);
    let mut out = Vec::new();
    let mut buf = vec![0u64; 2 * 256];
    let mut from = offset;
    while from < end {
        let query = windows_sys::Win32::System::Ioctl::FILE_ALLOCATED_RANGE_BUFFER {
            FileOffset: self::offset(from, "offset")?,
            Length: self::offset(end - from, "length")?,
        };
        // SAFETY: FSCTL_QUERY_ALLOCATED_RANGES reads one
        // FILE_ALLOCATED_RANGE_BUFFER and writes an array of them.
        let (bytes, more) =
            unsafe { fsctl_array(h, FSCTL_QUERY_ALLOCATED_RANGES, &query, &mut buf) }?;
        let ranges = &buf[..(bytes / 16).min(buf.len() / 2) * 2];
        for pair in ranges.chunks_exact(2) {
            let (o, l) = (pair[0] as i64, pair[1] as i64);
            if o < 0 || l < 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("FSCTL_QUERY_ALLOCATED_RANGES answered a negative range {o}+{l}"),
                ));
            }
            out.push(AllocatedRange {
                offset: o as u64,
                len: l as u64,
            });
        }
        if !more {
            break;
        }
        let next = out.last().map_or(from, |r| r.offset.saturating_add(r.len));
        if next <= from {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "FSCTL_QUERY_ALLOCATED_RANGES asked for more room without progress",
            ));
        }
        from = next;
    }
    Ok(out)
}

/// One run of a file's clusters: virtual clusters `vcn..next_vcn` of the
/// file are stored at logical cluster `lcn` of the volume, onwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterRun {
    /// First virtual cluster (file offset / cluster size).
    pub vcn: u64,
    /// The virtual cluster after the run.
    pub next_vcn: u64,
    /// The volume cluster of `vcn`; `None` for a run with no storage (a
    /// sparse hole, or the unallocated part of a compression unit).
    pub lcn: Option<u64>,
    /// How many files (or offsets) reference these clusters, where the
    /// file system counts references (ReFS, with
    /// [`cluster_runs`]`(h, true)`); `None` otherwise.
    pub reference_count: Option<u32>,
}

/// The cluster runs of a file: `FSCTL_GET_RETRIEVAL_POINTERS`, or with
/// `refcount` `FSCTL_GET_RETRIEVAL_POINTERS_AND_REFCOUNT` (ReFS on
/// Windows 10 1709 / Server 2019 and later; other file systems answer
/// `ERROR_INVALID_FUNCTION` or `ERROR_NOT_SUPPORTED`), repeated while the
/// answer says `ERROR_MORE_DATA`. A file without clusters of its own (empty,
/// or small enough to live in its NTFS record) has no runs.
///
/// An answer that is not an extent map (a run that ends where it starts or
/// before: Wine's stub answers VCN 1..0) fails with
/// [`io::ErrorKind::Unsupported`], never passes as one.
pub fn cluster_runs(h: BorrowedHandle<'_>, refcount: bool) -> io::Result<Vec<ClusterRun>> {
    // Header: ExtentCount (u32, padded), StartingVcn; then one entry per
    // run: NextVcn, Lcn (and ReferenceCount, padded, with refcounts).
    let (code, stride) = if refcount {
        (FSCTL_GET_RETRIEVAL_POINTERS_AND_REFCOUNT, 3)
    } else {
        (FSCTL_GET_RETRIEVAL_POINTERS, 2)
    };
    let name = if refcount {
        "FSCTL_GET_RETRIEVAL_POINTERS_AND_REFCOUNT"
    } else {
        "FSCTL_GET_RETRIEVAL_POINTERS"
    };
    let mut buf = vec![0u64; 2 + stride * 256];
    let mut out: Vec<ClusterRun> = Vec::new();
    let mut start = 0i64;
    loop {
        let query = STARTING_VCN_INPUT_BUFFER { StartingVcn: start };
        // SAFETY: both control codes read one STARTING_VCN_INPUT_BUFFER and
        // write a header plus an array of runs into the buffer.
        let (bytes, more) = match unsafe { fsctl_array(h, code, &query, &mut buf) } {
            Ok(v) => v,
            Err(e) if e.raw_os_error() == Some(ERROR_HANDLE_EOF) => return Ok(out),
            Err(e) => return Err(e),
        };
        let words = (bytes / 8).min(buf.len());
        if words < 2 {
            return Err(not_a_map(name, "an answer shorter than its header"));
        }
        let count = (buf[0] & 0xffff_ffff) as usize;
        if 2 + count * stride > words {
            return Err(not_a_map(name, "more runs than bytes"));
        }
        let mut vcn = buf[1] as i64;
        for run in buf[2..2 + count * stride].chunks_exact(stride) {
            let (next, lcn) = (run[0] as i64, run[1] as i64);
            if vcn < 0 || next <= vcn {
                return Err(not_a_map(
                    name,
                    &format!("a run of virtual clusters {vcn}..{next}"),
                ));
            }
            out.push(ClusterRun {
                vcn: vcn as u64,
                next_vcn: next as u64,
                lcn: (lcn >= 0).then_some(lcn as u64),
                reference_count: refcount.then_some((run[2] & 0xffff_ffff) as u32),
            });
            vcn = next;
        }
        if !more {
            return Ok(out);
        }
        if count == 0 {
            return Err(not_a_map(name, "ERROR_MORE_DATA without a run"));
        }
        start = vcn;
    }
}

fn not_a_map(call: &str, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{call} answered {what}: not an extent map"),
    )
}

/// The version of Wine this process runs under (ntdll exports
/// `wine_get_version` there and only there), or `None` on Windows.
/// Looked up once.
pub fn wine_version() -> Option<&'static str> {
    static VERSION: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    VERSION.get_or_init(look_up_wine_version).as_deref()
}

/// Whether this process runs under Wine (see [`wine_version`]).
pub fn is_wine() -> bool {
    wine_version().is_some()
}

fn look_up_wine_version() -> Option<String> {
    let ntdll: Vec<u16> = "ntdll.dll\0".encode_utf16().collect();
    // SAFETY: a NUL-terminated UTF-16 name; ntdll is loaded in every
    // process, and the handle is not freed (GetModuleHandleW takes no
    // reference).
    let module = unsafe { GetModuleHandleW(ntdll.as_ptr()) };
    if module.is_null() {
        return None;
    }
    // SAFETY: a live module handle and a NUL-terminated ANSI name.
    let proc = unsafe { GetProcAddress(module, c"wine_get_version".as_ptr().cast()) }?;
    // SAFETY: Wine declares `const char *wine_get_version(void)`; on x86-64
    // and AArch64 Windows the C and system calling conventions are one.
    let get: unsafe extern "C" fn() -> *const std::ffi::c_char =
        unsafe { std::mem::transmute(proc) };
    // SAFETY: it takes no arguments and returns a static string or null.
    let p = unsafe { get() };
    if p.is_null() {
        return Some(String::new());
    }
    // SAFETY: a NUL-terminated string with static lifetime inside ntdll.
    Some(
        unsafe { std::ffi::CStr::from_ptr(p) }
            .to_string_lossy()
            .into_owned(),
    )
}
