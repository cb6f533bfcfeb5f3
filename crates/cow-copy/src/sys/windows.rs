//! Windows: ReFS / Dev Drive block cloning with
//! `FSCTL_DUPLICATE_EXTENTS_TO_FILE` (cluster-aligned ranges, under 4 GiB
//! per call, destination extended first, sparse and integrity settings
//! matched) and the file identity used by the same-file check.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::windows::fs::MetadataExt;
use std::os::windows::io::AsHandle;
use std::path::Path;

use cow_sys::windows::{
    FILE_SUPPORTS_BLOCK_REFCOUNTING, cluster_size, duplicate_extents, get_integrity_information,
    set_integrity_information, set_sparse, volume_flags,
};

pub(crate) use cow_sys::windows::file_id;

/// One duplicate-extents call stays below 4 GiB.
const MAX_CHUNK: u64 = (4 << 30) - (1 << 20);

/// `FILE_ATTRIBUTE_SPARSE_FILE`.
const SPARSE_ATTRIBUTE: u32 = 0x200;

/// Block-clones `src` into `target` (created or truncated). Refuses with
/// `ERROR_NOT_SUPPORTED` when the volume has no block refcounting.
pub(crate) fn clone_file(src: &File, src_meta: &fs::Metadata, target: &Path) -> io::Result<u64> {
    let flags = volume_flags(src.as_handle())?;
    if flags & FILE_SUPPORTS_BLOCK_REFCOUNTING == 0 {
        return Err(io::Error::from_raw_os_error(50));
    }
    let dst = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(target)?;
    let len = src_meta.len();
    if src_meta.file_attributes() & SPARSE_ATTRIBUTE != 0 {
        set_sparse(dst.as_handle(), true)?;
    }
    let integrity = get_integrity_information(src.as_handle())?;
    set_integrity_information(
        dst.as_handle(),
        integrity.checksum_algorithm,
        integrity.flags,
    )?;
    if len == 0 {
        return Ok(0);
    }
    let cluster = u64::from(cluster_size(src.as_handle())?.max(1));
    let rounded = len.div_ceil(cluster) * cluster;
    // The destination must already span every cloned cluster.
    dst.set_len(rounded)?;
    let chunk = MAX_CHUNK / cluster * cluster;
    let mut off = 0u64;
    while off < rounded {
        let n = (rounded - off).min(chunk);
        duplicate_extents(dst.as_handle(), src.as_handle(), off, off, n)?;
        off += n;
    }
    dst.set_len(len)?;
    Ok(len)
}
