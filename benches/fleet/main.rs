//! The fleet benchmark of issue 12: N generated Microsoft Graph tenants, each with the default
//! assessment and five framework assessments, polled like `postured once` (every tenant, at
//! most `--concurrency` at a time) against a loopback Graph serving realistic payloads
//! ([`graph`]). Prints each figure next to its target (docs/performance.md), medians over
//! `--runs` runs; the machine is stated.
//!
//! ```sh
//! cargo bench --bench fleet                       # 2,000 tenants, 3 runs (release build)
//! cargo bench --bench fleet -- --tenants 20000 --runs 1
//! cargo test --bench fleet                        # smoke: 20 tenants, 1 run (debug build)
//! ```
//!
//! `cargo bench` passes `--bench`, which selects the full size; without it (`cargo test`, so
//! `cargo test --workspace` in CI) the smoke size runs and checks that every poll succeeded
//! and every request was served. Nothing here is a timed assertion.
//!
//! Per run: a fresh SQLite database, the app built from the generated configuration
//! (`assembly::build_app`, as `run` and `once` do), one first cycle, then `--cycles`
//! steady-state cycles (nothing changes). CPU is the process's user + system time
//! (`getrusage`) minus the loopback Graph's thread; peak RSS is `VmHWM` (reset before each
//! run), read after the cycles (what `run` and `once` poll with) and again after the timed
//! whole-text `/metrics` renders (each holds the whole text, which `/metrics` streams in
//! chunks instead); the database is measured after a WAL checkpoint. A last run with
//! `[metrics] per_action_series = false` gives the `/metrics` render time without per-action
//! series. After a run's cycles the app is dropped and built again on the same database file,
//! as a restart of `postured run` would (configuration parsed, `assembly::build_app`:
//! migrations checked, templates and manual statuses read, connectors built), and timed until
//! `/readyz` would answer 200 ([`App::check_store`], the route's check): target 6 of issue 12.
//!
//! `--startup-only` times the start-up alone (no polls, no renders): parse, `build_app` on a
//! fresh database, `check_store`, then the same again on that database, per run
//! ([`startup_only`]).

mod graph;
mod probe;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use postured::app::App;
use postured::config::Config;
use postured::registry::Registry;
use postured::store::PollOutcome;
use sqlx::ConnectOptions;

/// The framework assessments every tenant has besides its default one (the templates of
/// config/demo.toml that issue 12 counts: six assessments a tenant with the default).
const FRAMEWORKS: [&str; 5] = [
    "iso-27001-2022",
    "nist-800-53-r5",
    "nist-csf-2.0",
    "gdpr",
    "hipaa-security-rule",
];

/// Polls a day at a 5-minute interval (the storage target is per day).
const POLLS_PER_DAY: f64 = 288.0;

#[derive(Parser, Debug)]
#[command(about = "postured fleet benchmark (issue 12)")]
struct Args {
    /// Set by `cargo bench`: the full size (else the smoke size of `cargo test`).
    #[arg(long)]
    bench: bool,
    /// Tenants (default 2000 with --bench, else 20).
    #[arg(long)]
    tenants: Option<usize>,
    /// Runs, each on a fresh database (default 3 with --bench, else 1).
    #[arg(long)]
    runs: Option<usize>,
    /// Steady-state cycles per run (default 3 with --bench, else 1).
    #[arg(long)]
    cycles: Option<usize>,
    /// Polls in flight at once (`[scheduler] max_concurrent_polls`).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Renders of `/metrics` timed per run.
    #[arg(long, default_value_t = 5)]
    renders: usize,
    /// Skip the run with `per_action_series = false`.
    #[arg(long)]
    no_lean_metrics: bool,
    /// Time only the start-up, no polls: generate the configuration, parse it, build the app on
    /// a fresh database (`assembly::build_app`), run `App::check_store`, then build it again
    /// on that database (a restart); print each step's wall time per run. For measuring how
    /// the start-up grows with `--tenants` without the first cycle's minutes.
    #[arg(long)]
    startup_only: bool,
    /// Anything else cargo passes (test filters).
    #[arg(hide = true)]
    rest: Vec<String>,
}

/// The figures of one cycle.
#[derive(Clone, Copy, Default)]
struct Cycle {
    wall: Duration,
    cpu: Duration,
    graph_cpu: Duration,
    db_bytes: u64,
    failed_polls: usize,
}

