//! The `switchback` daemon as a child process: started with some flags, its banner read (bounded),
//! its stderr collected as it comes so a test can wait for a log line, stopped with a signal.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use super::process::{ChildGuard, PROCESS_TIMEOUT};

/// The daemon, started with some flags, and the addresses from its banner.
pub struct Daemon {
    pub guard: ChildGuard,
    /// `listening udp ADDR` lines.
    pub udp: Vec<SocketAddr>,
    /// `listening tcp ADDR` lines.
    pub tcp: Vec<SocketAddr>,
    /// Every stdout line up to the `stun:` line.
    pub banner: Vec<String>,
    /// Everything the daemon wrote to stderr so far (read line by line on a thread).
    log: Arc<Mutex<String>>,
    log_reader: Option<thread::JoinHandle<()>>,
    /// `listening tls ADDR` lines.
    pub tls: Vec<SocketAddr>,
    /// `listening http-NAME ADDR` lines: (NAME, ADDR).
    pub http: Vec<(String, SocketAddr)>,
}

impl Daemon {
    /// Starts `switchback ARGS` and waits (bounded) for its banner.
    pub fn start(args: &[&str]) -> Daemon {
        Daemon::start_with_env(args, &[])
    }

    /// A daemon for relay tests on loopback: realm `r`, user `u:pw`, loopback peers allowed, an
    /// OS-chosen port, no TLS, the metrics face on 127.0.0.1:0; and `extra` flags.
    pub fn start_loopback(extra: &[&str]) -> Daemon {
        let mut args = vec![
            "--realm",
            "r",
            "--user",
            "u:pw",
            "--allow-loopback-peers",
            "--listening-port",
            "0",
            "--no-tls",
            "--metrics-listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        Daemon::start(&args)
    }

    /// [`Daemon::start`] with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Daemon {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchback"));
        cmd.args(args);
        cmd.envs(env.iter().copied());
        Daemon::start_command(cmd)
    }

    /// The daemon started by `cmd` (the binary behind a wrapper such as `ip netns exec NS`).
    pub fn start_command(mut cmd: Command) -> Daemon {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut guard = ChildGuard::spawn(&mut cmd);
        let log = Arc::new(Mutex::new(String::new()));
        let log_reader = {
            let log = log.clone();
            let stderr = guard.child_mut().stderr.take().expect("stderr");
            thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            })
        };
        let stdout = guard.child_mut().stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        let mut daemon = Daemon {
            guard,
            udp: Vec::new(),
            tcp: Vec::new(),
            banner: Vec::new(),
            log,
            log_reader: Some(log_reader),
            tls: Vec::new(),
            http: Vec::new(),
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => {
                    let _ = daemon.guard.child_mut().kill();
                    let stderr = daemon.finish_log();
                    panic!("no banner from the daemon ({e}); banner so far {:?}; stderr: {stderr:?}", daemon.banner);
                }
            };
            if line.starts_with('{') && line.contains(r#""event":"ready""#) {
                daemon.read_ready_event(&line);
                return daemon;
            }
            daemon.banner.push(line.clone());
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("listening"), Some("udp"), Some(addr)) => daemon.udp.push(addr.parse().expect("udp addr")),
                (Some("listening"), Some("tcp"), Some(addr)) => daemon.tcp.push(addr.parse().expect("tcp addr")),
                (Some("listening"), Some("tls"), Some(addr)) => daemon.tls.push(addr.parse().expect("tls addr")),
                (Some("listening"), Some(face), Some(addr)) if face.starts_with("http-") => {
                    daemon.http.push((face.trim_start_matches("http-").to_owned(), addr.parse().expect("http addr")))
                }
                _ => {}
            }
            if line.starts_with("stun:") || line.starts_with("stuns:") {
                return daemon;
            }
        }
    }

    /// `log-format = "json"`: the banner is one JSON object with the listeners and the text lines.
    fn read_ready_event(&mut self, line: &str) {
        let v: serde_json::Value = serde_json::from_str(line).expect("the ready event is JSON");
        for l in v["listening"].as_array().expect("listening") {
            let addr: SocketAddr = l["addr"].as_str().and_then(|a| a.parse().ok()).expect("addr");
            match l["transport"].as_str() {
                Some("udp") => self.udp.push(addr),
                Some("tcp") => self.tcp.push(addr),
                Some("tls") => self.tls.push(addr),
                other => panic!("transport {other:?}"),
            }
        }
        for f in v["http"].as_array().expect("http") {
            let addr = f["addr"].as_str().and_then(|a| a.parse().ok()).expect("http addr");
            self.http.push((f["face"].as_str().expect("face").to_owned(), addr));
        }
        self.banner =
            v["banner"].as_array().expect("banner").iter().filter_map(|l| Some(l.as_str()?.to_owned())).collect();
    }

    /// The bound address of the HTTP face `name` (`api`, `metrics`, `admin`).
    pub fn http_addr(&self, name: &str) -> SocketAddr {
        self.http.iter().find(|(n, _)| n == name).map(|&(_, a)| a).unwrap_or_else(|| panic!("no http-{name} listener"))
    }

    /// Sends `signal` and waits (bounded) for the exit; returns the status and everything on stderr.
    pub fn stop_with(self, signal: &str) -> (ExitStatus, String) {
        self.guard.signal(signal);
        self.wait_exit(signal)
    }

    /// Waits (bounded) for an exit already asked for (`signal` names it in the panic message).
    pub fn wait_exit(mut self, signal: &str) -> (ExitStatus, String) {
        let status = self
            .guard
            .wait_timeout(PROCESS_TIMEOUT)
            .unwrap_or_else(|| panic!("daemon did not exit within {PROCESS_TIMEOUT:?} after SIG{signal}"));
        (status, self.finish_log())
    }

    /// What the daemon wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded by [`PROCESS_TIMEOUT`]) until the daemon has written a stderr line containing
    /// `needle` `count` times in all: the observable effect of a SIGHUP, for example.
    pub fn wait_for_log(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + PROCESS_TIMEOUT;
        while self.log.lock().unwrap().matches(needle).count() < count {
            assert!(Instant::now() < deadline, "no {needle:?} (x{count}) on stderr: {}", self.log());
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The whole stderr once the process is gone (the reader reaches the end of the pipe).
    fn finish_log(&mut self) -> String {
        if let Some(reader) = self.log_reader.take() {
            let _ = reader.join();
        }
        self.log()
    }
}
