//! File names as GNU coreutils prints them in messages (its
//! "shell-escape-always" style): always inside single quotes, a single quote
//! written as `'\''`, and every control character or byte that is not valid
//! UTF-8 written as a `$'...'` escape outside the quotes, so a name can
//! neither move the cursor nor forge a line on the terminal, and the printed
//! form can be pasted back into a shell.
//!
//! ```text
//! a b        -> 'a b'
//! it's       -> 'it'\''s'
//! a<ESC>[2Jb -> 'a'$'\033''[2Jb'
//! a<LF>b     -> 'a'$'\n''b'
//! ```

use std::ffi::OsStr;
use std::fmt::Write as _;

/// `name` quoted for a message.
pub(crate) fn quote(name: impl AsRef<OsStr>) -> String {
    let bytes = name.as_ref().as_encoded_bytes();
    let mut q = Quoter {
        out: String::with_capacity(bytes.len() + 2),
        run: Run::None,
    };
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                let mut buf = [0; 4];
                for &b in c.encode_utf8(&mut buf).as_bytes() {
                    q.escaped(b);
                }
            } else {
                q.plain(c);
            }
        }
        for &b in chunk.invalid() {
            q.escaped(b);
        }
    }
    q.finish()
}

/// Which kind of quoted run is open.
#[derive(PartialEq)]
enum Run {
    None,
    /// `'...`
    Plain,
    /// `$'...`
    Escape,
}

struct Quoter {
    out: String,
    run: Run,
}

impl Quoter {
    fn switch(&mut self, to: Run) {
        if self.run == to {
            return;
        }
        if self.run != Run::None {
            self.out.push('\'');
        }
        self.out.push_str(if to == Run::Plain { "'" } else { "$'" });
        self.run = to;
    }

    fn plain(&mut self, c: char) {
        self.switch(Run::Plain);
        if c == '\'' {
            self.out.push_str("'\\''");
        } else {
            self.out.push(c);
        }
    }

    fn escaped(&mut self, b: u8) {
        self.switch(Run::Escape);
        match b {
            0x07 => self.out.push_str("\\a"),
            0x08 => self.out.push_str("\\b"),
            0x0c => self.out.push_str("\\f"),
            b'\n' => self.out.push_str("\\n"),
            b'\r' => self.out.push_str("\\r"),
            b'\t' => self.out.push_str("\\t"),
            0x0b => self.out.push_str("\\v"),
            _ => {
                let _ = write!(self.out, "\\{b:03o}");
            }
        }
    }

    fn finish(mut self) -> String {
        if self.run == Run::None {
            self.out.push_str("''");
        } else {
            self.out.push('\'');
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn plain_names_are_single_quoted() {
        assert_eq!(quote("a"), "'a'");
        assert_eq!(quote("a b/c"), "'a b/c'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("naïve"), "'naïve'");
    }

    #[test]
    fn single_quotes_are_closed_escaped_and_reopened() {
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("'"), r"''\'''");
    }

    #[test]
    fn control_characters_never_reach_the_terminal_raw() {
        assert_eq!(quote("a\u{1b}[2Jb"), r"'a'$'\033''[2Jb'");
        assert_eq!(quote("a\nb"), r"'a'$'\n''b'");
        assert_eq!(quote("\t"), r"$'\t'");
        assert_eq!(quote("x\u{7f}"), r"'x'$'\177'");
        assert!(!quote("a\u{1b}\r\n\u{7}b").chars().any(|c| c.is_control()));
    }

    #[cfg(unix)]
    #[test]
    fn invalid_utf8_bytes_are_octal_escapes() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        assert_eq!(quote(OsStr::from_bytes(b"a\xffb")), r"'a'$'\377''b'");
        assert_eq!(quote(OsStr::from_bytes(b"\xfe\xff")), r"$'\376\377'");
    }
}
