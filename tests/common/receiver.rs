//! A real HTTP receiver for the sinks (`tests/receivers/receiver.py`), started on 127.0.0.1:0
//! and steered through its control endpoint: slow, flaky, rejecting, stalled.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A running receiver; killed when dropped.
pub struct Receiver {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Where accepted lines (ndjson) or decoded log records (otlp) go.
    pub out: PathBuf,
    /// Where malformed requests are described.
    pub errors: PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    /// Starts a receiver of `kind` (`ndjson` or `otlp`).
    pub fn start(kind: &str) -> Receiver {
        Receiver::spawn(kind, &[])
    }

    /// Starts an HTTPS receiver of `kind` with the server certificate of `pki`; with
    /// `mutual`, it requires a client certificate signed by `pki`'s CA. Its `control` and
    /// `stats` are not available (they speak plain HTTP).
    pub fn start_tls(kind: &str, pki: &Pki, mutual: bool) -> Receiver {
        let mut args = vec![
            "--tls-cert".to_owned(),
            pki.path("server.pem"),
            "--tls-key".to_owned(),
            pki.path("server.key"),
        ];
        if mutual {
            args.extend(["--client-ca".to_owned(), pki.path("ca.pem")]);
        }
        let mut r = Receiver::spawn(kind, &args);
        r.url = r.url.replacen("http://", "https://", 1);
        r
    }

    fn spawn(kind: &str, extra: &[String]) -> Receiver {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("received.ndjson");
        let errors = dir.path().join("errors.ndjson");
        let mut child = Command::new("python3")
            .arg(super::root().join("tests/receivers/receiver.py"))
            .args(["--kind", kind, "--out"])
            .arg(&out)
            .arg("--errors")
            .arg(&errors)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting tests/receivers/receiver.py");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("the receiver did not start: {line:?} (is opentelemetry-proto installed?)"));
        Receiver {
            child,
            url: format!("http://{addr}"),
            out,
            errors,
            _dir: dir,
        }
    }

    /// Merges `behaviour` (JSON) into the receiver's behaviour.
    pub fn control(&self, behaviour: &str) {
        let (status, text) = super::moto::http(&format!("{}/_control", self.url), "POST", behaviour).unwrap();
        assert_eq!(status, 200, "{text}");
    }

    /// The receiver's counters.
    pub fn stats(&self) -> serde_json::Value {
        let (_, text) = super::moto::http(&format!("{}/_stats", self.url), "GET", "").unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Everything accepted so far, one value per line. The receiver may be writing a large
    /// request while this reads: only complete lines count.
    pub fn received(&self) -> Vec<serde_json::Value> {
        let mut bytes = std::fs::read(&self.out).unwrap_or_default();
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(complete);
        super::lines(&bytes)
    }

    /// The malformed requests seen.
    pub fn errors(&self) -> String {
        std::fs::read_to_string(&self.errors).unwrap_or_default()
    }
}

/// A throw-away PKI (`tests/receivers/make_certs.py`): `ca.pem`, `other-ca.pem`, `server.pem`
/// and `server.key` (for 127.0.0.1), `client.pem` and `client.key`.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// Makes one.
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("python3")
            .arg(super::root().join("tests/receivers/make_certs.py"))
            .arg(dir.path())
            .status()
            .expect("running tests/receivers/make_certs.py");
        assert!(status.success(), "make_certs.py failed");
        Pki { dir }
    }

    /// The path of one of its files, as text for a config.
    pub fn path(&self, file: &str) -> String {
        self.dir.path().join(file).display().to_string()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
