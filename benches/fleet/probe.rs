//! What the fleet benchmark reads from the operating system: CPU time (`getrusage`), resident
//! memory (`/proc/self/status` `VmRSS`, `VmHWM`, and resetting the peak through
//! `/proc/self/clear_refs`), file sizes, and the machine (CPU count and model).

use std::path::Path;
use std::time::Duration;

/// User + system CPU time of `who` (`RUSAGE_SELF` or `RUSAGE_THREAD`).
pub fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(who, &mut u) };
    assert_eq!(rc, 0, "getrusage failed");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// A `kB` field of `/proc/self/status`, in bytes.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Current resident set size, in bytes.
pub fn rss() -> u64 {
    status_kb("VmRSS")
}

/// Peak resident set size since start or the last [`reset_peak`], in bytes.
pub fn peak_rss() -> u64 {
    status_kb("VmHWM")
}

/// Reset the peak resident set size to the current one (Linux: `5` to `clear_refs`); false
/// when the kernel refuses (the peak then covers the whole process).
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Total size of the files directly in `dir` (the database and its WAL), in bytes.
pub fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// "N CPUs, <model>" of this machine.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!("{cpus} CPUs available, {model}")
}
