//! Shared helpers for the benchmark binaries in `src/bin/` (see `benches/README.md`).

/// Peak resident set size of this process in MiB (`VmHWM` in `/proc/self/status`;
/// 0 where that file does not exist).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
