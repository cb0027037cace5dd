//! Queries of the operator console (`/operator` in partner-web): the tenant table with its filters and
//! keyset paging, one tenant's detail, service instances and their heartbeats, and the chart aggregates
//! over the audit trail. Each page runs a fixed number of queries, whatever the number of tenants
//! (`QueryCounter` counts them).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Double, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::DbError;
use super::audit::{self, NewAuditEvent};
use super::models::{AuditAction, AuditEvent, Tenant, TenantState, WorkState};
use super::schema::{audit_events, service_instances, tenants, tickets};
use crate::domain::ContextId;
use crate::lifecycle::{self, Event};

/// Rows of the tenant table per page.
pub const PAGE_SIZE: i64 = 50;
/// Audit events per page of a tenant's history.
pub const HISTORY_PAGE_SIZE: i64 = 25;
/// An instance whose heartbeat is older than this is shown as stale.
pub const STALE_AFTER_SECS: i64 = 30;

/// Counts the queries a connection sends while it is installed, so a page can say (and a test can
/// check) how many queries it took.
#[derive(Debug, Clone, Default)]
pub struct QueryCounter(Arc<AtomicUsize>);

impl QueryCounter {
    /// Starts counting the queries of `conn`.
    pub fn install(conn: &mut AsyncPgConnection) -> Self {
        let counter = Self::default();
        let count = Arc::clone(&counter.0);
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if matches!(event, InstrumentationEvent::StartQuery { .. }) {
                count.fetch_add(1, Ordering::Relaxed);
            }
        });
        counter
    }

    /// Stops counting (the connection goes back to the pool without the counter) and says how many
    /// queries were sent.
    pub fn finish(self, conn: &mut AsyncPgConnection) -> usize {
        conn.set_instrumentation(None::<Box<dyn Instrumentation>>);
        AtomicUsize::load(&self.0, Ordering::Relaxed)
    }

    pub fn count(&self) -> usize {
        AtomicUsize::load(&self.0, Ordering::Relaxed)
    }
}

/// What the tenant table shows: filters and the page's position.
#[derive(Debug, Clone, Default)]
pub struct TenantFilter {
    pub state: Option<TenantState>,
    /// Only tenants flagged `needs_attention`.
    pub attention: bool,
    /// The start of a context id or company name, without regard to case.
    pub search: Option<String>,
    /// The page after this context id.
    pub after: Option<String>,
    /// The page before this context id (ignored when `after` is set).
    pub before: Option<String>,
}

/// A tenant row of the table.
#[derive(Debug, Clone)]
pub struct TenantRow {
    pub tenant: Tenant,
    pub ticket_last_used_at: Option<DateTime<Utc>>,
    pub ticket_rejected: bool,
    pub ticket_generation: Option<i32>,
    /// Work requests queued or running.
    pub open_work: i64,
}

/// One page of the tenant table.
#[derive(Debug, Clone)]
pub struct TenantPage {
    pub rows: Vec<TenantRow>,
    pub has_next: bool,
    pub has_previous: bool,
}

/// `LIKE` pattern for "starts with `text`", lower-cased, with `%`, `_` and `\` taken literally.
fn prefix_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 1);
    for c in text.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

type RowTuple = (
    Tenant,
    Option<(DateTime<Utc>, Option<DateTime<Utc>>, i32)>,
    i64,
);

