//! Tables as text, to compare before and after something that must not change them.

use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use shared::db::Pool;

/// Which rows of a table count: a name and a query giving one text `row` per row.
pub type Watched = (&'static str, &'static str);

/// The tables an attack or a refused request could write, every session in full (only a session's "last
/// seen" may move: it moves with any request of its owner).
pub const ALL_SESSIONS: [Watched; 6] = [
    ("tenants", "SELECT t::text AS row FROM tenants t"),
    ("tickets", "SELECT t::text AS row FROM tickets t"),
    (
        "work_requests",
        "SELECT t::text AS row FROM work_requests t",
    ),
    ("audit_events", "SELECT t::text AS row FROM audit_events t"),
    (
        "state_change_notifications",
        "SELECT t::text AS row FROM state_change_notifications t",
    ),
    (
        "web_sessions",
        "SELECT t::text AS row FROM (SELECT id_hash, context_id, subject, state_ciphertext, key_version, \
         created_at FROM web_sessions) t",
    ),
];

/// As [`ALL_SESSIONS`], sessions counting only once signed in: a session holding just a sign-in in progress
/// is the attacker's own browser starting one (`GET /login`), which every visitor may do.
pub const SIGNED_IN_SESSIONS: [Watched; 6] = [
    ALL_SESSIONS[0],
    ALL_SESSIONS[1],
    ALL_SESSIONS[2],
    ALL_SESSIONS[3],
    ALL_SESSIONS[4],
    (
        "signed-in web_sessions",
        "SELECT encode(id_hash, 'hex') || ' ' || context_id || ' ' || coalesce(subject, '') AS row \
         FROM web_sessions WHERE context_id IS NOT NULL",
    ),
];

/// The rows of watched tables, each table sorted: equal snapshots hold the same rows.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot(Vec<String>);

#[derive(diesel::QueryableByName)]
struct Rows {
    #[diesel(sql_type = Text)]
    rows: String,
}

impl std::fmt::Display for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("\n"))
    }
}

impl Snapshot {
    /// Whether the text of the rows holds `text`.
    pub fn contains(&self, text: &str) -> bool {
        self.0.iter().any(|table| table.contains(text))
    }

    pub async fn take(pool: &Pool, watched: &[Watched]) -> Self {
        let mut conn = pool
            .get()
            .await
            .unwrap_or_else(|e| panic!("a connection for the snapshot: {e}"));
        let mut tables = Vec::new();
        for (name, rows) in watched {
            let rows: Rows = diesel::sql_query(format!(
                "SELECT '{name}: ' || coalesce(string_agg(w.row, E'\\n' ORDER BY w.row), '(none)') \
                 AS rows FROM ({rows}) w"
            ))
            .get_result(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("reading {name}: {e}"));
            tables.push(rows.rows);
        }
        Self(tables)
    }
}

/// Runs `action` and asserts that the watched tables hold the same rows afterwards; returns its result.
pub async fn unchanged<T>(pool: &Pool, watched: &[Watched], action: impl Future<Output = T>) -> T {
    let before = Snapshot::take(pool, watched).await;
    let result = action.await;
    assert_eq!(Snapshot::take(pool, watched).await, before);
    result
}
