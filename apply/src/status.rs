//! `status`, `results`, `history` and `log`: what is prepared, armed, and
//! what happened, as text for people and as JSON (snake_case keys, a
//! `format` version: result::JSON_FORMAT) for programs.

// Text from records and backends, made safe for a terminal: the one
// cleaner the UI uses too.
use serde::Serialize;
use serde_json::json;
use system_update_events::text::clean;

use crate::attempts;
use crate::config::Config;
use crate::history;
use crate::manifest::Manifest;
use crate::paths::Root;
use crate::result::{self, Outcome, ResultRecord, JSON_FORMAT};
use crate::trigger::{self, LinkState};

/// One change a prepared update makes, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedChange {
    /// The package, or the payload file when it names no package.
    pub name: String,
    /// Installed now; `None` when the update installs it anew.
    pub before: Option<String>,
    /// What the update brings; `None` when the payload does not say, or
    /// when the package is removed.
    pub after: Option<String>,
    /// `install`, `upgrade` or `remove`: for an update resolved from the
    /// repositories, the plan's; else from the versions.
    pub action: &'static str,
}

/// The prepared update as `status --json` shows it (the manifest's own
/// keys are TOML's kebab-case; JSON keys are snake_case).
#[derive(Debug, Clone, Serialize)]
pub struct Prepared {
    pub id: String,
    pub title: String,
    pub backend: String,
    pub created: String,
    pub command: Option<Vec<String>>,
    pub files: Vec<String>,
    pub changes: Vec<PlannedChange>,
}

fn prepared(root: &Root, m: &Manifest) -> Prepared {
    // What is installed now; without it the changes still list the targets.
    let installed = m.backend.installed(root).unwrap_or_else(|e| {
        tracing::warn!("{e}");
        Default::default()
    });
    let planned = m.plan.iter().map(|p| PlannedChange {
        name: p.name.clone(),
        before: installed.get(&p.name).cloned().or_else(|| p.from.clone()),
        after: p.to.clone(),
        action: p.action.as_str(),
    });
    let changes = m
        .files
        .iter()
        .filter(|_| m.plan.is_empty())
        .filter(|f| f.package.is_some() || f.version.is_some())
        .map(|f| {
            let name = f.package.clone().unwrap_or_else(|| f.name.clone());
            let before = installed.get(&name).cloned();
            PlannedChange {
                action: if before.is_some() {
                    "upgrade"
                } else {
                    "install"
                },
                before,
                after: f.version.clone(),
                name,
            }
        })
        .chain(planned)
        .collect();
    Prepared {
        id: m.id.clone(),
        title: m.title.clone(),
        backend: m.backend.to_string(),
        created: m.created.clone(),
        command: m.command.clone(),
        files: m.files.iter().map(|f| f.name.clone()).collect(),
        changes,
    }
}

