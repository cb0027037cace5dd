//! One pass over one claimed tenant: a ticket when it needs one, then its queued work, oldest first.
//! Returns when the tenant should be due again (`None`: not until something new arrives).

use chrono::{DateTime, Utc};
use serde_json::json;
use shared::db::audit::{self, NewAuditEvent};
use shared::db::models::{AuditAction, StoredTicket, Tenant, TenantState, WorkRequest};
use shared::db::queue::Claim;
use shared::db::tickets::TicketUse;
use shared::db::work::{CreateCompany, Work};
use shared::db::{tenants, tickets, work};
use shared::domain::{ContextId, Ticket};
use shared::http::Retryable;
use shared::lifecycle;
use shared::superid::exchange::{ExchangeError, Verdict};
use shared::tenant::status::StatusError;
use shared::tenant::{Company, TenantCredentials, TenantError};

use super::circuit::{Gate, Observed};
use super::context::{ACTOR, Context};
use crate::tickets::{decrypt_ticket, is_usable, store_issued, stored_credentials};

/// When the tenant is due again.
pub type NextAttempt = Option<DateTime<Utc>>;

/// The ticket of this pass and whether it was obtained in it (work done otherwise reuses a cached one).
struct Session {
    ticket: Ticket,
    fresh: bool,
}

/// What an exchange ended in, for the work that waits on it.
enum Exchanged {
    Ticket(Ticket),
    /// SuperOffice refused the tenant's authorization: the tenant is stopped, its open work failed.
    Stopped,
    /// A passing failure: try again at the time given.
    Later(NextAttempt),
}

/// What a work request ended in.
enum Done {
    /// Finished (done or failed for good): go on with the next request.
    Next,
    /// Stop this pass; the tenant is due again at the time given.
    Halt(NextAttempt),
}

/// Whether a claimed tenant's pass has nothing to do: it is active, has no open work and its cached
/// ticket is usable. The daemon gives such tenants back in one batch instead of starting a pass.
pub fn is_idle(deps: &Context, claim: &Claim) -> bool {
    !claim.has_open_work
        && claim.tenant.state == TenantState::Active
        && claim
            .ticket
            .as_ref()
            .is_some_and(|ticket| usable_for(deps, &claim.tenant, ticket))
}

fn usable_for(deps: &Context, tenant: &Tenant, ticket: &StoredTicket) -> bool {
    is_usable(
        ticket,
        tenant.token_generation,
        deps.clock.now(),
        deps.ticket_policy(),
    )
}

/// How long the state API may report a tenant as not running before it is flagged for an operator.
const NOT_RUNNING_TOO_LONG: chrono::Duration = chrono::Duration::days(1);

