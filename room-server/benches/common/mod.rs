//! What the room server's benchmarks share.

/// A `kB` field (`VmRSS`, `VmHWM`) of a `/proc/<pid>/status` file, 0 if unreadable.
pub fn status_kib(path: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(path).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
