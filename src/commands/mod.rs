//! One module per command of the command line; each turns the daemon's
//! errors into anyhow ones for `main` to print.

pub mod check_config;
pub mod plugin;
pub mod replay;
pub mod rules;
pub mod run;
pub mod selftest;
pub mod status;