/// Processes one claimed tenant.
pub async fn process(deps: &Context, claim: &Claim) -> anyhow::Result<NextAttempt> {
    let tenant = &claim.tenant;
    let id = tenant.context_id.clone();
    let state = tenant.state;
    if !state.allows_work() {
        return Ok(None);
    }
    // The claim read the ticket and whether work is open; an idle tenant needs no further query.
    let stored = claim.ticket.as_ref();
    let open = if claim.has_open_work {
        let mut conn = deps.db().await?;
        work::open_for_tenant(&mut conn, id.as_str()).await?
    } else {
        Vec::new()
    };
    let usable = stored.filter(|ticket| usable_for(deps, tenant, ticket));
    if usable.is_some() && open.is_empty() && state == TenantState::Active {
        tracing::debug!(tenant = %id, "valid ticket and no work");
        return Ok(None);
    }
    if usable.is_none() || state == TenantState::Pending {
        match deps.clients.tenants.statuses.status(&id).await {
            Ok(status) => {
                let since = if status.is_running {
                    // Recorded when the lease is given back, with the other passes that ended.
                    deps.observed_running(status.state.as_str(), Utc::now());
                    None
                } else {
                    let mut conn = deps.db().await?;
                    tenants::record_so_state(
                        &mut conn,
                        id.as_str(),
                        status.state.as_str(),
                        false,
                        Utc::now(),
                    )
                    .await?
                };
                if !status.is_running {
                    // Ask afresh at the next attempt rather than trust the cached answer until ValidUntil.
                    deps.clients.tenants.statuses.invalidate(&id).await;
                    tracing::info!(tenant = %id, state = %status.state, "tenant is not running; waiting");
                    if let Some(since) =
                        since.filter(|since| Utc::now() - *since > NOT_RUNNING_TOO_LONG)
                    {
                        let reason = format!(
                            "the state API has reported the tenant as not running (state {}) since {}; \
                             work waits until it runs",
                            status.state,
                            since.to_rfc3339()
                        );
                        return deps.needs_attention(tenant, "not_running", &reason).await;
                    }
                    let reason = format!(
                        "the tenant is not running (SuperOffice state {}); work waits until it runs",
                        status.state
                    );
                    return deps.retry_later(tenant, &reason).await;
                }
            }
            Err(error @ StatusError::UnknownTenant(_)) => {
                return deps
                    .needs_attention(tenant, "unknown_tenant", &error.to_string())
                    .await;
            }
            Err(error @ StatusError::HostNotAllowed { .. }) => {
                return deps
                    .needs_attention(tenant, "host_not_allowed", &error.to_string())
                    .await;
            }
            Err(error) => return deps.retry_later(tenant, &error.to_string()).await,
        }
    }
    let mut session = match usable {
        Some(cached) => {
            if state == TenantState::Pending {
                let mut conn = deps.db().await?;
                tenants::activate(
                    &mut conn,
                    id.as_str(),
                    "the tenant runs and its ticket is valid",
                    ACTOR,
                )
                .await?;
            }
            Session {
                ticket: decrypt_ticket(&deps.cipher, &id, cached)?,
                fresh: false,
            }
        }
        None => match exchange(deps, tenant, &id, stored).await? {
            Exchanged::Ticket(ticket) => Session {
                ticket,
                fresh: true,
            },
            Exchanged::Stopped => return Ok(None),
            Exchanged::Later(next) => return Ok(next),
        },
    };
    for request in &open {
        match carry_out(deps, tenant, &id, &mut session, request).await? {
            Done::Next => {}
            Done::Halt(next) => return Ok(next),
        }
    }
    // A ticket obtained in this pass recorded the success with it; one reused records it now.
    if !session.fresh {
        let mut conn = deps.db().await?;
        tenants::record_outcome(&mut conn, id.as_str(), &deps.owner, None, Utc::now()).await?;
    }
    Ok(None)
}

/// Signs the stored token, exchanges it, validates and stores the ticket; on a refusal of the tenant's
/// authorization stops the tenant, on a passing failure schedules a retry.
async fn exchange(
    deps: &Context,
    tenant: &Tenant,
    id: &ContextId,
    previous: Option<&StoredTicket>,
) -> anyhow::Result<Exchanged> {
    if tenant.serial.as_deref().is_none_or(|s| s.trim().is_empty()) {
        let reason = format!(
            "tenant {id} has no serial stored, so the system user JWT cannot be checked; \
             a tenant administrator signing in stores it"
        );
        return Ok(Exchanged::Later(
            deps.needs_attention(tenant, "missing_serial", &reason)
                .await?,
        ));
    }
    if let Gate::Paused(at) = deps.circuit.gate(id.as_str(), Utc::now()) {
        tracing::debug!(tenant = %id, retry_at = %at, "circuit open: exchange paused");
        return Ok(Exchanged::Later(Some(at)));
    }
    let credentials = stored_credentials(&deps.cipher, tenant)?;
    let result = deps
        .exchange
        .exchange(id, &credentials.token, &credentials.serial)
        .await;
    let issued = match result {
        Ok(issued) => issued,
        Err(error) => {
            metrics::counter!("partner_service_exchanges_total", "outcome" => outcome_label(&error))
                .increment(1);
            return refused(deps, tenant, id, &error).await;
        }
    };
    metrics::counter!("partner_service_exchanges_total", "outcome" => "success").increment(1);
    if let Some(paused) = deps.circuit.succeeded() {
        let mut conn = deps.db().await?;
        let resumed = tenants::resume(&mut conn, &paused).await?;
        tracing::info!(resumed, "tenants paused by the circuit are due again");
    }
    let mut conn = deps.db().await?;
    store_issued(
        &mut conn,
        &deps.cipher,
        id,
        tenant.token_generation,
        &issued,
        deps.via,
        ACTOR,
    )
    .await?;
    let first_for_generation =
        previous.is_none_or(|p| p.token_generation != tenant.token_generation);
    if first_for_generation && let Some(captured) = tenant.token_captured_at {
        let lag = (Utc::now() - captured).as_seconds_f64().max(0.0);
        metrics::histogram!("partner_service_capture_to_ticket_seconds").record(lag);
    }
    tracing::info!(tenant = %id, via = deps.via, generation = tenant.token_generation, "system user ticket obtained");
    Ok(Exchanged::Ticket(issued.ticket))
}

