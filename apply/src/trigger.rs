//! The trigger links `/system-update` and `/etc/system-update`: whether they
//! point at our update directory, creating and removing them.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::paths::{self, Root};
use crate::rooted;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    Missing,
    /// Points at our update directory, which exists.
    Ours,
    /// Points at our update directory, which does not exist.
    Dangling,
    /// Points elsewhere (another tool's update), or is not a symlink.
    Elsewhere(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Link {
    /// Path inside the root, e.g. `/system-update`.
    pub path: PathBuf,
    pub state: LinkState,
}

/// Where the link at `inside` points, as a path inside the root.
fn target_inside(root: &Root, inside: &Path) -> io::Result<Option<PathBuf>> {
    let (dir, name) = rooted::split(inside)?;
    let dir = match rooted::open_dir(root, dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        other => other?,
    };
    match dir.lstat(name) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
        Ok(st) if st.st_mode & libc::S_IFMT != libc::S_IFLNK => {
            return Ok(Some(inside.to_path_buf()))
        }
        Ok(_) => {}
    }
    let target = dir.read_link(name)?;
    // Relative targets are relative to the link's directory, inside the root.
    let abs = if target.is_absolute() {
        target
    } else {
        inside.parent().unwrap_or(Path::new("/")).join(target)
    };
    Ok(Some(paths::normalize(&abs)))
}

/// True when `dir` (inside the root) holds a manifest of ours: a TOML
/// file with our schema, id and backend keys. Read leniently, without the
/// configuration: this is how apply recognises its own trigger when the
/// configuration that names the update directory cannot be read.
fn holds_our_manifest(root: &Root, dir: &Path) -> bool {
    let path = root.host(dir).join(paths::MANIFEST_NAME);
    let Ok(text) = crate::untrusted::read_text(&path, crate::untrusted::MANIFEST_MAX, false) else {
        return false;
    };
    let Ok(t) = toml::from_str::<toml::Table>(&text) else {
        return false;
    };
    t.get("schema").is_some_and(toml::Value::is_integer)
        && t.get("id").is_some_and(toml::Value::is_str)
        && t.get("backend").is_some_and(toml::Value::is_str)
}

/// True when `inside` is a symbolic link (its directory resolved inside
/// the root).
fn is_link(root: &Root, inside: &Path) -> bool {
    let Ok((dir, name)) = rooted::split(inside) else {
        return false;
    };
    rooted::open_dir(root, dir)
        .and_then(|d| d.lstat(name))
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
}

/// Removes every trigger link that points at the default update directory
/// or at a directory holding a manifest of ours, whatever the (unreadable)
/// configuration says; another tool's link is left alone.
pub fn remove_ours_without_config(root: &Root) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for p in paths::TRIGGER_LINKS {
        let inside = Path::new(p);
        if !is_link(root, inside) {
            continue;
        }
        let Some(target) = target_inside(root, inside)? else {
            continue;
        };
        if target == Path::new(paths::DEFAULT_UPDATE_DIR) || holds_our_manifest(root, &target) {
            rooted::remove(root, inside)?;
            removed.push(inside.to_path_buf());
        }
    }
    Ok(removed)
}

pub fn inspect(root: &Root, update_dir: &Path) -> io::Result<Vec<Link>> {
    paths::TRIGGER_LINKS
        .iter()
        .map(|p| {
            let path = PathBuf::from(p);
            let state = match target_inside(root, &path)? {
                None => LinkState::Missing,
                Some(t) if t == update_dir => {
                    if root.host(update_dir).is_dir() {
                        LinkState::Ours
                    } else {
                        LinkState::Dangling
                    }
                }
                Some(t) => LinkState::Elsewhere(t),
            };
            Ok(Link { path, state })
        })
        .collect()
}

/// The first link that points at our (existing) update directory.
pub fn ours(links: &[Link]) -> Option<&Link> {
    links.iter().find(|l| l.state == LinkState::Ours)
}

