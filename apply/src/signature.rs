//! Signed manifests: a minisign (Ed25519) signature `manifest.toml.minisig`
//! beside the manifest, checked against the public keys this machine
//! trusts. The manifest carries every payload file's SHA-256, so a valid
//! signature covers the whole update. Verification is minisign-verify's;
//! signing runs Debian's `minisign` tool (see `sign`).

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use minisign_verify::{PublicKey, Signature};

use crate::paths::{self, Root};

/// Directories of trusted public keys (`*.pub`, minisign's format), inside
/// the root: the admin's, then the vendor's. Not under `/etc/system-update`:
/// that path is itself a trigger.
pub const KEY_DIRS: [&str; 2] = ["/etc/system-update-keys", "/usr/lib/system-update/keys"];

/// A key file or signature is a few lines; anything larger is not one.
const MAX_SMALL_FILE: u64 = 64 * 1024;

/// minisign's key id, shown as minisign shows it (hex of the little-endian
/// 64-bit number, no padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyId(pub u64);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}", self.0)
    }
}

fn id_list(ids: &[KeyId]) -> String {
    if ids.is_empty() {
        return "none".into();
    }
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("{path}: the update is not signed and require-signature is on (trusted keys: {}); sign it (system-update prepare --sign KEY, or minisign -Sm manifest.toml)", id_list(.trusted))]
    Unsigned { path: PathBuf, trusted: Vec<KeyId> },
    #[error("{path}: not a minisign signature ({message}); sign the update again")]
    Malformed { path: PathBuf, message: String },
    #[error("{path}: signed by key {key}, which this machine does not trust (trusted keys: {}); put that key's .pub file in {} or sign with a trusted key", id_list(.trusted), KEY_DIRS[0])]
    UntrustedKey {
        path: PathBuf,
        key: KeyId,
        trusted: Vec<KeyId>,
    },
    #[error("{path}: the signature by key {key} does not match the manifest (changed after signing); prepare and sign the update again")]
    Invalid { path: PathBuf, key: KeyId },
    #[error("{path}: owned by uid {uid} with mode {mode:04o}; a trusted key must be owned by root and not writable by group or others (chown root:root, chmod go-w)")]
    Insecure { path: PathBuf, uid: u32, mode: u32 },
    #[error("{path}: not a minisign public key ({message}); fix or remove it")]
    BadKey { path: PathBuf, message: String },
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: io::Error },
}

/// What the verification found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// No signature, and none required.
    Unsigned,
    /// Signed by this trusted key.
    Signed(KeyId),
}

impl fmt::Display for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verified::Unsigned => f.write_str("not signed"),
            Verified::Signed(k) => write!(f, "signed by trusted key {k}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub id: KeyId,
    key: PublicKey,
}

/// The path of the signature beside the manifest in `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(paths::SIGNATURE_NAME)
}