/// A failed exchange: the tenant stopped when its authorization is refused unambiguously; a refusal
/// that may be this instance's fault counted by the circuit and, while it stays closed, flagged for an
/// operator; a passing failure retried later.
async fn refused(
    deps: &Context,
    tenant: &Tenant,
    id: &ContextId,
    error: &ExchangeError,
) -> anyhow::Result<Exchanged> {
    let reason = error.to_string();
    // Every failed exchange leaves an `exchange_failed` event (its outcome, never a secret): the
    // operator console's exchange chart counts them beside `ticket_obtained`.
    let outcome = match error.verdict() {
        Verdict::Stop(_) => "refused",
        Verdict::Transient => "transient",
        Verdict::Suspect => "suspect",
    };
    {
        let mut conn = deps.db().await?;
        audit_work(
            &mut conn,
            id,
            AuditAction::ExchangeFailed,
            json!({ "outcome": outcome, "kind": error.kind(), "via": deps.via }),
        )
        .await?;
    }
    let transition = match error.verdict() {
        Verdict::Stop(stop) => {
            lifecycle::next(tenant.state, &lifecycle::Event::ExchangeRefused(stop))
        }
        Verdict::Transient => {
            return Ok(Exchanged::Later(deps.retry_later(tenant, &reason).await?));
        }
        Verdict::Suspect => {
            let kind = error.kind();
            return match deps
                .circuit
                .refused(id.as_str(), &kind, &reason, Utc::now())
            {
                Observed::Counted => {
                    if let ExchangeError::InvalidTimestamp { skew_secs, .. } = error {
                        tracing::warn!(tenant = %id, skew_secs = ?skew_secs, "SuperID refused the signed token's timestamp; check this host's clock");
                    }
                    Ok(Exchanged::Later(
                        deps.needs_attention(tenant, &kind, &reason).await?,
                    ))
                }
                Observed::Opened { retry_at, tenants } => {
                    let mut conn = deps.db().await?;
                    tenants::absolve(&mut conn, &tenants, retry_at).await?;
                    Ok(Exchanged::Later(Some(retry_at)))
                }
                Observed::Paused(retry_at) => Ok(Exchanged::Later(Some(retry_at))),
            };
        }
    };
    let mut conn = deps.db().await?;
    tenants::record_outcome(
        &mut conn,
        id.as_str(),
        &deps.owner,
        Some(&reason),
        Utc::now(),
    )
    .await?;
    let state = transition.to;
    tenants::set_state(&mut conn, id.as_str(), state, &reason, ACTOR).await?;
    let plain = format!(
        "SuperOffice no longer lets this application work for the tenant ({}). A tenant \
         administrator must sign in again and approve the application; then ask again.",
        state_in_words(state)
    );
    let open = if transition.effects.fail_open_work {
        work::open_for_tenant(&mut conn, id.as_str()).await?
    } else {
        Vec::new()
    };
    for request in open {
        if work::fail_open(&mut conn, request.id, &deps.owner, &plain).await? {
            audit_failed(&mut conn, id, request.id, &plain).await?;
        }
    }
    tracing::info!(tenant = %id, state = %state, reason = %reason, "tenant stopped");
    Ok(Exchanged::Stopped)
}

fn state_in_words(state: TenantState) -> &'static str {
    match state {
        TenantState::Revoked => "the application's access was revoked",
        TenantState::Expired => "the application's authorization expired",
        TenantState::NeedsReapproval => "the application needs to be approved again",
        _ => "SuperID denied the system user",
    }
}

/// Every `outcome` label of `partner_service_exchanges_total`: a success, or what `outcome_label` says.
pub const EXCHANGE_OUTCOMES: [&str; 10] = [
    "success",
    "transient",
    "revoked",
    "expired",
    "needs_reapproval",
    "invalid_timestamp",
    "invalid_signature",
    "denied",
    "unrecognised",
    "refused",
];

