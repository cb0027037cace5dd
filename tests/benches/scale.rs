//! Scale benchmark: N tenants captured as the web would, onboarded by `partner-service run` (release,
//! a process) against the in-process simulator; then a steady-state pass (`run --once`) with every
//! ticket still valid, which must exchange nothing.
//!
//! cargo build --release -p service --bins
//! cargo bench -p e2e --bench scale -- --tenants 1000,10000 --runs 3 [--concurrency 8] [--timeout-secs 900]
//!     [--instances 2] [--pycryptodome false]
//!
//! Figures per run: onboarding throughput, the service's CPU per tenant (utime+stime from /proc),
//! its peak memory (VmHWM), capture→ticket latency from the database, and the steady pass's CPU;
//! the reference (one RSA-2048 PKCS#1 v1.5 signature + one RS256 validation with the project's own
//! code) is timed in this process on the thread CPU clock, both sampled during onboarding (the target's
//! measure, under the run's own load) and idle right before and after each run. The floor is measured
//! right before and after each run as well: OpenSSL's RSA-2048 sign and verify (`openssl speed`) and,
//! as a peer, pycryptodome's (a throwaway virtualenv). With `--instances 2`, two `partner-service run`
//! share the database; CPU is their sum, VmHWM the larger. See BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use e2e::bench::{self, Args};
use e2e::floor::{self, Floor};
use e2e::{ENCRYPTION_KEY, free_port, repo_root};
use secrecy::ExposeSecret as _;
use serde_json::json;
use shared::clock::FixedClock;

use shared::crypto::partner_key::PartnerKey;
use shared::crypto::system_user_token::sign_system_user_token;
use shared::db::schema::{tenants, tickets};
use shared::domain::{ContextId, SystemUserToken};
use shared::jwt::{Expectation, JwtValidator, KeySet, VerificationKey};
use superoffice_sim::{RunningSim, SimConfig, Simulator, TEST_CLIENT_ID, TEST_CLIENT_SECRET};
use testkit::TestDatabase;

const SEED_TASKS: usize = 4;

#[derive(Clone, Copy, Default)]
struct Reference {
    sign_ms: f64,
    validate_ms: f64,
}

impl Reference {
    fn total_ms(&self) -> f64 {
        self.sign_ms + self.validate_ms
    }
}

#[derive(Default)]
struct RunResult {
    onboarded: usize,
    seconds: f64,
    tenants_per_sec: f64,
    cpu_ms_per_tenant: f64,
    peak_mib: f64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    empty_pass_cpu_ms: f64,
    /// The reference measured right before and right after this run, on an idle machine.
    reference: Reference,
    /// The reference sampled while the service onboards, under the same load as the service.
    reference_in_run: Reference,
    steady_cpu_ms_per_tenant: f64,
    steady_net_ms_per_tenant: f64,
    steady_seconds: f64,
    steady_exchanges: u64,
    /// OpenSSL's sign and verify, the median of right before and right after this run.
    openssl: Option<Floor>,
    /// pycryptodome's sign and verify, likewise.
    pycryptodome: Option<Floor>,
    /// `pg_database_size` after onboarding, per tenant (bytes).
    db_bytes_per_tenant: f64,
}

fn mid(a: Option<Floor>, b: Option<Floor>) -> Option<Floor> {
    match (a, b) {
        (Some(a), Some(b)) => Some(Floor {
            sign_ms: (a.sign_ms + b.sign_ms) / 2.0,
            verify_ms: (a.verify_ms + b.verify_ms) / 2.0,
        }),
        (a, b) => a.or(b),
    }
}

/// The floor right now: OpenSSL (`openssl speed -seconds 2 rsa2048`) and, when installed, pycryptodome.
fn floors(
    reference: &ReferenceOps,
    pycryptodome: Option<&floor::Pycryptodome>,
) -> (Option<Floor>, Option<Floor>) {
    let openssl = floor::openssl_speed(2)
        .map_err(|e| eprintln!("OpenSSL floor not measured: {e}"))
        .ok();
    let peer = pycryptodome.and_then(|p| {
        p.measure(&reference.key_pem, &reference.signed_text, 1.0)
            .map_err(|e| eprintln!("pycryptodome not measured: {e}"))
            .ok()
    });
    (openssl, peer)
}

