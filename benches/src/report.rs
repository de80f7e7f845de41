//! What every bench's report uses: durations and verdicts as words, the date, the machine's
//! description, and a section of `docs/benchmarks.md` replaced in place.

use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const INTRO: &str = "# Benchmarks\n\n\
The figures below are written by the benchmarks themselves, never typed by hand: a full run \
replaces its section of this file. The machine is small and shared (its disk is virtual), so \
figures move between runs; each is the median of several repetitions, and each comes with the \
ratio to a ceiling measured in the same run.\n";

/// A duration in milliseconds, two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// "caller" or "callers", as `n` asks.
pub fn callers(n: usize) -> &'static str {
    if n == 1 { "caller" } else { "callers" }
}

/// The range of `values` with two decimals: `lo–hi`, or one figure when they (nearly) agree.
pub fn range(values: impl Iterator<Item = f64> + Clone) -> String {
    let lo = values.clone().fold(f64::INFINITY, f64::min);
    let hi = values.fold(f64::NEG_INFINITY, f64::max);
    if (hi - lo).abs() < 0.005 {
        format!("{lo:.2}")
    } else {
        format!("{lo:.2}–{hi:.2}")
    }
}

/// The word a target gets: pass or miss.
pub fn verdict(pass: bool) -> &'static str {
    if pass { "**pass**" } else { "**miss**" }
}

/// The date today (UTC), as YYYY-MM-DD.
pub fn today() -> String {
    #[allow(
        clippy::disallowed_methods,
        reason = "a bench report's date, not replayed code"
    )]
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days(i64::try_from(secs / 86_400).unwrap_or(0));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// CPUs, memory, kernel, and the file system of the temporary folder, from /proc.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| field(&s, "model name"))
        .map_or_else(String::new, |m| format!(" ({m})"));
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| field(&s, "MemTotal"))
        .and_then(|m| m.trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or_else(
            || "unknown memory".to_owned(),
            |kb| format!("{:.1} GiB RAM", kb / 1_048_576.0),
        );
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".to_owned(), |s| s.trim().to_owned());
    let tmp = std::env::temp_dir();
    let fs = file_system(&tmp).unwrap_or_else(|| "unknown".to_owned());
    format!(
        "{cpus} CPUs{model}, {memory}, Linux {kernel}; temporary files in {} ({fs})",
        tmp.display()
    )
}

fn field(text: &str, name: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim().to_owned())
}

/// The type of the file system mounted deepest above `path`, from /proc/mounts.
fn file_system(path: &Path) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let (_, point, kind) = (parts.next()?, parts.next()?, parts.next()?);
            path.starts_with(point)
                .then(|| (point.len(), kind.to_owned()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, kind)| kind)
}

/// Replaces the text between the markers `begin` and `end` in the file at `path` with `section`
/// (appending it if the markers are missing); creates the file with an introduction first if
/// it does not exist. Every bench owns one such section.
pub fn update_section(path: &Path, begin: &str, end: &str, section: &str) -> io::Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => INTRO.to_owned(),
        Err(e) => return Err(e),
    };
    let span = text
        .find(begin)
        .and_then(|start| Some((start, start + text[start..].find(end)? + end.len())));
    let updated = match span {
        Some((from, to)) => {
            let rest = text[to..].strip_prefix('\n').unwrap_or(&text[to..]);
            format!("{}{section}{rest}", &text[..from])
        }
        None => format!("{}\n\n{section}", text.trim_end_matches('\n')),
    };
    std::fs::write(path, updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }

    #[test]
    fn the_section_is_created_then_replaced_in_place() {
        const BEGIN: &str = "<!-- b:begin -->";
        const END: &str = "<!-- b:end -->";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.md");
        update_section(&path, BEGIN, END, &format!("{BEGIN}\none\n{END}\n")).unwrap();
        let first = std::fs::read_to_string(&path).unwrap();
        assert!(first.starts_with("# Benchmarks"));
        std::fs::write(&path, format!("{first}\n## other\n")).unwrap();
        update_section(&path, BEGIN, END, &format!("{BEGIN}\ntwo\n{END}\n")).unwrap();
        let second = std::fs::read_to_string(&path).unwrap();
        assert!(second.contains("two") && !second.contains("one"));
        assert!(second.ends_with(&format!("{END}\n\n## other\n")));
        assert_eq!(second.matches(BEGIN).count(), 1);
    }
}
