//! Whether a build output is newer than everything it is built from, so set-up
//! and build steps skip work already done.

use crate::run::root;
use std::path::Path;
use std::time::SystemTime;

/// The newest modification time of a file, or of any file below a directory.
pub fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path).ok()?.filter_map(|e| newest(&e.ok()?.path())).max()
}

/// `output` exists and nothing in `inputs` (paths below the workspace root) is newer.
pub fn up_to_date(output: &Path, inputs: &[&str]) -> bool {
    let Some(built) = newest(output) else { return false };
    inputs.iter().filter_map(|p| newest(&root().join(p))).all(|t| t <= built)
}
