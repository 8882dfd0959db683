//! Loading a prepared manifest: read once, its signature checked against
//! the keys the root trusts, then parsed.

use std::path::Path;

use super::{Manifest, ManifestError};
use crate::paths::Root;
use crate::signature;

/// A manifest whose signature was checked, with the texts that were.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub manifest: Manifest,
    pub verified: signature::Verified,
    pub text: String,
    pub signature: Option<String>,
}

/// The manifest in `dir`, read once, its signature verified against the
/// keys trusted under `root`, then parsed.
pub fn load(root: &Root, dir: &Path, require: bool) -> Result<Loaded, ManifestError> {
    // Whoever can write a directory on the way can swap what is in it.
    if let Ok(inside) = dir.strip_prefix(root.dir()) {
        crate::untrusted::check_path_secure(root.dir(), inside)
            .map_err(ManifestError::Untrusted)?;
    }
    let (text, mpath) = Manifest::read_text(dir)?;
    let sig = signature::read_signature(dir)?;
    // The keys are only read when they matter: a broken key directory does
    // not stop an unsigned update that nobody asked to be signed.
    let keys = if sig.is_some() || require {
        signature::trusted_keys(root)?
    } else {
        Vec::new()
    };
    let verified = signature::verify(
        text.as_bytes(),
        sig.as_ref().map(|(t, p)| (t.as_str(), p.as_path())),
        &keys,
        require,
        &mpath,
    )?;
    let manifest = Manifest::parse(&text, &mpath)?;
    Ok(Loaded {
        manifest,
        verified,
        text,
        signature: sig.map(|(t, _)| t),
    })
}
