//! The snapper provider: a pre/post pair in snapper's own history, through
//! the `snapper` program with `--no-dbus` (the update environment has no
//! system bus, and snapperd is not ours to start).
//!
//! Snapper keeps the history; the rollback itself is ours (rollback.rs),
//! from the pre snapshot: `snapper rollback` only helps a system that boots
//! the default subvolume, ours works whichever way the root is found.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

/// The userdata key that marks a snapshot as ours; its value is the update id.
const USERDATA_KEY: &str = "system-update";

/// No `snapper` to run: `select` takes a btrfs snapshot instead. The one
/// snapper error a caller asks for (`anyhow::Error::is`); the rest are
/// lines naming the command.
#[derive(Debug, thiserror::Error)]
#[error("snapper is not installed (no `snapper` in PATH)")]
pub struct NotInstalled;

type Result<T> = anyhow::Result<T>;

/// What a snapper command said when it failed.
fn failed(cmd: &str, detail: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{cmd}: {detail}")
}

/// snapper, set up for the root: which configuration, and how to call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapper {
    /// The root as given: `/`, or `--root DIR`.
    root: PathBuf,
    live: bool,
    /// The configuration whose subvolume is `/`, usually `root`.
    pub config: String,
}

/// One of our snapshots in snapper's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snap {
    pub number: u64,
    pub post: bool,
    /// For a post snapshot, its pre snapshot.
    pub pre_number: Option<u64>,
    /// The update it was taken for.
    pub update: String,
}

#[derive(Deserialize)]
struct Configs {
    configs: Vec<ConfigEntry>,
}

#[derive(Deserialize)]
struct ConfigEntry {
    config: String,
    subvolume: String,
}

#[derive(Deserialize)]
struct Listed {
    number: u64,
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "pre-number")]
    pre_number: Option<u64>,
    userdata: Option<std::collections::BTreeMap<String, String>>,
}

/// Runs snapper with `args`; its standard output on success.
fn run(root: &Path, live: bool, args: &[&str]) -> Result<String> {
    let mut cmd = Command::new("snapper");
    cmd.arg("--no-dbus");
    if !live {
        cmd.arg("--root").arg(root);
    }
    cmd.args(args).stdin(Stdio::null());
    let shown = || {
        let mut s = String::from("snapper --no-dbus");
        if !live {
            s += &format!(" --root {}", root.display());
        }
        for a in args {
            s.push(' ');
            s += a;
        }
        s
    };
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(NotInstalled.into()),
        Err(e) => return Err(failed(&shown(), e)),
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let said = stderr
            .lines()
            .chain(stdout.lines())
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no message");
        return Err(failed(&shown(), format!("{} ({said})", out.status)));
    }
    String::from_utf8(out.stdout).map_err(|_| failed(&shown(), "output is not UTF-8"))
}

fn parse<'a, T: Deserialize<'a>>(cmd: &str, text: &'a str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
        failed(
            &format!("snapper {cmd}"),
            format!("unreadable JSON output: {e}"),
        )
    })
}

impl Snapper {
    /// snapper's configuration for `/` of `root`; `None` when snapper has
    /// none (a configuration must be listed in SNAPPER_CONFIGS, as snapper
    /// itself requires for its timers).
    pub fn find(root: &Path, live: bool) -> Result<Option<Snapper>> {
        // Without a configuration file snapper has nothing for us, installed
        // or not: no need to run it on every such system.
        let configs = root.join("etc/snapper/configs");
        let any = std::fs::read_dir(&configs).is_ok_and(|mut d| d.next().is_some());
        if !any {
            return Ok(None);
        }
        let out = run(root, live, &["--jsonout", "list-configs"])?;
        let configs: Configs = parse("list-configs", &out)?;
        Ok(configs
            .configs
            .into_iter()
            .find(|c| c.subvolume == "/")
            .map(|c| Snapper {
                root: root.to_owned(),
                live,
                config: c.config,
            }))
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["-c", self.config.as_str()];
        all.extend_from_slice(args);
        run(&self.root, self.live, &all)
    }

