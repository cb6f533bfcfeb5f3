//! `SEEK_DATA`/`SEEK_HOLE`: shared by every Unix that has them.

use std::fs::File;
use std::path::Path;

use rustix::fs::{SeekFrom, seek};
use rustix::io::Errno;

use crate::{Segment, SegmentKind, VerifyError, io_err, push_segment};

/// The data/hole map of `file`, restoring its offset afterwards.
pub(crate) fn data_map(file: &File, path: &Path) -> Result<Vec<Segment>, VerifyError> {
    let saved = seek(file, SeekFrom::Current(0)).map_err(|e| io_err("lseek(SEEK_CUR)", path, e))?;
    let result = walk(file, path);
    let restored =
        seek(file, SeekFrom::Start(saved)).map_err(|e| io_err("lseek(SEEK_SET)", path, e));
    let map = result?;
    restored?;
    Ok(map)
}

fn walk(file: &File, path: &Path) -> Result<Vec<Segment>, VerifyError> {
    let len = file.metadata().map_err(|e| io_err("fstat", path, e))?.len();
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < len {
        let data = match seek(file, SeekFrom::Data(pos)) {
            Ok(d) => d.min(len),
            // No data at or after `pos`: the rest is a hole.
            Err(Errno::NXIO) => len,
            Err(e) if e == Errno::INVAL || e == Errno::NOTSUP || e == Errno::OPNOTSUPP => {
                return Err(VerifyError::Unsupported {
                    path: path.to_path_buf(),
                    what: "lseek(SEEK_DATA)",
                });
            }
            Err(e) => return Err(io_err("lseek(SEEK_DATA)", path, e)),
        };
        push_segment(&mut out, pos, data, SegmentKind::Hole);
        if data >= len {
            break;
        }
        let hole = match seek(file, SeekFrom::Hole(data)) {
            Ok(h) => h.min(len),
            // The file shrank under us: what is left is a hole.
            Err(Errno::NXIO) => data,
            Err(e) => return Err(io_err("lseek(SEEK_HOLE)", path, e)),
        };
        // A filesystem must move forward; if it does not, call the rest data.
        let hole = if hole <= data { len } else { hole };
        push_segment(&mut out, data, hole, SegmentKind::Data);
        pos = hole;
    }
    Ok(out)
}
