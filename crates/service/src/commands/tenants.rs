//! `partner-service tenants list|retry|disable|purge|end-sessions`.

use anyhow::{Context, bail};
use chrono::{DateTime, Duration, Utc};
use shared::config::Settings;
use shared::db::operator::{ByOperator, EnableOutcome};
use shared::domain::ContextId;

use crate::cli::TenantsAction;

/// Who operator actions are recorded as: the OS user, when known.
pub fn operator() -> String {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".to_owned());
    format!("operator:{user}")
}

pub async fn run(settings: &Settings, action: TenantsAction) -> anyhow::Result<()> {
    let pool = shared::db::pool(&settings.database).context("building the database pool")?;
    let mut conn = pool.get().await.context("connecting to the database")?;
    let actor = operator();
    match action {
        TenantsAction::List => {
            let rows = shared::db::tenants::overview(&mut conn)
                .await
                .context("listing tenants")?;
            print!("{}", render_table(&rows, Utc::now()));
        }
        TenantsAction::Retry { ctx } => {
            let ctx = ContextId::parse(&ctx)?;
            let found =
                shared::db::tenants::operator_retry(&mut conn, ByOperator::new(&ctx, &actor))
                    .await?;
            done_if_found(found, &ctx, "due now; the service picks it up at once")?;
        }
        TenantsAction::Disable { ctx } => {
            let ctx = ContextId::parse(&ctx)?;
            let found =
                shared::db::tenants::disable(&mut conn, ByOperator::new(&ctx, &actor)).await?;
            let again =
                format!("disabled; `partner-service tenants enable {ctx}` enables it again");
            done_if_found(found, &ctx, &again)?;
        }
        TenantsAction::Enable { ctx } => {
            let ctx = ContextId::parse(&ctx)?;
            match shared::db::operator::enable(&mut conn, ByOperator::new(&ctx, &actor)).await? {
                EnableOutcome::Enabled => {
                    println!("{ctx}: enabled; pending until the service obtains a ticket")
                }
                EnableOutcome::NotDisabled(state) => {
                    bail!("{ctx} is {state}, not disabled; nothing changed")
                }
                EnableOutcome::NoTenant => bail!("no tenant {ctx}"),
            }
        }
        TenantsAction::Purge { ctx } => {
            let ctx = ContextId::parse(&ctx)?;
            let found =
                shared::db::tenants::purge(&mut conn, ByOperator::new(&ctx, &actor)).await?;
            done_if_found(
                found,
                &ctx,
                "token, ticket and work removed; the audit trail is kept",
            )?;
        }
        TenantsAction::EndSessions { ctx } => {
            let ctx = ContextId::parse(&ctx)?;
            let ended =
                shared::db::sessions::end_for_tenant(&mut conn, ByOperator::new(&ctx, &actor))
                    .await
                    .context("ending the tenant's sessions")?;
            println!("{ctx}: {ended} sessions ended; their users must sign in again");
        }
    }
    Ok(())
}

/// `partner-service rotate-encryption-key`.
/// Reports an operator action on one tenant: what was done, or that there is no such tenant.
fn done_if_found(found: bool, ctx: &ContextId, done: &str) -> anyhow::Result<()> {
    if !found {
        bail!("no tenant {ctx}");
    }
    println!("{ctx}: {done}");
    Ok(())
}

pub async fn rotate_encryption_key(settings: &Settings) -> anyhow::Result<()> {
    let cipher = shared::crypto::at_rest::Cipher::from_settings(&settings.encryption)
        .context("loading encryption.key and encryption.previous_key")?;
    let pool = shared::db::pool(&settings.database).context("building the database pool")?;
    let mut conn = pool.get().await.context("connecting to the database")?;
    let report = shared::db::rotation::reencrypt_all(&mut conn, &cipher, &operator())
        .await
        .context("re-encrypting stored secrets")?;
    println!(
        "re-encrypted {} system user tokens and {} tickets under key version {}",
        report.tokens,
        report.tickets,
        cipher.current_version()
    );
    Ok(())
}

fn render_table(rows: &[shared::db::tenants::TenantOverview], now: DateTime<Utc>) -> String {
    let mut lines = vec![[
        "CONTEXT".to_owned(),
        "STATE".to_owned(),
        "TICKET VALID UNTIL".to_owned(),
        "LAST SUCCESS".to_owned(),
        "LAST ERROR".to_owned(),
        "SO STATE".to_owned(),
        "NEEDS ATTENTION".to_owned(),
    ]];
    for row in rows {
        let ticket = match (row.ticket_last_used_at, row.ticket_rejected) {
            (_, true) => "rejected".to_owned(),
            (Some(used), false) => {
                let until = used + Duration::hours(6);
                if until > now {
                    short(until)
                } else {
                    "expired".to_owned()
                }
            }
            (None, _) => "-".to_owned(),
        };
        let error = row
            .tenant
            .current_error()
            .map_or_else(|| "-".to_owned(), |(error, _)| error.to_owned());
        lines.push([
            row.tenant.context_id.to_string(),
            row.tenant.state.to_string(),
            ticket,
            row.tenant
                .last_success_at
                .map_or_else(|| "-".to_owned(), short),
            error.chars().take(80).collect(),
            row.tenant
                .so_state
                .clone()
                .unwrap_or_else(|| "-".to_owned()),
            if row.tenant.needs_attention {
                let reason = row
                    .tenant
                    .attention_reason
                    .as_deref()
                    .unwrap_or("(no reason)");
                format!("yes: {}", reason.chars().take(100).collect::<String>())
            } else {
                "-".to_owned()
            },
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if rows.is_empty() {
        out.push_str("(no tenants: none has been captured yet)\n");
    }
    out
}

fn short(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}