/// The `kind` labels of `partner_service_attention_total` known from the start: the tenant checks of a
/// pass, and the exchange refusals the circuit counts.
pub const ATTENTION_KINDS: [&str; 10] = [
    "not_running",
    "unknown_tenant",
    "host_not_allowed",
    "missing_serial",
    "tenant_status",
    "invalid_timestamp",
    "invalid_signature",
    "denied",
    "unrecognised",
    "refused",
];

fn outcome_label(error: &ExchangeError) -> &'static str {
    match error.verdict() {
        Verdict::Stop(reason) => reason.as_str(),
        Verdict::Transient => "transient",
        Verdict::Suspect => match error {
            ExchangeError::InvalidTimestamp { .. } => "invalid_timestamp",
            ExchangeError::InvalidSignature { .. } => "invalid_signature",
            ExchangeError::Denied { .. } => "denied",
            ExchangeError::Rejected { .. } => "unrecognised",
            _ => "refused",
        },
    }
}

/// Carries out one work request with the session's ticket, exactly once: a request that may have
/// reached SuperOffice before (attempted already) is looked up by its idempotency key first.
async fn carry_out(
    deps: &Context,
    tenant: &Tenant,
    id: &ContextId,
    session: &mut Session,
    request: &WorkRequest,
) -> anyhow::Result<Done> {
    let look_up_first = request.attempts > 0;
    let marked = {
        let mut conn = deps.db().await?;
        work::mark_running(&mut conn, request.id, &deps.owner).await?
    };
    let Some(request) = marked else {
        tracing::warn!(tenant = %id, work_request = request.id, "the tenant's lease is lost; nothing more is done for it here");
        return Ok(Done::Halt(None));
    };
    let Ok(Work::CreateCompany(CreateCompany { name })) = request.work() else {
        let mut conn = deps.db().await?;
        let reason = "the request names no company".to_owned();
        if !fail_work(deps, &mut conn, id, request.id, &reason).await? {
            return Ok(lease_lost(id, request.id));
        }
        return Ok(Done::Next);
    };
    let key = request.idempotency_key.to_string();
    let mut renewed = false;
    loop {
        let credentials = TenantCredentials::SystemUser(session.ticket.clone());
        let result = create_once(deps, id, &credentials, &name, &key, look_up_first).await;
        match result {
            Ok((company, found)) => {
                if !finished(deps, id, session, &request, &company, found).await? {
                    return Ok(lease_lost(id, request.id));
                }
                return Ok(Done::Next);
            }
            Err(error) if error.refuses_ticket() && !renewed => {
                renewed = true;
                tracing::info!(tenant = %id, error = %error, "the tenant refused the ticket; obtaining a new one");
                {
                    let mut conn = deps.db().await?;
                    tickets::record_use(&mut conn, id.as_str(), TicketUse::refused(Utc::now()))
                        .await?;
                }
                let current = {
                    let mut conn = deps.db().await?;
                    tickets::find(&mut conn, id.as_str()).await?
                };
                match exchange(deps, tenant, id, current.as_ref()).await? {
                    Exchanged::Ticket(ticket) => {
                        *session = Session {
                            ticket,
                            fresh: true,
                        };
                    }
                    Exchanged::Stopped => return Ok(Done::Halt(None)),
                    Exchanged::Later(next) => {
                        requeue(deps, &request, "waiting for a new ticket").await?;
                        return Ok(Done::Halt(next));
                    }
                }
            }
            Err(
                error @ TenantError::Status(
                    StatusError::UnknownTenant(_) | StatusError::HostNotAllowed { .. },
                ),
            ) => {
                let reason = error.to_string();
                requeue(deps, &request, &reason).await?;
                return Ok(Done::Halt(
                    deps.needs_attention(tenant, "tenant_status", &reason)
                        .await?,
                ));
            }
            Err(error)
                if error.is_retryable() || matches!(error, TenantError::TicketRejected { .. }) =>
            {
                if matches!(error, TenantError::TicketRejected { .. }) {
                    let mut conn = deps.db().await?;
                    tickets::record_use(&mut conn, id.as_str(), TicketUse::refused(Utc::now()))
                        .await?;
                }
                let reason = error.to_string();
                tracing::info!(tenant = %id, work_request = request.id, error = %reason, "work will be retried");
                requeue(deps, &request, &reason).await?;
                return Ok(Done::Halt(deps.retry_later(tenant, &reason).await?));
            }
            Err(error) => {
                let reason = error.to_string();
                let mut conn = deps.db().await?;
                if !fail_work(deps, &mut conn, id, request.id, &reason).await? {
                    return Ok(lease_lost(id, request.id));
                }
                tickets::record_use(&mut conn, id.as_str(), TicketUse::accepted(Utc::now()))
                    .await?;
                observe_work(&request, "failed");
                tracing::info!(tenant = %id, work_request = request.id, error = %reason, "work failed");
                return Ok(Done::Next);
            }
        }
    }
}

