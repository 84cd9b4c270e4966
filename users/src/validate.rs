//! Field validation: what an email, a username, a display name and a password may be.
//!
//! Each function returns the normalised value or a `validation_failed` error naming
//! the field, so a client can point at it.

use crate::error::{Error, Result};

pub const EMAIL_MAX: usize = 254;
pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
/// Defined with the token claims: the `Room` resource keeps a creator's name within it.
pub const DISPLAY_NAME_MAX: usize = rendezvous_api::DISPLAY_NAME_MAX_CHARS as usize;
/// NIST SP 800-63B: at least 8; an upper bound keeps hashing cost bounded.
pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 256;

fn invalid(msg: impl Into<String>) -> Error {
    Error::Validation(msg.into())
}

/// Lower-cased `local@domain.tld`, no spaces, at most 254 characters.
pub fn email(raw: &str) -> Result<String> {
    let e = raw.trim().to_lowercase();
    let ok = e.len() <= EMAIL_MAX
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && match e.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if ok {
        Ok(e)
    } else {
        Err(invalid(
            "email: must look like name@example.com (at most 254 characters)",
        ))
    }
}

/// Lower-cased, 3–32 of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn username(raw: &str) -> Result<String> {
    let u = raw.trim().to_lowercase();
    let ok = (USERNAME_MIN..=USERNAME_MAX).contains(&u.chars().count())
        && u.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(u)
    } else {
        Err(invalid(
            "username: 3 to 32 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit",
        ))
    }
}

/// Trimmed, 1–64 characters, no control characters.
pub fn display_name(raw: &str) -> Result<String> {
    let d = raw.trim();
    let n = d.chars().count();
    if n == 0 || n > DISPLAY_NAME_MAX || d.chars().any(char::is_control) {
        return Err(invalid(
            "displayName: 1 to 64 characters, no control characters",
        ));
    }
    Ok(d.to_owned())
}

/// 8–256 characters; otherwise anything (passphrases welcome).
pub fn password(raw: &str) -> Result<()> {
    let n = raw.chars().count();
    if n < PASSWORD_MIN {
        return Err(invalid("password: at least 8 characters"));
    }
    if n > PASSWORD_MAX {
        return Err(invalid("password: at most 256 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email(" Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in [
            "", "ada", "ada@", "@x.io", "a@b", "a b@x.io", "a@@x.io", "a@.x", "a@x.",
        ] {
            assert!(email(bad).is_err(), "{bad:?} accepted");
        }
        assert!(email(&format!("{}@x.io", "a".repeat(250))).is_err());
    }

    #[test]
    fn usernames() {
        assert_eq!(username("Ada.L_1-x").unwrap(), "ada.l_1-x");
        for bad in ["ab", "_ada", "ada lovelace", "ädä", &"a".repeat(33)] {
            assert!(username(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn display_names_and_passwords() {
        assert_eq!(display_name("  Ada Lovelace ").unwrap(), "Ada Lovelace");
        assert!(display_name("   ").is_err());
        assert!(display_name("a\u{7}b").is_err());
        assert!(display_name(&"x".repeat(65)).is_err());
        assert!(password("short").is_err());
        assert!(password("long enough").is_ok());
        assert!(password(&"x".repeat(257)).is_err());
    }
}
