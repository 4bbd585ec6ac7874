//! Connects with no connect() (issue 18 item 5): TCP fast open through
//! sendto and sendmsg, and io_uring's IORING_OP_CONNECT run inline or by an
//! io_uring worker, each followed by setsid, on the real kernel.

use serde_json::Value;

use crate::daemon::{actor, ports, run_actor, Daemon};
use crate::util::kernel_test;

/// The alert's first event: the connection attempt.
fn connect_event(alert: &Value) -> &Value {
    &alert["events"][0]
}

#[test]
fn kernel_a_tcp_fast_open_without_connect_alerts() {
    let (lock, _) = kernel_test!();
    let d = Daemon::start(lock, "");
    let p = ports();
    for (step, syscall) in [("fastopen4", "sendto"), ("fastopen-msg4", "sendmsg")] {
        let (run, alert) = d.expect_alert(actor(), &[&format!("{step}:{}", p.open), "setsid"]);
        assert!(run.stdout.contains("fastopen"), "{}", run.stdout);
        let ev = connect_event(&alert);
        assert_eq!(ev["audetect"]["audit"]["syscall"], syscall, "{alert:#}");
        assert_eq!(ev["event"]["action"], "connection_attempted", "{alert:#}");
        assert_eq!(alert["destination"]["ip"], "127.0.0.1", "{alert:#}");
        assert_eq!(alert["destination"]["port"], p.open, "{alert:#}");
    }
    // A plain send on a connected socket is no connect: only the
    // connect() itself is one attempt, so exactly one alert (expect_alert
    // counts them).
    let (run, _) = d.expect_alert(actor(), &[&format!("tcp4:{}", p.open), "setsid"]);
    assert!(run.stdout.contains("connect"), "{}", run.stdout);
    d.stop();
}

#[test]
fn kernel_an_io_uring_connect_alerts_inline_and_from_a_worker() {
    let (lock, _) = kernel_test!();
    let d = Daemon::start(lock, "");
    let p = ports();
    // Inline, the operation runs inside io_uring_enter and its SOCKADDR
    // joins the event; from a worker (IOSQE_ASYNC), the URINGOP record comes
    // alone, with the process's credentials and no address.
    let (run, alert) = d.expect_alert(actor(), &[&format!("uring4:{}", p.open), "setsid"]);
    assert!(run.stdout.contains("uring connect"), "{}", run.stdout);
    let ev = connect_event(&alert);
    assert_eq!(
        ev["audetect"]["audit"]["syscall"], "io_uring_enter",
        "{alert:#}"
    );
    assert_eq!(alert["destination"]["ip"], "127.0.0.1", "{alert:#}");
    assert_eq!(alert["destination"]["port"], p.open, "{alert:#}");
    assert_eq!(ev["process"]["pid"], run.pid, "{alert:#}");

    // The record names no program: /proc does, while the process lives
    // (so it stays a while here; gone, the alert still comes, without it).
    let (run, alert) = d.expect_alert(
        actor(),
        &[&format!("uring4-async:{}", p.open), "sleep:300", "setsid"],
    );
    let ev = connect_event(&alert);
    assert_eq!(ev["event"]["action"], "connection_attempted", "{alert:#}");
    assert_eq!(ev["process"]["pid"], run.pid, "{alert:#}");
    assert_eq!(ev["user"]["id"], "0", "{alert:#}");
    assert!(
        ev["process"]["executable"]
            .as_str()
            .is_some_and(|e| e.ends_with("/actor")),
        "the table or /proc names the program: {alert:#}"
    );
    // And a non-root io_uring connect is filtered in the kernel (euid=0).
    let quiet = run_actor(
        actor(),
        &["drop-root", &format!("uring4:{}", p.open), "setsid"],
    );
    d.expect_no_alert("io_uring as nobody", p.open, &[quiet.pid]);
    d.stop();
}

/// Root that lowers only its effective uid (seteuid) for the connect or
/// for the setsid passes Elastic's rule, whose user.id is the effective
/// uid; audetect's two built-in companions catch each case by the real
/// uid, and the three rules are disjoint: one alert per sequence
/// (issue 18 item 9).
#[test]
fn kernel_root_that_lowers_only_its_effective_uid_is_caught_once() {
    const ELASTIC: &str = "eb6a3790-d52d-11ec-8ce9-f661ea17fbce";
    const LOWERED_CONNECT: &str = "2d928f63-2da5-4c0d-8395-9750b86818ff";
    const LOWERED_SETSID: &str = "0c3646a5-2097-4064-a248-be149e08916f";
    let (lock, _) = kernel_test!();
    let d = Daemon::start(lock, "");
    let p = ports();
    let tcp = format!("tcp4:{}", p.open);
    for (steps, rule, euid_at_connect) in [
        (vec![tcp.as_str(), "setsid"], ELASTIC, "0"),
        (
            vec!["seteuid:65534", &tcp, "setsid"],
            LOWERED_CONNECT,
            "65534",
        ),
        (vec![&tcp, "seteuid:65534", "setsid"], LOWERED_SETSID, "0"),
        (
            vec!["seteuid:65534", &tcp, "seteuid:0", "setsid"],
            LOWERED_CONNECT,
            "65534",
        ),
    ] {
        // expect_alert asserts that the process has exactly one alert.
        let (run, alert) = d.expect_alert(actor(), &steps);
        assert_eq!(
            alert["rule"]["id"], rule,
            "{steps:?} ({}): {alert:#}",
            run.stdout
        );
        let ev = connect_event(&alert);
        assert_eq!(ev["user"]["id"], euid_at_connect, "{alert:#}");
        assert_eq!(ev["user"]["Ext"]["real"]["id"], "0", "{alert:#}");
    }
    // Root by no uid at all is no one's concern here.
    let quiet = run_actor(actor(), &["drop-root", &tcp, "setsid"]);
    d.expect_no_alert("all uids dropped", p.open, &[quiet.pid]);
    d.stop();
}

