//! system-update as a library: everything the `system-update` binary does,
//! so that tests, benchmarks and fuzz targets reach the same code. The
//! binary (`main.rs`) only parses the command line and maps the outcome to
//! an exit status.

pub mod apply;
pub mod atomic;
pub mod attempts;
pub mod auto;
pub mod backend;
pub mod boottree;
pub mod cleanup;
pub mod cli;
pub mod config;
pub mod demo;
pub mod digest;
pub mod exit;
pub mod fleet;
pub mod history;
pub mod legs;
pub mod local;
pub mod lock;
pub mod logcap;
pub mod logging;
pub mod logind;
pub mod manifest;
pub mod metrics;
pub mod osinfo;
pub mod paths;
pub mod payload;
pub mod power;
pub mod prepare;
pub mod privdir;
pub mod probation;
pub mod replay;
pub mod reserve;
pub mod result;
pub mod signature;
pub mod snapshot;
pub mod space;
pub mod status;
pub mod summary;
pub mod supply;
pub mod timefmt;
pub mod trigger;
pub mod untrusted;
pub mod updatedir;
pub mod window;
