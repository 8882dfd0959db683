//! `status` and `results`: what is prepared, armed, and what happened last.

use serde_json::json;

use crate::attempts;
use crate::config::Config;
use crate::manifest::Manifest;
use crate::paths::Root;
use crate::result::{self, ResultError};
use crate::trigger::{self, LinkState};

pub fn status(root: &Root, config: &Config, as_json: bool) -> Result<String, ResultError> {
    let udh = root.host(&config.update_dir);
    let manifest = Manifest::load(&udh);
    let links = trigger::inspect(root, &config.update_dir).unwrap_or_default();
    let triggered = trigger::ours(&links).is_some();
    let attempts = attempts::load(&udh).map(|s| s.attempts).unwrap_or(0);
    let last = result::load(root)?;
    let after = crate::local::load(&udh)
        .ok()
        .and_then(|l| l.after_action)
        .unwrap_or(config.after_action)
        .as_str();
    // Shown, not verified here: trigger and apply verify.
    let signed = crate::signature::path(&udh).exists();
    if as_json {
        let links: Vec<_> = links
            .iter()
            .map(|l| {
                let (state, target) = match &l.state {
                    LinkState::Missing => ("missing", None),
                    LinkState::Ours => ("ours", Some(config.update_dir.clone())),
                    LinkState::Dangling => ("dangling", Some(config.update_dir.clone())),
                    LinkState::Elsewhere(t) => ("elsewhere", Some(t.clone())),
                };
                json!({"path": l.path, "state": state, "target": target})
            })
            .collect();
        let (m, err) = match &manifest {
            Ok(m) => (Some(m), None),
            Err(crate::manifest::ManifestError::Missing(_)) => (None, None),
            Err(e) => (None, Some(e.to_string())),
        };
        let v = json!({
            "update_dir": config.update_dir,
            "prepared": m.is_some(),
            "manifest": m,
            "manifest_error": err,
            "after_action": after,
            "signed": m.is_some() && signed,
            "triggered": triggered,
            "links": links,
            "attempts": attempts,
            "last_result": last,
        });
        return Ok(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n");
    }
    let mut s = String::new();
    match &manifest {
        Ok(m) => {
            s += &format!(
                "Prepared: {} ({}), backend {}, {} file(s), after-action {}, {}\n",
                m.title,
                m.id,
                m.backend,
                m.files.len(),
                after,
                if signed { "signed" } else { "not signed" }
            );
        }
        Err(crate::manifest::ManifestError::Missing(_)) => s += "Prepared: nothing\n",
        Err(e) => s += &format!("Prepared: unusable: {e}\n"),
    }
    s += &format!(
        "Triggered: {}\n",
        if triggered {
            "yes".to_string()
        } else {
            format!("no ({})", trigger::why_not_ours(&links, &config.update_dir))
        }
    );
    if attempts > 0 {
        s += &format!("Attempts: {attempts} of {}\n", config.attempt_limit);
    }
    match &last {
        Some(r) => s += &result::describe(r),
        None => s += "Last update: none recorded\n",
    }
    Ok(s)
}

pub fn results(root: &Root, as_json: bool) -> Result<String, ResultError> {
    let last = result::load(root)?;
    Ok(match (&last, as_json) {
        (_, true) => serde_json::to_string_pretty(&last).unwrap_or_default() + "\n",
        (Some(r), false) => result::describe(r),
        (None, false) => "No update has been applied yet.\n".into(),
    })
}
