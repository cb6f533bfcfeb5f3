//! Windows: the volume's own flags (`GetVolumeInformationByHandleW`) say
//! whether it clones (block reference counting, ReFS) and keeps sparse
//! files. Nothing is written, so nothing needs a cache or a writable
//! directory.

use std::fs::{File, OpenOptions};
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsHandle;
use std::path::{Path, PathBuf};

use cow_sys::windows::{
    FILE_SUPPORTS_BLOCK_REFCOUNTING, FILE_SUPPORTS_SPARSE_FILES, cluster_size, filesystem_name,
    volume_flags,
};

use crate::kind::FsKind;
use crate::{Answer, Capabilities, Evidence, ProbeError, Support, io_err};

/// `FILE_FLAG_BACKUP_SEMANTICS`: needed to open a directory handle.
const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
/// `FILE_READ_ONLY_VOLUME` volume flag.
const FILE_READ_ONLY_VOLUME: u32 = 0x0008_0000;

/// The directory (or a file's parent) whose volume is asked.
pub(crate) struct Target {
    dir: File,
    dir_path: PathBuf,
}

impl Target {
    pub(crate) fn open(path: &Path) -> Result<Target, ProbeError> {
        let dir_path = crate::dir_of(path)?;
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
            .open(&dir_path)
            .map_err(|e| io_err("CreateFileW", &dir_path, e))?;
        Ok(Target { dir, dir_path })
    }

    /// Not known on Windows (the volume serial number is not exposed).
    pub(crate) fn dev(&self) -> u64 {
        0
    }

    pub(crate) fn cacheable(&self) -> bool {
        false
    }

    pub(crate) fn may_be_writable(&self) -> bool {
        false
    }

    pub(crate) fn probe(&self, path: &Path) -> Result<Capabilities, ProbeError> {
        let h = self.dir.as_handle();
        let op = "GetVolumeInformationByHandleW";
        let fs_name = filesystem_name(h).map_err(|e| io_err(op, &self.dir_path, e))?;
        let flags = volume_flags(h).map_err(|e| io_err(op, &self.dir_path, e))?;
        let block_size = cluster_size(h)
            .map_err(|e| io_err("NtQueryVolumeInformationFile", &self.dir_path, e))?;
        let reported = |bit: u32| Answer {
            support: if flags & bit != 0 {
                Support::Yes
            } else {
                Support::No
            },
            evidence: Evidence::Reported,
        };
        let none = Answer {
            support: Support::No,
            evidence: Evidence::Platform,
        };
        Ok(Capabilities {
            path: path.to_path_buf(),
            fs: FsKind::from_type_name(&fs_name),
            fs_name,
            block_size: u64::from(block_size),
            dev: 0,
            read_only: flags & FILE_READ_ONLY_VOLUME != 0,
            reflink: reported(FILE_SUPPORTS_BLOCK_REFCOUNTING),
            dedupe: none,
            sparse: reported(FILE_SUPPORTS_SPARSE_FILES),
            fiemap: none,
            copy_file_range: none,
        })
    }
}
