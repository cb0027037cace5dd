//! Sessions in Postgres (`web_sessions`), behind actix-session's `SessionStore`.
//!
//! The cookie carries only a random id (signed with `web.session_key`); the row is keyed by the id's
//! SHA-256 and holds the session's state encrypted with `encryption.key`, the id's hash as associated data.
//! Every partner-web instance reads the same rows, so a session works on all of them and ends on all of
//! them at once: at sign-out (the row is deleted), after `web.session_minutes` idle or `web.session_max_hours`
//! after sign-in (checked here, on the server, by the database's clock), or when an operator ends the
//! tenant's sessions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use anyhow::{Context, anyhow};
use secrecy::ExposeSecret;
use serde::Deserialize;
use shared::crypto::at_rest::{Cipher, Encrypted};
use shared::db::sessions::{self, Lifetime, SessionRow};

use crate::session::USER_KEY;

/// A busy session's "last seen" is written at most this often.
const TOUCH_RESOLUTION: Duration = Duration::from_secs(15);
/// Expired sessions removed per statement by the purge.
const PURGE_BATCH: i64 = 500;
/// How often each instance purges expired sessions.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(300);

type SessionState = HashMap<String, String>;

/// The session store every instance shares.
#[derive(Clone)]
pub struct PgSessionStore {
    pool: shared::db::Pool,
    cipher: Arc<Cipher>,
    lifetime: Lifetime,
}

/// Of the signed-in user, what the row shows in the clear: the tenant and the user name.
#[derive(Deserialize)]
struct RowOwner {
    context_id: String,
    subject: String,
}

impl PgSessionStore {
    pub fn new(pool: shared::db::Pool, cipher: Arc<Cipher>, lifetime: Lifetime) -> Self {
        Self {
            pool,
            cipher,
            lifetime,
        }
    }

    /// Removes expired sessions in bounded batches until none is left; returns how many.
    #[tracing::instrument(skip_all)]
    pub async fn purge_expired(&self) -> Result<usize, shared::db::DbError> {
        let mut conn = self.pool.get().await?;
        let mut total = 0;
        loop {
            let removed = sessions::purge_expired(&mut conn, self.lifetime, PURGE_BATCH).await?;
            total += removed;
            if i64::try_from(removed).unwrap_or(i64::MAX) < PURGE_BATCH {
                return Ok(total);
            }
        }
    }

    /// Purges every `PURGE_INTERVAL` for the life of the process.
    pub fn spawn_purge(self) {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(PURGE_INTERVAL);
            loop {
                ticks.tick().await;
                match self.purge_expired().await {
                    Ok(0) => {}
                    Ok(removed) => tracing::info!(removed, "expired sessions purged"),
                    Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
                }
            }
        });
    }

    async fn connection(&self) -> anyhow::Result<shared::db::Connection> {
        self.pool
            .get()
            .await
            .context("no database connection for the session")
    }

    /// The row's encrypted state and its owner columns.
    fn seal(&self, hash: &[u8; 32], state: &SessionState) -> anyhow::Result<Sealed> {
        let json = serde_json::to_vec(state).context("serializing the session")?;
        let encrypted = self
            .cipher
            .encrypt_bound(&associated_data(hash), &json)
            .context("encrypting the session")?;
        let owner = state
            .get(USER_KEY)
            .and_then(|user| serde_json::from_str::<RowOwner>(user).ok());
        Ok(Sealed { encrypted, owner })
    }
}

struct Sealed {
    encrypted: Encrypted,
    owner: Option<RowOwner>,
}

impl Sealed {
    fn row<'a>(&'a self, hash: &'a [u8; 32]) -> SessionRow<'a> {
        SessionRow {
            id_hash: hash,
            context_id: self.owner.as_ref().map(|o| o.context_id.as_str()),
            subject: self.owner.as_ref().map(|o| o.subject.as_str()),
            state_ciphertext: &self.encrypted.bytes,
            key_version: self.encrypted.key_version,
        }
    }
}

/// Binds a row's ciphertext to the row: copied to another session, it does not decrypt.
fn associated_data(hash: &[u8; 32]) -> Vec<u8> {
    let mut data = b"partner-web session ".to_vec();
    data.extend_from_slice(hash);
    data
}

/// A new random session id: 256 bits, hex.
fn new_session_id() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

impl SessionStore for PgSessionStore {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<SessionState>, LoadError> {
        let hash = sessions::id_hash(session_key.as_ref());
        let mut conn = self.connection().await.map_err(LoadError::Other)?;
        let stored = sessions::load_live(&mut conn, &hash, self.lifetime, TOUCH_RESOLUTION)
            .await
            .map_err(|e| LoadError::Other(e.into()))?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let encrypted = Encrypted {
            key_version: stored.key_version,
            bytes: stored.state_ciphertext,
        };
        let plaintext = match self
            .cipher
            .decrypt_bound(&associated_data(&hash), &encrypted)
        {
            Ok(plaintext) => plaintext,
            Err(e) => {
                // A key rotated away or an altered row: the session is unusable, the user signs in again.
                tracing::warn!(error = %e, "a stored session does not decrypt; starting a new one");
                return Ok(None);
            }
        };
        serde_json::from_slice(plaintext.expose_secret())
            .map(Some)
            .map_err(|e| LoadError::Deserialization(e.into()))
    }

    async fn save(
        &self,
        session_state: SessionState,
        _ttl: &actix_web::cookie::time::Duration,
    ) -> Result<SessionKey, SaveError> {
        let id = new_session_id();
        let hash = sessions::id_hash(&id);
        let sealed = self.seal(&hash, &session_state).map_err(SaveError::Other)?;
        let mut conn = self.connection().await.map_err(SaveError::Other)?;
        sessions::insert(&mut conn, sealed.row(&hash))
            .await
            .map_err(|e| SaveError::Other(e.into()))?;
        SessionKey::try_from(id).map_err(|e| SaveError::Other(e.into()))
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: SessionState,
        _ttl: &actix_web::cookie::time::Duration,
    ) -> Result<SessionKey, UpdateError> {
        let hash = sessions::id_hash(session_key.as_ref());
        let sealed = self
            .seal(&hash, &session_state)
            .map_err(UpdateError::Other)?;
        let mut conn = self.connection().await.map_err(UpdateError::Other)?;
        let updated = sessions::update(&mut conn, sealed.row(&hash), self.lifetime)
            .await
            .map_err(|e| UpdateError::Other(e.into()))?;
        if !updated {
            // Signed out, ended by an operator or expired while this request ran: never revived.
            return Err(UpdateError::Other(anyhow!(
                "the session ended while the request was served"
            )));
        }
        Ok(session_key)
    }

    async fn update_ttl(
        &self,
        _session_key: &SessionKey,
        _ttl: &actix_web::cookie::time::Duration,
    ) -> Result<(), anyhow::Error> {
        // `load` marks the session used; the lifetimes are the store's own, not the middleware's.
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        let hash = sessions::id_hash(session_key.as_ref());
        let mut conn = self.connection().await?;
        sessions::delete(&mut conn, &hash).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_long_random_and_distinct() {
        let (a, b) = (new_session_id(), new_session_id());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn associated_data_names_the_row() {
        let one = associated_data(&sessions::id_hash("a"));
        let other = associated_data(&sessions::id_hash("b"));
        assert!(one.starts_with(b"partner-web session "));
        assert_ne!(one, other);
    }
}