/// One line saying why the update is not ours to apply.
pub fn why_not_ours(links: &[Link], update_dir: &Path) -> String {
    links
        .iter()
        .map(|l| match &l.state {
            LinkState::Missing => format!("{} does not exist", l.path.display()),
            LinkState::Ours => format!("{} is ours", l.path.display()),
            LinkState::Dangling => format!(
                "{} points at {} which does not exist",
                l.path.display(),
                update_dir.display()
            ),
            LinkState::Elsewhere(t) => format!(
                "{} points at {}, not at {}",
                l.path.display(),
                t.display(),
                update_dir.display()
            ),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The tool a trigger target belongs to, where it is one we know.
fn owner_of(target: &Path) -> Option<&'static str> {
    const KNOWN: [(&str, &str); 5] = [
        ("/var/lib/PackageKit", "PackageKit"),
        ("/var/cache/PackageKit", "PackageKit"),
        ("/var/lib/dnf", "dnf system-upgrade"),
        ("/usr/lib/sysimage/libdnf5", "dnf5 offline"),
        ("/var/lib/fwupd", "fwupd"),
    ];
    KNOWN
        .iter()
        .find(|(dir, _)| target.starts_with(dir))
        .map(|(_, tool)| *tool)
}

/// A trigger that is not ours: another tool's pending update.
#[derive(Debug)]
pub struct Foreign {
    pub path: PathBuf,
    pub target: PathBuf,
    /// Not a symbolic link at all: never removed by us.
    pub not_a_link: bool,
}

impl std::fmt::Display for Foreign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.not_a_link {
            return write!(
                f,
                "{} is not a symbolic link but arms the update boot all the same; \
                 nothing was changed: remove it by hand if nothing of yours needs it",
                self.path.display()
            );
        }
        let whose = owner_of(&self.target)
            .map(|t| format!(" ({t}'s pending update)"))
            .unwrap_or_default();
        write!(
            f,
            "{} points at {}{whose}, another tool's update; nothing was changed: \
             cancel it with that tool, or trigger --replace-foreign to drop it",
            self.path.display(),
            self.target.display()
        )
    }
}

/// The trigger links that belong to someone else.
pub fn foreign(root: &Root, links: &[Link]) -> Vec<Foreign> {
    links
        .iter()
        .filter_map(|l| match &l.state {
            LinkState::Elsewhere(t) => Some(Foreign {
                path: l.path.clone(),
                target: t.clone(),
                not_a_link: !is_link(root, &l.path),
            }),
            _ => None,
        })
        .collect()
}

/// Another tool's triggers stop `trigger` unless `replace` says to drop
/// them; what is not a link is never ours to remove.
fn clear_foreign(root: &Root, update_dir: &Path, replace: bool) -> Result<(), TriggerError> {
    let links = inspect(root, update_dir).with_context(|| root.dir().display().to_string())?;
    for f in foreign(root, &links) {
        if f.not_a_link || !replace {
            return Err(anyhow::anyhow!("{f}").into());
        }
        let host = root.host(&f.path);
        rooted::remove(root, &f.path).with_context(|| host.display().to_string())?;
        tracing::warn!(
            "removed {} (it pointed at {})",
            f.path.display(),
            f.target.display()
        );
    }
    Ok(())
}

/// Creates `/system-update` -> update directory (temporary name, rename).
pub fn create(root: &Root, update_dir: &Path) -> io::Result<()> {
    rooted::symlink(root, update_dir, Path::new(paths::TRIGGER_LINKS[0]))
}

