//! The daemon: the config and rules in force, one bring-up of the kernel
//! edge and one ordered shutdown, shared by `run`, `plugin` and `selftest`,
//! the record sources that feed the pipeline (netlink batches, log lines),
//! and the supervisor that keeps the kernel state while it runs.

mod bringup;
pub mod error;
mod feed;
mod plugin;
mod replay;
mod run;
mod selftest;
mod setup;
mod supervisor;

pub use bringup::{counts, shut_down, Kernel, OpenKernel, Signals, Sink, Stopped};
pub use error::DaemonError;
pub use feed::{feed_batch, feed_lines};
pub use plugin::plugin;
pub use replay::replay;
pub use run::run;
pub use selftest::{selftest_actor, selftest_steps, SelftestError};
pub use setup::{
    check_outputs, effective_outputs, host_name, live_pipeline, load_config, load_rule_set,
    load_rules, log_suppressed, snapshotter, start_outputs, stopping_alert, AuditPlan,
};
pub use supervisor::Supervisor;