/// A restart on the database a run left (target 6): each step's wall time.
#[derive(Clone, Copy, Default)]
struct Restart {
    /// Parsing the generated configuration (`postured run` reads and parses its file first).
    parse: Duration,
    /// `assembly::build_app` on the existing database.
    build: Duration,
    /// `App::check_store` after the build (what `/readyz` answers with).
    check: Duration,
}

/// The figures of one run.
#[derive(Default)]
struct Run {
    build: Duration,
    restart: Restart,
    first: Cycle,
    steady: Vec<Cycle>,
    /// Peak RSS over the build and the cycles (what `run` and `once` poll with).
    peak_rss: u64,
    /// Peak RSS once the timed whole-text renders are done too (each holds the whole text,
    /// and the next one is built while the previous is still held; `/metrics` streams it in
    /// 256 KB chunks instead).
    peak_rss_renders: u64,
    /// RSS right after the cycles (what stays, plus what the allocator has not returned).
    rss_after: u64,
    render: Duration,
    metrics_bytes: usize,
    series: usize,
}

fn config_text(
    db: &Path,
    graph: &str,
    tenants: usize,
    concurrency: usize,
    per_action: bool,
) -> String {
    let mut text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[store]
url = "sqlite://{db}"
[scheduler]
startup_jitter = "0s"
max_concurrent_polls = {concurrency}
[metrics]
per_action_series = {per_action}
"#,
        db = db.display()
    );
    for i in 0..tenants {
        text.push_str(&format!(
            r#"
[[tenants]]
id = "t{i:05}"
  [[tenants.connectors]]
  kind = "msgraph"
  schedule = "0 0 * * * *"
  tenant_id = "{i:08x}-0000-4000-8000-000000000000"
  client_id = "00000000-0000-4000-8000-{i:012x}"
  client_secret = {{ env = "BENCH_CLIENT_SECRET" }}
  authority = "{graph}"
  graph_base = "{graph}/v1.0"
"#
        ));
        for f in FRAMEWORKS {
            text.push_str(&format!(
                "\n[[assessments]]\nid = \"t{i:05}-{f}\"\ntenant = \"t{i:05}\"\ntemplate = \"{f}\"\n"
            ));
        }
    }
    text
}

/// Parse the generated configuration and build the app on `dir`'s database; also returns
/// how long the parse took.
async fn build_app(dir: &Path, graph: &str, args: &Size, per_action: bool) -> (App, Duration) {
    let text = config_text(
        &dir.join("postured.db"),
        graph,
        args.tenants,
        args.concurrency,
        per_action,
    );
    let env = |k: &str| (k == "BENCH_CLIENT_SECRET").then(|| "not-a-real-secret".to_owned());
    let start = Instant::now();
    let cfg = Config::parse_with(&text, &[], &env, &Registry::builtin(), None)
        .unwrap_or_else(|p| panic!("generated configuration: {p:?}"));
    let parse = start.elapsed();
    let app = postured::assembly::build_app(cfg)
        .await
        .expect("the app builds");
    (app, parse)
}

/// Drop `app` and build it again on the same database file, timed until `/readyz` would
/// answer 200 (target 6).
async fn restart(
    app: Arc<App>,
    g: &graph::Graph,
    dir: &Path,
    s: &Size,
    per_action: bool,
) -> Restart {
    drop(app);
    let start = Instant::now();
    let (app, parse) = build_app(dir, &g.base, s, per_action).await;
    let build = start.elapsed().saturating_sub(parse);
    let start = Instant::now();
    app.check_store()
        .await
        .unwrap_or_else(|reason| panic!("/readyz after the restart: {reason}"));
    let check = start.elapsed();
    Restart {
        parse,
        build,
        check,
    }
}

