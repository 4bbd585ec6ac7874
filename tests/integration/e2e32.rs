//! Kernel end to end for 32-bit (i386) processes on x86_64: connect through
//! the i386 connect syscall (362) and through socketcall (102, call 3), and
//! setsid (66). The actor is built with `cc -m32` (gcc-multilib); glibc's own
//! connect() there goes through socketcall, so the actor's plain connect
//! steps call syscall 362 themselves. Needs root. Elsewhere than x86_64 there
//! is no i386 process to test: the module is left out, nothing is skipped.
#![cfg(target_arch = "x86_64")]

use std::path::Path;

use crate::daemon::{actor32, ports, run_actor, Daemon};
use crate::util::{kernel_test, skip, test_name, KernelLock};

/// The kernel lock and the 32-bit actor, or None after printing why the test
/// is skipped. In CI (CI=true) it never skips.
fn setup(test: &str) -> Option<(KernelLock, &'static Path)> {
    let lock = kernel_test!(test, else None);
    match actor32() {
        Ok(actor) => {
            let elf = std::fs::read(actor).expect("read the 32-bit actor");
            assert_eq!(elf.get(4), Some(&1), "{} is ELFCLASS32", actor.display());
            Some((lock, actor))
        }
        Err(why) => {
            skip(test, why);
            None
        }
    }
}

/// Runs the 32-bit actor with a connect step (`how` is "tcp4" or
/// "socketcall-tcp4") and setsid; expects exactly one alert whose connect
/// event came from the system call `syscall`.
fn expect_alert_32(test: &str, how: &str, syscall: &str) {
    let Some((lock, actor)) = setup(test) else {
        return;
    };
    let d = Daemon::start(lock, "");
    let p = ports();
    let (run, a) = d.expect_alert(actor, &[&format!("{how}:{}", p.open), "setsid"]);
    assert_eq!(a["rule"]["id"], "eb6a3790-d52d-11ec-8ce9-f661ea17fbce");
    assert_eq!(a["user"]["id"], "0");
    assert_eq!(a["destination"]["port"], p.open);
    assert_eq!(a["process"]["executable"], actor.display().to_string());
    let events = a["events"].as_array().expect("events");
    assert_eq!(events.len(), 2, "{a:#?}");
    assert_eq!(events[0]["event"]["action"], "connection_attempted");
    assert_eq!(events[0]["network"]["transport"], "tcp");
    assert_eq!(events[0]["destination"]["ip"], "127.0.0.1");
    assert_eq!(events[0]["destination"]["port"], p.open);
    assert_eq!(events[0]["audetect"]["audit"]["syscall"], syscall, "{a:#?}");
    assert_eq!(events[1]["event"]["action"], "session_id_change");
    assert_eq!(
        events[1]["audetect"]["audit"]["syscall"], "setsid",
        "{a:#?}"
    );
    for e in events {
        assert_eq!(e["process"]["entity_id"], a["process"]["entity_id"]);
        assert_eq!(e["process"]["pid"], run.pid);
    }
    d.stop();
}

/// Runs `scenario` (given the 32-bit actor and an open port) and expects no
/// alert for any pid it returns.
fn expect_no_alert_32(test: &str, scenario: impl FnOnce(&Path, u16) -> Vec<u32>) {
    let Some((lock, actor)) = setup(test) else {
        return;
    };
    let d = Daemon::start(lock, "");
    let p = ports();
    let pids = scenario(actor, p.open);
    d.expect_no_alert(test, p.open, &pids);
    d.stop();
}

#[test]
fn kernel_32bit_connect_syscall_then_setsid_alerts() {
    expect_alert_32(test_name!(), "tcp4", "connect");
}

#[test]
fn kernel_32bit_socketcall_connect_then_setsid_alerts() {
    expect_alert_32(test_name!(), "socketcall-tcp4", "socketcall");
}

#[test]
fn kernel_32bit_udp_connect_does_not_alert() {
    // Both paths: the socket's fd comes from SYSCALL a0 for connect and from
    // the SOCKETCALL record for socketcall; the process stays alive so the
    // daemon can see the socket is UDP.
    expect_no_alert_32(test_name!(), |actor, open| {
        ["udp4", "socketcall-udp4"]
            .iter()
            .map(|how| run_actor(actor, &[&format!("{how}:{open}"), "setsid", "sleep:1000"]).pid)
            .collect()
    });
}

#[test]
fn kernel_32bit_non_root_process_does_not_alert() {
    expect_no_alert_32(test_name!(), |actor, open| {
        ["tcp4", "socketcall-tcp4"]
            .iter()
            .map(|how| run_actor(actor, &["drop-root", &format!("{how}:{open}"), "setsid"]).pid)
            .collect()
    });
}