/// One page of tenants in context id order, in one query (keyset paging, so every page costs the same).
pub async fn tenant_page(
    conn: &mut AsyncPgConnection,
    filter: &TenantFilter,
    page_size: i64,
) -> Result<TenantPage, DbError> {
    let mut query = tenants::table
        .left_join(tickets::table.on(tickets::context_id.eq(tenants::context_id)))
        .select((
            Tenant::as_select(),
            (
                tickets::last_used_at,
                tickets::rejected_at,
                tickets::token_generation,
            )
                .nullable(),
            sql::<BigInt>(
                "(SELECT count(*) FROM work_requests w WHERE w.context_id = tenants.context_id \
                 AND w.state = ANY(",
            )
            .bind::<Array<Text>, _>(WorkState::OPEN.to_vec())
            .sql("))"),
        ))
        .limit(page_size + 1)
        .into_boxed();
    if let Some(state) = filter.state {
        query = query.filter(tenants::state.eq(state));
    }
    if filter.attention {
        query = query.filter(tenants::needs_attention.eq(true));
    }
    if let Some(search) = filter.search.as_deref().filter(|s| !s.trim().is_empty()) {
        let pattern = prefix_pattern(search);
        query = query.filter(
            sql::<Bool>("(lower(tenants.context_id) LIKE ")
                .bind::<Text, _>(pattern.clone())
                .sql(" OR lower(tenants.company_name) LIKE ")
                .bind::<Text, _>(pattern)
                .sql(")"),
        );
    }
    let backwards = filter.after.is_none() && filter.before.is_some();
    if let Some(after) = &filter.after {
        query = query
            .filter(tenants::context_id.gt(after.clone()))
            .order(tenants::context_id.asc());
    } else if let Some(before) = &filter.before {
        query = query
            .filter(tenants::context_id.lt(before.clone()))
            .order(tenants::context_id.desc());
    } else {
        query = query.order(tenants::context_id.asc());
    }
    let mut rows: Vec<RowTuple> = query.load(conn).await?;
    let more = rows.len() as i64 > page_size;
    rows.truncate(usize::try_from(page_size).unwrap_or(0));
    if backwards {
        rows.reverse();
    }
    Ok(TenantPage {
        rows: rows
            .into_iter()
            .map(|(tenant, ticket, open_work)| TenantRow {
                tenant,
                ticket_last_used_at: ticket.map(|(used, _, _)| used),
                ticket_rejected: ticket.is_some_and(|(_, rejected, _)| rejected.is_some()),
                ticket_generation: ticket.map(|(_, _, generation)| generation),
                open_work,
            })
            .collect(),
        has_next: if backwards { true } else { more },
        has_previous: if backwards {
            more
        } else {
            filter.after.is_some()
        },
    })
}

/// Tenants per state, and how many of them need attention.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateCounts {
    /// (state, tenants, of which need attention), every state present at least once.
    pub states: Vec<(String, i64, i64)>,
}

impl StateCounts {
    pub fn total(&self) -> i64 {
        self.states.iter().map(|(_, n, _)| n).sum()
    }

    pub fn needing_attention(&self) -> i64 {
        self.states.iter().map(|(_, _, a)| a).sum()
    }
}

/// Counts per state (one query over the state index).
pub async fn state_counts(conn: &mut AsyncPgConnection) -> Result<StateCounts, DbError> {
    let rows: Vec<(String, i64, i64)> = tenants::table
        .group_by(tenants::state)
        .select((
            tenants::state,
            diesel::dsl::count_star(),
            sql::<BigInt>("count(*) FILTER (WHERE needs_attention)"),
        ))
        .load(conn)
        .await?;
    let mut states: Vec<(String, i64, i64)> = TenantState::ALL
        .iter()
        .map(|state| {
            rows.iter()
                .find(|(name, _, _)| name == state.as_str())
                .cloned()
                .unwrap_or_else(|| (state.as_str().to_owned(), 0, 0))
        })
        .collect();
    // A state this build does not know still counts.
    states.extend(
        rows.into_iter()
            .filter(|(name, _, _)| name.parse::<TenantState>().is_err()),
    );
    Ok(StateCounts { states })
}