/// `--startup-only`: per run, on a fresh database, the parse, `build_app`, `check_store`, then
/// the same on that database (a restart with nothing polled yet); prints each step.
async fn startup_only(g: &graph::Graph, s: &Size) {
    println!(
        "postured fleet benchmark, start-up only: {} tenants x (default + {} framework \
         assessments), {} run(s); {} build",
        s.tenants,
        FRAMEWORKS.len(),
        s.runs,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!("machine: {}", probe::machine());
    type Step = fn(&Restart) -> Duration;
    let (mut fresh, mut again) = (Vec::new(), Vec::new());
    for i in 0..s.runs {
        let dir = tempfile::tempdir().expect("temp dir");
        let start = Instant::now();
        let (app, parse) = build_app(dir.path(), &g.base, s, true).await;
        let build = start.elapsed().saturating_sub(parse);
        let start = Instant::now();
        app.check_store()
            .await
            .unwrap_or_else(|reason| panic!("/readyz after the build: {reason}"));
        let first = Restart {
            parse,
            build,
            check: start.elapsed(),
        };
        let second = restart(Arc::new(app), g, dir.path(), s, true).await;
        eprintln!(
            "run {}: fresh database: parse {}, build_app {}, check_store {}; \
             again on it: parse {}, build_app {}, check_store {}",
            i + 1,
            ms(first.parse),
            ms(first.build),
            ms(first.check),
            ms(second.parse),
            ms(second.build),
            ms(second.check)
        );
        fresh.push(first);
        again.push(second);
    }
    let med = |v: &[Restart], f: Step| ms(median_d(v.iter().map(f).collect()));
    println!("| step (medians)                        | fresh database | again on it |");
    println!("|---------------------------------------|---------------:|------------:|");
    let rows: [(&str, Step); 4] = [
        ("parse the configuration", |r| r.parse),
        ("assembly::build_app", |r| r.build),
        ("App::check_store (/readyz's check)", |r| r.check),
        ("total (parse + build + check)", |r| {
            r.parse + r.build + r.check
        }),
    ];
    for (name, f) in rows {
        println!(
            "| {name:37} | {:>14} | {:>11} |",
            med(&fresh, f),
            med(&again, f)
        );
    }
}

/// Poll every tenant once, at most `concurrency` at a time (as `postured once` does).
async fn poll_all(app: &Arc<App>, concurrency: usize) -> usize {
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut polls = tokio::task::JoinSet::new();
    for tenant in app.tenants().iter().cloned() {
        for index in 0..tenant.connectors.len() {
            let (app, tenant, permits) = (app.clone(), tenant.clone(), permits.clone());
            polls.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let r = app.poll(&tenant, index).await;
                r.outcome != PollOutcome::Success || !r.errors.is_empty() || !r.stored
            });
        }
    }
    let mut failed = 0;
    while let Some(r) = polls.join_next().await {
        failed += usize::from(r.expect("poll task"));
    }
    failed
}

/// The database's size after a WAL checkpoint (what it keeps, not the log's slack).
async fn db_bytes(dir: &Path) -> u64 {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.join("postured.db"));
    if let Ok(mut conn) = options.connect().await {
        let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut conn)
            .await;
    }
    probe::dir_bytes(dir)
}

async fn cycle(
    app: &Arc<App>,
    g: &graph::Graph,
    client: &reqwest::Client,
    dir: &Path,
    n: usize,
) -> Cycle {
    let graph_before = g.cpu(client).await;
    let cpu_before = probe::rusage(libc::RUSAGE_SELF);
    let start = Instant::now();
    let failed_polls = poll_all(app, n).await;
    let wall = start.elapsed();
    let cpu_after = probe::rusage(libc::RUSAGE_SELF);
    let graph_cpu = g.cpu(client).await.saturating_sub(graph_before);
    Cycle {
        wall,
        cpu: (cpu_after - cpu_before).saturating_sub(graph_cpu),
        graph_cpu,
        db_bytes: db_bytes(dir).await,
        failed_polls,
    }
}

/// The resolved sizes.
struct Size {
    tenants: usize,
    runs: usize,
    cycles: usize,
    concurrency: usize,
    renders: usize,
}

async fn run(g: &graph::Graph, client: &reqwest::Client, s: &Size, per_action: bool) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    probe::reset_peak();
    let start = Instant::now();
    let app = Arc::new(build_app(dir.path(), &g.base, s, per_action).await.0);
    let build = start.elapsed();
    let first = cycle(&app, g, client, dir.path(), s.concurrency).await;
    let mut steady = Vec::new();
    let cycles = if per_action { s.cycles } else { 1 };
    for _ in 0..cycles {
        steady.push(cycle(&app, g, client, dir.path(), s.concurrency).await);
    }
    let peak_rss = probe::peak_rss();
    let rss_after = probe::rss();
    let mut renders = Vec::new();
    let mut text = String::new();
    for _ in 0..s.renders.max(1) {
        let start = Instant::now();
        text = app.metrics.render();
        renders.push(start.elapsed());
    }
    let peak_rss_renders = probe::peak_rss();
    let restart = restart(app, g, dir.path(), s, per_action).await;
    Run {
        build,
        restart,
        first,
        steady,
        peak_rss,
        peak_rss_renders,
        rss_after,
        render: median_d(renders),
        metrics_bytes: text.len(),
        series: text.lines().filter(|l| !l.starts_with('#')).count(),
    }
}

