//! The router's one secret, and what is derived from it.
//!
//! 32 random bytes, kept in a file (`--secret-file`; in Kubernetes a mounted Secret,
//! shared by every router replica). Two keys are derived from it with HKDF-SHA256 under
//! distinct labels, so neither can stand in for the other:
//! - the Ed25519 key that signs room tokens (room servers verify them with the
//!   router's JWKS), and
//! - the HMAC key that turns `(room id, invite id)` into an invite code.
//!
//! Invite codes are therefore *derived*, never stored: a restarted router (or another
//! replica) recomputes every link of an adopted room from the invite ids on the Room
//! object, and nothing on the Room lets anyone compute a code without the secret.

use std::io::Write as _;
use std::path::Path;

use anyhow::{bail, Context as _};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use rand::RngCore as _;
use rendezvous_auth::SigningKey;
use ring::{hkdf, hmac};

/// Bytes of secret.
pub const SECRET_LEN: usize = 32;
const SALT: &[u8] = b"rendezvous-router v1";
const ROOM_TOKEN_LABEL: &[u8] = b"room-token-signing-key";
const INVITE_LABEL: &[u8] = b"invite-codes";

/// Keys derived from the router's secret.
pub struct RouterSecret {
    room_token_key: SigningKey,
    invites: hmac::Key,
}

impl std::fmt::Debug for RouterSecret {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterSecret")
            .field("room_token_kid", &self.room_token_key.kid())
            .finish_non_exhaustive()
    }
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &hkdf::Prk, label: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    prk.expand(&[label], Len(32))
        .and_then(|okm| okm.fill(&mut out))
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

impl RouterSecret {
    /// Derive the keys from `secret` (exactly [`SECRET_LEN`] bytes).
    pub fn from_bytes(secret: &[u8]) -> anyhow::Result<Self> {
        if secret.len() != SECRET_LEN {
            bail!(
                "the router secret must be {SECRET_LEN} bytes, got {}",
                secret.len()
            );
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(secret);
        let seed = expand(&prk, ROOM_TOKEN_LABEL);
        let room_token_key = SigningKey::from_seed(&seed)?;
        let invites = hmac::Key::new(hmac::HMAC_SHA256, &expand(&prk, INVITE_LABEL));
        Ok(Self {
            room_token_key,
            invites,
        })
    }

    /// A secret that lives as long as this process.
    pub fn ephemeral() -> Self {
        let mut b = [0u8; SECRET_LEN];
        rand::rngs::OsRng.fill_bytes(&mut b);
        Self::from_bytes(&b).expect("right length")
    }

    /// Read the secret from `path` (base64url text, surrounding whitespace ignored),
    /// creating it with fresh random bytes and mode 0600 if the file does not exist.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text)
                .with_context(|| format!("reading the router secret {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut b = [0u8; SECRET_LEN];
                rand::rngs::OsRng.fill_bytes(&mut b);
                write_new(path, &B64.encode(b))
                    .with_context(|| format!("creating the router secret {}", path.display()))?;
                tracing::info!(path = %path.display(), "created a new router secret");
                Self::from_bytes(&b)
            }
            Err(e) => {
                Err(e).with_context(|| format!("reading the router secret {}", path.display()))
            }
        }
    }

    /// Parse the file format: base64 or base64url (padding optional) of
    /// [`SECRET_LEN`] bytes, so `head -c 32 /dev/urandom | base64` makes one.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        use base64::engine::general_purpose::STANDARD_NO_PAD;
        let text = text.trim().trim_end_matches('=');
        let bytes = B64
            .decode(text)
            .or_else(|_| STANDARD_NO_PAD.decode(text))
            .context("not base64; make one with: head -c 32 /dev/urandom | base64")?;
        Self::from_bytes(&bytes)
    }

    /// The key that signs room tokens.
    pub fn room_token_key(&self) -> &SigningKey {
        &self.room_token_key
    }

    /// The invite code of invite `invite_id` of room `room_id`: 128 bits, base64url.
    pub fn invite_code(&self, room_id: &str, invite_id: &str) -> String {
        // Length-prefix the room id so no two (room, invite) pairs share an input.
        let mut ctx = hmac::Context::with_key(&self.invites);
        ctx.update(&(room_id.len() as u64).to_be_bytes());
        ctx.update(room_id.as_bytes());
        ctx.update(invite_id.as_bytes());
        B64.encode(&ctx.sign().as_ref()[..16])
    }
}

/// Write `text` to a new file at `path` (never over an existing one: two routers
/// starting at once must not replace each other's secret), owner-only on Unix.
fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_created_once_and_read_back_to_the_same_keys() {
        let dir = std::env::temp_dir().join(format!("rdv-secret-{}", std::process::id()));
        let path = dir.join("nested/router.secret");
        let _ = std::fs::remove_dir_all(&dir);
        let a = RouterSecret::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "only the owner may read the secret");
        }
        let b = RouterSecret::load_or_create(&path).unwrap();
        assert_eq!(a.room_token_key().kid(), b.room_token_key().kid());
        assert_eq!(a.invite_code("r1", "i1"), b.invite_code("r1", "i1"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn codes_differ_per_room_invite_and_secret_and_are_128_bits() {
        let s = RouterSecret::from_bytes(&[1; 32]).unwrap();
        let code = s.invite_code("room", "inv");
        assert_eq!(B64.decode(&code).unwrap().len(), 16);
        assert_ne!(code, s.invite_code("room", "inv2"));
        assert_ne!(code, s.invite_code("room2", "inv"));
        // The length prefix keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(s.invite_code("ab", "c"), s.invite_code("a", "bc"));
        let other = RouterSecret::from_bytes(&[2; 32]).unwrap();
        assert_ne!(code, other.invite_code("room", "inv"));
        assert_ne!(s.room_token_key().kid(), other.room_token_key().kid());
    }

    #[test]
    fn bad_secrets_say_what_is_wrong() {
        let short = RouterSecret::parse(&B64.encode([0u8; 16])).unwrap_err();
        assert!(
            format!("{short:#}").contains("must be 32 bytes"),
            "{short:#}"
        );
        let garbage = RouterSecret::parse("not base64 !!").unwrap_err();
        assert!(format!("{garbage:#}").contains("not base64"), "{garbage:#}");
        // Either alphabet, padding and a trailing newline are fine.
        let bytes = [0xfbu8; 32];
        let url = RouterSecret::parse(&format!("{}\n", B64.encode(bytes))).unwrap();
        let std = base64::engine::general_purpose::STANDARD.encode(bytes);
        assert!(std.contains('+') || std.contains('/'));
        let std = RouterSecret::parse(&std).unwrap();
        assert_eq!(url.invite_code("r", "i"), std.invite_code("r", "i"));
    }
}