    /// Our snapshots in the configuration's history, oldest first.
    pub fn ours(&self) -> Result<Vec<Snap>> {
        let out = self.run(&[
            "--jsonout",
            "list",
            "--columns",
            "number,type,pre-number,userdata",
        ])?;
        let all: std::collections::BTreeMap<String, Vec<Listed>> = parse("list", &out)?;
        let mut snaps: Vec<Snap> = all
            .into_values()
            .flatten()
            .filter_map(|l| {
                let update = l.userdata?.remove(USERDATA_KEY)?;
                Some(Snap {
                    number: l.number,
                    post: l.kind == "post",
                    pre_number: l.pre_number,
                    update,
                })
            })
            .collect();
        snaps.sort_by_key(|s| s.number);
        Ok(snaps)
    }

    /// The pre snapshot taken for update `id` and the post one paired with
    /// it, as far as they exist.
    pub fn pair_of(&self, id: &str) -> Result<(Option<u64>, Option<u64>)> {
        let ours = self.ours()?;
        let pre = ours
            .iter()
            .find(|s| !s.post && s.update == id)
            .map(|s| s.number);
        let post = pre.and_then(|p| {
            ours.iter()
                .find(|s| s.pre_number == Some(p))
                .map(|s| s.number)
        });
        Ok((pre, post))
    }

    fn create(&self, id: &str, extra: &[&str], userdata: &str) -> Result<u64> {
        let description = format!("system-update {id}");
        let mut args = vec![
            "create",
            "--print-number",
            "--description",
            &description,
            "--userdata",
            userdata,
        ];
        args.extend_from_slice(extra);
        let out = self.run(&args)?;
        out.trim().parse().map_err(|_| {
            let said = format!("printed {:?}, not a snapshot number", out.trim());
            failed("snapper create --print-number", said)
        })
    }

    /// Takes the pre snapshot of update `id`; snapper's `number` cleanup may
    /// prune it like any other.
    pub fn create_pre(&self, id: &str) -> Result<u64> {
        let userdata = format!("{USERDATA_KEY}={id}");
        self.create(
            id,
            &["--type", "pre", "--cleanup-algorithm", "number"],
            &userdata,
        )
    }

    /// Takes the post snapshot pairing `pre`, recording the outcome.
    pub fn create_post(&self, pre: u64, id: &str, outcome: &str) -> Result<u64> {
        let userdata = format!("{USERDATA_KEY}={id},outcome={outcome}");
        let pre = pre.to_string();
        self.create(
            id,
            &[
                "--type",
                "post",
                "--pre-number",
                &pre,
                "--cleanup-algorithm",
                "number",
            ],
            &userdata,
        )
    }

    /// Deletes snapshots from the history.
    pub fn delete(&self, numbers: &[u64]) -> Result<()> {
        if numbers.is_empty() {
            return Ok(());
        }
        let numbers: Vec<String> = numbers.iter().map(u64::to_string).collect();
        let mut args = vec!["delete"];
        args.extend(numbers.iter().map(String::as_str));
        self.run(&args).map(drop)
    }

    /// Where snapshot `number` is, under the root.
    pub fn snapshot_dir(&self, number: u64) -> PathBuf {
        self.root
            .join(".snapshots")
            .join(number.to_string())
            .join("snapshot")
    }
}

/// The pairs to delete so that only the newest `keep` updates' pairs stay:
/// snapshot numbers, pre and post together.
pub fn excess(snaps: &[Snap], keep: usize) -> Vec<u64> {
    let pres: Vec<u64> = snaps.iter().filter(|s| !s.post).map(|s| s.number).collect();
    let gone = &pres[..pres.len().saturating_sub(keep)];
    snaps
        .iter()
        .filter(|s| gone.contains(&s.number) || s.pre_number.is_some_and(|p| gone.contains(&p)))
        .map(|s| s.number)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(number: u64, pre_number: Option<u64>) -> Snap {
        Snap {
            number,
            post: pre_number.is_some(),
            pre_number,
            update: format!("u{}", pre_number.unwrap_or(number)),
        }
    }

    #[test]
    fn excess_deletes_whole_pairs_oldest_first() {
        let snaps = [
            snap(3, None),
            snap(4, Some(3)),
            snap(7, None),
            snap(9, None),
            snap(10, Some(9)),
        ];
        assert_eq!(excess(&snaps, 1), vec![3, 4, 7]);
        assert_eq!(excess(&snaps, 2), vec![3, 4]);
        assert_eq!(excess(&snaps, 5), Vec::<u64>::new());
        assert_eq!(excess(&snaps, 0), vec![3, 4, 7, 9, 10]);
    }
}
