//! The update directory as something we may empty: which paths may be one
//! (never `/` or a system directory), which names in it are ours, and
//! removing exactly those, never recursively. A misspelt `update-dir` must
//! cost nothing: prepare once emptied whatever directory it named.

use std::io;
use std::path::{Path, PathBuf};

use crate::paths;

/// Our own files beside the payload: adding one here is all it takes for
/// `prepare --force` and `cancel --purge` to remove it.
pub const OWN_FILES: [&str; 4] = [
    paths::MANIFEST_NAME,
    paths::SIGNATURE_NAME,
    paths::LOCAL_NAME,
    paths::STATE_NAME,
];

/// Directories no update directory may be, nor contain (an update directory
/// is emptied and removed): the file system hierarchy's own.
const SYSTEM_DIRS: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/var",
    "/var/backups",
    "/var/cache",
    "/var/lib",
    "/var/local",
    "/var/log",
    "/var/mail",
    "/var/opt",
    "/var/spool",
    "/var/tmp",
];

/// Trees where an update directory cannot live: virtual or emptied at boot.
const NO_UPDATE_UNDER: &[&str] = &["/dev", "/proc", "/run", "/sys", "/tmp", "/var/tmp"];

/// Why `dir` (normalised, inside the root) cannot be the update directory.
pub fn unsuitable(dir: &Path) -> Option<String> {
    if SYSTEM_DIRS.iter().any(|s| dir == Path::new(s)) {
        return Some("it is a system directory".into());
    }
    if dir.parent() == Some(Path::new("/usr")) {
        return Some("it is a system directory".into());
    }
    if let Some(t) = NO_UPDATE_UNDER.iter().find(|t| dir.starts_with(t)) {
        return Some(format!("{t} does not keep files across a reboot"));
    }
    for ours in [paths::RESULTS_DIR, paths::LOG_DIR]
        .iter()
        .chain(paths::TRIGGER_LINKS.iter())
    {
        let ours = Path::new(ours);
        if ours.starts_with(dir) || dir.starts_with(ours) {
            return Some(format!("it overlaps {}", ours.display()));
        }
    }
    // A package manager's database lives there.
    for db in crate::backend::state_dirs() {
        if Path::new(db).starts_with(dir) || dir.starts_with(db) {
            return Some(format!("it overlaps {db}"));
        }
    }
    None
}

/// The payload names `prepare` is copying in, written before the first
/// copy and removed once the manifest is written: a prepare cut in between
/// leaves copies no manifest lists, and they are ours to replace.
pub const PREPARING_NAME: &str = ".preparing";

/// Ours by name: our own files and what `listed` names.
fn ours(name: &str, listed: &[String]) -> bool {
    OWN_FILES.contains(&name)
        || name == PREPARING_NAME
        || listed.iter().any(|l| l == name)
        || own_temp(name, listed)
}

/// A temporary file of ours (atomic writes, signing, payload copies) left
/// by a crash.
fn own_temp(name: &str, listed: &[String]) -> bool {
    name.starts_with(".sign-")
        || OWN_FILES
            .iter()
            .copied()
            .chain(listed.iter().map(String::as_str))
            .chain([PREPARING_NAME])
            .any(|f| name.starts_with(&format!(".{f}.tmp-")))
}

/// Records the payload names about to be copied in (see PREPARING_NAME).
pub fn begin(dir: &crate::rooted::Dir, names: &[String]) -> io::Result<()> {
    let mut text = String::new();
    for n in names.iter().filter(|n| paths::is_plain_name(n)) {
        text += n;
        text.push('\n');
    }
    dir.write(PREPARING_NAME.as_ref(), text.as_bytes(), 0o644, None)
}

/// The manifest is written: it lists the payload from now on.
pub fn done(dir: &crate::rooted::Dir) -> io::Result<()> {
    dir.remove(PREPARING_NAME.as_ref())
}

/// The payload names the manifest in `dir` lists, read leniently (any
/// schema, no signature check): what was prepared is what may go. Names
/// that are not plain file names are ignored.
pub fn listed(dir: &Path) -> Vec<String> {
    let text = crate::manifest::Manifest::read_text(dir)
        .map(|(t, _)| t)
        .unwrap_or_default();
    let table = toml::from_str::<toml::Table>(&text).unwrap_or_default();
    let mut names: Vec<String> = table
        .get("files")
        .and_then(|f| f.as_array())
        .map(|files| {
            files
                .iter()
                .filter_map(|f| f.get("name")?.as_str().map(str::to_string))
                .filter(|n| paths::is_plain_name(n))
                .collect()
        })
        .unwrap_or_default();
    if let Ok(text) = std::fs::read_to_string(dir.join(PREPARING_NAME)) {
        names.extend(
            text.lines()
                .filter(|n| paths::is_plain_name(n))
                .map(str::to_string),
        );
    }
    names.sort();
    names.dedup();
    names
}

/// What emptying the update directory did.
#[derive(Debug, Default)]
pub struct Cleared {
    pub removed: Vec<PathBuf>,
    /// Entries that are not ours, left in place.
    pub left: Vec<String>,
    /// The directory itself was removed.
    pub dir_removed: bool,
}

