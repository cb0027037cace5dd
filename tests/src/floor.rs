//! The floor the benches compare RS256 with, measured on the same machine in the same run: OpenSSL's
//! RSA-2048 sign and verify (`openssl speed`) and, as a peer reference, pycryptodome's (the library of
//! SuperOffice's Python sample), installed into a throwaway virtualenv.
//!
//! std only: `crates/shared/benches/credentials.rs` includes this file by path as well.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Milliseconds per RSA operation, as the measuring tool reports them (user CPU time).
#[derive(Debug, Clone, Copy)]
pub struct Floor {
    pub sign_ms: f64,
    pub verify_ms: f64,
}

impl Floor {
    pub fn total_ms(&self) -> f64 {
        self.sign_ms + self.verify_ms
    }
}

/// `openssl speed -seconds <seconds> rsa2048`: PKCS#1 v1.5 over a digest, user CPU time per operation.
pub fn openssl_speed(seconds: u32) -> Result<Floor, String> {
    let output = Command::new("openssl")
        .args(["speed", "-seconds", &seconds.to_string(), "rsa2048"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run openssl: {e}"))?;
    if !output.status.success() {
        return Err(format!("openssl speed failed: {}", output.status));
    }
    parse_openssl_speed(&String::from_utf8_lossy(&output.stdout))
}

/// Reads `rsa 2048 bits 0.000677s 0.000020s 1477.6 50183.9` from `openssl speed`'s table.
pub fn parse_openssl_speed(text: &str) -> Result<Floor, String> {
    let line = text
        .lines()
        .find(|l| l.starts_with("rsa") && l.contains("2048 bits"))
        .ok_or("openssl speed printed no rsa 2048 line")?;
    let seconds: Vec<f64> = line
        .split_whitespace()
        .filter_map(|t| t.strip_suffix('s')?.parse().ok())
        .collect();
    match seconds.as_slice() {
        [sign, verify, ..] => Ok(Floor {
            sign_ms: sign * 1000.0,
            verify_ms: verify * 1000.0,
        }),
        _ => Err(format!("unexpected openssl speed line: {line}")),
    }
}

/// `openssl version`, for the report.
pub fn openssl_version() -> String {
    Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

/// Times RSASSA-PKCS1-v1_5 SHA-256 sign and verify of `message` with the key read from stdin, on the
/// process CPU clock, `seconds` each; prints `sign_ms verify_ms`.
const PYCRYPTODOME_SCRIPT: &str = r#"
import sys, time
from Crypto.Hash import SHA256
from Crypto.PublicKey import RSA
from Crypto.Signature import pkcs1_15

key = RSA.import_key(sys.stdin.read())
message = sys.argv[1].encode()
seconds = float(sys.argv[2])
signer = pkcs1_15.new(key)
verifier = pkcs1_15.new(key.publickey())
signature = signer.sign(SHA256.new(message))
verifier.verify(SHA256.new(message), signature)

def per_op(op):
    count, start = 0, time.process_time()
    while True:
        op()
        count += 1
        spent = time.process_time() - start
        if spent >= seconds:
            return spent / count

sign = per_op(lambda: signer.sign(SHA256.new(message)))
verify = per_op(lambda: verifier.verify(SHA256.new(message), signature))
print(sign * 1000, verify * 1000)
"#;

/// pycryptodome in a virtualenv under the system temporary directory, removed when dropped.
pub struct Pycryptodome {
    dir: PathBuf,
    version: String,
}

impl Drop for Pycryptodome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(program: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(format!(
            "{} {args:?} failed: {}",
            program.display(),
            output.status
        ))
    }
}

impl Pycryptodome {
    /// `python3 -m venv` and `pip install pycryptodome` into a fresh directory.
    pub fn install() -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("rs256-floor-{}", std::process::id()));
        run(
            Path::new("python3"),
            &["-m", "venv", &dir.display().to_string()],
        )?;
        let mut venv = Self {
            dir,
            version: String::new(),
        };
        run(
            &venv.dir.join("bin/pip"),
            &[
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "pycryptodome",
            ],
        )?;
        venv.version = run(
            &venv.dir.join("bin/python"),
            &["-c", "import Crypto; print(Crypto.__version__)"],
        )?;
        Ok(venv)
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// Sign and verify with `key_pem` (PKCS#1 or PKCS#8 PEM) over `message`, `seconds` of CPU each.
    pub fn measure(&self, key_pem: &str, message: &str, seconds: f64) -> Result<Floor, String> {
        let mut child = Command::new(self.dir.join("bin/python"))
            .args(["-c", PYCRYPTODOME_SCRIPT, message, &seconds.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run the virtualenv's python: {e}"))?;
        child
            .stdin
            .take()
            .ok_or("no stdin for python")?
            .write_all(key_pem.as_bytes())
            .map_err(|e| format!("cannot pass the key to python: {e}"))?;
        let output = child
            .wait_with_output()
            .map_err(|e| format!("python failed: {e}"))?;
        if !output.status.success() {
            return Err(format!("the pycryptodome script failed: {}", output.status));
        }
        let text = String::from_utf8_lossy(&output.stdout);
        let numbers: Vec<f64> = text
            .split_whitespace()
            .filter_map(|t| t.parse().ok())
            .collect();
        match numbers.as_slice() {
            [sign_ms, verify_ms] => Ok(Floor {
                sign_ms: *sign_ms,
                verify_ms: *verify_ms,
            }),
            _ => Err(format!("unexpected pycryptodome output: {text}")),
        }
    }
}

/// /proc/loadavg's first three fields: how busy the machine was around a measurement.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_openssl_speed_table() {
        let text = "                  sign    verify    sign/s verify/s\n\
                    rsa 2048 bits 0.000677s 0.000020s   1477.6  50183.9\n";
        let floor = parse_openssl_speed(text);
        assert!(
            matches!(floor, Ok(f) if (f.sign_ms - 0.677).abs() < 1e-9 && (f.verify_ms - 0.020).abs() < 1e-9),
            "{floor:?}"
        );
        assert!(parse_openssl_speed("rsa 1024 bits 0.1s 0.2s").is_err());
    }
}
