//! OpenPGP keys made for one test, each in its own GNUPGHOME, that sign
//! packages or repositories as a distribution would.

use std::fs;
use std::path::Path;
use std::process::Command;

use super::show;

pub struct Key {
    home: tempfile::TempDir,
    /// Its user id, which gpg takes to name it.
    name: &'static str,
}

impl Key {
    /// A new signing key for `uid` ("Name <mail>") of gpg's `algo`.
    pub fn new(uid: &'static str, algo: &str) -> Key {
        let home = tempfile::tempdir().unwrap();
        let o = Command::new("gpg")
            .env("GNUPGHOME", home.path())
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(["--quick-gen-key", uid, algo, "sign", "never"])
            .output()
            .unwrap();
        assert!(o.status.success(), "gpg --quick-gen-key: {}", show(&o));
        let name = uid.split(" <").next().unwrap_or(uid);
        Key { home, name }
    }

    /// Its GNUPGHOME, for tools that sign through gpg (rpmsign).
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The name tools give gpg to pick it (`_gpg_name`, `--export`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// gpg on its own keyring, in batch mode.
    pub fn gpg(&self) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", self.home.path()).arg("--batch");
        c
    }

    /// Writes the public key to `to`, armored or binary (a keyring file
    /// as apt's signed-by= reads it).
    pub fn export(&self, to: &Path, armor: bool) {
        let mut c = self.gpg();
        if armor {
            c.arg("--armor");
        }
        let o = c.args(["--export", self.name]).output().unwrap();
        assert!(o.status.success() && !o.stdout.is_empty(), "{}", show(&o));
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::write(to, o.stdout).unwrap();
    }

    /// Its fingerprint.
    pub fn fingerprint(&self) -> String {
        let o = self
            .gpg()
            .args(["--with-colons", "--fingerprint", self.name])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .and_then(|l| l.split(':').find(|f| !f.is_empty()))
            .unwrap()
            .to_string()
    }
}
