//! The one way a test says it cannot run on this machine, shared by every
//! crate's tests (each includes this file with `#[path]`): `SKIPPED <test>: <why>`.

/// Whether this is a CI run (CI=true), where no test may skip.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// `test` cannot run on this machine, for `why`. Outside CI the test is
/// skipped and says so with `SKIPPED <test>: <why>` on stderr; in CI, which
/// installs everything, it is a failure (this panics).
///
/// The line goes to file descriptor 2 itself, not through `eprintln!`: the
/// test harness captures `eprintln!` of a passing test and shows nothing, so
/// a skipped test would read as "ok". tests/run counts these lines.
pub fn skip(test: &str, why: impl std::fmt::Display) {
    use std::io::Write;
    assert!(!in_ci(), "{test}: must run in CI, but {why}");
    // One write of the whole line, so that lines of tests running side by
    // side do not mix.
    let line = format!("SKIPPED {test}: {why}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The name of the function it is written in: a test's name, for what
/// `skip` prints, without writing it out a second time.
macro_rules! test_name {
    () => {{
        fn here() {}
        let path = std::any::type_name_of_val(&here);
        let path = path.strip_suffix("::here").unwrap_or(path);
        path.rsplit("::").next().unwrap_or(path)
    }};
}
pub(crate) use test_name;