/// A write fenced by the lease changed nothing: another instance holds the tenant now.
fn lease_lost(id: &ContextId, request: i64) -> Done {
    tracing::warn!(tenant = %id, work_request = request, "the tenant's lease is lost; the outcome is left to the instance that holds it");
    Done::Halt(None)
}

/// Finds the company a previous attempt created, or creates it marked with the request's key.
async fn create_once(
    deps: &Context,
    id: &ContextId,
    credentials: &TenantCredentials,
    name: &str,
    key: &str,
    look_up_first: bool,
) -> Result<(Company, bool), TenantError> {
    if look_up_first
        && let Some(company) = deps
            .clients
            .tenants
            .rest
            .find_company_by_marker(id, credentials, key)
            .await?
    {
        return Ok((company, true));
    }
    let company = deps
        .clients
        .tenants
        .rest
        .create_marked_company(id, credentials, name, key)
        .await?;
    Ok((company, false))
}

async fn finished(
    deps: &Context,
    id: &ContextId,
    session: &Session,
    request: &WorkRequest,
    company: &Company,
    found: bool,
) -> anyhow::Result<bool> {
    let mut conn = deps.db().await?;
    if !work::finish(
        &mut conn,
        request.id,
        &deps.owner,
        Ok(json!({ "contact_id": company.contact_id, "name": company.name })),
    )
    .await?
    {
        return Ok(false);
    }
    tickets::record_use(&mut conn, id.as_str(), TicketUse::accepted(Utc::now())).await?;
    audit_work(
        &mut conn,
        id,
        AuditAction::CompanyCreated,
        json!({
            "work_request": request.id,
            "contact_id": company.contact_id,
            "via": "rest",
            "found_after_lost_answer": found,
        }),
    )
    .await?;
    if !session.fresh {
        metrics::counter!("partner_service_ticket_reuse_total").increment(1);
    }
    observe_work(request, "done");
    tracing::info!(tenant = %id, work_request = request.id, contact_id = company.contact_id, found_existing = found, "company created");
    Ok(true)
}

async fn requeue(deps: &Context, request: &WorkRequest, reason: &str) -> anyhow::Result<()> {
    let mut conn = deps.db().await?;
    if !work::requeue(&mut conn, request.id, &deps.owner, Some(reason)).await? {
        tracing::warn!(
            work_request = request.id,
            "the tenant's lease is lost; the request is left to the instance that holds it"
        );
    }
    Ok(())
}

fn observe_work(request: &WorkRequest, outcome: &'static str) {
    let seconds = (Utc::now() - request.created_at).as_seconds_f64().max(0.0);
    metrics::histogram!("partner_service_work_seconds", "outcome" => outcome).record(seconds);
}

/// Finishes a running work request as failed for good, with its `work_failed` audit event. False,
/// changing nothing, when the lease was lost.
async fn fail_work(
    deps: &Context,
    conn: &mut diesel_async::AsyncPgConnection,
    id: &ContextId,
    request_id: i64,
    reason: &str,
) -> anyhow::Result<bool> {
    if !work::finish(conn, request_id, &deps.owner, Err(reason.to_owned())).await? {
        return Ok(false);
    }
    audit_failed(conn, id, request_id, reason).await?;
    Ok(true)
}

async fn audit_failed(
    conn: &mut diesel_async::AsyncPgConnection,
    id: &ContextId,
    request_id: i64,
    reason: &str,
) -> anyhow::Result<()> {
    audit_work(
        conn,
        id,
        AuditAction::WorkFailed,
        json!({ "work_request": request_id, "reason": reason }),
    )
    .await
}

async fn audit_work(
    conn: &mut diesel_async::AsyncPgConnection,
    id: &ContextId,
    action: AuditAction,
    detail: serde_json::Value,
) -> anyhow::Result<()> {
    audit::record(
        conn,
        NewAuditEvent {
            context_id: Some(id.as_str()),
            action,
            actor: ACTOR,
            detail,
        },
    )
    .await?;
    Ok(())
}
