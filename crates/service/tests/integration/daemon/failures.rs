//! The failure matrix: the daemon against each unfaithful simulator mode. For every mode it checks
//! the tenant's state and attention flag, whether its work was kept or failed, how many exchanges
//! were made and whether the circuit opened. RELIABILITY.md lists the same rows.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use shared::config::{Settings, Sources};
use superoffice_sim::TEST_CLIENT_ID;
use superoffice_sim::modes::{Mode, RefusalAs, Refusals, Signing, StateApi, Wording};

use super::support::{World, world, world_with};

const CTX: &str = "Cust10001";

/// What a row expects after one pass.
#[derive(Debug, PartialEq)]
struct Outcome {
    state: String,
    needs_attention: bool,
    work: String,
    exchanges: usize,
    circuit_open: bool,
}

fn expect(state: &str, needs_attention: bool, work: &str, exchanges: usize) -> Outcome {
    Outcome {
        state: state.to_owned(),
        needs_attention,
        work: work.to_owned(),
        exchanges,
        circuit_open: false,
    }
}

/// One tenant (`CTX`) with one queued request, after one pass with the simulator in `mode`.
struct OnePass {
    w: World,
    daemon: service::daemon::Daemon,
    request: i64,
}

impl OnePass {
    async fn run(mode: Mode, soap: bool, revoked: bool, name: &str) -> Self {
        let mut w = world().await;
        if soap {
            w.settings.superoffice.exchange = shared::config::ExchangeKind::Soap;
        }
        w.sim.admin().set_mode(Some(CTX), mode).unwrap();
        if revoked {
            w.sim.admin().revoke(CTX, TEST_CLIENT_ID).unwrap();
        }
        w.seed(CTX).await;
        let request = w.enqueue(CTX, name).await.id;
        let daemon = w.daemon();
        daemon.run_once().await.unwrap();
        Self { w, daemon, request }
    }

    async fn outcome(&self) -> Outcome {
        observe(&self.w, &self.daemon, CTX, self.request).await
    }
}

/// One tenant whose application was revoked in SuperOffice, one queued request, one pass, with the
/// simulator refusing exchanges as `refusals` says.
async fn revoked_under(refusals: Refusals, soap: bool) -> (Outcome, Option<String>) {
    let mode = Mode {
        refusals,
        ..Mode::default()
    };
    let pass = OnePass::run(mode, soap, true, "Under a mode").await;
    let outcome = pass.outcome().await;
    let reason = pass.w.tenant(CTX).await.unwrap().attention_reason;
    pass.w.sim.stop().await;
    (outcome, reason)
}

async fn observe(w: &World, daemon: &service::daemon::Daemon, ctx: &str, request: i64) -> Outcome {
    let tenant = w.tenant(ctx).await.unwrap();
    Outcome {
        state: tenant.state.to_string(),
        needs_attention: tenant.needs_attention,
        work: w.request(request).await.state.to_string(),
        exchanges: w.exchanges(ctx),
        circuit_open: daemon.circuit().open_reason().is_some(),
    }
}

#[tokio::test]
async fn the_documented_refusal_stops_the_tenant() {
    let (outcome, _) = revoked_under(Refusals::default(), false).await;
    assert_eq!(outcome, expect("revoked", false, "failed", 1));
}

#[tokio::test]
async fn refusals_in_other_words_or_languages_keep_the_tenant_and_its_work() {
    for wording in [Wording::Other, Wording::Foreign] {
        let refusals = Refusals {
            wording,
            ..Refusals::default()
        };
        let (outcome, reason) = revoked_under(refusals, false).await;
        assert_eq!(outcome, expect("pending", true, "queued", 1), "{wording:?}");
        let reason = reason.unwrap();
        assert!(reason.contains("does not recognise"), "{reason}");
        assert!(!reason.contains("7T:"), "{reason}");
    }
}

#[tokio::test]
async fn refusals_as_http_errors_or_soap_faults_keep_the_tenant() {
    for (refusal_as, soap, flagged) in [
        (RefusalAs::Http4xx, false, true),
        (RefusalAs::Http5xx, false, false),
        (RefusalAs::SoapFault, true, true),
        (RefusalAs::Http4xx, true, true),
    ] {
        let refusals = Refusals {
            refusal_as,
            ..Refusals::default()
        };
        let (outcome, _) = revoked_under(refusals, soap).await;
        assert_eq!(
            outcome,
            expect("pending", flagged, "queued", 1),
            "{refusal_as:?} soap={soap}"
        );
    }
}

