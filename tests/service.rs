//! `postured run` under a service manager, speaking systemd's notify protocol over a real Unix
//! datagram socket (`NOTIFY_SOCKET`), as `Type=notify` with `WatchdogSec=` sees it:
//! `READY=1` after the first poll round, `WATCHDOG=1` pings, `RELOADING=1` then `READY=1` on
//! SIGHUP with the new configuration applied (a second tenant appears in `/metrics`), a broken
//! configuration refused on SIGHUP while the running one keeps serving, and `STOPPING=1` then a
//! clean exit on SIGTERM.

mod support;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use support::{exits_cleanly, sample, send_signal, served_url};

fn config(dir: &Path, tenants: &[&str]) -> String {
    let recordings = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo/msgraph");
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmetrics_public = true\n[store]\nurl = \"sqlite://{}\"\n\
         [scheduler]\nstartup_jitter = \"0s\"\npoll_on_start = true\nshutdown_grace = \"5s\"\n\
         [model]\ndefault_assessment = false\n",
        dir.join("postured.db").display()
    );
    for t in tenants {
        text.push_str(&format!(
            "[[tenants]]\nid = \"{t}\"\n  [[tenants.connectors]]\n  kind = \"msgraph\"\n  \
             schedule = \"0 0 * * * *\"\n  replay_dir = \"{}\"\n",
            recordings.display()
        ));
    }
    text
}

/// Datagrams received on the notify socket until one contains `want` (or the deadline).
fn expect(socket: &UnixDatagram, want: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            seen.push(msg.clone());
            if msg.lines().any(|l| l == want) {
                return;
            }
        }
    }
    panic!("no {want} from the daemon; received {seen:#?}");
}

fn metrics(url: &str) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    postured::http::install_crypto_provider();
    rt.block_on(async { reqwest::get(url).await?.text().await })
        .unwrap_or_default()
}

#[test]
fn notify_protocol_reload_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("postured.toml");
    std::fs::write(&cfg, config(dir.path(), &["alpha"])).unwrap();
    let notify = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&notify).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_postured"))
        .args(["run", "--config"])
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &notify)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let url = served_url(&mut child);
    let mut seen = Vec::new();

    // Ready after the first poll round: the tenant is scored by then.
    expect(&socket, "READY=1", &mut seen);
    let m = metrics(&url);
    assert!(
        sample(&m, "postured_compliance_score_ratio{tenant=\"alpha\"}").is_some(),
        "{m}"
    );
    // The watchdog is fed at half of WATCHDOG_USEC.
    expect(&socket, "WATCHDOG=1", &mut seen);

    // SIGHUP with a second tenant: reloading, then ready with both tenants scored.
    std::fs::write(&cfg, config(dir.path(), &["alpha", "beta"])).unwrap();
    seen.clear();
    send_signal(pid, "HUP");
    expect(&socket, "RELOADING=1", &mut seen);
    expect(&socket, "READY=1", &mut seen);
    let m = metrics(&url);
    for t in ["alpha", "beta"] {
        assert!(
            sample(
                &m,
                &format!("postured_compliance_score_ratio{{tenant=\"{t}\"}}")
            )
            .is_some(),
            "{t}: {m}"
        );
    }

    // SIGHUP with a broken file: refused, the running configuration keeps serving.
    std::fs::write(&cfg, "[scheduler]\nsignal_ttl_polls = 0\n").unwrap();
    seen.clear();
    send_signal(pid, "HUP");
    expect(&socket, "RELOADING=1", &mut seen);
    expect(&socket, "READY=1", &mut seen);
    assert!(
        seen.iter().any(|m| m.contains("STATUS=reload refused")),
        "{seen:#?}"
    );
    let m = metrics(&url);
    assert!(
        sample(&m, "postured_compliance_score_ratio{tenant=\"beta\"}").is_some(),
        "{m}"
    );
    assert!(child.try_wait().unwrap().is_none(), "still running");

    // SIGTERM: stopping, then a clean exit.
    seen.clear();
    send_signal(pid, "TERM");
    expect(&socket, "STOPPING=1", &mut seen);
    exits_cleanly(&mut child, Duration::from_secs(15));
}
