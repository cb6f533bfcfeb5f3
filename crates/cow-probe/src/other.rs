//! FreeBSD and other Unixes: the kind from `f_fstypename`, holes tested live,
//! the rest from the table. Targets that are neither Unix nor Windows: not
//! supported.

#[cfg(unix)]
mod imp {
    use std::fs::File;
    use std::path::Path;

    use crate::unix::{FsInfo, Scratch, sparse_answer};
    use crate::{Answer, Evidence, ProbeError, Support, known};

    pub(crate) use crate::unix::Target;

    pub(crate) fn fs_info(dir: &File, dir_path: &Path) -> Result<FsInfo, ProbeError> {
        crate::unix::bsd_fs_info(dir, dir_path)
    }

    pub(crate) fn live(
        s: &mut Scratch<'_>,
        info: &FsInfo,
    ) -> Result<Option<[Answer; 5]>, ProbeError> {
        let hint = info.kind.table_hint();
        let Some(a) = s.hole_then_data("a")? else {
            return Ok(None);
        };
        let sparse = sparse_answer(&a, s.block);
        let none = Answer {
            support: Support::No,
            evidence: Evidence::Platform,
        };
        Ok(Some([
            known(hint.reflink),
            none,
            sparse,
            none,
            known(hint.copy_file_range),
        ]))
    }
}

#[cfg(unix)]
pub(crate) use imp::*;

#[cfg(not(unix))]
mod imp {
    use std::path::Path;

    use crate::{Capabilities, ProbeError};

    /// No probing here yet.
    pub(crate) struct Target;

    impl Target {
        pub(crate) fn open(path: &Path) -> Result<Target, ProbeError> {
            Err(ProbeError::Unsupported {
                path: path.to_path_buf(),
                what: "probing a filesystem",
            })
        }

        pub(crate) fn dev(&self) -> u64 {
            0
        }

        pub(crate) fn may_be_writable(&self) -> bool {
            false
        }

        pub(crate) fn cacheable(&self) -> bool {
            false
        }

        pub(crate) fn probe(&self, path: &Path) -> Result<Capabilities, ProbeError> {
            Self::open(path).map(|_| unreachable!("open always fails here"))
        }
    }
}

#[cfg(not(unix))]
pub(crate) use imp::*;