#[tokio::test]
async fn a_tenant_unknown_to_the_state_api_is_flagged_without_an_exchange() {
    let mode = Mode {
        state_api: StateApi::NotFound,
        ..Mode::default()
    };
    let pass = OnePass::run(mode, false, false, "For a tenant nobody knows").await;
    assert_eq!(pass.outcome().await, expect("pending", true, "queued", 0));
    let reason = pass.w.tenant(CTX).await.unwrap().attention_reason.unwrap();
    assert!(reason.contains("404"), "{reason}");
    pass.w.sim.stop().await;
}

#[tokio::test]
async fn an_undocumented_tenant_state_is_written_onto_the_tenant_and_work_waits() {
    let mode = Mode {
        state_api: StateApi::UnknownState,
        ..Mode::default()
    };
    let OnePass { w, daemon, request } =
        OnePass::run(mode, false, false, "For a hibernating tenant").await;
    assert_eq!(
        observe(&w, &daemon, CTX, request).await,
        expect("pending", false, "queued", 0)
    );
    let tenant = w.tenant(CTX).await.unwrap();
    assert_eq!(tenant.so_state.as_deref(), Some("Hibernating"));
    assert!(tenant.so_state_checked_at.is_some());
    assert!(tenant.so_not_running_since.is_some());

    // Not running for more than a day: flagged for an operator, still waiting.
    diesel::update(shared::db::schema::tenants::table)
        .set(
            shared::db::schema::tenants::so_not_running_since
                .eq(chrono::Utc::now() - chrono::Duration::hours(25)),
        )
        .execute(&mut *w.conn().await)
        .await
        .unwrap();
    w.due_now(CTX).await;
    daemon.run_once().await.unwrap();
    assert_eq!(
        observe(&w, &daemon, CTX, request).await,
        expect("pending", true, "queued", 0)
    );
    w.sim.stop().await;
}

#[tokio::test]
async fn a_403_for_a_dead_ticket_renews_it_once_and_the_work_is_done() {
    let w = world().await;
    let mode = Mode {
        dead_ticket_status: Some(403),
        ..Mode::default()
    };
    w.sim.admin().set_mode(Some(CTX), mode).unwrap();
    w.seed(CTX).await;
    let daemon = w.daemon();
    w.pass(&daemon, CTX, "With the first ticket").await;
    w.store_refused_ticket(CTX).await;
    let request = w.pass(&daemon, CTX, "After the 403").await;
    assert_eq!(
        observe(&w, &daemon, CTX, request.id).await,
        expect("active", false, "done", 2)
    );
    assert_eq!(w.companies(CTX).len(), 2);
    w.sim.stop().await;
}

/// One installed tenant with one queued request, one pass, with the simulator's mode changed by
/// `unfaithful`: the work is done all the same, with one exchange.
async fn works_under(unfaithful: impl FnOnce(&mut Mode), soap: bool) {
    let mut mode = Mode::default();
    unfaithful(&mut mode);
    let pass = OnePass::run(mode, soap, false, "Under a mode").await;
    assert_eq!(pass.outcome().await, expect("active", false, "done", 1));
    assert_eq!(pass.w.companies(CTX).len(), 1);
    pass.w.sim.stop().await;
}

#[tokio::test]
async fn a_kid_that_names_no_key_is_verified_by_trying_every_key() {
    works_under(|mode| mode.signing.unknown_kid = true, false).await;
}

#[tokio::test]
async fn a_soap_reader_that_enforces_element_order_accepts_our_exchange() {
    works_under(|mode| mode.strict_soap_order = true, true).await;
}

#[tokio::test]
async fn a_signing_key_rotated_and_withdrawn_is_found_by_refetching_the_key_set() {
    let w = world().await;
    let daemon = w.daemon();
    // Another tenant's exchange has the daemon fetch the key set while the old key is in it.
    w.seed("Cust10002").await;
    w.enqueue("Cust10002", "Before the rotation").await;
    daemon.run_once().await.unwrap();
    let before = w.sim.admin().keys();
    let mode = Mode {
        signing: Signing {
            rotate_keys_withdrawn: true,
            ..Signing::default()
        },
        ..Mode::default()
    };
    w.sim.admin().set_mode(None, mode).unwrap();
    w.seed(CTX).await;
    let request = w.pass(&daemon, CTX, "After the rotation").await;
    assert_eq!(
        observe(&w, &daemon, CTX, request.id).await,
        expect("active", false, "done", 1)
    );
    let after = w.sim.admin().keys();
    assert_ne!(after.kid, before.kid);
    assert_eq!(
        after.served_kids,
        vec![after.kid.clone()],
        "the old key is withdrawn"
    );
    assert_eq!(
        w.sim.admin().records().records.superid.fetches.jwks,
        2,
        "one refetch for the new kid"
    );
    w.sim.stop().await;
}