/// A page of a tenant's audit history, newest first; `before_id` continues after the last one shown.
pub async fn history_page(
    conn: &mut AsyncPgConnection,
    context_id: &str,
    before_id: Option<i64>,
    page_size: i64,
) -> Result<(Vec<AuditEvent>, bool), DbError> {
    let mut query = audit_events::table
        .filter(audit_events::context_id.eq(context_id))
        .order(audit_events::id.desc())
        .limit(page_size + 1)
        .select(AuditEvent::as_select())
        .into_boxed();
    if let Some(before) = before_id {
        query = query.filter(audit_events::id.lt(before));
    }
    let mut events: Vec<AuditEvent> = query.load(conn).await?;
    let more = events.len() as i64 > page_size;
    events.truncate(usize::try_from(page_size).unwrap_or(0));
    Ok((events, more))
}

/// An operator's action on one tenant, from the console or the CLI: the tenant and who acts, as the
/// audit trail names them. Each action is one transaction that ends with its audit event.
#[derive(Debug, Clone, Copy)]
pub struct ByOperator<'a> {
    pub context_id: &'a str,
    pub actor: &'a str,
}

impl<'a> ByOperator<'a> {
    /// `actor`'s action on the tenant `context_id`.
    pub fn new(context_id: &'a ContextId, actor: &'a str) -> Self {
        Self {
            context_id: context_id.as_str(),
            actor,
        }
    }

    /// The audit event recording the action.
    pub(super) fn event(self, action: AuditAction, detail: serde_json::Value) -> NewAuditEvent<'a> {
        NewAuditEvent::tenant(self.context_id, action, self.actor, detail)
    }
}

/// What enabling a tenant did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnableOutcome {
    /// It was disabled and is `pending` now: the service obtains a ticket and, with one, marks it active.
    Enabled,
    /// It was not disabled (its state is left alone).
    NotDisabled(TenantState),
    NoTenant,
}

/// The inverse of disabling: a `disabled` tenant returns to `pending`, due now, so partner-service
/// obtains a fresh ticket with the stored token and marks it `active` when that succeeds (or stops it
/// again if SuperOffice refuses). Only a disabled tenant is changed; audited as `state_changed`.
pub async fn enable(
    conn: &mut AsyncPgConnection,
    by: ByOperator<'_>,
) -> Result<EnableOutcome, DbError> {
    conn.transaction::<_, DbError, _>(async move |conn| {
        let state: Option<TenantState> = tenants::table
            .filter(tenants::context_id.eq(by.context_id))
            .select(tenants::state)
            .for_update()
            .first(conn)
            .await
            .optional()?;
        let Some(state) = state else {
            return Ok(EnableOutcome::NoTenant);
        };
        let transition = lifecycle::next(state, &Event::OperatorEnable);
        if transition.to == state {
            return Ok(EnableOutcome::NotDisabled(state));
        }
        let reason = "enabled by an operator";
        diesel::update(tenants::table.filter(tenants::context_id.eq(by.context_id)))
            .set((
                tenants::state.eq(transition.to),
                tenants::state_reason.eq(reason),
                tenants::next_attempt_at.eq(Some(Utc::now())),
                tenants::failed_attempts.eq(0),
            ))
            .execute(conn)
            .await?;
        let detail = serde_json::json!({
            "state": transition.to.as_str(),
            "from": state.as_str(),
            "reason": reason,
        });
        let event = by.event(AuditAction::StateChanged, detail);
        audit::record_waking(conn, event, transition.effects.wake).await?;
        Ok(EnableOutcome::Enabled)
    })
    .await
}

/// A partner-service instance as its heartbeat row says.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = service_instances)]
#[diesel(check_for_backend(diesel::pg::Pg))]
pub struct ServiceInstance {
    pub id: String,
    pub host: String,
    pub started_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    #[diesel(deserialize_as = Option<String>)]
    pub circuit_state: ReportedCircuit,
}

text_enum! {
    /// The daemon's circuit breaker, as an instance reports it in its heartbeat.
    CircuitState, "circuit state" {
        /// Work runs.
        Closed,
        /// A fault that hits every tenant alike paused the work.
        Open,
    }
}

