//! Storage: one sqlx `Any` pool over SQLite (default) or PostgreSQL.
//!
//! Queries are written once in the dialect both share (`$N` placeholders, TEXT and
//! BIGINT columns), so the same code and the same tests run on both databases.

use std::str::FromStr as _;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row as _};

use crate::error::{on_unique_violation, Result};

/// A stored user.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub created_at: i64,
}

impl UserRow {
    fn from_row(r: &AnyRow) -> sqlx::Result<Self> {
        Ok(Self {
            id: r.try_get("id")?,
            email: r.try_get("email")?,
            username: r.try_get("username")?,
            display_name: r.try_get("display_name")?,
            password_hash: r.try_get("password_hash")?,
            created_at: r.try_get("created_at")?,
        })
    }
}

/// A stored refresh token.
#[derive(Debug, Clone)]
pub struct RefreshRow {
    pub id: String,
    pub family_id: String,
    pub user_id: String,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A stored signing key.
#[derive(Debug, Clone)]
pub struct KeyRow {
    pub kid: String,
    pub private_key: String,
    pub created_at: i64,
    /// When it starts signing (it is published from `created_at`).
    pub activates_at: i64,
    /// When its successor starts signing; it stays published a while after.
    pub retired_at: Option<i64>,
}

const USER_COLS: &str = "id, email, username, display_name, password_hash, created_at";

/// The database handle. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
}

impl Store {
    /// Connect, creating the SQLite file (and its directory) if needed, and migrate.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let is_sqlite = url.starts_with("sqlite:");
        if is_sqlite {
            let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
            if let Some(dir) = opts.get_filename().parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)?;
                }
            }
        }
        let pool = AnyPoolOptions::new()
            // SQLite serialises writers anyway; a small pool avoids lock churn.
            .max_connections(if is_sqlite { 4 } else { 16 })
            .connect(url)
            .await?;
        if is_sqlite {
            // WAL lets readers proceed during a write; the setting persists in the file.
            sqlx::query("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await?;
        }
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// True when the database answers (readiness).
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    // === users ===

    pub async fn insert_user(&self, u: &UserRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO users (id, email, username, display_name, password_hash, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(&u.id)
        .bind(&u.email)
        .bind(&u.username)
        .bind(&u.display_name)
        .bind(&u.password_hash)
        .bind(u.created_at)
        .execute(&self.pool)
        .await
        .map_err(on_unique_violation)?;
        Ok(())
    }

    pub async fn user_by_id(&self, id: &str) -> Result<Option<UserRow>> {
        let q = format!("SELECT {USER_COLS} FROM users WHERE id = $1");
        self.one_user(sqlx::query(&q).bind(id)).await
    }

    /// Look up by email or username (both stored lower-cased).
    pub async fn user_by_login(&self, login: &str) -> Result<Option<UserRow>> {
        let q = format!("SELECT {USER_COLS} FROM users WHERE email = $1 OR username = $1");
        self.one_user(sqlx::query(&q).bind(login)).await
    }

    async fn one_user<'q>(
        &self,
        q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<Option<UserRow>> {
        let row = q.fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(UserRow::from_row).transpose()?)
    }

    /// Update profile fields; `None` leaves a field as it is.
    pub async fn update_profile(
        &self,
        id: &str,
        email: Option<&str>,
        username: Option<&str>,
        display_name: Option<&str>,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE users SET email = COALESCE($1, email), username = COALESCE($2, username),
                display_name = COALESCE($3, display_name), updated_at = $4 WHERE id = $5",
        )
        .bind(email)
        .bind(username)
        .bind(display_name)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(on_unique_violation)?;
        Ok(())
    }

    pub async fn set_password_hash(&self, id: &str, hash: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(hash)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Delete a user; their refresh tokens go with them (ON DELETE CASCADE, and
    /// explicitly, since SQLite enforces foreign keys only when asked).
    pub async fn delete_user(&self, id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    // === refresh tokens ===

    pub async fn insert_refresh(
        &self,
        id: &str,
        token_hash: &str,
        family_id: &str,
        user_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (id, token_hash, family_id, user_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(token_hash)
        .bind(family_id)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn refresh_by_hash(&self, token_hash: &str) -> Result<Option<RefreshRow>> {
        let row = sqlx::query(
            "SELECT id, family_id, user_id, expires_at, used_at, revoked_at
             FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(RefreshRow {
            id: r.try_get("id")?,
            family_id: r.try_get("family_id")?,
            user_id: r.try_get("user_id")?,
            expires_at: r.try_get("expires_at")?,
            used_at: r.try_get("used_at")?,
            revoked_at: r.try_get("revoked_at")?,
        }))
    }

    /// Mark a token used, only if it is still fresh. False means someone else got
    /// there first: the caller treats that as reuse. This is the race-free check.
    pub async fn claim_refresh(&self, id: &str, now: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $1
             WHERE id = $2 AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn revoke_family(&self, family_id: &str, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(family_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn revoke_all_for_user(&self, user_id: &str, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Drop refresh tokens that expired before `cutoff` (housekeeping).
    pub async fn purge_expired_refresh(&self, cutoff: i64) -> Result<u64> {
        let done = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    // === signing keys ===

    pub async fn keys(&self) -> Result<Vec<KeyRow>> {
        let rows = sqlx::query(
            "SELECT kid, private_key, created_at, activates_at, retired_at FROM signing_keys
             ORDER BY created_at, kid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(KeyRow {
                    kid: r.try_get("kid")?,
                    private_key: r.try_get("private_key")?,
                    created_at: r.try_get("created_at")?,
                    activates_at: r.try_get("activates_at")?,
                    retired_at: r.try_get("retired_at")?,
                })
            })
            .collect()
    }

    /// Insert a new key that signs from `activates_at`, and retire every other
    /// unretired key as of then, atomically.
    pub async fn rotate_in(
        &self,
        kid: &str,
        private_key: &str,
        now: i64,
        activates_at: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
            .bind(activates_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, private_key, created_at, activates_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(kid)
        .bind(private_key)
        .bind(now)
        .bind(activates_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forget keys retired before `cutoff`: no unexpired token can carry them.
    pub async fn drop_keys_retired_before(&self, cutoff: i64) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1",
        )
        .bind(cutoff)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
