//! macOS: the kind from `f_fstypename`; holes tested live, clones from the
//! table (APFS clones with `clonefile`), no dedupe or `copy_file_range`.

use std::fs::File;
use std::path::Path;

use crate::unix::{FsInfo, Scratch, sparse_answer};
use crate::{Answer, Evidence, ProbeError, Support, known};

pub(crate) use crate::unix::Target;

pub(crate) fn fs_info(dir: &File, dir_path: &Path) -> Result<FsInfo, ProbeError> {
    crate::unix::bsd_fs_info(dir, dir_path)
}

pub(crate) fn live(s: &mut Scratch<'_>, info: &FsInfo) -> Result<Option<[Answer; 5]>, ProbeError> {
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
        known(hint.fiemap),
        none,
    ]))
}