/// An instance's circuit as its row says, read leniently: a word this version does not know (written
/// by a newer instance during a rolling deploy) or none at all must not stop the console listing the
/// instances, so it is kept as read. The column has no CHECK constraint for the same reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportedCircuit {
    Known(CircuitState),
    Unknown(Option<String>),
}

impl From<Option<String>> for ReportedCircuit {
    fn from(word: Option<String>) -> Self {
        match word.as_deref().map(str::parse) {
            Some(Ok(state)) => Self::Known(state),
            _ => Self::Unknown(word),
        }
    }
}

impl std::fmt::Display for ReportedCircuit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Known(state) => f.write_str(state.as_str()),
            Self::Unknown(None) => f.write_str("unknown"),
            Self::Unknown(Some(word)) => write!(f, "unknown ({word})"),
        }
    }
}

/// Records that an instance is alive (inserted on its first beat, updated after).
pub async fn heartbeat(
    conn: &mut AsyncPgConnection,
    id: &str,
    host: &str,
    started_at: DateTime<Utc>,
    circuit_state: CircuitState,
) -> Result<(), DbError> {
    let now = Utc::now();
    diesel::insert_into(service_instances::table)
        .values((
            service_instances::id.eq(id),
            service_instances::host.eq(host),
            service_instances::started_at.eq(started_at),
            service_instances::last_seen_at.eq(now),
            service_instances::circuit_state.eq(circuit_state),
        ))
        .on_conflict(service_instances::id)
        .do_update()
        .set((
            service_instances::last_seen_at.eq(now),
            service_instances::circuit_state.eq(circuit_state),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes an instance's row (a clean shutdown) and rows not seen for `forget_after_secs` (instances
/// that died).
pub async fn remove_instance(
    conn: &mut AsyncPgConnection,
    id: &str,
    forget_after_secs: i64,
) -> Result<(), DbError> {
    let cutoff = Utc::now() - chrono::Duration::seconds(forget_after_secs);
    diesel::delete(
        service_instances::table.filter(
            service_instances::id
                .eq(id)
                .or(service_instances::last_seen_at.lt(cutoff)),
        ),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// An instance with the tenants it holds unexpired leases on.
#[derive(Debug, Clone)]
pub struct InstanceLeases {
    pub instance: ServiceInstance,
    /// The first leased tenants by context id.
    pub tenants: Vec<String>,
    /// How many tenants it holds in all.
    pub lease_count: i64,
}

/// Leased tenants named per instance; the count is complete.
const LEASES_NAMED: i32 = 20;

/// Every recorded instance, newest heartbeat first, with its leases (two queries).
pub async fn instances(conn: &mut AsyncPgConnection) -> Result<Vec<InstanceLeases>, DbError> {
    let rows: Vec<ServiceInstance> = service_instances::table
        .order((
            service_instances::last_seen_at.desc(),
            service_instances::id.asc(),
        ))
        .limit(200)
        .select(ServiceInstance::as_select())
        .load(conn)
        .await?;
    #[derive(QueryableByName)]
    struct Leases {
        #[diesel(sql_type = Text)]
        owner: String,
        #[diesel(sql_type = BigInt)]
        count: i64,
        #[diesel(sql_type = diesel::sql_types::Array<Text>)]
        tenants: Vec<String>,
    }
    let leases: Vec<Leases> = diesel::sql_query(
        "SELECT lease_owner AS owner, count(*) AS count, \
                (array_agg(context_id ORDER BY context_id))[1:$1] AS tenants \
         FROM tenants WHERE lease_owner IS NOT NULL AND lease_expires_at > now() \
         GROUP BY lease_owner",
    )
    .bind::<diesel::sql_types::Integer, _>(LEASES_NAMED)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|instance| {
            let held = leases.iter().find(|l| l.owner == instance.id);
            InstanceLeases {
                tenants: held.map(|l| l.tenants.clone()).unwrap_or_default(),
                lease_count: held.map_or(0, |l| l.count),
                instance,
            }
        })
        .collect())
}

/// A count in a time bucket of one series.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct Bucket {
    #[diesel(sql_type = Timestamptz)]
    pub at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub series: String,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// Exchanges per hour since `since` by outcome: `obtained` (`ticket_obtained`), and the failures
/// `exchange_failed` records: `transient`, `suspect` (may be this instance's fault), `refused`.
pub async fn exchanges_per_hour(
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
) -> Result<Vec<Bucket>, DbError> {
    hourly_buckets(conn, since, HourlyChart::Exchanges).await
}

/// Work requests finished per hour since `since`: `done` (`company_created`) and `failed` (`work_failed`).
pub async fn work_per_hour(
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
) -> Result<Vec<Bucket>, DbError> {
    hourly_buckets(conn, since, HourlyChart::Work).await
}

/// An audit action counted under a label.
type Series = (AuditAction, &'static str);

/// A chart of audit events of two actions per hour.
#[derive(Debug, Clone, Copy)]
enum HourlyChart {
    Exchanges,
    Work,
}

impl HourlyChart {
    /// The two actions with their labels, and whether the second is counted by its outcome.
    fn series(self) -> (Series, Series, bool) {
        match self {
            Self::Exchanges => (
                (AuditAction::TicketObtained, "obtained"),
                (AuditAction::ExchangeFailed, "failed"),
                true,
            ),
            Self::Work => (
                (AuditAction::CompanyCreated, WorkState::Done.as_str()),
                (AuditAction::WorkFailed, WorkState::Failed.as_str()),
                false,
            ),
        }
    }
}

/// The audit events of a chart's two actions per hour since `since`: the first counted as its label,
/// the second as its label, or, when counted by its outcome, as the event's `detail.outcome` where it
/// has one.
async fn hourly_buckets(
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
    chart: HourlyChart,
) -> Result<Vec<Bucket>, DbError> {
    let ((first, first_label), (second, second_label), second_by_outcome) = chart.series();
    Ok(diesel::sql_query(
        "SELECT date_trunc('hour', created_at) AS at, \
                CASE WHEN action = $2 THEN $4 \
                     WHEN $6 THEN coalesce(detail->>'outcome', $5) \
                     ELSE $5 END AS series, \
                count(*) AS count \
         FROM audit_events \
         WHERE action IN ($2, $3) AND created_at >= $1 \
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind::<Timestamptz, _>(since)
    .bind::<Text, _>(first)
    .bind::<Text, _>(second)
    .bind::<Text, _>(first_label)
    .bind::<Text, _>(second_label)
    .bind::<Bool, _>(second_by_outcome)
    .load(conn)
    .await?)
}

/// Audit actions that move a tenant to a state the event itself names (see [`MOVE_STATE`]).
const NAMED_MOVES: [AuditAction; 10] = [
    AuditAction::TokenCaptured,
    AuditAction::StateChanged,
    AuditAction::OperatorRetry,
    AuditAction::TenantPurged,
    AuditAction::SuperofficeSuspend,
    AuditAction::SuperofficeResume,
    AuditAction::SuperofficeDelete,
    AuditAction::SuperofficeBackupRestored,
    AuditAction::SuperofficeMove,
    AuditAction::SuperofficeUpgrade,
];

/// The state an audit event `e` moves its tenant to, NULL for `token_replaced` (resolved from the state
/// before it) and for an event that names none. Parameters: $3 `token_captured`, $4 `state_changed`,
/// $5 `operator_retry`, $6 `tenant_purged`, $7 `token_replaced`, $8 `pending`, $9 `purged`; the
/// `superoffice_*` events name it in `detail.effect.to`.
const MOVE_STATE: &str = "CASE e.action WHEN $3 THEN $8 WHEN $4 THEN e.detail->>'state' \
     WHEN $5 THEN e.detail->>'to' WHEN $6 THEN $9 WHEN $7 THEN NULL \
     ELSE e.detail->'effect'->>'to' END";

/// Tenants per state at the end of each hour since `since` (from its hour) in which some state changed,
/// with a row per state for the first hour. A state's count holds until the next bucket that names it.
///
/// The cost is bounded by the window, not by the history: it starts from the current counts (one
/// `GROUP BY` over `tenants`) and subtracts, going back, the moves of the window's state-changing events
/// (`audit_events_action_time_idx`). A move's previous state is the event before it; for a tenant's first
/// event in the window that is its last one before the window, one lookup per moved tenant on
/// `audit_events_context_idx`. A purged tenant (its row deleted) counts in no state.
///
/// `token_replaced` counts too: a replaced token puts the tenant back to `pending` unless it is
/// `suspended`, `deleted` or `disabled` (SuperOffice's and an operator's stops, which a new approval does
/// not lift; see `tenants::capture_token`), and its event names no state, so its state is the one before
/// it if that is one of those three and `pending` otherwise.
pub async fn tenants_per_state(
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
) -> Result<Vec<Bucket>, DbError> {
    let held = [
        TenantState::Suspended,
        TenantState::Deleted,
        TenantState::Disabled,
    ];
    let mut actions: Vec<AuditAction> = NAMED_MOVES.to_vec();
    actions.push(AuditAction::TokenReplaced);
    let query = format!(
        "WITH bounds AS (SELECT date_trunc('hour', $1::timestamptz) AS start), \
         moves AS ( \
             SELECT e.context_id, e.id, e.created_at, e.action = $7 AS replaced, {MOVE_STATE} AS state \
             FROM audit_events e, bounds \
             WHERE e.action = ANY($2) AND e.created_at >= bounds.start AND e.context_id IS NOT NULL \
         ), prior AS ( \
             SELECT m.context_id, 0::int8 AS id, '-infinity'::timestamptz AS created_at, false AS replaced, \
                    CASE WHEN r.id IS NOT NULL AND NOT (x.state = ANY($10)) THEN $8 ELSE x.state END AS state \
             FROM (SELECT DISTINCT context_id FROM moves) m CROSS JOIN bounds \
             JOIN LATERAL ( \
                 SELECT e.id, e.created_at, {MOVE_STATE} AS state FROM audit_events e \
                 WHERE e.context_id = m.context_id AND e.created_at < bounds.start \
                   AND e.action = ANY($2) AND e.action <> $7 AND ({MOVE_STATE}) IS NOT NULL \
                 ORDER BY e.created_at DESC, e.id DESC LIMIT 1) x ON true \
             LEFT JOIN LATERAL ( \
                 SELECT e.id FROM audit_events e \
                 WHERE e.context_id = m.context_id AND e.action = $7 AND e.created_at < bounds.start \
                   AND (e.created_at, e.id) > (x.created_at, x.id) LIMIT 1) r ON true \
         ), grouped AS ( \
             SELECT context_id, id, created_at, replaced, state, \
                    count(state) OVER (PARTITION BY context_id ORDER BY created_at, id) AS grp \
             FROM (SELECT * FROM prior UNION ALL \
                   SELECT * FROM moves WHERE state IS NOT NULL OR replaced) a \
         ), resolved AS ( \
             SELECT context_id, id, created_at, \
                    CASE WHEN NOT replaced THEN state \
                         WHEN first_value(state) OVER g = ANY($10) THEN first_value(state) OVER g \
                         ELSE $8 END AS state \
             FROM grouped WINDOW g AS (PARTITION BY context_id, grp ORDER BY created_at, id) \
         ), changes AS ( \
             SELECT created_at, state, \
                    lag(state) OVER (PARTITION BY context_id ORDER BY created_at, id) AS previous \
             FROM resolved \
         ), deltas AS ( \
             SELECT date_trunc('hour', created_at) AS at, state AS series, 1 AS delta FROM changes \
             WHERE created_at > '-infinity' AND state <> $9 AND state IS DISTINCT FROM previous \
             UNION ALL \
             SELECT date_trunc('hour', created_at), previous, -1 FROM changes \
             WHERE created_at > '-infinity' AND previous IS NOT NULL AND previous <> $9 \
               AND state IS DISTINCT FROM previous \
         ), current AS ( \
             SELECT state AS series, count(*) AS n FROM tenants WHERE state <> $9 GROUP BY state \
         ), points AS ( \
             SELECT at, series, sum(delta) AS d FROM ( \
                 SELECT at, series, delta FROM deltas \
                 UNION ALL SELECT bounds.start, series, 0 FROM current, bounds \
                 UNION ALL SELECT bounds.start, series, 0 FROM deltas, bounds) p \
             GROUP BY at, series \
         ) \
         SELECT p.at, p.series, \
                (coalesce(c.n, 0) - (sum(p.d) OVER (PARTITION BY p.series ORDER BY p.at DESC) - p.d))::int8 \
                    AS count \
         FROM points p LEFT JOIN current c USING (series) ORDER BY p.at, p.series"
    );
    Ok(diesel::sql_query(query)
        .bind::<Timestamptz, _>(since)
        .bind::<Array<Text>, _>(actions)
        .bind::<Text, _>(AuditAction::TokenCaptured)
        .bind::<Text, _>(AuditAction::StateChanged)
        .bind::<Text, _>(AuditAction::OperatorRetry)
        .bind::<Text, _>(AuditAction::TenantPurged)
        .bind::<Text, _>(AuditAction::TokenReplaced)
        .bind::<Text, _>(TenantState::Pending)
        .bind::<Text, _>("purged")
        .bind::<Array<Text>, _>(held.to_vec())
        .load(conn)
        .await?)
}

/// How long from a captured (or replaced) token to the first ticket obtained after it.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct CaptureLatency {
    #[diesel(sql_type = Timestamptz)]
    pub captured_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Double>)]
    pub seconds: Option<f64>,
}

/// Each capture since `since` with the seconds to its tenant's first ticket after it (none yet: `None`).
pub async fn capture_latency(
    conn: &mut AsyncPgConnection,
    since: DateTime<Utc>,
) -> Result<Vec<CaptureLatency>, DbError> {
    Ok(diesel::sql_query(
        "SELECT c.created_at AS captured_at, \
                extract(epoch FROM (t.created_at - c.created_at))::float8 AS seconds \
         FROM audit_events c \
         LEFT JOIN LATERAL ( \
             SELECT created_at FROM audit_events o \
             WHERE o.context_id = c.context_id AND o.action = $2 \
               AND o.created_at >= c.created_at \
             ORDER BY o.created_at LIMIT 1) t ON true \
         WHERE c.action IN ($3, $4) AND c.created_at >= $1 \
         ORDER BY c.created_at LIMIT 5000",
    )
    .bind::<Timestamptz, _>(since)
    .bind::<Text, _>(AuditAction::TicketObtained)
    .bind::<Text, _>(AuditAction::TokenCaptured)
    .bind::<Text, _>(AuditAction::TokenReplaced)
    .load(conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reported_circuit_keeps_what_it_does_not_know() {
        let read = |word: Option<&str>| ReportedCircuit::from(word.map(str::to_owned));
        assert_eq!(
            read(Some("open")),
            ReportedCircuit::Known(CircuitState::Open)
        );
        assert_eq!(read(Some("closed")).to_string(), "closed");
        assert_eq!(
            read(Some("half_open")),
            ReportedCircuit::Unknown(Some("half_open".into()))
        );
        assert_eq!(read(Some("half_open")).to_string(), "unknown (half_open)");
        assert_eq!(read(None).to_string(), "unknown");
    }
}