/// Three installed tenants, each with one queued request; the circuit opens at two.
async fn three_tenants() -> (World, Vec<(String, i64)>) {
    let mut w = world_with(|config| {
        config.tenants[2].installed_apps = vec![TEST_CLIENT_ID.to_owned()];
    })
    .await;
    w.settings.service.concurrency = 1;
    w.settings.service.circuit_tenants = 2;
    w.settings.service.circuit_probe_base_secs = 1;
    w.settings.service.circuit_probe_max_secs = 2;
    let mut requests = Vec::new();
    for ctx in ["Cust10001", "Cust10002", "Cust10003"] {
        w.seed(ctx).await;
        let request = w.enqueue(ctx, &format!("Company of {ctx}")).await;
        requests.push((ctx.to_owned(), request.id));
    }
    (w, requests)
}

async fn assert_paused(w: &World, daemon: &service::daemon::Daemon, requests: &[(String, i64)]) {
    let reason = daemon.circuit().open_reason().expect("the circuit is open");
    let total: usize = requests.iter().map(|(ctx, _)| w.exchanges(ctx)).sum();
    assert_eq!(
        total, 2,
        "the circuit opened at the second tenant: {reason}"
    );
    for (ctx, id) in requests {
        let tenant = w.tenant(ctx).await.unwrap();
        assert_eq!(tenant.state, "pending", "{ctx}");
        assert!(
            !tenant.needs_attention,
            "{ctx}: the fault is ours, not the tenant's"
        );
        assert_eq!(w.request(*id).await.state, "queued", "{ctx}");
    }
}

/// Runs passes until every request is done (the circuit's probe interval has to pass first).
async fn until_all_done(w: &World, daemon: &service::daemon::Daemon, requests: &[(String, i64)]) {
    w.eventually(Duration::from_secs(20), || async {
        daemon.run_once().await.unwrap();
        let mut all = true;
        for (_, id) in requests {
            all &= w.request(*id).await.state == "done";
        }
        all
    })
    .await;
    assert!(daemon.circuit().open_reason().is_none());
    for (ctx, _) in requests {
        assert_eq!(w.companies(ctx).len(), 1, "{ctx}: exactly once");
        assert_eq!(w.tenant(ctx).await.unwrap().state, "active");
    }
}

/// Three tenants paused by SuperID refusing every exchange with `refuse_with`: one pass opens the
/// circuit.
async fn paused_by_refusal(
    refuse_with: &str,
) -> (World, service::daemon::Daemon, Vec<(String, i64)>) {
    let (w, requests) = three_tenants().await;
    let refusing = Mode {
        refusals: Refusals {
            refuse_with: Some(refuse_with.into()),
            ..Refusals::default()
        },
        ..Mode::default()
    };
    w.sim.admin().set_mode(None, refusing).unwrap();
    let daemon = w.daemon();
    daemon.run_once().await.unwrap();
    assert_paused(&w, &daemon, &requests).await;
    (w, daemon, requests)
}

#[tokio::test]
async fn a_wrong_partner_key_opens_the_circuit_and_nothing_is_lost_when_it_clears() {
    let (w, daemon, requests) =
        paused_by_refusal("InvalidSignature: Calculated signature is invalid").await;
    assert!(
        daemon
            .circuit()
            .open_reason()
            .unwrap()
            .contains("invalid_signature")
    );

    // The key is fixed: the next probe succeeds, the circuit closes, every request is done once.
    w.sim.admin().clear_modes();
    until_all_done(&w, &daemon, &requests).await;
    w.sim.stop().await;
}

#[tokio::test]
async fn an_unrecognised_refusal_for_every_tenant_opens_the_circuit_too() {
    let (w, daemon, requests) = paused_by_refusal("Anwendung unbekannt").await;
    w.sim.admin().clear_modes();
    until_all_done(&w, &daemon, &requests).await;
    w.sim.stop().await;
}

#[tokio::test]
async fn a_wrong_client_secret_opens_the_circuit_and_a_corrected_restart_does_the_work() {
    let (mut w, requests) = three_tenants().await;
    // The application configured with a wrong secret, as an operator might.
    let mut env = w.env.clone();
    env.insert(
        "PARTNER_SUPEROFFICE__CLIENT_SECRET".to_owned(),
        "not-the-secret".to_owned(),
    );
    let wrong = Settings::from_sources(&Sources { file: None, env })
        .unwrap()
        .superoffice
        .application;
    let right = std::mem::replace(&mut w.settings.superoffice.application, wrong);
    let daemon = w.daemon();
    daemon.run_once().await.unwrap();
    assert_paused(&w, &daemon, &requests).await;
    assert!(daemon.circuit().open_reason().unwrap().contains("denied"));

    // The operator corrects the secret and restarts the service.
    w.settings.superoffice.application = right;
    let daemon = w.daemon();
    until_all_done(&w, &daemon, &requests).await;
    w.sim.stop().await;
}
