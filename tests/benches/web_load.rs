//! Load on partner-web's sign-in callback: superoffice-sim and partner-web as release processes over a
//! throwaway database; N sign-ins are prepared up to the callback (a session cookie and the SuperID
//! redirect with a fresh code and the session's state each), then wrk replays them at 50 connections
//! with `tests/benches/callback.lua`. Each callback redeems its code at the simulator, validates the
//! id_token, captures the administrator's system user token in Postgres and answers 303.
//!
//! apt-get install wrk
//! cargo build --release -p web -p superoffice-sim --bins
//! cargo bench -p e2e --bench web_load -- --connections 50 --seconds 10 --runs 3
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::bench::{self, Args};
use e2e::{CLIENT_ID, CLIENT_SECRET, ENCRYPTION_KEY, StackSimConfig, repo_root, wait_for_http};
use testkit::TestDatabase;

const ADMIN: &str = "admin@northwind.example";
const THREADS: usize = 2;

/// One prepared sign-in: the callback's path and query, and the session cookie it belongs to.
struct Pair {
    callback: String,
    cookie: String,
}

async fn prepare(web_url: &str, username: &str) -> Pair {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let login = client.get(format!("{web_url}/login")).send().await.unwrap();
    let cookie = login
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ");
    let location = login.headers()["location"].to_str().unwrap();
    let authorize = url::Url::parse(location).unwrap();
    let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    form.push(("username".into(), username.into()));
    let mut action = authorize.clone();
    action.set_query(None);
    let back = client.post(action).form(&form).send().await.unwrap();
    let callback = url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        callback.query().is_some_and(|q| q.contains("code=")),
        "the simulator answered no code: {callback}"
    );
    Pair {
        callback: format!(
            "{}?{}",
            callback.path(),
            callback.query().unwrap_or_default()
        ),
        cookie,
    }
}

