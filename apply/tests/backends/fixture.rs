//! What a case asks of a package manager, so that one case runs alike for
//! each: a scratch root with its database, packages built at a version
//! (with a script when asked), what is installed, whether the database is
//! consistent, and the few texts each says in its own words.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::Scratch;

/// A package that installs /usr/share/NAME/version, holding "VERSION\n".
#[derive(Clone, Copy)]
pub struct Pkg<'a> {
    pub name: &'a str,
    pub version: &'a str,
    /// Shell commands run once the new version is in place (dpkg's
    /// postinst, rpm's %post, pacman's post_upgrade).
    pub script: Option<&'a str>,
    /// One package it depends on.
    pub depends: Option<&'a str>,
    /// The package manager's "any architecture" unless set.
    pub arch: Option<&'a str>,
}

impl<'a> Pkg<'a> {
    pub const fn new(name: &'a str, version: &'a str) -> Pkg<'a> {
        Pkg {
            name,
            version,
            script: None,
            depends: None,
            arch: None,
        }
    }

    pub fn script(self, script: &'a str) -> Self {
        Pkg {
            script: Some(script),
            ..self
        }
    }

    pub fn depends(self, what: &'a str) -> Self {
        Pkg {
            depends: Some(what),
            ..self
        }
    }

    pub fn arch(self, arch: &'a str) -> Self {
        Pkg {
            arch: Some(arch),
            ..self
        }
    }

    /// Where it puts its version file.
    pub fn file(&self) -> String {
        format!("/usr/share/{}/version", self.name)
    }
}

pub trait Fixture {
    /// The backend's name in the manifest and the result record.
    const NAME: &'static str;
    /// What the stale message names: the database that changed.
    const DATABASE: &'static str;
    /// Where the database lives in a root (nothing there: no database).
    const DATABASE_PATH: &'static str;
    /// What the record's error says the repair at the attempt limit did.
    const REPAIRED: &'static str;

    /// Root and the tools; otherwise says why not (tests/check: fails).
    fn ready() -> bool;
    /// A scratch root with an empty database (and what scripts need).
    fn root() -> Scratch;
    /// A scratch root without this package manager's database.
    fn without_database() -> Scratch {
        Scratch::new()
    }
    /// Builds `pkg` into the scratch's package directory.
    fn build(s: &Scratch, pkg: &Pkg) -> PathBuf;
    /// Installs `files` with the package manager itself, as an admin would.
    fn install(s: &Scratch, files: &[&Path]);
    /// The installed version of `name`, as the package manager spells it.
    fn version(s: &Scratch, name: &str) -> Option<String>;
    /// How it spells the installed version of a package built as `version`.
    fn spelled(version: &str) -> String;
    /// The database's complaints: empty when it is consistent.
    fn complaints(s: &Scratch) -> String;

    /// The record's error when `pkg`'s script fails.
    fn script_failed(pkg: &Pkg) -> String;
    /// What prepare says when `needy` depends on `missing`, which nothing
    /// provides.
    fn unmet(needy: &Pkg, missing: &str) -> String;
    /// What prepare says when the root has no database.
    fn no_database() -> &'static [&'static str];
    /// An architecture the root does not take (set up so where the root's
    /// configuration decides), and what prepare says the root does take.
    fn foreign_arch(s: &Scratch) -> (String, &'static str);
    /// After `refused` (built for `arch`) was refused: the root's
    /// configuration, not this machine, decides what it takes.
    fn root_decides(_s: &Scratch, _arch: &str, _refused: &Path) {}
    /// What a power cut mid-script leaves behind, beside the record.
    fn after_cut(_s: &Scratch) {}
    /// What the backend's own words and logs show after `success`.
    fn after_success(_s: &Scratch, _out: &Output) {}
}
