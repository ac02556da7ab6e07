//! The exec connector against real child processes: small `/bin/sh` scripts written to a temp
//! directory (the connector itself runs them directly, argv, no shell of its own).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use postured_connectors::exec::{ExecConfig, ExecConnector};
use postured_connectors::{Connector, PollContext, SignalValue, Snapshot};
use secrecy::SecretString;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Write an executable `#!/bin/sh` script.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn config(program: &Path) -> ExecConfig {
    ExecConfig {
        name: "backup".into(),
        argv: vec![program.display().to_string()],
        env: Vec::new(),
        working_dir: None,
        timeout: Duration::from_secs(10),
        max_stdout_bytes: 1 << 20,
        max_stderr_bytes: 4096,
        max_signals: 10_000,
    }
}

async fn poll(cfg: ExecConfig) -> Snapshot {
    ExecConnector::new(cfg)
        .unwrap()
        .poll(&PollContext { observed_at: t0() })
        .await
}

/// The one gap and error of a failed run.
fn failure(s: &Snapshot) -> (&str, &postured_connectors::CollectionError) {
    assert!(s.signals.is_empty(), "no signal of a failed run: {s:?}");
    assert_eq!(s.gaps.len(), 1, "{s:?}");
    assert_eq!(s.gaps[0].prefix, "exec.backup.");
    assert_eq!(s.errors.len(), 1, "{s:?}");
    (s.gaps[0].kind.as_str(), &s.errors[0])
}

#[tokio::test]
async fn good_output_becomes_signals_with_their_own_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let p = script(
        dir.path(),
        "ok",
        r#"echo '{"key": "exec.backup.last_success_age_hours", "value": 3.5}'
echo
echo '{"key": "exec.backup.encrypted", "value": true, "expires_in": "26h"}'
echo '{"key": "exec.backup.tool", "value": "restic", "expires_in": 60}'
echo "some progress chatter" >&2"#,
    );
    let s = poll(config(&p)).await;
    assert!(s.gaps.is_empty() && s.errors.is_empty(), "{s:?}");
    let keys: Vec<&str> = s.signals.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "exec.backup.last_success_age_hours",
            "exec.backup.encrypted",
            "exec.backup.tool"
        ]
    );
    assert_eq!(s.signals[0].value, SignalValue::Number(3.5));
    assert_eq!(s.signals[0].expires_at, None);
    assert_eq!(
        s.signals[1].expires_at,
        Some(t0() + chrono::Duration::hours(26))
    );
    assert_eq!(s.signals[2].value, SignalValue::Text("restic".into()));
    assert!(s.signals.iter().all(|s| s.observed_at == t0()));
}

#[tokio::test]
async fn arguments_are_passed_verbatim_without_a_shell() {
    let dir = tempfile::tempdir().unwrap();
    // Prints its first argument as a text signal: shell syntax in it stays text.
    let p = script(
        dir.path(),
        "echo-arg",
        r#"printf '{"key": "exec.backup.arg", "value": "%s"}\n' "$1""#,
    );
    let mut cfg = config(&p);
    cfg.argv.push("$(touch pwned); `id` *".into());
    cfg.working_dir = Some(dir.path().to_owned());
    let s = poll(cfg).await;
    assert!(s.errors.is_empty(), "{s:?}");
    assert_eq!(
        s.signals[0].value,
        SignalValue::Text("$(touch pwned); `id` *".into())
    );
    assert!(!dir.path().join("pwned").exists());
}

#[tokio::test]
async fn a_non_zero_exit_is_an_error_with_the_stderr_tail() {
    let dir = tempfile::tempdir().unwrap();
    let p = script(
        dir.path(),
        "fail",
        r#"echo '{"key": "exec.backup.ok", "value": true}'
echo "first line" >&2
echo "repository locked" >&2
exit 3"#,
    );
    let s = poll(config(&p)).await;
    let (kind, e) = failure(&s);
    assert_eq!(kind, "other");
    assert_eq!(e.code.as_deref(), Some("exit 3"));
    assert_eq!(e.endpoint, p.display().to_string());
    assert!(
        e.message
            .ends_with("exited with status 3; stderr: first line | repository locked"),
        "{}",
        e.message
    );
    assert!(s.gaps[0].reason.contains("repository locked"));
}

#[tokio::test]
async fn the_stderr_tail_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let p = script(
        dir.path(),
        "noisy",
        r#"i=0; while [ $i -lt 2000 ]; do echo "noise line $i" >&2; i=$((i+1)); done
echo "the real cause" >&2
exit 1"#,
    );
    let mut cfg = config(&p);
    cfg.max_stderr_bytes = 64;
    let s = poll(cfg).await;
    let (_, e) = failure(&s);
    assert!(e.message.ends_with("the real cause"), "{}", e.message);
    assert!(!e.message.contains("noise line 1 "), "{}", e.message);
    assert!(e.message.len() < 200, "{}", e.message);
}

/// Whether process `pid` is alive (`kill -0`).
fn alive(pid: i32) -> bool {
    // A zombie is reaped by its (dead) parent's reaper; treat a zombie as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

async fn wait_gone(pid: i32) -> bool {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    // The grandchild (sleep in the background) would outlive a plain kill of the script.
    let p = script(
        dir.path(),
        "hang",
        &format!(
            r#"sleep 300 &
echo $! > {}
echo "waiting for the lock" >&2
wait"#,
            pidfile.display()
        ),
    );
    let mut cfg = config(&p);
    cfg.timeout = Duration::from_millis(500);
    let started = Instant::now();
    let s = poll(cfg).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let (kind, e) = failure(&s);
    assert_eq!(kind, "timeout");
    assert!(
        e.message.contains("did not finish within 500ms"),
        "{}",
        e.message
    );
    assert!(
        e.message.ends_with("stderr: waiting for the lock"),
        "{}",
        e.message
    );
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(wait_gone(pid).await, "grandchild {pid} still running");
}

#[tokio::test]
async fn a_dropped_poll_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let p = script(
        dir.path(),
        "hang",
        &format!("sleep 300 &\necho $! > {}\nwait", pidfile.display()),
    );
    let connector = ExecConnector::new(config(&p)).unwrap();
    // The daemon's poll deadline (or shutdown) drops the poll future mid-run.
    let cx = PollContext { observed_at: t0() };
    let r = tokio::time::timeout(Duration::from_millis(300), connector.poll(&cx)).await;
    assert!(r.is_err());
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(wait_gone(pid).await, "grandchild {pid} still running");
}

