//! A tenant's stored system user token in, a stored ticket out: what the daemon and the `exchange`
//! command share. Secrets are decrypted only in memory and never logged or audited.

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use diesel_async::AsyncPgConnection;
use secrecy::ExposeSecret;
use serde_json::json;
use shared::crypto::at_rest::{Cipher, SecretKind};
use shared::db::models::{StoredTicket, Tenant};
use shared::db::tickets::{self, NewTicket, Obtained};
use shared::domain::{ContextId, SystemUserToken, Ticket};
use shared::superid::exchange::IssuedTicket;

/// What an exchange needs from the tenant's row: its id, its token (decrypted) and its serial.
pub struct StoredCredentials {
    pub tenant: ContextId,
    pub token: SystemUserToken,
    pub serial: String,
}

/// Decrypts the tenant's stored system user token and reads its serial.
pub fn stored_credentials(cipher: &Cipher, tenant: &Tenant) -> anyhow::Result<StoredCredentials> {
    let id = ContextId::parse(&tenant.context_id)?;
    let Some(sealed) = &tenant.system_token else {
        anyhow::bail!(
            "tenant {id} has no system user token stored; a tenant administrator must sign in"
        );
    };
    let serial = tenant
        .serial
        .clone()
        .filter(|s| !s.trim().is_empty())
        .with_context(|| {
            format!("tenant {id} has no serial stored; a tenant administrator signing in stores it")
        })?;
    let token = cipher
        .decrypt_string(&id, SecretKind::SystemUserToken, sealed)
        .with_context(|| format!("decrypting the system user token of {id}"))?;
    let token = SystemUserToken::parse(token.expose_secret())?;
    Ok(StoredCredentials {
        tenant: id,
        token,
        serial,
    })
}

/// Stores a ticket just obtained for token generation `generation`, encrypted, in one statement with
/// what goes with it: the audit event `ticket_obtained` (when and how, never the ticket), the tenant
/// marked active if it was pending, and its success recorded. Returns whether it was activated.
pub async fn store_issued(
    conn: &mut AsyncPgConnection,
    cipher: &Cipher,
    tenant: &ContextId,
    generation: i32,
    issued: &IssuedTicket,
    via: &str,
    actor: &str,
) -> anyhow::Result<bool> {
    let sealed = cipher
        .encrypt(
            tenant,
            SecretKind::Ticket,
            issued.ticket.expose().as_bytes(),
        )
        .with_context(|| format!("encrypting the ticket of {tenant}"))?;
    let activated = tickets::store_obtained(
        conn,
        Obtained {
            ticket: NewTicket {
                context_id: tenant.as_str(),
                ciphertext: sealed.bytes,
                key_version: sealed.key_version,
                token_generation: generation,
                issued_at: issued.issued_at,
            },
            actor,
            detail: json!({
                "via": via,
                "token_generation": generation,
                "issued_at": issued.issued_at.to_rfc3339(),
            }),
            activated_because: "system user ticket obtained",
            at: Utc::now(),
        },
    )
    .await
    .with_context(|| format!("storing the ticket of {tenant}"))?;
    Ok(activated)
}

/// Decrypts a stored ticket.
pub fn decrypt_ticket(
    cipher: &Cipher,
    tenant: &ContextId,
    stored: &StoredTicket,
) -> anyhow::Result<Ticket> {
    let plain = cipher
        .decrypt_string(tenant, SecretKind::Ticket, &stored.encrypted)
        .with_context(|| format!("decrypting the ticket of {tenant}"))?;
    Ok(Ticket::parse(plain.expose_secret())?)
}

/// How long a cached ticket may serve: since its last use, and since its issue (SuperOffice's
/// sliding extension cannot be observed, so the age from issue is what counts in the end).
#[derive(Debug, Clone, Copy)]
pub struct TicketPolicy {
    pub refresh_after: Duration,
    pub max_age: Duration,
}

/// Whether a cached ticket may be used now: obtained with the tenant's current token, not refused by
/// the tenant, used recently enough, and issued recently enough.
pub fn is_usable(
    ticket: &StoredTicket,
    token_generation: i32,
    now: DateTime<Utc>,
    policy: TicketPolicy,
) -> bool {
    ticket.token_generation == token_generation
        && ticket.rejected_at.is_none()
        && now - ticket.last_used_at < policy.refresh_after
        && now - ticket.issued_at < policy.max_age
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use shared::crypto::at_rest::Encrypted;

    use super::*;

    fn ticket(
        now: DateTime<Utc>,
        generation: i32,
        last_used_ago: i64,
        rejected: bool,
    ) -> StoredTicket {
        StoredTicket {
            context_id: shared::domain::ContextId::parse("Cust1").unwrap(),
            encrypted: Encrypted {
                key_version: 1,
                bytes: Vec::new(),
            },
            token_generation: generation,
            issued_at: now - Duration::hours(1),
            last_used_at: now - Duration::seconds(last_used_ago),
            rejected_at: rejected.then_some(now),
        }
    }

    /// Five and a half hours both ways, as configured by default.
    const POLICY: TicketPolicy = TicketPolicy {
        refresh_after: Duration::seconds(19_800),
        max_age: Duration::seconds(19_800),
    };

    #[test]
    fn a_ticket_is_used_only_while_fresh_current_and_accepted() {
        let now = Utc::now();
        let cases = [
            (
                "fresh, current and accepted",
                ticket(now, 2, 60, false),
                true,
            ),
            ("a newer token", ticket(now, 1, 60, false), false),
            ("refused", ticket(now, 2, 60, true), false),
            ("unused too long", ticket(now, 2, 19_800, false), false),
        ];
        for (case, stored, usable) in cases {
            assert_eq!(is_usable(&stored, 2, now, POLICY), usable, "{case}");
        }
    }

    #[test]
    fn a_ticket_in_daily_use_is_still_replaced_after_its_maximum_age() {
        let now = Utc::now();
        let mut used = ticket(now, 2, 60, false);
        used.issued_at = now - Duration::seconds(19_799);
        assert!(is_usable(&used, 2, now, POLICY));
        used.issued_at = now - Duration::seconds(19_800);
        assert!(
            !is_usable(&used, 2, now, POLICY),
            "used a minute ago, issued 5.5 h ago"
        );
    }
}