async fn prepare_many(web_url: &str, n: usize) -> Vec<Pair> {
    let mut tasks = Vec::new();
    for part in 0..8 {
        let web_url = web_url.to_owned();
        let count = n / 8 + usize::from(part < n % 8);
        tasks.push(tokio::spawn(async move {
            let mut pairs = Vec::with_capacity(count);
            for _ in 0..count {
                pairs.push(prepare(&web_url, ADMIN).await);
            }
            pairs
        }));
    }
    let mut all = Vec::with_capacity(n);
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

struct WrkRun {
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    answered: u64,
    other: u64,
    ran_out: u64,
    output: String,
}

/// `12.34ms`, `1.20s`, `850.00us` in milliseconds.
fn millis(text: &str) -> f64 {
    let (number, factor) = if let Some(v) = text.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = text.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = text.strip_suffix('s') {
        (v, 1000.0)
    } else {
        (text, f64::NAN)
    };
    number.parse::<f64>().map_or(f64::NAN, |v| v * factor)
}

fn wrk(web_url: &str, pairs: &[Pair], connections: usize, seconds: u64) -> WrkRun {
    let dir = bench::log_dir("web_load");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pairs.tsv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    for pair in pairs {
        writeln!(out, "{}\t{}", pair.callback, pair.cookie).unwrap();
    }
    out.flush().unwrap();
    drop(out);
    let script = repo_root().join("tests/benches/callback.lua");
    let output = Command::new("wrk")
        .args([
            "-t",
            &THREADS.to_string(),
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--timeout",
            "10s",
            "--latency",
            "-s",
            script.to_str().unwrap(),
            web_url,
        ])
        .env("PAIRS_FILE", &file)
        .env("WRK_THREADS", THREADS.to_string())
        .output()
        .unwrap_or_else(|e| panic!("running wrk (apt-get install wrk): {e}"));
    let _ = std::fs::remove_file(&file);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(|rest| {
                rest.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .unwrap_or_default()
    };
    let count = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("callbacks: "))
            .and_then(|l| {
                l.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
            })
            .unwrap_or(0)
    };
    WrkRun {
        requests_per_sec: field("Requests/sec:").parse().unwrap_or(f64::NAN),
        p50_ms: millis(&field("50%")),
        p99_ms: millis(&field("99%")),
        answered: count("redirected"),
        other: count("other"),
        ran_out: count("exhausted"),
        output: text,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(args) = Args::for_bench(&["connections", "seconds", "runs"]) else {
        return;
    };
    let connections: usize = args.get("connections", 50);
    let seconds: u64 = args.get("seconds", 10);
    let runs: usize = args.get("runs", 3);
    println!("machine: {}", bench::machine());
    let logs = bench::log_dir("web_load");
    std::fs::create_dir_all(&logs).unwrap();
    let database = TestDatabase::create().await.unwrap();
    let StackSimConfig {
        web,
        web_url,
        superid_url,
        path: sim_config,
    } = StackSimConfig::write(&logs).unwrap();
    let mut sim = bench::spawn(
        "superoffice-sim",
        &["--config", sim_config.to_str().unwrap()],
        &[("RUST_LOG", "warn".to_owned())],
        &logs.join("superoffice-sim.log"),
    );
    let discovery = format!("{superid_url}/login/.well-known/openid-configuration");
    assert!(
        wait_for_http(&discovery, Duration::from_secs(30))
            .await
            .is_some()
    );
    let env = vec![
        ("DATABASE_URL", database.url().to_owned()),
        ("PARTNER_SUPEROFFICE__ENVIRONMENT", "custom".to_owned()),
        ("PARTNER_SUPEROFFICE__SUPERID_URL", superid_url.clone()),
        ("PARTNER_SUPEROFFICE__CLIENT_ID", CLIENT_ID.to_owned()),
        (
            "PARTNER_SUPEROFFICE__CLIENT_SECRET",
            CLIENT_SECRET.to_owned(),
        ),
        ("PARTNER_ENCRYPTION__KEY", ENCRYPTION_KEY.to_owned()),
        ("PARTNER_WEB__SESSION_KEY", "5e".repeat(64)),
        ("PARTNER_WEB__BIND", format!("127.0.0.1:{web}")),
        ("PARTNER_WEB__PUBLIC_URL", web_url.clone()),
        ("PARTNER_WEB__SECURE_COOKIES", "false".to_owned()),
        ("PARTNER_WEB__METRICS_BIND", "127.0.0.1:0".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ];
    let mut partner_web = bench::spawn("partner-web", &[], &env, &logs.join("partner-web.log"));
    assert!(
        wait_for_http(&format!("{web_url}/healthz"), Duration::from_secs(30))
            .await
            .is_some()
    );
    let web_pid = partner_web.id();
    let idle_rss = bench::proc_memory_mib(web_pid, "VmRSS").unwrap_or(f64::NAN);

    // Calibration (also the warm-up): how many callbacks a few seconds take, to prepare enough.
    let warm = prepare_many(&web_url, 1500).await;
    let calibration = wrk(&web_url, &warm, connections, 3);
    let rate = if calibration.ran_out > 0 {
        warm.len() as f64 / 2.0
    } else {
        calibration.requests_per_sec
    };
    println!("calibration: {rate:.0} callbacks/s");

    let mut results = Vec::new();
    for run in 1..=runs {
        let needed = (rate * seconds as f64 * 1.5) as usize + 500;
        let started = Instant::now();
        let pairs = prepare_many(&web_url, needed).await;
        eprintln!(
            "run {run}: prepared {needed} sign-ins in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let cpu_before = bench::proc_cpu(web_pid).map_or(0.0, |(_, s)| s);
        let result = wrk(&web_url, &pairs, connections, seconds);
        let cpu = bench::proc_cpu(web_pid).map_or(0.0, |(_, s)| s) - cpu_before;
        print!("{}", result.output);
        println!(
            "run {run}: {:.1} callbacks/s, p50 {:.1} ms, p99 {:.1} ms, {} × 303, {} other, web CPU {:.2} ms/callback, \
             web VmRSS {:.1} MiB VmHWM {:.1} MiB, load {}",
            result.requests_per_sec,
            result.p50_ms,
            result.p99_ms,
            result.answered,
            result.other,
            1000.0 * cpu / result.answered.max(1) as f64,
            bench::proc_memory_mib(web_pid, "VmRSS").unwrap_or(f64::NAN),
            bench::proc_memory_mib(web_pid, "VmHWM").unwrap_or(f64::NAN),
            bench::load(),
        );
        if result.ran_out > 0 || result.other > 0 {
            println!(
                "run {run} discarded: it ran out of prepared sign-ins or had answers other than 303"
            );
        } else {
            results.push((result, cpu));
        }
    }
    let pick = |f: &dyn Fn(&WrkRun) -> f64| results.iter().map(|(r, _)| f(r)).collect::<Vec<_>>();
    println!("\n== sign-in callback at {connections} connections, {seconds} s per run ==");
    println!(
        "requests/s   {}",
        bench::summary(&pick(&|r| r.requests_per_sec), "req/s", 1)
    );
    println!(
        "p50 latency  {}",
        bench::summary(&pick(&|r| r.p50_ms), "ms", 1)
    );
    println!(
        "p99 latency  {}",
        bench::summary(&pick(&|r| r.p99_ms), "ms", 1)
    );
    println!(
        "web CPU      {}",
        bench::summary(
            &results
                .iter()
                .map(|(r, cpu)| 1000.0 * cpu / r.answered.max(1) as f64)
                .collect::<Vec<_>>(),
            "ms/callback",
            3
        )
    );
    println!(
        "web memory   idle VmRSS {idle_rss:.1} MiB; after the runs VmRSS {:.1} MiB, VmHWM {:.1} MiB",
        bench::proc_memory_mib(web_pid, "VmRSS").unwrap_or(f64::NAN),
        bench::proc_memory_mib(web_pid, "VmHWM").unwrap_or(f64::NAN)
    );
    let status = bench::terminate(&mut partner_web);
    assert!(
        status.is_some_and(|s| s.success()),
        "partner-web did not stop cleanly: {status:?}"
    );
    bench::terminate(&mut sim);
}
