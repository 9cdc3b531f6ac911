//! The demo site the worker serves as static assets (`[assets]` in
//! wrangler.toml): `demo/site` plus the npm package from `sdk/pkg` under
//! `vendor/batchgate/` (the page imports it by name through an import map),
//! assembled into `demo/dist`.
//!
//! wrangler runs the build command each time a server starts, and watches the
//! assets directory: a rebuild while another server runs would reload that
//! server's worker mid-request. So an up-to-date `demo/dist` is left alone, and
//! a new one is assembled beside it and renamed into place.

use crate::fresh::up_to_date;
use crate::run::root;
use std::path::Path;

pub const DIST: &str = "demo/dist";

pub fn build_demo() -> Result<(), String> {
    crate::sdk::build_sdk(&[])?;
    let dist = root().join(DIST);
    if up_to_date(&dist.join(".built"), &["demo/site", crate::sdk::PKG]) {
        return Ok(());
    }
    let next = root().join(format!("{DIST}.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&next);
    copy_dir(&root().join("demo/site"), &next)?;
    copy_dir(&root().join(crate::sdk::PKG), &next.join("vendor/batchgate"))?;
    std::fs::write(next.join(".built"), "").map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dist);
    match std::fs::rename(&next, &dist) {
        Ok(()) => Ok(()),
        // Another build put its (identical) copy in place first.
        Err(_) if dist.join(".built").exists() => std::fs::remove_dir_all(&next).map_err(|e| e.to_string()),
        Err(e) => Err(format!("{}: {e}", dist.display())),
    }
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let Some(name) = path.file_name() else { continue };
        if path.is_dir() {
            copy_dir(&path, &to.join(name))?;
        } else {
            std::fs::copy(&path, to.join(name)).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}
