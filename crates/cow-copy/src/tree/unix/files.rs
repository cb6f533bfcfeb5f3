//! Regular files: the copy through the engine (hard links: [`super::links`]).

use super::*;

impl Walker<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn file(
        &self,
        src_dir: BorrowedFd<'_>,
        src_name: &CStr,
        st: Option<&Stat>,
        dst_dir: BorrowedFd<'_>,
        dst_name: &CStr,
        rel: &Path,
        follow: bool,
        dst_new: DirHint,
    ) {
        let len = st.map_or(0, size_of);
        // With hard-link preservation the listing always has the status.
        if let Some(st) = st.filter(|st| {
            self.shared.opts.preserve_hard_links && nlink_of(st) > 1 && self.dst_root.is_some()
        }) {
            let key = id_of(st);
            match self.claim(key) {
                Claim::Link(first) => {
                    if self.link(&first, dst_dir, dst_name, rel, len) {
                        return;
                    }
                }
                Claim::Mine => {
                    let r =
                        self.copy_file(src_dir, src_name, dst_dir, dst_name, follow, dst_new, None);
                    let r = r.and_then(|c| c.now(rel));
                    self.settle(key, r.is_ok().then(|| rel.to_path_buf()));
                    self.shared.file_result(rel, len, r);
                    return;
                }
                Claim::Copy => {}
            }
        }
        let defer = self.batch.as_ref().map(|batch| crate::durable::Defer {
            batch,
            tag: rel,
            len,
        });
        let r = match self.copy_file(src_dir, src_name, dst_dir, dst_name, follow, dst_new, defer) {
            Ok(crate::engine::Copied::Now(r)) => Ok(r),
            // Reported when the batch is committed.
            Ok(crate::engine::Copied::Deferred { full }) => {
                if let Some(b) = self.batch.as_ref().filter(|_| full) {
                    b.flush_full(|rel, len, r| self.shared.file_result(rel, len, r));
                }
                return;
            }
            Err(e) => Err(e),
        };
        // A skipped or failed file counts its length; learn it if unknown.
        let len = match (&r, st) {
            (Err(_), None) => {
                rfs::statat(src_dir, src_name, AtFlags::SYMLINK_NOFOLLOW).map_or(0, |s| size_of(&s))
            }
            _ => len,
        };
        self.shared.file_result(rel, len, r);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn copy_file(
        &self,
        src_dir: BorrowedFd<'_>,
        src_name: &CStr,
        dst_dir: BorrowedFd<'_>,
        dst_name: &CStr,
        follow: bool,
        dst_new: DirHint,
        defer: Option<crate::durable::Defer<'_>>,
    ) -> Result<crate::engine::Copied, crate::CopyError> {
        let opts = if follow {
            &self.file_opts_follow
        } else {
            &self.file_opts
        };
        // The entry was listed (or stat'ed) as a regular file just now.
        let hints = crate::engine::Hints {
            src_regular: true,
            dst_new: dst_new.new,
            dst_dir_dev: dst_new.dev,
            defer,
        };
        crate::engine::copy_at_hinted(
            opts,
            src_dir,
            os_name(src_name),
            dst_dir,
            os_name(dst_name),
            hints,
        )
    }
}
