//! The update boot's apt: the plan replayed exactly, from the verified files, with no network.

use super::*;

/// The boot-time replay: the planned packages at their planned versions and
/// the planned removals, from `archives` only.
pub fn replay(
    root: &Root,
    plan: &[Planned],
    archives: &Path,
    dpkg_args: &[String],
) -> Result<Apt, BackendError> {
    let mut apt = apt_get(root, dpkg_args)?;
    let c = &mut apt.cmd;
    let mut a = OsString::from("Dir::Cache::archives=");
    a.push(archives);
    a.push("/");
    c.arg("-o")
        .arg(a)
        .args([
            "-o",
            &format!("APT::Status-Fd={}", crate::backend::process::PROGRESS_FD),
        ])
        .args(["--no-download", "-y", "install"]);
    for p in plan {
        match (&p.action, &p.to) {
            (Action::Remove, _) => {
                c.arg(format!("{}-", p.name));
            }
            (_, Some(v)) => {
                c.arg(format!("{}={v}", p.name));
            }
            (_, None) => {}
        }
    }
    Ok(apt)
}

/// An empty configuration of sources, for a simulation against the
/// database alone; removed when dropped.
pub(super) struct Scratch(PrivateDir);

impl Scratch {
    pub(super) fn new() -> Result<Scratch, BackendError> {
        let s = Scratch(crate::backend::private_dir("apt")?);
        let at = |sub: &str| s.0.path().join(sub);
        for d in ["lists/partial", "parts", "archives/partial"] {
            std::fs::create_dir_all(at(d)).map_err(|source| BackendError::Read {
                path: at(d),
                source,
            })?;
        }
        std::fs::write(at("sources.list"), b"").map_err(|source| BackendError::Read {
            path: at("sources.list"),
            source,
        })?;
        Ok(s)
    }

    pub(super) fn no_repositories(&self, c: &mut Command) {
        let o = |k: &str, sub: &str| {
            let mut v = OsString::from(k);
            v.push(self.0.path().join(sub));
            v
        };
        c.arg("-o")
            .arg(o("Dir::Etc::SourceList=", "sources.list"))
            .arg("-o")
            .arg(o("Dir::Etc::SourceParts=", "parts"))
            .arg("-o")
            .arg(o("Dir::State::Lists=", "lists"))
            .arg("-o")
            .arg(o("Dir::Cache::archives=", "archives"))
            .args([
                "-o",
                "Dir::Cache::pkgcache=",
                "-o",
                "Dir::Cache::srcpkgcache=",
            ]);
    }
}

/// apt's `pmstatus:PKG:PERCENT:TEXT` lines (APT::Status-Fd) to progress.
pub fn parse_status(line: &str) -> Option<(f32, String)> {
    let rest = line.strip_prefix("pmstatus:")?;
    let mut it = rest.splitn(3, ':');
    let _pkg = it.next()?;
    let pct: f32 = it.next()?.parse().ok().filter(|p: &f32| p.is_finite())?;
    let text = it.next().unwrap_or("").trim().to_string();
    Some((pct.clamp(0.0, 100.0), text))
}
