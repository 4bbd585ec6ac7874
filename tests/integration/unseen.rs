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