/// Removes every trigger link that points at our update directory
/// (existing or not); another tool's link is left alone.
pub fn remove_ours(root: &Root, update_dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for link in inspect(root, update_dir)? {
        if matches!(link.state, LinkState::Ours | LinkState::Dangling) {
            rooted::remove(root, &link.path)?;
            removed.push(link.path);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        let ud = Path::new("/var/lib/system-update");
        let l = inspect(&root, ud).unwrap();
        assert!(l.iter().all(|l| l.state == LinkState::Missing));
        create(&root, ud).unwrap();
        assert_eq!(inspect(&root, ud).unwrap()[0].state, LinkState::Dangling);
        std::fs::create_dir_all(root.host(ud)).unwrap();
        assert_eq!(inspect(&root, ud).unwrap()[0].state, LinkState::Ours);
        std::os::unix::fs::symlink(
            "../var/lib/system-update",
            d.path().join("etc/system-update"),
        )
        .unwrap();
        assert_eq!(inspect(&root, ud).unwrap()[1].state, LinkState::Ours);
        rooted::symlink(
            &root,
            Path::new("/var/lib/other"),
            Path::new("/system-update"),
        )
        .unwrap();
        assert!(matches!(
            inspect(&root, ud).unwrap()[0].state,
            LinkState::Elsewhere(_)
        ));
        assert_eq!(
            remove_ours(&root, ud).unwrap(),
            vec![PathBuf::from("/etc/system-update")]
        );
        assert!(d.path().join("system-update").symlink_metadata().is_ok());
    }
}

/// Why `trigger` refuses.
/// Why `trigger` refused. Variants only for what its exit status
/// branches on: nothing prepared (1), an update that does not verify (3),
/// a stale one (4); the rest is anyhow with the file named (1).
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    #[error("{0}; prepare the update again")]
    Stale(String),
    #[error(transparent)]
    Replay(#[from] crate::replay::ReplayError),
    /// A package signature the manifest requires does not verify with
    /// the root's keys.
    #[error(transparent)]
    PackageSignature(crate::backend::BackendError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<crate::backend::BackendError> for TriggerError {
    fn from(e: crate::backend::BackendError) -> TriggerError {
        TriggerError::Other(e.into())
    }
}

impl From<crate::lock::LockError> for TriggerError {
    fn from(e: crate::lock::LockError) -> TriggerError {
        TriggerError::Other(e.into())
    }
}

/// What `trigger` was asked for.
pub struct Arm {
    pub after: Option<crate::config::AfterAction>,
    pub reboot_mode: crate::config::RebootMode,
    /// Drop another tool's trigger links (`--replace-foreign`).
    pub replace_foreign: bool,
}

/// `trigger`: verifies the prepared update (signature, payload, package
/// database), records the after-action in the local state, resets the
/// attempt counter and arms the link. The manifest is never rewritten.
pub fn arm(
    root: &Root,
    config: &crate::config::Config,
    req: &Arm,
) -> Result<(crate::manifest::Manifest, crate::signature::Verified), TriggerError> {
    use crate::local::{self, LocalError};
    let _lock = crate::prepare::lock_root(root)?;
    clear_foreign(root, &config.update_dir, req.replace_foreign)?;
    let udh = root.host(&config.update_dir);
    let loaded = crate::manifest::load(root, &udh, config.require_signature)?;
    let (m, verified) = (loaded.manifest, loaded.verified);
    m.verify_payload(&udh)?;
    // A key withdrawn since prepare shows now, not in the update boot.
    m.check_package_signatures(root, &udh)
        .map_err(TriggerError::PackageSignature)?;
    let mut local = match local::load(&udh) {
        Ok(l) => l,
        Err(e @ (LocalError::Missing(_) | LocalError::Invalid { .. })) => {
            if m.backend.fingerprint(root)?.is_some() {
                return Err(TriggerError::Stale(e.to_string()));
            }
            local::LocalState::default()
        }
        Err(LocalError::Io { path, source }) => {
            return Err(anyhow::Error::new(source)
                .context(path.display().to_string())
                .into())
        }
    };
    crate::replay::check(root, &m, &verified, local.allow_older)?;
    if let Some(now) = m.backend.fingerprint(root)? {
        if local.db_fingerprint.as_deref() != Some(now.as_str()) {
            return Err(TriggerError::Stale(m.backend.stale_message(root)));
        }
    }
    local.after_action = req.after;
    local.reboot_mode = Some(req.reboot_mode);
    // The update boot compares it with its own: the same kernel boot means
    // it came by soft-reboot (result record, legs).
    local.triggered_boot_id = if root.is_live() {
        crate::legs::boot_id()
    } else {
        None
    };
    let dir =
        rooted::open_dir(root, &config.update_dir).with_context(|| udh.display().to_string())?;
    local::store(&dir, &local)?;
    let fresh = crate::attempts::State::default();
    crate::attempts::store(root, &config.update_dir, &fresh)?;
    let link = root.host(Path::new(paths::TRIGGER_LINKS[0]));
    create(root, &config.update_dir).with_context(|| link.display().to_string())?;
    Ok((m, verified))
}

/// Soft-reboot where systemd can and the mode allows, else a full reboot
/// (why goes to the journal); with the line that tells the person.
pub fn way_in(mode: crate::config::RebootMode) -> (crate::power::Action, Option<String>) {
    let supported = match mode {
        crate::config::RebootMode::Auto => crate::legs::soft_reboot_supported(),
        crate::config::RebootMode::AlwaysReboot => Err("reboot-mode always-reboot".into()),
    };
    let way = crate::legs::way_in(mode, &supported);
    match (&way, &supported) {
        (crate::power::Action::SoftReboot, Ok(v)) => (
            way,
            Some(format!("Soft-rebooting into the update (systemd {v}).\n")),
        ),
        (_, Err(why)) => {
            tracing::info!("a full reboot into the update: {why}");
            (way, None)
        }
        _ => (way, None),
    }
}
