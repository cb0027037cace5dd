//! Re-encrypts every stored token and ticket under the current key (after `encryption.key` changed) and in
//! the current at-rest format (values written before the kind was part of the associated data).

use diesel::prelude::*;
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
        let mut counts = (0, 0);
        let token: Option<(Option<Vec<u8>>, Option<i16>)> = tenants::table
            .filter(tenants::context_id.eq(ctx.as_str()))
            .select((
                tenants::system_token_ciphertext,
                tenants::system_token_key_version,
            ))
            .for_update()
            .first(conn)
            .await
            .optional()?;
        if let Some((Some(bytes), Some(version))) = token
            && let Some(fresh) = rewrap(
                cipher,
                &ctx,
                SecretKind::SystemUserToken,
                Encrypted {
                    key_version: version,
                    bytes,
                },
            )?
        {
            diesel::update(tenants::table.filter(tenants::context_id.eq(ctx.as_str())))
                .set((
                    tenants::system_token_ciphertext.eq(fresh.bytes),
                    tenants::system_token_key_version.eq(fresh.key_version),
                ))
                .execute(conn)
                .await?;
            counts.0 += 1;
        }
        let ticket: Option<(Vec<u8>, i16)> = tickets::table
            .find(ctx.as_str())
            .select((tickets::ciphertext, tickets::key_version))
            .for_update()
            .first(conn)
            .await
            .optional()?;
        if let Some((bytes, version)) = ticket
            && let Some(fresh) = rewrap(
                cipher,
                &ctx,
                SecretKind::Ticket,
                Encrypted {
                    key_version: version,
                    bytes,
                },
            )?
        {
            diesel::update(tickets::table.find(ctx.as_str()))
                .set((
                    tickets::ciphertext.eq(fresh.bytes),
                    tickets::key_version.eq(fresh.key_version),
                ))
                .execute(conn)
                .await?;
            counts.1 += 1;
        }
        Ok(counts)
    })
    .await
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
