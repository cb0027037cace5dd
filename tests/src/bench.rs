//! Helpers for benchmark binaries (`tests/benches/`): arguments, process CPU and memory from /proc, summaries.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use crate::floor::load;

/// `--name value` pairs after cargo's own `--bench` flag; anything unknown stops the run.
pub struct Args(Vec<(String, String)>);

impl Args {
    /// The arguments of `cargo bench`; `None` when cargo runs the binary as a test (`cargo test
    /// --all-targets` passes no `--bench`): benchmarks never run in the test suite.
    pub fn for_bench(known: &[&str]) -> Option<Self> {
        if std::env::args().any(|a| a == "--bench") {
            Some(Self::parse(known))
        } else {
            println!("a benchmark: run it with `cargo bench` (see BENCHMARKS.md); nothing to test");
            None
        }
    }

    pub fn parse(known: &[&str]) -> Self {
        let mut pairs = Vec::new();
        let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
        while let Some(name) = args.next() {
            let key = name.trim_start_matches("--").to_owned();
            assert!(
                name.starts_with("--") && known.contains(&key.as_str()),
                "unknown argument {name}; known: --{}",
                known.join(", --")
            );
            let value = args
                .next()
                .unwrap_or_else(|| panic!("{name} needs a value"));
            pairs.push((key, value));
        }
        Self(pairs)
    }

    pub fn get<T: std::str::FromStr>(&self, key: &str, default: T) -> T {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map_or(default, |(_, v)| {
                v.parse()
                    .unwrap_or_else(|_| panic!("--{key} {v} is not valid"))
            })
    }

    /// Every value of a repeated or comma-separated argument.
    pub fn list<T: std::str::FromStr + Clone>(&self, key: &str, default: &[T]) -> Vec<T> {
        let values: Vec<T> = self
            .0
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| v.split(',').map(str::to_owned).collect::<Vec<_>>())
            .map(|v| {
                v.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("--{key} {v} is not valid"))
            })
            .collect();
        if values.is_empty() {
            default.to_vec()
        } else {
            values
        }
    }
}

/// Clock ticks per second of /proc's utime and stime.
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// `(state, utime + stime in seconds)` of a process (its every thread), from /proc/<pid>/stat.
pub fn proc_cpu(pid: u32) -> Option<(char, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((state, (utime + stime) / clock_ticks()))
}

