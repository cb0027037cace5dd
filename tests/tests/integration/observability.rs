//! The shipped dashboard and alert rules (`deploy/observability/`) name only metrics that a running stack
//! exports: a metric renamed or dropped in the code would otherwise leave a panel blank and an alert
//! silent for ever.

use std::collections::BTreeSet;
use std::time::Duration;

use e2e::{Stack, repo_root, scrape_metrics};
use testkit::TestDatabase;

/// Every `partner_…` metric name in `text`, with a histogram's `_bucket`, `_sum` and `_count` folded into
/// the histogram's name.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("partner_") {
        let preceded_by_word = rest[..start]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        if !preceded_by_word {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            names.insert(base.to_owned());
        }
        rest = &tail[end..];
    }
    names
}

/// The metric names a Prometheus text exposition defines (its `# TYPE` lines).
fn exported_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn metric_names_are_read_from_queries_and_expositions() {
    let names = metric_names(
        r#"sum(rate(partner_web_request_seconds_count{status=~"5.."}[5m])) / max(partner_tenants) + my_partner_x"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["partner_tenants", "partner_web_request_seconds"]
    );
    let exported = exported_names(
        "# TYPE partner_tenants gauge\npartner_tenants{state=\"active\"} 1\n# TYPE partner_web_ready gauge\n",
    );
    assert_eq!(
        exported.into_iter().collect::<Vec<_>>(),
        ["partner_tenants", "partner_web_ready"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_metric_the_dashboard_and_the_alerts_name_is_exported() {
    let root = repo_root();
    let dashboard =
        std::fs::read_to_string(root.join("deploy/observability/grafana-dashboard.json")).unwrap();
    let alerts = std::fs::read_to_string(root.join("deploy/observability/alerts.yml")).unwrap();
    let dashboard_names = metric_names(&dashboard);
    let alert_names = metric_names(&alerts);
    assert!(dashboard_names.len() >= 15, "{dashboard_names:?}");
    assert!(alert_names.len() >= 6, "{alert_names:?}");

    let database = TestDatabase::create().await.unwrap();
    let mut stack = Stack::start("observability", database.url()).await;
    // One ordinary day in miniature: a sign-in with capture, both company actions, the ticket reused.
    let user = stack.signed_in_admin().await;
    let created = user.create_company("as-user", "Metrics User AS").await;
    assert_eq!(created.status().as_u16(), 303);
    for name in ["Metrics System AS", "Metrics System Again AS"] {
        let (state, page) = user
            .system_user_company(name, Duration::from_secs(60))
            .await;
        assert_eq!(state, "done", "{page}");
    }
    // SuperOffice upgrades the tenant: a state-change notification reaches partner-web.
    let upgrade = "/tenants/Cust10001/upgrade";
    stack.sim_admin(reqwest::Method::POST, upgrade, None).await;
    let web = scrape_metrics(&stack.web_metrics_url).await;
    let service = scrape_metrics(&stack.metrics_url).await;
    let exported: BTreeSet<String> = exported_names(&web)
        .into_iter()
        .chain(exported_names(&service))
        .collect();

    let missing: Vec<_> = dashboard_names
        .union(&alert_names)
        .filter(|name| !exported.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "named by the dashboard or the alerts but not exported: {missing:?}\nexported: {exported:?}"
    );
    let statuses = stack.stop();
    assert!(
        statuses.iter().all(|s| s.success()),
        "a process died: {statuses:?}"
    );
}