fn to_json(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

pub fn status(root: &Root, config: &Config, as_json: bool) -> anyhow::Result<String> {
    let seen = Seen::look(root, config)?;
    Ok(if as_json {
        seen.json(root, config)
    } else {
        seen.text(root, config)
    })
}

/// What `status` looked at, once, for either view.
struct Seen {
    manifest: Result<Manifest, crate::manifest::ManifestError>,
    plan: Option<Prepared>,
    links: Vec<trigger::Link>,
    triggered: bool,
    attempts: u32,
    last: Option<ResultRecord>,
    after: crate::config::AfterAction,
    signed: bool,
}

impl Seen {
    fn look(root: &Root, config: &Config) -> anyhow::Result<Seen> {
        let udh = root.host(&config.update_dir);
        // As trigger and apply judge it: a link on the way to the update
        // directory (an image's, into the host) is not read through.
        let secure = crate::untrusted::check_path_secure(root.dir(), &config.update_dir)
            .map_err(crate::manifest::ManifestError::Untrusted);
        let readable = secure.is_ok();
        let manifest = secure.and_then(|()| Manifest::load(&udh));
        let links = trigger::inspect(root, &config.update_dir).unwrap_or_default();
        let attempts = match readable {
            true => attempts::load(&udh).map(|s| s.attempts).unwrap_or(0),
            false => 0,
        };
        // After-action: trigger's choice (local.json), else the config's.
        let after = readable
            .then(|| crate::local::load(&udh).ok())
            .flatten()
            .and_then(|l| l.after_action)
            .unwrap_or(config.after_action);
        Ok(Seen {
            plan: manifest.as_ref().ok().map(|m| prepared(root, m)),
            manifest,
            triggered: trigger::ours(&links).is_some(),
            links,
            attempts,
            last: result::load(root)?,
            after,
            // Shown, not verified here: trigger and apply verify.
            signed: crate::signature::path(&udh).exists(),
        })
    }

    fn json(&self, root: &Root, config: &Config) -> String {
        let links: Vec<_> = self
            .links
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
        let err = match &self.manifest {
            Err(crate::manifest::ManifestError::Missing(_)) | Ok(_) => None,
            Err(e) => Some(e.to_string()),
        };
        let after = self.manifest.as_ref().ok().map(|_| self.after);
        to_json(&json!({
            "format": JSON_FORMAT,
            "update_dir": config.update_dir,
            "prepared": self.plan,
            "prepared_error": err,
            "after_action": after,
            "triggered": self.triggered,
            "links": links,
            "attempts": self.attempts,
            "attempt_limit": config.attempt_limit,
            "last_result": self.last,
            "probation": crate::probation::load(root).ok().flatten(),
        }))
    }

    fn text(&self, root: &Root, config: &Config) -> String {
        let mut s = String::new();
        if let Some(line) = crate::probation::status_line(root) {
            s += &clean(&line);
            s.push('\n');
        }
        s += &self.prepared_text();
        s += &format!(
            "Triggered: {}\n",
            if self.triggered {
                "yes".to_string()
            } else {
                format!(
                    "no ({})",
                    clean(&trigger::why_not_ours(&self.links, &config.update_dir))
                )
            }
        );
        if self.attempts > 0 {
            s += &format!("Attempts: {} of {}\n", self.attempts, config.attempt_limit);
        }
        match &self.last {
            Some(r) => s += &result::describe(r),
            None => s += "Last update: none recorded\n",
        }
        s
    }

    /// The "Prepared:" lines: the update and each change it makes, or why
    /// its last attempt failed.
    fn prepared_text(&self) -> String {
        let p = match (&self.manifest, &self.plan) {
            (Ok(_), Some(p)) => p,
            (Err(crate::manifest::ManifestError::Missing(_)), _) => {
                return match self.last {
                    Some(_) => "Prepared: nothing (system-update results shows the last update)\n",
                    None => "Prepared: nothing\n",
                }
                .to_string()
            }
            (Err(e), _) => return format!("Prepared: unusable: {}\n", clean(&e.to_string())),
            (Ok(_), None) => return String::new(),
        };
        let mut s = format!(
            "Prepared: {} ({}), backend {}, {}, after-action {}, {}\n",
            clean(&p.title),
            clean(&p.id),
            p.backend,
            system_update_events::text::count(p.files.len(), "file", "files"),
            self.after.as_str(),
            if self.signed { "signed" } else { "not signed" }
        );
        match self.last.as_ref().and_then(|r| failed_attempt(r, &p.id)) {
            Some(text) => s += &text,
            None => s += &changes_text(p),
        }
        if let Some(argv) = &p.command {
            s += &format!("  runs: {}\n", clean(&argv.join(" ")));
        }
        s
    }
}

/// A prepared update's changes, a line each.
fn changes_text(p: &Prepared) -> String {
    p.changes
        .iter()
        .map(|c| {
            let after = match (c.action, &c.after) {
                ("remove", _) => "(removed)",
                (_, Some(v)) => v.as_str(),
                (_, None) => "?",
            };
            format!(
                "  {} {} -> {}\n",
                clean(&c.name),
                clean(c.before.as_deref().unwrap_or("(not installed)")),
                clean(after)
            )
        })
        .collect()
}

/// For a prepared update whose attempt failed and changed the package
/// database (its plan, read against today's database, would say nothing
/// true: "hello 4.0 -> 4.0"): that it failed, each package's state now,
/// and what to do next.
fn failed_attempt(r: &ResultRecord, prepared_id: &str) -> Option<String> {
    let failed_here = r.id.as_deref() == Some(prepared_id)
        && matches!(r.outcome, Outcome::Failure | Outcome::Interrupted);
    if !failed_here {
        return None;
    }
    let when = r.finished.as_deref().unwrap_or(&r.started);
    let why = r.error.as_deref().unwrap_or("no error recorded");
    let mut s = format!(
        "  Its attempt of {} ended in {}: {}\n",
        clean(when),
        r.outcome.as_str(),
        clean(why.lines().next().unwrap_or(""))
    );
    for p in &r.packages {
        let now = match (&p.after, &p.state) {
            (Some(v), Some(st)) => format!("{} ({})", clean(v), clean(st)),
            (Some(v), None) => clean(v),
            (None, Some(st)) => clean(st),
            (None, None) => "not installed".into(),
        };
        let before = p.before.as_deref().unwrap_or("not installed");
        s += &format!("  {}: was {}, now {now}\n", clean(&p.name), clean(before));
    }
    s += if r.disk_full() {
        "  The disk was full: free some space on the root file system, then \
         system-update prepare --force (or system-update cancel --purge to drop it).\n"
    } else if r.snapshot.as_ref().is_some_and(|sn| sn.rolled_back) {
        "  The root was rolled back to its snapshot: system-update trigger tries it again; \
         system-update cancel --purge drops it.\n"
    } else {
        "  The failed attempt changed the package database, so triggering it again is \
         refused as stale: system-update prepare --force with a fixed update, or \
         system-update cancel --purge to drop it.\n"
    };
    Some(s)
}

pub fn results(root: &Root, as_json: bool) -> anyhow::Result<String> {
    let last = result::load(root)?;
    Ok(match (&last, as_json) {
        (_, true) => serde_json::to_string_pretty(&last).unwrap_or_default() + "\n",
        (Some(r), false) => result::describe(r),
        (None, false) => "No update has been applied yet.\n".into(),
    })
}

pub fn history(root: &Root, as_json: bool) -> anyhow::Result<String> {
    let records = history::list(root)?;
    if as_json {
        let updates: Vec<_> = records.iter().map(|(_, r)| r).collect();
        return Ok(to_json(&json!({
            "format": JSON_FORMAT,
            "updates": updates,
        })));
    }
    Ok(history::describe(&records))
}

pub fn log(root: &Root, id: Option<&str>, as_json: bool) -> anyhow::Result<String> {
    let rec = history::find(root, id)?;
    let (path, lines) = history::log_text(root, &rec)?;
    if as_json {
        return Ok(to_json(&json!({
            "format": JSON_FORMAT,
            "id": rec.id,
            "outcome": rec.outcome,
            "log": path,
            "lines": lines,
        })));
    }
    let mut s = format!(
        "-- {} ({}), {}, log {}\n",
        clean(rec.title.as_deref().unwrap_or("unknown")),
        clean(rec.id.as_deref().unwrap_or("no id")),
        rec.outcome.as_str(),
        path.display()
    );
    for l in lines {
        s += &l;
        s.push('\n');
    }
    Ok(s)
}
