//! Capture of a tenant's system user token when one of its administrators signs in.

use secrecy::ExposeSecret;
use shared::crypto::at_rest::{Encrypted, SecretKind};
use shared::db::tenants::{TenantDetails, TokenCapture, capture_token};
use shared::jwt::SuperOfficeClaims;

use crate::errors::WebError;
use crate::state::AppState;

/// Stores the system user token of an administrator's sign-in (encrypted, in one transaction with the
/// tenant's details, an audit event and a NOTIFY for the service). An ordinary user's sign-in, or an
/// administrator's without a token (the application is not installed for system user), stores nothing.
pub async fn capture_if_administrator(
    state: &AppState,
    claims: &SuperOfficeClaims,
) -> Result<(), WebError> {
    let Some(token) = claims
        .credentials
        .system_token
        .as_ref()
        .filter(|_| claims.associate.is_administrator)
    else {
        return Ok(());
    };
    let ctx = &claims.tenant.context_id;
    let kind = SecretKind::SystemUserToken;
    let encrypted = state
        .cipher
        .encrypt(ctx, kind, token.expose().as_bytes())
        .map_err(|e| {
            WebError::Unexpected(anyhow::anyhow!("encrypting the system user token: {e}"))
        })?;
    let mut conn = state.conn().await?;
    // Whether the token changed is decided by `capture_token` under the tenant's row lock, asking this
    // (which can decrypt; the database sees ciphertext only).
    let same_token = |stored: &Encrypted| {
        state
            .cipher
            .decrypt_string(ctx, kind, stored)
            .is_ok_and(|old| old.expose_secret() == token.expose())
    };
    let captured_by = claims.user.login_name().unwrap_or("administrator");
    let tenant = &claims.tenant;
    let webapi_url = tenant.urls.webapi_url.as_ref().map(ToString::to_string);
    let netserver_url = tenant.urls.netserver_url.as_ref().map(ToString::to_string);
    let outcome = capture_token(
        &mut conn,
        TokenCapture {
            context_id: ctx.as_str(),
            details: TenantDetails {
                environment: state.environment.as_str(),
                company_name: tenant.company_name.as_deref(),
                serial: tenant.serial.as_deref(),
                webapi_url: webapi_url.as_deref(),
                netserver_url: netserver_url.as_deref(),
            },
            token: encrypted,
            captured_by,
            same_token: &same_token,
            token_issued_at: claims.token.issued_at,
        },
    )
    .await?;
    let label = outcome.as_str();
    metrics::counter!("partner_web_token_captures_total", "outcome" => label).increment(1);
    tracing::info!(tenant = %ctx, outcome = label, "system user token captured");
    Ok(())
}