fn median_d(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn median_u(mut v: Vec<u64>) -> u64 {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn mb(b: u64) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

fn kb(b: f64) -> String {
    format!("{:.1} KB", b / 1e3)
}

fn main() {
    let args = Args::parse();
    let full = args.bench;
    let s = Size {
        tenants: args.tenants.unwrap_or(if full { 2000 } else { 20 }),
        runs: args.runs.unwrap_or(if full { 3 } else { 1 }).max(1),
        cycles: args.cycles.unwrap_or(if full { 3 } else { 1 }).max(1),
        concurrency: args.concurrency.max(1),
        renders: args.renders,
    };
    let _ = &args.rest;
    postured::http::install_crypto_provider();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let g = graph::Graph::start();
        if args.startup_only {
            startup_only(&g, &s).await;
            return;
        }
        let client = reqwest::Client::new();
        let build = if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        };
        println!(
            "postured fleet benchmark: {} tenants x (default + {} framework assessments), \
             concurrency {}, {} run(s) x (first + {} steady cycle(s)), medians; {build} build",
            s.tenants,
            FRAMEWORKS.len(),
            s.concurrency,
            s.runs,
            s.cycles
        );
        println!("machine: {}", probe::machine());
        println!(
            "loopback Graph: {} users over {} pages, {} Secure Score controls, {} CA policies",
            graph::USERS,
            graph::USERS.div_ceil(graph::PAGE),
            graph::CONTROLS,
            graph::CA_POLICIES
        );
        // Before any app: what a run's peak is compared with (a later run's RSS before its
        // build includes what the allocator kept from the previous one).
        let rss_before = probe::rss();
        let mut runs = Vec::new();
        for i in 0..s.runs {
            let r = run(&g, &client, &s, true).await;
            eprintln!(
                "run {}: first {} wall, {} CPU; steady {} wall; peak RSS {}; polls not fully \
                 successful: first {}, steady {:?}; database after each cycle (bytes): {:?}",
                i + 1,
                secs(r.first.wall),
                secs(r.first.cpu),
                secs(median_d(r.steady.iter().map(|c| c.wall).collect())),
                mb(r.peak_rss),
                r.first.failed_polls,
                r.steady.iter().map(|c| c.failed_polls).collect::<Vec<_>>(),
                std::iter::once(&r.first)
                    .chain(&r.steady)
                    .map(|c| c.db_bytes)
                    .collect::<Vec<_>>()
            );
            runs.push(r);
        }
        let lean = if args.no_lean_metrics {
            None
        } else {
            Some(run(&g, &client, &s, false).await)
        };
        report(&s, rss_before, &runs, lean.as_ref());
        let failed: usize = runs
            .iter()
            .chain(lean.as_ref())
            .flat_map(|r| std::iter::once(&r.first).chain(&r.steady))
            .map(|c| c.failed_polls)
            .sum();
        println!(
            "polls not fully successful: {failed}; requests the loopback Graph did not serve: {}",
            g.unserved()
        );
        if !full {
            assert_eq!(
                g.unserved(),
                0,
                "the loopback Graph lacks an endpoint the connector reads"
            );
            assert_eq!(failed, 0, "every poll of the smoke run succeeds");
        }
    });
}