/// A `kB` line of /proc/<pid>/status (`VmHWM`, `VmRSS`) in MiB.
pub fn proc_memory_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The CPU time (ns) this thread has run (CLOCK_THREAD_CPUTIME_ID).
pub fn thread_cpu_ns() -> u64 {
    // CLOCK_THREAD_CPUTIME_ID includes the running slice; /proc/thread-self/schedstat does not (it
    // moves at scheduler ticks), which skews anything shorter than a few ticks.
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    u64::try_from(now.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(now.tv_nsec).unwrap_or(0)
}

/// Waits for a child to exit and returns its status, CPU seconds and peak memory (MiB), read from
/// /proc while it is a zombie (before it is reaped), so nothing is lost to the exit.
pub fn wait_measured(child: &mut Child, limit: Duration) -> (Option<ExitStatus>, f64, f64) {
    let pid = child.id();
    let deadline = Instant::now() + limit;
    let (mut cpu, mut hwm) = (0.0, 0.0);
    while Instant::now() < deadline {
        match proc_cpu(pid) {
            Some((state, seconds)) => {
                cpu = seconds;
                if let Some(peak) = proc_memory_mib(pid, "VmHWM") {
                    hwm = peak;
                }
                if state == 'Z' || state == 'X' {
                    break;
                }
            }
            None => break,
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    if Instant::now() >= deadline {
        let _ = child.kill();
    }
    (child.wait().ok(), cpu, hwm)
}

/// A workspace binary with the e2e harness's clean environment, its output going to `log`.
pub fn spawn(name: &str, args: &[&str], env: &[(&str, String)], log: &Path) -> Child {
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    }
    let out = std::fs::File::create(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let err = out
        .try_clone()
        .unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let mut cmd = crate::command(name, env);
    if let Some((_, filter)) = env.iter().find(|(k, _)| *k == "RUST_LOG") {
        cmd.env("RUST_LOG", filter);
    }
    // BENCH_PERF=<prefix> profiles the processes whose log file name starts with it (`steady-pass`,
    // `run-1000`, `partner-web`) with `perf record` into `<log>.perf.data`; BENCH_PERF_CALLGRAPH=dwarf
    // unwinds with debug info (slower, bigger files) where frame pointers miss frames.
    // BENCH_HEAPTRACK=<prefix> runs them under heaptrack into `<log>.heaptrack.zst`: where the heap
    // grows and what is never freed. Their CPU and memory figures are then the profiler's own:
    // profile runs are not measurements.
    let stem = log.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let selected = |variable: &str| {
        std::env::var(variable).is_ok_and(|prefix| !prefix.is_empty() && stem.starts_with(&prefix))
    };
    if selected("BENCH_PERF") {
        let call_graph = std::env::var("BENCH_PERF_CALLGRAPH").unwrap_or_else(|_| "fp".into());
        let data = log.with_extension("perf.data");
        cmd = wrapped_in(&cmd, "perf", |perf| {
            perf.args(["record", "-F", "1999", "--call-graph", &call_graph, "-o"])
                .arg(data)
                .arg("--");
        });
    }
    if selected("BENCH_HEAPTRACK") {
        let data = log.with_extension("heaptrack");
        cmd = wrapped_in(&cmd, "heaptrack", |heaptrack| {
            heaptrack.arg("-o").arg(data);
        });
    }
    cmd.args(args)
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    cmd.spawn()
        .unwrap_or_else(|e| panic!("starting {name}: {e}"))
}

/// `tool <its arguments> <cmd's program>`, with `cmd`'s environment and working directory; `cmd`'s
/// own arguments are added by the caller afterwards.
fn wrapped_in(cmd: &Command, tool: &str, tool_args: impl FnOnce(&mut Command)) -> Command {
    let mut wrapped = Command::new(tool);
    tool_args(&mut wrapped);
    wrapped.arg(cmd.get_program());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    wrapped
}

/// Sends SIGTERM and waits (at most 30 s) for the exit status. A process run under `perf record`
/// (`BENCH_PERF`) or heaptrack (`BENCH_HEAPTRACK`) gets the signal itself, so that the profiler can
/// finish writing and exit with its status.
pub fn terminate(child: &mut Child) -> Option<ExitStatus> {
    let pid = child.id();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let targets = if matches!(comm.trim(), "perf" | "heaptrack") {
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter(|child| {
                let name =
                    std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
                !name.starts_with("heaptrack")
            })
            .map(str::to_owned)
            .collect()
    } else {
        vec![pid.to_string()]
    };
    for target in targets {
        let _ = Command::new("kill").args(["-TERM", &target]).status();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().ok()
}

/// Where a benchmark's process logs go: `target/bench-logs/<bench>/`.
pub fn log_dir(bench: &str) -> PathBuf {
    crate::repo_root().join("target/bench-logs").join(bench)
}

/// `median [min–max] (n)` of the values.
pub fn summary(values: &[f64], unit: &str, digits: usize) -> String {
    if values.is_empty() {
        return "n/a".to_owned();
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    format!(
        "{:.d$} {unit} [{:.d$}–{:.d$}] (n={})",
        median(&sorted),
        sorted[0],
        sorted[sorted.len() - 1],
        sorted.len(),
        d = digits
    )
}

pub fn median(sorted: &[f64]) -> f64 {
    percentile(sorted, 50.0)
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The machine, for the report: CPU model, nproc, load average.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown", str::trim)
        .to_owned();
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("CPU {model}, nproc {nproc}, load average {}", load())
}
