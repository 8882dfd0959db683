//! `demo`: a whole offline update on a scratch root.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::cli::DemoArgs;

pub fn run(_args: &DemoArgs, _stop: &Arc<AtomicBool>) -> anyhow::Result<i32> {
    Ok(0)
}