/// A blocking connect in one thread while another calls setsid: the
/// kernel writes the connect's records when the call returns, after the
/// setsid's, though its time (taken on entry) is earlier. Elasticsearch
/// orders a sequence by @timestamp, so the rule matches there; audetect
/// keeps the setsid that completed nothing for a maxspan and pairs the late
/// connect with it.
#[test]
fn kernel_a_connect_whose_record_comes_after_the_setsid_still_alerts() {
    let (lock, _) = kernel_test!();
    let d = Daemon::start(lock, "");
    let (run, alert) = d.expect_alert(actor(), &["blocked-connect-setsid:600"]);
    assert!(
        run.stdout.contains("thread setsid during the connect -> "),
        "{}",
        run.stdout
    );
    let (connect, setsid) = (&alert["events"][0], &alert["events"][1]);
    assert_eq!(
        connect["event"]["action"], "connection_attempted",
        "{alert:#}"
    );
    assert_eq!(setsid["event"]["action"], "session_id_change", "{alert:#}");
    // The shape really was reversed: the kernel numbers an event when it
    // writes its first record, so the connect's serial is the later one.
    let serial = |e: &Value| e["audetect"]["audit"]["serial"].as_u64().expect("serial");
    assert!(
        serial(connect) > serial(setsid),
        "the connect's records came first, nothing was reordered: {alert:#}"
    );
    d.stop();
}

/// Puts CLOCK_REALTIME back where it would be had nobody stepped it: the
/// offset to CLOCK_MONOTONIC taken before the test, restored when dropped,
/// whether the test passed or not.
struct RealtimeRestore {
    offset_ns: i128,
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

impl RealtimeRestore {
    fn new() -> Self {
        RealtimeRestore {
            offset_ns: clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC),
        }
    }
}

impl Drop for RealtimeRestore {
    fn drop(&mut self) {
        let ns = clock_ns(libc::CLOCK_MONOTONIC) + self.offset_ns;
        let ts = libc::timespec {
            tv_sec: (ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (ns % 1_000_000_000) as libc::c_long,
        };
        // SAFETY: ts is a valid timespec.
        if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) } != 0 {
            eprintln!(
                "could not put the clock back: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// `date -s` between the two steps, or just before them: maxspan measures
/// the time that passed, not the records' stamps. A step of two minutes
/// forward between connect and setsid would put them past the rule's one
/// minute; one back before the connect once closed the connect's event at
/// its first record (its address lost). audetect audits the clock calls
/// (key audetect-clock) and takes their TIME_INJOFFSET step out. Elastic,
/// ordering by @timestamp, would see the first as two minutes apart: here
/// audetect follows the elapsed time on purpose, and the alert's
/// @timestamps still show the clock as it was.
#[test]
fn kernel_a_clock_step_neither_splits_nor_hides_the_sequence() {
    let (lock, _) = kernel_test!();
    let d = Daemon::start(lock, "");
    let p = ports();
    let _restore = RealtimeRestore::new();
    let (run, alert) = d.expect_alert(
        actor(),
        &[&format!("tcp4:{}", p.open), "clock-step:+120", "setsid"],
    );
    assert!(
        run.stdout.contains("clock-step +120 -> 0"),
        "{}",
        run.stdout
    );
    assert_eq!(alert["destination"]["port"], p.open, "{alert:#}");
    drop(_restore);

    let _restore = RealtimeRestore::new();
    let (run, alert) = d.expect_alert(
        actor(),
        &["clock-step:-120", &format!("tcp4:{}", p.open), "setsid"],
    );
    assert!(
        run.stdout.contains("clock-step -120 -> 0"),
        "{}",
        run.stdout
    );
    assert_eq!(
        alert["destination"]["port"], p.open,
        "the connect kept its address: {alert:#}"
    );
    drop(_restore);
    let stderr = d.stop();
    assert!(!stderr.contains("panicked"), "{stderr}");
}
