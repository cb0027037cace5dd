//! Re-encrypts every stored token and ticket under the current key (after `encryption.key` changed) and in
//! the current at-rest format (values written before the kind was part of the associated data).

use diesel::prelude::*;
use diesel::sql_types::{Bytea, Nullable, SmallInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::DbError;
use super::audit::{self, NewAuditEvent};
use super::schema::{tenants, tickets};
use crate::crypto::at_rest::{Cipher, Encrypted, SecretKind};
use crate::domain::ContextId;

/// How many values were re-encrypted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RotationReport {
    pub tokens: usize,
    pub tickets: usize,
}

/// Re-encrypts, tenant by tenant (one transaction each), every value not under the current key version or not
/// in the current format; each value is decrypted to know its format. A value that cannot be decrypted with
/// either configured key stops the run with the tenant named.
pub async fn reencrypt_all(
    conn: &mut AsyncPgConnection,
    cipher: &Cipher,
    actor: &str,
) -> Result<RotationReport, DbError> {
    let current = cipher.current_version();
    let stale_tenants: Vec<String> = tenants::table
        .filter(tenants::system_token_ciphertext.is_not_null())
        .select(tenants::context_id)
        .union(tickets::table.select(tickets::context_id))
        .load(conn)
        .await?;
    let mut report = RotationReport::default();
    for context_id in stale_tenants {
        let (tokens, tickets) = reencrypt_tenant(conn, cipher, &context_id).await?;
        report.tokens += tokens;
        report.tickets += tickets;
    }
    audit::record(
        conn,
        NewAuditEvent {
            context_id: None,
            action: super::models::AuditAction::EncryptionKeyRotated,
            actor,
            detail: serde_json::json!({ "key_version": current, "tokens": report.tokens, "tickets": report.tickets }),
        },
    )
    .await?;
    Ok(report)
}

async fn reencrypt_tenant(
    conn: &mut AsyncPgConnection,
    cipher: &Cipher,
    context_id: &str,
) -> Result<(usize, usize), DbError> {
    let ctx = ContextId::parse(context_id).map_err(|e| DbError::Inconsistent(e.to_string()))?;
    conn.transaction::<_, DbError, _>(async move |conn| {
        let token = reencrypt_stored(conn, cipher, &ctx, &TOKEN).await?;
        let ticket = reencrypt_stored(conn, cipher, &ctx, &TICKET).await?;
        Ok((usize::from(token), usize::from(ticket)))
    })
    .await
}

/// Where a tenant's secret of one kind is stored: the statements that lock it and write it back
/// (`$1` the context id; `$2` and `$3` the ciphertext and its key version).
struct Stored {
    kind: SecretKind,
    lock: &'static str,
    write: &'static str,
}

/// The system user token, in the tenant's row.
const TOKEN: Stored = Stored {
    kind: SecretKind::SystemUserToken,
    lock: "SELECT system_token_ciphertext AS bytes, system_token_key_version AS key_version \
           FROM tenants WHERE context_id = $1 FOR UPDATE",
    write: "UPDATE tenants SET system_token_ciphertext = $2, system_token_key_version = $3 \
            WHERE context_id = $1",
};

/// The cached ticket, in its own row.
const TICKET: Stored = Stored {
    kind: SecretKind::Ticket,
    lock: "SELECT ciphertext AS bytes, key_version FROM tickets WHERE context_id = $1 FOR UPDATE",
    write: "UPDATE tickets SET ciphertext = $2, key_version = $3 WHERE context_id = $1",
};

#[derive(QueryableByName)]
struct StoredValue {
    #[diesel(sql_type = Nullable<Bytea>)]
    bytes: Option<Vec<u8>>,
    #[diesel(sql_type = Nullable<SmallInt>)]
    key_version: Option<i16>,
}

/// Re-encrypts the tenant's secret stored as `stored` says, under a lock, unless it is under the
/// current key and format already or there is none. Says whether it did.
async fn reencrypt_stored(
    conn: &mut AsyncPgConnection,
    cipher: &Cipher,
    ctx: &ContextId,
    stored: &Stored,
) -> Result<bool, DbError> {
    let value: Option<StoredValue> = diesel::sql_query(stored.lock)
        .bind::<Text, _>(ctx.as_str())
        .get_result(conn)
        .await
        .optional()?;
    let Some(StoredValue {
        bytes: Some(bytes),
        key_version: Some(key_version),
    }) = value
    else {
        return Ok(false);
    };
    let Some(fresh) = rewrap(cipher, ctx, stored.kind, Encrypted { key_version, bytes })? else {
        return Ok(false);
    };
    diesel::sql_query(stored.write)
        .bind::<Text, _>(ctx.as_str())
        .bind::<Bytea, _>(fresh.bytes)
        .bind::<SmallInt, _>(fresh.key_version)
        .execute(conn)
        .await?;
    Ok(true)
}

/// The value re-encrypted, or `None` when it is under the current key and format already.
fn rewrap(
    cipher: &Cipher,
    ctx: &ContextId,
    kind: SecretKind,
    value: Encrypted,
) -> Result<Option<Encrypted>, DbError> {
    cipher
        .reencrypt(ctx, kind, &value)
        .map_err(|e| DbError::Inconsistent(format!("tenant {ctx}: {e}")))
}
