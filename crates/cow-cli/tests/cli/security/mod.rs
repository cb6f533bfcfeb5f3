//! Security: no race, link or name lets a copy run by root (or by another
//! user) touch what it must not. See `docs/security.md` for the threat
//! model, each attack and how GNU cp fares in the same test.
//!
//! The races run for real: root copies (or cleans) in a `1777` directory or
//! a directory owned by the attacker, while the attacker (`nobody`, through
//! `setpriv`) runs a tight rename / `RENAME_EXCHANGE` / symlink / link loop.
//! Each race runs a few seconds under both settings of
//! `fs.protected_symlinks` and `fs.protected_hardlinks`, and asserts that
//! nothing outside the destination changed (content, mode, owner,
//! existence). The other items are deterministic.

#![cfg(target_os = "linux")]

mod attacks;
mod deterministic;
mod harness;
mod races;

/// The attacker process of the races: run by [`harness::Attacker`] as an
/// unprivileged user, never by the test runner itself.
#[test]
#[ignore = "the attacker process of the security races; they start it themselves"]
fn attacker_loop() {
    let spec = std::env::var("COW_SECURITY_ATTACK")
        .expect("run by the security races only (COW_SECURITY_ATTACK names the attack)");
    attacks::run(&harness::attack_args(&spec));
}