#[tokio::test]
async fn a_bad_line_is_malformed_and_keeps_no_signal() {
    let dir = tempfile::tempdir().unwrap();
    let p = script(
        dir.path(),
        "bad",
        r#"echo '{"key": "exec.backup.ok", "value": true}'
echo 'ok=true'
echo "emitted a debug line by mistake" >&2"#,
    );
    let s = poll(config(&p)).await;
    let (kind, e) = failure(&s);
    assert_eq!(kind, "malformed");
    assert_eq!(e.code.as_deref(), Some("line"));
    assert!(e.message.starts_with("stdout line 2: "), "{}", e.message);
    assert!(
        e.message
            .ends_with("stderr: emitted a debug line by mistake"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn a_signal_outside_the_namespace_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = script(
        dir.path(),
        "spoof",
        r#"echo '{"key": "exec.backup.ok", "value": true}'
echo '{"key": "msgraph.mfa.registered_ratio", "value": 1.0}'"#,
    );
    let s = poll(config(&p)).await;
    let (kind, e) = failure(&s);
    assert_eq!(kind, "malformed");
    assert_eq!(e.code.as_deref(), Some("namespace"));
    assert!(e.message.contains("stdout line 2"), "{}", e.message);
    assert!(e.message.contains("outside the connector's namespace"));
    assert!(e.message.ends_with("(stderr empty)"), "{}", e.message);
}

#[tokio::test]
async fn huge_output_is_capped_and_the_program_killed() {
    let dir = tempfile::tempdir().unwrap();
    // Endless output: only the cap (and the kill) ends it.
    let p = script(
        dir.path(),
        "flood",
        "exec yes '{\"key\": \"exec.backup.x\", \"value\": 1}'",
    );
    let mut cfg = config(&p);
    cfg.max_stdout_bytes = 64 * 1024;
    let started = Instant::now();
    let s = poll(cfg).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let (kind, e) = failure(&s);
    assert_eq!(kind, "too_large");
    assert!(e.message.contains("more than 65536 bytes"), "{}", e.message);

    // Within the byte cap, the signal cap applies.
    let p = script(
        dir.path(),
        "many",
        r#"i=0; while [ $i -lt 5 ]; do echo "{\"key\": \"exec.backup.k$i\", \"value\": $i}"; i=$((i+1)); done"#,
    );
    let mut cfg = config(&p);
    cfg.max_signals = 4;
    let s = poll(cfg).await;
    let (kind, e) = failure(&s);
    assert_eq!(kind, "too_large");
    assert_eq!(e.code.as_deref(), Some("too_many_signals"));
}

#[tokio::test]
async fn only_allow_listed_environment_reaches_the_program() {
    let dir = tempfile::tempdir().unwrap();
    // Reports how many variables it got and the values of three.
    let p = script(
        dir.path(),
        "env",
        r#"n=$(env | grep -c '=')
printf '{"key": "exec.backup.env_count", "value": %s}\n' "$n"
printf '{"key": "exec.backup.token", "value": "%s"}\n' "${TOKEN:-unset}"
printf '{"key": "exec.backup.lang", "value": "%s"}\n' "${LANG:-unset}"
printf '{"key": "exec.backup.home", "value": "%s"}\n' "${HOME:-unset}"
printf '{"key": "exec.backup.cwd", "value": "%s"}\n' "$(pwd)""#,
    );
    let mut cfg = config(&p);
    cfg.env = vec![
        ("TOKEN".into(), SecretString::from("t0ken")),
        ("LANG".into(), SecretString::from("C")),
    ];
    cfg.working_dir = Some(dir.path().to_owned());
    let s = poll(cfg).await;
    assert!(s.errors.is_empty(), "{s:?}");
    let get = |k: &str| {
        s.signals
            .iter()
            .find(|s| s.key == format!("exec.backup.{k}"))
            .map(|s| s.value.clone())
            .unwrap()
    };
    assert_eq!(get("token"), SignalValue::Text("t0ken".into()));
    assert_eq!(get("lang"), SignalValue::Text("C".into()));
    // The test process has HOME; the program does not get it.
    assert!(std::env::var_os("HOME").is_some());
    assert_eq!(get("home"), SignalValue::Text("unset".into()));
    // TOKEN, LANG and what sh sets itself (PWD, and SHLVL/_ for some shells): nothing else.
    match get("env_count") {
        SignalValue::Number(n) => assert!(n <= 5.0, "{n} variables"),
        v => panic!("{v:?}"),
    }
    assert_eq!(
        get("cwd"),
        SignalValue::Text(dir.path().canonicalize().unwrap().display().to_string())
    );
}

#[tokio::test]
async fn a_missing_program_is_not_found() {
    let s = poll(config(Path::new("/nonexistent/check-backup"))).await;
    let (kind, e) = failure(&s);
    assert_eq!(kind, "not_found");
    assert_eq!(e.code.as_deref(), Some("spawn"));
}
