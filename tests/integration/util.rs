//! Shared test harness: the kernel lock, skipping rules, helpers to run things.

use std::fs::File;
use std::sync::{Mutex, MutexGuard};

// The skip every crate's tests share (tests/support/skip.rs).
#[path = "../support/skip.rs"]
mod skip_support;
pub(crate) use skip_support::test_name;
pub use skip_support::{in_ci, skip};

/// Every test that touches kernel audit state holds this: the state is global
/// to the machine, so such tests run one at a time, also across test binaries.
pub struct KernelLock {
    _file: File,
    _guard: MutexGuard<'static, ()>,
}

static IN_PROCESS: Mutex<()> = Mutex::new(());

/// Takes the kernel lock, or returns None after `skip` has said why the test
/// cannot run here (not root, or no audit in this kernel). Tests use it
/// through `kernel_test!`.
pub fn kernel_lock(test: &str) -> Option<KernelLock> {
    if let Some(why) = kernel_unavailable() {
        skip(test, why);
        return None;
    }
    let guard = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    let file = File::create("/run/lock/audetect-tests.lock")
        .or_else(|_| File::create("/tmp/audetect-tests.lock"))
        .expect("create the kernel test lock file");
    // SAFETY: flock on a valid descriptor we own.
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
    Some(KernelLock {
        _file: file,
        _guard: guard,
    })
}

/// The preamble of every kernel test. `kernel_test!()`, in a test, is the
/// kernel lock and the test's name; when this machine cannot run kernel
/// tests it returns from the test instead, SKIPPED outside CI (see `skip`).
/// `kernel_test!(name)` is the lock alone, for a helper running the test
/// `name`; `kernel_test!(name, else value)` returns `value` when skipped.
macro_rules! kernel_test {
    () => {{
        let name = $crate::util::test_name!();
        ($crate::util::kernel_test!(name), name)
    }};
    ($name:expr) => {
        match $crate::util::kernel_lock($name) {
            Some(lock) => lock,
            None => return,
        }
    };
    ($name:expr, else $skipped:expr) => {
        match $crate::util::kernel_lock($name) {
            Some(lock) => lock,
            None => return $skipped,
        }
    };
}
pub(crate) use kernel_test;

fn kernel_unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root (audit control needs CAP_AUDIT_CONTROL)".into());
    }
    match audetect::kernel::AuditSocket::open().and_then(|mut s| s.status()) {
        Ok(_) => None,
        Err(e) => Some(format!(
            "the kernel audit subsystem is not usable here: {e}"
        )),
    }
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "audetect-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls `f` every 20 ms until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: std::time::Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn test_name_is_the_name_of_the_function_it_is_in() {
    assert_eq!(
        test_name!(),
        "test_name_is_the_name_of_the_function_it_is_in"
    );
}