/// Print the table: figure, target, measured (medians over runs).
fn report(s: &Size, rss_before: u64, runs: &[Run], lean: Option<&Run>) {
    let n = s.tenants as f64;
    let med = |f: &dyn Fn(&Run) -> Duration| median_d(runs.iter().map(f).collect());
    let medu = |f: &dyn Fn(&Run) -> u64| median_u(runs.iter().map(f).collect());
    let steady =
        |r: &Run, f: &dyn Fn(&Cycle) -> Duration| median_d(r.steady.iter().map(f).collect());
    let first_wall = med(&|r| r.first.wall);
    let first_cpu = med(&|r| r.first.cpu);
    let steady_wall = med(&|r| steady(r, &|c| c.wall));
    let steady_cpu = med(&|r| steady(r, &|c| c.cpu));
    let graph_cpu = med(&|r| steady(r, &|c| c.graph_cpu));
    let peak = medu(&|r| r.peak_rss);
    let per_tenant_rss = peak.saturating_sub(rss_before) as f64 / n;
    let db_first = medu(&|r| r.first.db_bytes);
    // The first steady cycle fills in what a tenant's second poll adds to its rows (the
    // connector's last success and signal-set record, written in place): a one-off, so with
    // two or more steady cycles the growth is measured over the later ones.
    let growth = medu(&|r| {
        let (from, cycles) = match r.steady.split_first() {
            Some((first, rest)) if !rest.is_empty() => (first.db_bytes, rest),
            _ => (r.first.db_bytes, &r.steady[..]),
        };
        let last = cycles.last().map_or(from, |c| c.db_bytes);
        last.saturating_sub(from) / cycles.len().max(1) as u64
    }) as f64;
    let growth_first_steady = medu(&|r| {
        r.steady
            .first()
            .map_or(0, |c| c.db_bytes.saturating_sub(r.first.db_bytes))
    }) as f64;
    let render = med(&|r| r.render);
    let per = |d: Duration| Duration::from_secs_f64(d.as_secs_f64() / n);
    let rows: Vec<(String, &str, String)> = vec![
        (
            "start-up (build_app, fresh database)".into(),
            "",
            secs(med(&|r| r.build)),
        ),
        (
            "restart on that database: parse the configuration".into(),
            "",
            ms(med(&|r| r.restart.parse)),
        ),
        (
            "restart: build_app (existing database)".into(),
            "",
            ms(med(&|r| r.restart.build)),
        ),
        (
            "restart: App::check_store (/readyz's check)".into(),
            "",
            ms(med(&|r| r.restart.check)),
        ),
        (
            "restart: /readyz answers (build_app + check)".into(),
            "<= 1 s",
            ms(med(&|r| r.restart.build + r.restart.check)),
        ),
        (
            "  ... counting the configuration's parse".into(),
            "",
            ms(med(&|r| {
                r.restart.parse + r.restart.build + r.restart.check
            })),
        ),
        ("first cycle: wall".into(), "", secs(first_wall)),
        ("first cycle: CPU user+sys".into(), "", secs(first_cpu)),
        (
            "first cycle: CPU per tenant".into(),
            "<= 3 ms",
            ms(per(first_cpu)),
        ),
        ("steady cycle: wall".into(), "<= 30 s", secs(steady_wall)),
        ("steady cycle: CPU user+sys".into(), "", secs(steady_cpu)),
        (
            "steady cycle: CPU per tenant".into(),
            "<= 1 ms",
            ms(per(steady_cpu)),
        ),
        ("RSS before the app is built".into(), "", mb(rss_before)),
        ("peak RSS (build and cycles)".into(), "<= 200 MB", mb(peak)),
        (
            "RSS per tenant (peak - before build) / N".into(),
            "<= 50 KB",
            kb(per_tenant_rss),
        ),
        (
            "RSS after the cycles".into(),
            "",
            mb(medu(&|r| r.rss_after)),
        ),
        (
            "peak RSS with the whole-text /metrics renders".into(),
            "",
            mb(medu(&|r| r.peak_rss_renders)),
        ),
        ("database after the first cycle".into(), "", mb(db_first)),
        (
            "database growth, first steady cycle (one-off)".into(),
            "",
            kb(growth_first_steady),
        ),
        (
            "database growth per later steady cycle".into(),
            "",
            kb(growth),
        ),
        (
            "  per tenant per day at 5-minute polls".into(),
            "<= 2 KB",
            kb(growth / n * POLLS_PER_DAY),
        ),
        (
            format!(
                "/metrics render, per-action series ({} series, {})",
                medu(&|r| r.series as u64),
                mb(medu(&|r| r.metrics_bytes as u64))
            ),
            "<= 250 ms",
            ms(render),
        ),
    ];
    let mut rows = rows;
    if let Some(l) = lean {
        rows.push((
            format!(
                "/metrics render, per_action_series = false ({} series, {})",
                l.series,
                mb(l.metrics_bytes as u64)
            ),
            "<= 50 ms",
            ms(l.render),
        ));
    }
    rows.push((
        "loopback Graph CPU per steady cycle (not counted above)".into(),
        "",
        secs(graph_cpu),
    ));
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    println!("| {:w$} | {:9} | {:>12} |", "figure", "target", "measured");
    println!(
        "|-{}-|-{}-|-{}:|",
        "-".repeat(w),
        "-".repeat(9),
        "-".repeat(11)
    );
    for (figure, target, measured) in rows {
        println!("| {figure:w$} | {target:9} | {measured:>12} |");
    }
}
