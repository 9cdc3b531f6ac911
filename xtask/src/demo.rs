//! The demo site the worker serves as static assets (`[assets]` in
//! wrangler.toml): `demo/site` plus the npm package from `sdk/pkg` under
//! `vendor/batchgate/` (the page imports it by name through an import map),
//! assembled into `demo/dist`. Plain copies, so it is rebuilt every time.

use crate::run::root;
use std::path::Path;

pub const DIST: &str = "demo/dist";

pub fn build_demo() -> Result<(), String> {
    crate::sdk::build_sdk(&[])?;
    let dist = root().join(DIST);
    let _ = std::fs::remove_dir_all(&dist);
    copy_dir(&root().join("demo/site"), &dist)?;
    copy_dir(&root().join(crate::sdk::PKG), &dist.join("vendor/batchgate"))
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