fn main() {
    let Some(args) = Args::for_bench(&[
        "tenants",
        "runs",
        "concurrency",
        "timeout-secs",
        "instances",
        "pycryptodome",
    ]) else {
        return;
    };
    let instances: usize = args.get("instances", 1).max(1);
    let sizes: Vec<usize> = args.list("tenants", &[1000]);
    let runs: usize = args.get("runs", 3);
    let concurrency = Some(args.get::<u32>("concurrency", 0)).filter(|c| *c > 0);
    let timeout = Duration::from_secs(args.get("timeout-secs", 900));
    println!("machine: {}", bench::machine());
    println!(
        "{}; {instances} partner-service instance(s)",
        floor::openssl_version()
    );
    let reference = Arc::new(ReferenceOps::new());
    let pycryptodome = if args.get("pycryptodome", true) {
        floor::Pycryptodome::install()
            .map_err(|e| eprintln!("pycryptodome not installed, no peer row: {e}"))
            .ok()
    } else {
        None
    };
    if let Some(p) = &pycryptodome {
        println!("pycryptodome {}", p.version());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for &n in &sizes {
        let mut results = Vec::new();
        for run in 1..=runs {
            // The shared VM's speed drifts between runs (the same signature has measured 3.0–4.2 ms
            // on different runs of one day), so each run gets the reference measured around it.
            let before = reference.measure();
            let floor_before = floors(&reference, pycryptodome.as_ref());
            let mut result = runtime.block_on(one_run(
                n,
                run,
                concurrency,
                instances,
                timeout,
                Arc::clone(&reference),
            ));
            let floor_after = floors(&reference, pycryptodome.as_ref());
            let after = reference.measure();
            result.openssl = mid(floor_before.0, floor_after.0);
            result.pycryptodome = mid(floor_before.1, floor_after.1);
            result.reference = Reference {
                sign_ms: median_of([before.0.as_slice(), &after.0].concat()),
                validate_ms: median_of([before.1.as_slice(), &after.1].concat()),
            };
            println!(
                "N={n} run {run}: reference idle: sign {:.3} ms + validate {:.3} ms = {:.3} ms \
                 (sign before the run {:.3} ms, after {:.3} ms); under the run's load: sign {:.3} ms \
                 + validate {:.3} ms = {:.3} ms",
                result.reference.sign_ms,
                result.reference.validate_ms,
                result.reference.total_ms(),
                median_of(before.0.clone()),
                median_of(after.0.clone()),
                result.reference_in_run.sign_ms,
                result.reference_in_run.validate_ms,
                result.reference_in_run.total_ms(),
            );
            if let Some(o) = result.openssl {
                println!(
                    "N={n} run {run}: OpenSSL sign {:.4} ms + verify {:.4} ms = {:.4} ms: service CPU/tenant = {:.2}× \
                     (target ≤ 3), reference sign = {:.2}× OpenSSL sign, validate = {:.2}× OpenSSL verify",
                    o.sign_ms,
                    o.verify_ms,
                    o.total_ms(),
                    result.cpu_ms_per_tenant / o.total_ms(),
                    result.reference.sign_ms / o.sign_ms,
                    result.reference.validate_ms / o.verify_ms,
                );
            }
            if let Some(p) = result.pycryptodome {
                println!(
                    "N={n} run {run}: pycryptodome sign {:.4} ms + verify {:.4} ms = {:.4} ms: service CPU/tenant = {:.2}× \
                     (target ≤ 1)",
                    p.sign_ms,
                    p.verify_ms,
                    p.total_ms(),
                    result.cpu_ms_per_tenant / p.total_ms(),
                );
            }
            println!(
                "N={n} run {run}: {}/{n} onboarded in {:.2} s = {:.1} tenants/s; service CPU {:.3} ms/tenant \
                 ({:.2}× the reference under load, {:.2}× idle); VmHWM {:.1} MiB; capture→ticket p50 {:.0} ms p99 {:.0} ms; \
                 steady pass {:.3} ms/tenant gross, {:.3} ms/tenant net of an empty pass ({:.1} ms), {:.2} s, \
                 {} exchanges; database {:.0} bytes/tenant; load {}",
                result.onboarded,
                result.seconds,
                result.tenants_per_sec,
                result.cpu_ms_per_tenant,
                result.cpu_ms_per_tenant / result.reference_in_run.total_ms(),
                result.cpu_ms_per_tenant / result.reference.total_ms(),
                result.peak_mib,
                result.latency_p50_ms,
                result.latency_p99_ms,
                result.steady_cpu_ms_per_tenant,
                result.steady_net_ms_per_tenant,
                result.empty_pass_cpu_ms,
                result.steady_seconds,
                result.steady_exchanges,
                result.db_bytes_per_tenant,
                bench::load(),
            );
            results.push(result);
        }
        report(n, &results);
    }
}

fn median_of(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    bench::median(&values)
}

fn report(n: usize, results: &[RunResult]) {
    let pick = |f: &dyn Fn(&RunResult) -> f64| results.iter().map(f).collect::<Vec<_>>();
    let complete = results.iter().all(|r| r.onboarded == n);
    println!("\n== N = {n}, {} runs (median [min–max]) ==", results.len());
    if !complete {
        println!(
            "NOT every tenant was onboarded in every run (onboarded: {:?}); the figures below are partial",
            pick(&|r| r.onboarded as f64)
        );
    }
    let cpu = pick(&|r| r.cpu_ms_per_tenant);
    let ratio = pick(&|r| r.cpu_ms_per_tenant / r.reference_in_run.total_ms());
    let ratio_idle = pick(&|r| r.cpu_ms_per_tenant / r.reference.total_ms());
    let steady_share = pick(&|r| 100.0 * r.steady_net_ms_per_tenant / r.cpu_ms_per_tenant);
    let peak = pick(&|r| r.peak_mib);
    println!(
        "onboarding throughput   {}",
        bench::summary(&pick(&|r| r.tenants_per_sec), "tenants/s", 1)
    );
    println!(
        "reference under load    {}",
        bench::summary(&pick(&|r| r.reference_in_run.total_ms()), "ms", 3)
    );
    println!(
        "reference idle          {}",
        bench::summary(&pick(&|r| r.reference.total_ms()), "ms", 3)
    );
    println!("service CPU / tenant    {}", bench::summary(&cpu, "ms", 3));
    println!(
        "  ratio, under load     {}  (target ≤ 1.5)",
        bench::summary(&ratio, "×", 2)
    );
    println!(
        "  ratio, idle reference {}",
        bench::summary(&ratio_idle, "×", 2)
    );
    println!(
        "peak memory (VmHWM)     {}  (target < 64 MiB at 10,000)",
        bench::summary(&peak, "MiB", 1)
    );
    println!(
        "capture→ticket (bulk)   p50 {}, p99 {}",
        bench::summary(&pick(&|r| r.latency_p50_ms), "ms", 0),
        bench::summary(&pick(&|r| r.latency_p99_ms), "ms", 0)
    );
    println!(
        "steady pass CPU/tenant  {} gross, {} net",
        bench::summary(&pick(&|r| r.steady_cpu_ms_per_tenant), "ms", 4),
        bench::summary(&pick(&|r| r.steady_net_ms_per_tenant), "ms", 4)
    );
    println!(
        "  share of onboarding   {}  (target < 5 %)",
        bench::summary(&steady_share, "%", 2)
    );
    println!(
        "steady pass exchanges   {:?} (must be 0)",
        pick(&|r| r.steady_exchanges as f64)
    );
    println!(
        "steady pass wall time   {}; per tenant {}",
        bench::summary(&pick(&|r| r.steady_seconds), "s", 2),
        bench::summary(&pick(&|r| 1e6 * r.steady_seconds / n as f64), "µs", 1)
    );
    println!(
        "database size / tenant  {}",
        bench::summary(&pick(&|r| r.db_bytes_per_tenant), "bytes", 0)
    );
    let with_openssl: Vec<&RunResult> = results.iter().filter(|r| r.openssl.is_some()).collect();
    let of = |f: &dyn Fn(&RunResult, Floor) -> f64| {
        with_openssl
            .iter()
            .filter_map(|r| r.openssl.map(|o| f(r, o)))
            .collect::<Vec<_>>()
    };
    println!(
        "OpenSSL sign + verify   {}",
        bench::summary(&of(&|_, o| o.total_ms()), "ms", 4)
    );
    println!(
        "  service CPU / floor   {}  (target ≤ 3)",
        bench::summary(&of(&|r, o| r.cpu_ms_per_tenant / o.total_ms()), "×", 2)
    );
    println!(
        "  sign / OpenSSL sign   {}  (idle reference; target ≤ 1.5)",
        bench::summary(&of(&|r, o| r.reference.sign_ms / o.sign_ms), "×", 2)
    );
    println!(
        "  validate / verify     {}  (idle reference; target ≤ 3)",
        bench::summary(&of(&|r, o| r.reference.validate_ms / o.verify_ms), "×", 2)
    );
    let peer: Vec<f64> = results
        .iter()
        .filter_map(|r| r.pycryptodome.map(|p| r.cpu_ms_per_tenant / p.total_ms()))
        .collect();
    println!(
        "pycryptodome sign+verify {}",
        bench::summary(
            &results
                .iter()
                .filter_map(|r| r.pycryptodome.map(|p| p.total_ms()))
                .collect::<Vec<_>>(),
            "ms",
            4
        )
    );
    println!(
        "  service CPU / peer    {}  (target ≤ 1)",
        bench::summary(&peer, "×", 2)
    );
}

/// One RSA-2048 PKCS#1 v1.5 SHA-256 signature and one RS256 validation with the project's own code
/// and the partner key of `config/local/`, ready to be timed.
struct ReferenceOps {
    key: PartnerKey,
    /// The same key as PKCS#8 PEM and the text signed, for the pycryptodome peer.
    key_pem: String,
    signed_text: String,
    token: SystemUserToken,
    now: DateTime<Utc>,
    jwt: String,
    validator: JwtValidator,
    expectation: Expectation,
}

impl ReferenceOps {
    fn new() -> Self {
        let key = PartnerKey::from_file(&repo_root().join("config/local/partner-private-key.xml"))
            .unwrap();
        let token = SystemUserToken::parse("Local Partner App-8k8Q7DmBgo").unwrap();
        let now = Utc::now();
        let prefix = "http://schemes.superoffice.net/identity/";
        let claims = json!({
            format!("{prefix}ctx"): "Cust10001", format!("{prefix}serial"): "1801510001",
            format!("{prefix}ticket"): "7T:MAA3AGYAMQBlAGQAZAAxAGQAZQAwADgAYgAxAGEAYwBkADYAOAA0ADcAMQA2ADkAOQBhADQAZgBiADMAOQAyADsA",
            format!("{prefix}netserver_url"): "http://127.0.0.1:9200/Cust10001/Remote/Services88/",
            format!("{prefix}webapi_url"): "http://127.0.0.1:9200/Cust10001/api/",
            "iss": "SuperOffice AS", "aud": "spn:1801510001", "sub": "Cust10001",
            "iat": now.timestamp(), "nbf": now.timestamp() - 60, "exp": now.timestamp() + 300,
        });
        let encode = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        let signed = format!(
            "{}.{}",
            encode(&json!({"alg": "RS256", "typ": "JWT", "kid": "ref"})),
            encode(&claims)
        );
        let jwt = format!(
            "{signed}.{}",
            URL_SAFE_NO_PAD.encode(key.sign_sha256(signed.as_bytes()))
        );
        let validator = JwtValidator::new(
            KeySet::from_keys(vec![VerificationKey::new(
                Some("ref"),
                key.public_key().clone(),
            )]),
            Duration::from_secs(60),
        )
        .with_clock(Arc::new(FixedClock(now)));
        let expectation = Expectation::SystemUser {
            serial: "1801510001".into(),
            context_id: ContextId::parse("Cust10001").unwrap(),
        };
        validator.validate_offline(&jwt, &expectation).unwrap();
        let key_pem = key.to_pkcs8_pem().unwrap().expose_secret().to_owned();
        let signed_text = format!("{}.{}", token.expose(), now.format("%Y%m%d%H%M"));
        Self {
            key_pem,
            signed_text,
            key,
            token,
            now,
            jwt,
            validator,
            expectation,
        }
    }

    /// Samples while the service runs, at a low duty cycle (one signature and ten validations every
    /// 100 ms, about 4 % of one core) so as to share the service's conditions (the other
    /// processes on the two cores, the caches, the clock) without changing them much: per-operation
    /// CPU times (ms) of signing and of validating, until `stop` is set.
    fn sample_under_load(
        self: Arc<Self>,
        stop: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<(Vec<f64>, Vec<f64>)> {
        std::thread::spawn(move || {
            let (mut signs, mut validations) = (Vec::new(), Vec::new());
            while !AtomicBool::load(&stop, Ordering::Relaxed) {
                let start = bench::thread_cpu_ns();
                std::hint::black_box(sign_system_user_token(&self.key, &self.token, self.now));
                let signed = bench::thread_cpu_ns();
                for _ in 0..10 {
                    std::hint::black_box(
                        self.validator
                            .validate_offline(&self.jwt, &self.expectation)
                            .ok(),
                    );
                }
                let validated = bench::thread_cpu_ns();
                signs.push((signed - start) as f64 / 1e6);
                validations.push((validated - signed) as f64 / 1e7);
                std::thread::sleep(Duration::from_millis(100));
            }
            (signs, validations)
        })
    }

    /// Per-operation CPU time (ms) of 7 batches each, on this thread's CPU clock: signing, validating.
    fn measure(&self) -> (Vec<f64>, Vec<f64>) {
        let per_op = |iterations: u32, op: &dyn Fn()| -> Vec<f64> {
            (0..7)
                .map(|_| {
                    let start = bench::thread_cpu_ns();
                    for _ in 0..iterations {
                        op();
                    }
                    (bench::thread_cpu_ns() - start) as f64 / 1e6 / f64::from(iterations)
                })
                .collect()
        };
        let sign = per_op(20, &|| {
            std::hint::black_box(sign_system_user_token(&self.key, &self.token, self.now));
        });
        let validate = per_op(200, &|| {
            std::hint::black_box(
                self.validator
                    .validate_offline(&self.jwt, &self.expectation)
                    .ok(),
            );
        });
        (sign, validate)
    }
}

/// The simulator with `n` tenants (`Cust100000`…), the local application installed on each.
async fn simulator(n: usize) -> RunningSim {
    let root = repo_root();
    let pem = std::fs::read_to_string(root.join("config/local/partner-public-key.pem")).unwrap();
    let mut config = SimConfig::for_tests(&pem);
    config.superid.signing_key_file = Some(testkit::superid_signing_key_file());
    let template = config.tenants[0].clone();
    config.tenants = (0..n)
        .map(|i| {
            let mut tenant = template.clone();
            tenant.context_id = format!("Cust{}", 100_000 + i);
            tenant.company_name = format!("Scale Tenant {i} AS");
            tenant.serial = format!("18{:08}", i);
            tenant.installed_apps = vec![TEST_CLIENT_ID.to_owned()];
            tenant
        })
        .collect();
    config.users.clear();
    Simulator::start(config).await.unwrap()
}

/// Captures every tenant's current system user token as the web does on an administrator's sign-in.
async fn seed(database: &TestDatabase, sim: &RunningSim, n: usize) {
    let api = sim.api_host_url("sod2").unwrap().to_owned();
    let views: Vec<_> = (0..n)
        .map(|i| sim.admin().tenant(&format!("Cust{}", 100_000 + i)).unwrap())
        .collect();
    let chunk = n.div_ceil(SEED_TASKS).max(1);
    let mut tasks = Vec::new();
    for part in views.chunks(chunk).map(<[_]>::to_vec) {
        let mut conn = database.connect().await.unwrap();
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            for view in part {
                testkit::seed::from_sim(&view)
                    .on_host(&api)
                    .captured_by("scale-bench@example")
                    .insert(&mut conn)
                    .await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

fn service_env(
    database: &TestDatabase,
    sim: &RunningSim,
    concurrency: Option<u32>,
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("DATABASE_URL", database.url().to_owned()),
        ("PARTNER_SUPEROFFICE__ENVIRONMENT", "custom".to_owned()),
        (
            "PARTNER_SUPEROFFICE__SUPERID_URL",
            sim.superid_url().to_owned(),
        ),
        ("PARTNER_SUPEROFFICE__CLIENT_ID", TEST_CLIENT_ID.to_owned()),
        (
            "PARTNER_SUPEROFFICE__CLIENT_SECRET",
            TEST_CLIENT_SECRET.to_owned(),
        ),
        (
            "PARTNER_SUPEROFFICE__PRIVATE_KEY_FILE",
            repo_root()
                .join("config/local/partner-private-key.xml")
                .display()
                .to_string(),
        ),
        ("PARTNER_ENCRYPTION__KEY", ENCRYPTION_KEY.to_owned()),
        (
            "PARTNER_SERVICE__METRICS_BIND",
            format!("127.0.0.1:{}", free_port()),
        ),
        ("PARTNER_SERVICE__POLL_INTERVAL_SECS", "1".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ];
    if let Some(concurrency) = concurrency {
        env.push(("PARTNER_SERVICE__CONCURRENCY", concurrency.to_string()));
    }
    env
}

async fn database_bytes(conn: &mut AsyncPgConnection) -> i64 {
    #[derive(QueryableByName)]
    struct Size {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        bytes: i64,
    }
    let size: Size = diesel::sql_query("SELECT pg_database_size(current_database()) AS bytes")
        .get_result(conn)
        .await
        .unwrap();
    size.bytes
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of the daemon's claim (`db::queue::claim_due`, a batch of 8) with every
/// tenant just made due (the dead row versions of that update included, as the steady pass meets them),
/// inside a transaction that is rolled back; printed and written to `out`.
fn explain_claim(database_url: &str, n: usize, out: &std::path::Path) {
    let claim = "UPDATE tenants SET lease_owner = 'explain', lease_expires_at = now() + make_interval(secs => 300), \
                 next_attempt_at = now() + make_interval(secs => 300) \
             WHERE id IN ( \
                 SELECT id FROM tenants \
                 WHERE next_attempt_at <= now() \
                   AND state IN ('pending', 'active') \
                   AND system_token_ciphertext IS NOT NULL \
                   AND (lease_expires_at IS NULL OR lease_expires_at < now()) \
                 ORDER BY next_attempt_at \
                 LIMIT 8 \
                 FOR UPDATE SKIP LOCKED) \
             RETURNING id";
    let output = std::process::Command::new("psql")
        .args([
            database_url,
            "-X",
            "-q",
            "-c",
            &format!("BEGIN; EXPLAIN (ANALYZE, BUFFERS) {claim}; ROLLBACK;"),
        ])
        .output();
    match output {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            println!("claim plan at N={n} (every tenant due):\n{text}");
            let _ = std::fs::write(out, text);
        }
        Err(e) => eprintln!("psql not run, no claim plan: {e}"),
    }
}

async fn ticket_count(conn: &mut AsyncPgConnection) -> usize {
    let count: i64 = tickets::table.count().get_result(conn).await.unwrap();
    usize::try_from(count).unwrap_or(0)
}

fn exchanges(sim: &RunningSim) -> u64 {
    sim.admin().records().tickets_issued.values().sum()
}

/// Capture→ticket per tenant, from the database: tickets.issued_at − tenants.token_captured_at.
async fn latencies_ms(conn: &mut AsyncPgConnection) -> Vec<f64> {
    let captured: HashMap<String, Option<DateTime<Utc>>> = tenants::table
        .select((tenants::context_id, tenants::token_captured_at))
        .load::<(String, Option<DateTime<Utc>>)>(conn)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let issued: Vec<(String, DateTime<Utc>)> = tickets::table
        .select((tickets::context_id, tickets::issued_at))
        .load(conn)
        .await
        .unwrap();
    let mut values: Vec<f64> = issued
        .into_iter()
        .filter_map(|(ctx, at)| {
            let from = (*captured.get(&ctx)?)?;
            Some((at - from).num_microseconds()? as f64 / 1000.0)
        })
        .collect();
    values.sort_by(f64::total_cmp);
    values
}

async fn one_run(
    n: usize,
    run: usize,
    concurrency: Option<u32>,
    instances: usize,
    timeout: Duration,
    reference: Arc<ReferenceOps>,
) -> RunResult {
    let database = TestDatabase::create().await.unwrap();
    let sim = simulator(n).await;
    let seeding = Instant::now();
    seed(&database, &sim, n).await;
    eprintln!(
        "N={n} run {run}: seeded in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    let env = service_env(&database, &sim, concurrency);
    let logs = bench::log_dir("scale");
    let mut conn = database.connect().await.unwrap();
    let before = exchanges(&sim);

    // Onboarding: the daemon as it runs in production, `instances` of it on the one database.
    let started = Instant::now();
    let mut services: Vec<_> = (1..=instances)
        .map(|instance| {
            let log = if instances == 1 {
                format!("run-{n}-{run}.log")
            } else {
                format!("run-{n}-{run}-instance-{instance}.log")
            };
            bench::spawn(
                "partner-service",
                &["run"],
                &service_env(&database, &sim, concurrency),
                &logs.join(log),
            )
        })
        .collect();
    let pids: Vec<u32> = services.iter().map(std::process::Child::id).collect();
    let cpu_of = |pids: &[u32]| -> f64 {
        pids.iter()
            .map(|pid| bench::proc_cpu(*pid).map_or(0.0, |(_, s)| s))
            .sum()
    };
    let peak_of = |pids: &[u32]| -> f64 {
        pids.iter()
            .map(|pid| bench::proc_memory_mib(*pid, "VmHWM").unwrap_or(0.0))
            .fold(0.0, f64::max)
    };
    let cpu_start = cpu_of(&pids);
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = reference.sample_under_load(Arc::clone(&stop));
    let mut result = RunResult::default();
    let mut peak = 0.0f64;
    // count(*) over the tickets costs Postgres time proportional to N; polled every 50 ms it would
    // add a load growing with N² over a run. One poll per 20,000 tickets-to-be per second keeps it flat.
    let poll = Duration::from_millis(50).max(Duration::from_micros(n as u64 * 5));
    while started.elapsed() < timeout {
        result.onboarded = ticket_count(&mut conn).await;
        peak = peak.max(peak_of(&pids));
        if result.onboarded >= n
            || services
                .iter_mut()
                .any(|s| matches!(s.try_wait(), Ok(Some(_))))
        {
            break;
        }
        tokio::time::sleep(poll).await;
    }
    result.seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_of(&pids) - cpu_start;
    AtomicBool::store(&stop, true, Ordering::Relaxed);
    let (signs, validations) = sampler.join().unwrap();
    result.reference_in_run = Reference {
        sign_ms: median_of(signs),
        validate_ms: median_of(validations),
    };
    peak = peak.max(peak_of(&pids));
    result.peak_mib = peak;
    result.tenants_per_sec = result.onboarded as f64 / result.seconds;
    result.cpu_ms_per_tenant = 1000.0 * cpu / result.onboarded.max(1) as f64;
    let latencies = latencies_ms(&mut conn).await;
    result.latency_p50_ms = bench::percentile(&latencies, 50.0);
    result.latency_p99_ms = bench::percentile(&latencies, 99.0);
    for service in &mut services {
        let status = bench::terminate(service);
        assert!(
            status.is_some_and(|s| s.success()),
            "partner-service run did not stop cleanly ({status:?}); see {}",
            logs.display()
        );
    }
    result.db_bytes_per_tenant = database_bytes(&mut conn).await as f64 / n as f64;
    let onboarding_exchanges = exchanges(&sim) - before;
    if result.onboarded < n {
        eprintln!(
            "N={n} run {run}: only {}/{n} tickets after {:.0} s ({onboarding_exchanges} exchanges); see {}",
            result.onboarded,
            result.seconds,
            logs.display()
        );
    }

    // Steady state: what a pass costs when nothing is due (start-up, connect, one query), then a pass
    // with every tenant due again and every ticket still valid: it must exchange nothing.
    let once = |name: &str| {
        let mut child = bench::spawn(
            "partner-service",
            &["run", "--once"],
            &env,
            &logs.join(format!("{name}-{n}-{run}.log")),
        );
        let started = Instant::now();
        let (status, cpu, _) = bench::wait_measured(&mut child, timeout);
        assert!(
            status.is_some_and(|s| s.success()),
            "partner-service run --once failed ({status:?}); see {}",
            logs.display()
        );
        (cpu, started.elapsed().as_secs_f64())
    };
    let (empty_cpu, _) = once("empty-pass");
    diesel::sql_query("UPDATE tenants SET next_attempt_at = now()")
        .execute(&mut conn)
        .await
        .unwrap();
    if run == 1 {
        explain_claim(database.url(), n, &logs.join(format!("claim-plan-{n}.txt")));
    }
    let before_steady = exchanges(&sim);
    let tickets_before = ticket_count(&mut conn).await;
    let (steady_cpu, steady_seconds) = once("steady-pass");
    result.steady_exchanges = exchanges(&sim) - before_steady;
    assert_eq!(
        result.steady_exchanges, 0,
        "the steady-state pass exchanged tokens although every ticket was valid"
    );
    assert_eq!(ticket_count(&mut conn).await, tickets_before);
    result.empty_pass_cpu_ms = 1000.0 * empty_cpu;
    result.steady_seconds = steady_seconds;
    result.steady_cpu_ms_per_tenant = 1000.0 * steady_cpu / n as f64;
    result.steady_net_ms_per_tenant = 1000.0 * (steady_cpu - empty_cpu).max(0.0) / n as f64;
    drop(conn);
    sim.stop().await;
    result
}