/// Owned by root, not writable by group or others: who can write a trusted
/// key can sign updates. Looks at an opened descriptor, not a path.
// A candidate for the general owner/mode check of the file layer.
fn check_trusted(file: &File, path: &Path) -> Result<std::fs::Metadata, SignatureError> {
    let md = file.metadata().map_err(|source| SignatureError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if md.uid() != 0 || md.mode() & 0o022 != 0 {
        return Err(SignatureError::Insecure {
            path: path.to_path_buf(),
            uid: md.uid(),
            mode: md.mode() & 0o7777,
        });
    }
    Ok(md)
}

/// Opens without following a symlink in the last component, and without
/// blocking on a FIFO.
fn open_nofollow(path: &Path, dir: bool) -> io::Result<File> {
    let mut flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    if dir {
        flags |= libc::O_DIRECTORY;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
}

/// Reads a small regular file (a key or a signature) through one descriptor.
fn read_small(file: File, md: &std::fs::Metadata, path: &Path) -> Result<String, String> {
    if !md.is_file() {
        return Err("not a regular file".into());
    }
    let mut text = String::new();
    file.take(MAX_SMALL_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_SMALL_FILE {
        return Err(format!("larger than {MAX_SMALL_FILE} bytes"));
    }
    let _ = path;
    Ok(text)
}

/// The key id of a public key file's text (the second line, base64:
/// algorithm, 8-byte key id, 32-byte key). minisign-verify checks it but
/// does not show it.
fn key_id_of(text: &str) -> Option<KeyId> {
    let line = text.lines().nth(1)?.trim();
    let bin = base64::engine::general_purpose::STANDARD
        .decode(line)
        .ok()?;
    let id: [u8; 8] = bin.get(2..10)?.try_into().ok()?;
    Some(KeyId(u64::from_le_bytes(id)))
}

/// The key id a signature names (the second line: algorithm, key id, signature).
fn signature_key_id(text: &str) -> Option<KeyId> {
    key_id_of(text)
}

/// The trusted keys under `root`, every one checked for owner and mode. A
/// missing directory holds no keys; an insecure or broken key is an error,
/// not skipped: the admin must see it.
pub fn trusted_keys(root: &Root) -> Result<Vec<TrustedKey>, SignatureError> {
    let mut keys = Vec::new();
    for dir in KEY_DIRS {
        let host = root.host(Path::new(dir));
        let d = match open_nofollow(&host, true) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(SignatureError::Read { path: host, source }),
        };
        check_trusted(&d, &host)?;
        let mut names: Vec<_> = std::fs::read_dir(&host)
            .map_err(|source| SignatureError::Read {
                path: host.clone(),
                source,
            })?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .filter(|n| n.to_string_lossy().ends_with(".pub"))
            .collect();
        names.sort();
        for name in names {
            let path = host.join(&name);
            let f = open_nofollow(&path, false).map_err(|source| SignatureError::Read {
                path: path.clone(),
                source,
            })?;
            let md = check_trusted(&f, &path)?;
            let bad = |message: String| SignatureError::BadKey {
                path: path.clone(),
                message,
            };
            let text = read_small(f, &md, &path).map_err(bad)?;
            let key = PublicKey::decode(&text).map_err(|e| bad(e.to_string()))?;
            let id = key_id_of(&text).ok_or_else(|| bad("no key id".into()))?;
            keys.push(TrustedKey { id, key });
        }
    }
    Ok(keys)
}

/// Checks `manifest` (the exact bytes that are then parsed) against the
/// signature text, if any. A signature that is there must verify, whether
/// or not one is required.
pub fn verify(
    manifest: &[u8],
    signature: Option<(&str, &Path)>,
    keys: &[TrustedKey],
    require: bool,
    manifest_path: &Path,
) -> Result<Verified, SignatureError> {
    let trusted: Vec<KeyId> = keys.iter().map(|k| k.id).collect();
    let Some((text, sig_path)) = signature else {
        if require {
            return Err(SignatureError::Unsigned {
                path: manifest_path.to_path_buf(),
                trusted,
            });
        }
        return Ok(Verified::Unsigned);
    };
    let malformed = |message: String| SignatureError::Malformed {
        path: sig_path.to_path_buf(),
        message,
    };
    let sig = Signature::decode(text).map_err(|e| malformed(e.to_string()))?;
    let key_id = signature_key_id(text).ok_or_else(|| malformed("no key id".into()))?;
    let Some(key) = keys.iter().find(|k| k.id == key_id) else {
        return Err(SignatureError::UntrustedKey {
            path: sig_path.to_path_buf(),
            key: key_id,
            trusted,
        });
    };
    // Prehashed signatures only, minisign's default (not its legacy -l).
    key.key
        .verify(manifest, &sig, false)
        .map_err(|_| SignatureError::Invalid {
            path: sig_path.to_path_buf(),
            key: key_id,
        })?;
    Ok(Verified::Signed(key_id))
}

/// Reads the signature beside the manifest in `dir`; `None` when there is none.
pub fn read_signature(dir: &Path) -> Result<Option<(String, PathBuf)>, SignatureError> {
    let p = path(dir);
    let f = match open_nofollow(&p, false) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(SignatureError::Read { path: p, source }),
    };
    let md = f.metadata().map_err(|source| SignatureError::Read {
        path: p.clone(),
        source,
    })?;
    let text = read_small(f, &md, &p).map_err(|message| SignatureError::Malformed {
        path: p.clone(),
        message,
    })?;
    Ok(Some((text, p)))
}

/// Signs `file` into `sig_out` with the secret key `key` by running
/// Debian's `minisign` tool, on our terminal: it asks for the key's
/// password when the key has one. The trusted comment (signed too) names
/// the update.
pub fn sign(key: &Path, file: &Path, sig_out: &Path, comment: &str) -> anyhow::Result<()> {
    let status = Command::new("minisign")
        .arg("-S")
        .arg("-s")
        .arg(key)
        .arg("-m")
        .arg(file)
        .arg("-x")
        .arg(sig_out)
        .arg("-t")
        .arg(comment)
        .status()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => anyhow::anyhow!("minisign not found: install it (apt-get install minisign) to sign with --sign, or sign the manifest by hand with minisign -Sm"),
            _ => anyhow::Error::new(e).context("running minisign"),
        })?;
    if !status.success() {
        anyhow::bail!(
            "{}: minisign could not sign with this secret key ({status}; its message is above)",
            key.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with `minisign -G -W` and `minisign -S -t test` (minisign 0.11).
    const PUB_A: &str = "untrusted comment: minisign public key 212BB39D568B85C\nRWRcuGjVObsSAhgTh64KTTNk94vTXEZKsBXQPSiwbRempqFfogF9g+Hw\n";
    const PUB_B: &str = "untrusted comment: minisign public key 62E95C472677DE6E\nRWRu3ncmR1zpYtmzuj+m7jjDpdkF2fMBvWkPAMtJz5GWswpno9nymlsw\n";
    const MSG: &[u8] = b"hello\n";
    const SIG_A: &str = "untrusted comment: signature from minisign secret key\nRURcuGjVObsSAqsa4k1rJENSdm1sfzq/j0xQGiZPgsm9UhyUZ9OJlOdDDH3IzpaW3jYGz5XdNTA5AIeIdFBZDGUzzOp659Lq3gI=\ntrusted comment: system-update test\nIbJhsUBL/2SP4uO+43ai/B6h5jvljop9Pn6XiEMczdh7vsHaVSwW80gy5jELYZndWAMDrE+v9cem88kIH9cCAg==\n";

    fn key(text: &str) -> TrustedKey {
        TrustedKey {
            id: key_id_of(text).unwrap(),
            key: PublicKey::decode(text).unwrap(),
        }
    }

    fn check(
        msg: &[u8],
        sig: Option<&str>,
        keys: &[TrustedKey],
        require: bool,
    ) -> Result<Verified, SignatureError> {
        verify(
            msg,
            sig.map(|s| (s, Path::new("m.minisig"))),
            keys,
            require,
            Path::new("m"),
        )
    }

    #[test]
    fn key_id_as_minisign_shows_it() {
        assert_eq!(key_id_of(PUB_A).unwrap().to_string(), "212BB39D568B85C");
        assert_eq!(key_id_of(PUB_B).unwrap().to_string(), "62E95C472677DE6E");
        assert_eq!(
            signature_key_id(SIG_A).unwrap().to_string(),
            "212BB39D568B85C"
        );
    }

    #[test]
    fn good_signature_verifies() {
        let v = check(MSG, Some(SIG_A), &[key(PUB_B), key(PUB_A)], true).unwrap();
        assert_eq!(v, Verified::Signed(key_id_of(PUB_A).unwrap()));
    }

    #[test]
    fn changed_message_is_invalid() {
        let e = check(b"hello!\n", Some(SIG_A), &[key(PUB_A)], false).unwrap_err();
        assert!(matches!(e, SignatureError::Invalid { .. }), "{e}");
        assert!(e.to_string().contains("212BB39D568B85C"), "{e}");
    }

    #[test]
    fn untrusted_key_names_both_ids() {
        let e = check(MSG, Some(SIG_A), &[key(PUB_B)], false).unwrap_err();
        assert!(matches!(e, SignatureError::UntrustedKey { .. }), "{e}");
        let s = e.to_string();
        assert!(
            s.contains("212BB39D568B85C") && s.contains("62E95C472677DE6E"),
            "{s}"
        );
    }

    #[test]
    fn unsigned_only_refused_when_required() {
        assert_eq!(
            check(MSG, None, &[key(PUB_A)], false).unwrap(),
            Verified::Unsigned
        );
        let e = check(MSG, None, &[key(PUB_A)], true).unwrap_err();
        assert!(matches!(e, SignatureError::Unsigned { .. }), "{e}");
        assert!(e.to_string().contains("212BB39D568B85C"), "{e}");
    }

    #[test]
    fn garbage_signature_is_malformed() {
        for bad in ["", "x\ny\n", "untrusted comment: x\nRWR\n"] {
            let e = check(MSG, Some(bad), &[key(PUB_A)], false).unwrap_err();
            assert!(
                matches!(e, SignatureError::Malformed { .. }),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn key_directory_checks_owner_and_mode() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        assert!(trusted_keys(&root).unwrap().is_empty());
        let dir = root.host(Path::new(KEY_DIRS[0]));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let k = dir.join("a.pub");
        std::fs::write(&k, PUB_A).unwrap();
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(dir.join("notes.txt"), "not a key").unwrap();
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped the owner half: not root");
            return;
        }
        let keys = trusted_keys(&root).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].id.to_string(), "212BB39D568B85C");

        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o664)).unwrap();
        let e = trusted_keys(&root).unwrap_err();
        assert!(
            matches!(e, SignatureError::Insecure { mode: 0o664, .. }),
            "{e}"
        );
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o644)).unwrap();

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = trusted_keys(&root).unwrap_err();
        assert!(e.to_string().contains("system-update-keys"), "{e}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();

        nix::unistd::chown(&k, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        assert!(matches!(
            trusted_keys(&root),
            Err(SignatureError::Insecure { uid: 65534, .. })
        ));
        std::fs::remove_file(&k).unwrap();

        std::os::unix::fs::symlink("/etc/passwd", &k).unwrap();
        assert!(
            trusted_keys(&root).is_err(),
            "a symlinked key is not followed"
        );
        std::fs::remove_file(&k).unwrap();
        std::fs::write(&k, "untrusted comment: x\nnot base64\n").unwrap();
        std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            trusted_keys(&root),
            Err(SignatureError::BadKey { .. })
        ));
    }
}