/// Removes the payload the manifest lists (and `also`: files being copied
/// in before a manifest names them), our own files and temporary files,
/// nothing else; then the directory itself when `remove_dir` and it is
/// empty. `dir` is the update directory inside `root`, resolved there; a
/// missing one is nothing to do.
pub fn clear(
    root: &crate::paths::Root,
    dir: &Path,
    also: &[String],
    remove_dir: bool,
) -> io::Result<Cleared> {
    let mut done = Cleared::default();
    let ud = match crate::rooted::open_dir(root, dir) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(done),
        Err(e) => return Err(e),
    };
    let mut listed = listed(&root.host(dir));
    listed.extend(also.iter().filter(|n| paths::is_plain_name(n)).cloned());
    for name in ud.names()? {
        let shown = name.to_string_lossy().into_owned();
        // Never into a directory, never through a link: unlink removes the
        // link itself.
        let is_dir = ud
            .lstat(&name)
            .map_or(true, |st| st.st_mode & libc::S_IFMT == libc::S_IFDIR);
        if ours(&shown, &listed) && !is_dir {
            ud.remove(&name)?;
            done.removed.push(ud.shown(&name));
        } else {
            done.left.push(shown);
        }
    }
    done.left.sort();
    if remove_dir && done.left.is_empty() {
        let (parent, name) = crate::rooted::split(dir)?;
        done.dir_removed = crate::rooted::open_dir(root, parent)?.remove_dir(name)?;
    }
    Ok(done)
}

/// Entries of `dir` that are neither ours nor a prepared update's: prepare
/// refuses to put an update into a directory that holds anything else.
pub fn foreign_entries(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let listed = listed(dir);
    let mut out = Vec::new();
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if !ours(&name, &listed) {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_cut_prepare_copied_is_ours() {
        let d = tempfile::tempdir().unwrap();
        let u = d.path();
        std::fs::write(u.join("a.deb"), b"a").unwrap();
        std::fs::write(u.join(".b.deb.tmp-12-0"), b"b").unwrap();
        // The list's own temporary file, cut before its rename.
        std::fs::write(u.join("..preparing.tmp-12-0"), b"a.deb\n").unwrap();
        std::fs::write(u.join("mine.txt"), b"m").unwrap();
        assert_eq!(
            foreign_entries(u).unwrap(),
            vec![".b.deb.tmp-12-0", "a.deb", "mine.txt"]
        );
        assert!(!foreign_entries(u)
            .unwrap()
            .contains(&"..preparing.tmp-12-0".to_string()));
        let dir = crate::rooted::open_dir(&crate::paths::Root::new(u), Path::new("/")).unwrap();
        begin(&dir, &["a.deb".to_string(), "b.deb".to_string()]).unwrap();
        assert_eq!(foreign_entries(u).unwrap(), vec!["mine.txt"]);
        let c = clear(&crate::paths::Root::new(u), Path::new("/"), &[], false).unwrap();
        assert_eq!(c.left, vec!["mine.txt"]);
        assert!(!u.join(PREPARING_NAME).exists());
    }

    #[test]
    fn system_directories_are_refused() {
        for bad in [
            "/",
            "/etc",
            "/var",
            "/var/lib",
            "/var/log",
            "/usr/share",
            "/usr",
            "/tmp/x",
            "/run/updates",
            "/var/lib/dpkg",
            "/var/lib/dpkg/updates",
            "/var/lib/system-update-results",
            "/var/log/system-update",
            "/system-update",
            "/etc/system-update",
            "/home",
        ] {
            assert!(unsuitable(Path::new(bad)).is_some(), "{bad}");
        }
        for good in [
            "/var/lib/system-update",
            "/srv/updates",
            "/var/cache/system-update",
            "/opt/up/d",
        ] {
            assert_eq!(unsuitable(Path::new(good)), None, "{good}");
        }
    }

    #[test]
    fn clear_removes_only_what_is_ours() {
        let d = tempfile::tempdir().unwrap();
        let u = d.path().join("u");
        std::fs::create_dir(&u).unwrap();
        std::fs::write(
            u.join("manifest.toml"),
            "schema = 2\n[[files]]\nname = \"a.deb\"\n[[files]]\nname = \"../escape\"\n",
        )
        .unwrap();
        for f in [
            "a.deb",
            "attempts.json",
            "local.json",
            ".manifest.toml.tmp-77",
            "precious",
        ] {
            std::fs::write(u.join(f), b"x").unwrap();
        }
        std::fs::create_dir(u.join("sub")).unwrap();
        std::fs::write(d.path().join("escape"), b"keep").unwrap();
        assert_eq!(foreign_entries(&u).unwrap(), vec!["precious", "sub"]);
        let root = crate::paths::Root::new(d.path());
        let c = clear(&root, Path::new("/u"), &[], true).unwrap();
        assert_eq!(c.left, vec!["precious", "sub"]);
        assert!(!c.dir_removed);
        assert!(u.join("precious").exists() && u.join("sub").is_dir());
        assert!(!u.join("a.deb").exists() && !u.join("manifest.toml").exists());
        assert!(
            d.path().join("escape").exists(),
            "a name outside stays untouched"
        );
        std::fs::remove_file(u.join("precious")).unwrap();
        std::fs::remove_dir(u.join("sub")).unwrap();
        assert!(
            clear(&root, Path::new("/u"), &[], true)
                .unwrap()
                .dir_removed
        );
        assert!(!u.exists());
    }
}
