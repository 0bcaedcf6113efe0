//! People and their API tokens. A token is shown once, when it is made; the database keeps
//! only its SHA-256, which is enough for a random 256-bit secret.

use super::runs::now_ms;
use super::{Database, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The user every request acts as when `montage serve` runs on loopback without tokens.
pub const LOCAL_USER: &str = "local";

/// A person who can use the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Their id, the owner of their runs, chats and uploads.
    pub id: String,
    /// Their name, unique.
    pub name: String,
    /// May read the server-wide figures of `/metrics` (everyone's runs and queue).
    pub admin: bool,
}

/// Why a user cannot be added.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The name is taken.
    #[error("there is already a user named {0:?}")]
    Taken(String),
    /// The name is not usable.
    #[error("a user name is 1–64 letters, digits, '.', '-' or '_'")]
    BadName,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The SHA-256 of a token, as stored.
fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Database {
    /// Adds a user (an `admin` may read `/metrics`) and makes their first token, returned
    /// once and never stored.
    pub async fn add_user(&self, name: &str, admin: bool) -> Result<(User, String), UserError> {
        let valid = (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !valid || name == LOCAL_USER {
            return Err(UserError::BadName);
        }
        let (taken,): (i64,) = on_pool!(self, pool => sqlx::query_as("SELECT COUNT(*) FROM users WHERE name = $1")
            .bind(name)
            .fetch_one(pool)
            .await
            .map_err(StoreError::from))?;
        if taken > 0 {
            return Err(UserError::Taken(name.to_owned()));
        }
        let user = User {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.to_owned(),
            admin,
        };
        let token = format!(
            "mtg_{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let now = now_ms();
        on_pool!(self, pool => sqlx::query("INSERT INTO users (id, name, created_at_ms, admin) VALUES ($1, $2, $3, $4)")
            .bind(&user.id)
            .bind(&user.name)
            .bind(now)
            .bind(admin)
            .execute(pool)
            .await
            .map(|_| ())
            .map_err(StoreError::from))?;
        on_pool!(self, pool => sqlx::query("INSERT INTO tokens (hash, user_id, created_at_ms) VALUES ($1, $2, $3)")
            .bind(token_hash(&token))
            .bind(&user.id)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
            .map_err(StoreError::from))?;
        Ok((user, token))
    }

    /// The user a token belongs to, if any.
    pub async fn user_by_token(&self, token: &str) -> Result<Option<User>, StoreError> {
        let row: Option<(String, String, bool)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT users.id, users.name, users.admin FROM tokens JOIN users ON users.id = tokens.user_id WHERE tokens.hash = $1",
        )
        .bind(token_hash(token))
        .fetch_optional(pool)
        .await)?;
        Ok(row.map(|(id, name, admin)| User { id, name, admin }))
    }

    /// The local user, made on first use: the person at this machine, an admin.
    pub async fn local_user(&self) -> Result<User, StoreError> {
        on_pool!(self, pool => sqlx::query(
            "INSERT INTO users (id, name, created_at_ms) VALUES ($1, $1, $2) ON CONFLICT (id) DO NOTHING",
        )
        .bind(LOCAL_USER)
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(User {
            id: LOCAL_USER.to_owned(),
            name: LOCAL_USER.to_owned(),
            admin: true,
        })
    }
}
