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
