//! system-update as a library: everything the `system-update` binary does,
//! so that tests, benchmarks and fuzz targets reach the same code. The
//! binary (`main.rs`) only parses the command line and maps the outcome to
//! an exit status.

mod apply;
mod atomic;
mod attempts;
mod auto;
pub mod backend;
mod boottree;
mod cleanup;
pub mod cli;
pub mod config;
mod demo;
mod digest;
pub mod exit;
pub mod fleet;
mod history;
mod legs;
mod local;
mod lock;
mod logcap;
mod logging;
mod logind;
pub mod manifest;
mod metrics;
mod oneline;
mod osinfo;
pub mod paths;
mod payload;
mod power;
mod prepare;
mod privdir;
mod probation;
mod replay;
mod reserve;
pub mod result;
mod rooted;
mod signature;
mod snapshot;
mod space;
mod status;
mod summary;
mod supply;
mod timefmt;
mod trigger;
mod untrusted;
pub mod updatedir;
mod window;
