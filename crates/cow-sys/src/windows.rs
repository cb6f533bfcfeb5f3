//! Windows: ReFS block cloning (`FSCTL_DUPLICATE_EXTENTS_TO_FILE`), integrity
//! streams (`FSCTL_GET/SET_INTEGRITY_INFORMATION`), sparse files
//! (`FSCTL_SET_SPARSE`), and the volume facts a clone needs (flags, file
//! system name, cluster size).
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
    FSCTL_GET_INTEGRITY_INFORMATION_BUFFER, FSCTL_SET_INTEGRITY_INFORMATION,
    FSCTL_SET_INTEGRITY_INFORMATION_BUFFER, FSCTL_SET_SPARSE,
};

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
    let mut returned = 0u32;
    // SAFETY: the handle is borrowed and open; the buffers are valid for
    // the given lengths for the whole call (they are borrowed references);
    // `returned` is a live u32; a null OVERLAPPED makes the call
    // synchronous, which a synchronous handle requires. The caller vouches
    // that the control code reads/writes exactly these types.
    let ok = unsafe {
        DeviceIoControl(
            raw(h),
            code,
            in_ptr,
            in_len,
            out_ptr,
            out_len,
            &mut returned,
            null_mut(),
        )
    };
    if ok == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(returned)
    }
}

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
