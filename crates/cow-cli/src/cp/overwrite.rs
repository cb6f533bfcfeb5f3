//! The one mapping from `cow cp`'s flags for existing destinations (`-n`,
//! `--update[=WHICH]`, `-u`, `--dedupe`, `--trust-mtime`) to the library's
//! single [`Overwrite`] policy.

use cow_copy::Overwrite;

use super::UpdateArg;

/// The flags of `cow cp` that decide the fate of an existing destination.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Flags {
    /// `-n` / `--no-clobber`.
    pub(super) no_clobber: bool,
    /// `--update[=WHICH]` (a bare `--update` is `older`).
    pub(super) update: Option<UpdateArg>,
    /// `-u` (the later of `-u` and `--update` wins, by clap's overrides).
    pub(super) update_older: bool,
    /// `--dedupe`.
    pub(super) dedupe: bool,
    /// `--trust-mtime`.
    pub(super) trust_mtime: bool,
}

/// The policy the flags ask for. Precedence, as GNU `cp`: `-n` (or
/// `--update=none`) wins over every other `--update`, so an existing
/// destination is never written; `-n` with `--update=all` is an error,
/// and `--dedupe` / `--trust-mtime` need `--update=identical`.
pub(super) fn policy(f: Flags) -> Result<Overwrite, String> {
    if f.dedupe && f.update != Some(UpdateArg::Identical) {
        return Err("--dedupe needs --update=identical".into());
    }
    if f.trust_mtime && f.update != Some(UpdateArg::Identical) {
        return Err("--trust-mtime needs --update=identical".into());
    }
    if f.no_clobber && f.update == Some(UpdateArg::All) {
        return Err("--no-clobber and --update=all contradict each other".into());
    }
    if f.no_clobber {
        return Ok(Overwrite::NoClobber);
    }
    Ok(match f.update {
        Some(UpdateArg::None) => Overwrite::NoClobber,
        Some(UpdateArg::Older) => Overwrite::IfOlder,
        None if f.update_older => Overwrite::IfOlder,
        Some(UpdateArg::Identical) if f.dedupe => Overwrite::IfDifferentDedupe,
        Some(UpdateArg::Identical) if f.trust_mtime => Overwrite::IfDifferentTrustMtime,
        Some(UpdateArg::Identical) => Overwrite::IfDifferent,
        Some(UpdateArg::All) | None => Overwrite::Replace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(which: UpdateArg) -> Flags {
        Flags {
            update: Some(which),
            ..Flags::default()
        }
    }

    #[test]
    fn each_flag_maps_to_one_policy() {
        assert_eq!(policy(Flags::default()), Ok(Overwrite::Replace));
        assert_eq!(policy(update(UpdateArg::All)), Ok(Overwrite::Replace));
        assert_eq!(policy(update(UpdateArg::None)), Ok(Overwrite::NoClobber));
        assert_eq!(policy(update(UpdateArg::Older)), Ok(Overwrite::IfOlder));
        let u = Flags {
            update_older: true,
            ..Flags::default()
        };
        assert_eq!(policy(u), Ok(Overwrite::IfOlder));
        let identical = update(UpdateArg::Identical);
        assert_eq!(policy(identical), Ok(Overwrite::IfDifferent));
        let dedupe = Flags {
            dedupe: true,
            ..identical
        };
        assert_eq!(policy(dedupe), Ok(Overwrite::IfDifferentDedupe));
        let trust = Flags {
            trust_mtime: true,
            ..identical
        };
        assert_eq!(policy(trust), Ok(Overwrite::IfDifferentTrustMtime));
    }

    #[test]
    fn no_clobber_wins_over_update() {
        for which in [UpdateArg::None, UpdateArg::Older, UpdateArg::Identical] {
            let f = Flags {
                no_clobber: true,
                ..update(which)
            };
            assert_eq!(policy(f), Ok(Overwrite::NoClobber), "{which:?}");
        }
        let f = Flags {
            no_clobber: true,
            update_older: true,
            ..Flags::default()
        };
        assert_eq!(policy(f), Ok(Overwrite::NoClobber));
        let f = Flags {
            no_clobber: true,
            ..update(UpdateArg::All)
        };
        assert!(policy(f).unwrap_err().contains("contradict"));
    }

    #[test]
    fn dedupe_and_trust_mtime_need_identical() {
        for which in [None, Some(UpdateArg::All), Some(UpdateArg::Older)] {
            let f = Flags {
                update: which,
                dedupe: true,
                ..Flags::default()
            };
            assert!(policy(f).unwrap_err().starts_with("--dedupe"));
            let f = Flags {
                update: which,
                trust_mtime: true,
                ..Flags::default()
            };
            assert!(policy(f).unwrap_err().starts_with("--trust-mtime"));
        }
    }

    #[test]
    fn json_keeps_the_overwrite_and_update_keys() {
        let cases = [
            (Overwrite::Replace, "replace", "all"),
            (Overwrite::NoClobber, "no-clobber", "all"),
            (Overwrite::IfDifferent, "replace", "if-different"),
            (
                Overwrite::IfDifferentDedupe,
                "replace",
                "if-different-dedupe",
            ),
            (
                Overwrite::IfDifferentTrustMtime,
                "replace",
                "if-different-trust-mtime",
            ),
            (Overwrite::IfOlder, "replace", "if-older"),
        ];
        for (policy, overwrite, update) in cases {
            let opts = cow_copy::CopyOptions::new().overwrite(policy);
            let v = serde_json::to_value(&opts).unwrap();
            assert_eq!(v["overwrite"], overwrite, "{policy:?}: {v}");
            assert_eq!(v["update"], update, "{policy:?}: {v}");
            assert_eq!(v["reflink"], "auto", "{v}");
            assert_eq!(v["retry_changed"], 0, "{v}");
        }
    }
}
