//! Ready for Cloudflare: `wrangler deploy --dry-run` builds and bundles the
//! worker as a deploy would, and checks its configuration, without uploading.
//! The step fails when wrangler refuses the bundle or the bindings, when a
//! Durable Object class is bound without a migration that creates it (or a
//! migration tag repeats), or when the upload passes Cloudflare's paid-plan
//! limit; it reports the compressed size against both plans' limits.

use crate::run::root;
use std::process::Command;

/// Cloudflare's limits on a Worker's compressed upload, in KiB.
const FREE_KIB: f64 = 3.0 * 1024.0;
const PAID_KIB: f64 = 10.0 * 1024.0;

pub fn deploy_dry_run() -> Result<(), String> {
    crate::worker::build_worker(&[])?;
    check_migrations(&std::fs::read_to_string(root().join("wrangler.toml")).map_err(|e| e.to_string())?)?;
    let outdir = root().join("target/deploy-dry-run");
    eprintln!("\n==> wrangler deploy --dry-run (bundle, bindings, migrations)");
    let out = Command::new(root().join("node_modules/.bin/wrangler"))
        .args(["deploy", "--dry-run", "--outdir"])
        .arg(&outdir)
        .env("WRANGLER_SEND_METRICS", "false")
        .current_dir(root())
        .output()
        .map_err(|e| format!("cannot run wrangler: {e}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        eprintln!("{text}");
        return Err(format!("wrangler deploy --dry-run refused the worker ({})", out.status));
    }
    let (total, gzip) = upload_size(&text).ok_or("wrangler did not report the upload size")?;
    eprintln!(
        "<== upload {total:.0} KiB, {gzip:.0} KiB compressed: {:.0}% of the free plan's 3 MB, {:.0}% of the paid 10 MB",
        gzip / FREE_KIB * 100.0,
        gzip / PAID_KIB * 100.0
    );
    if gzip > PAID_KIB {
        return Err(format!("the compressed upload ({gzip:.0} KiB) is over Cloudflare's 10 MB limit"));
    }
    if gzip > FREE_KIB {
        eprintln!("    note: over the free plan's 3 MB; it deploys on the paid plan only");
    }
    Ok(())
}

/// `Total Upload: 1076.16 KiB / gzip: 413.18 KiB` → (1076.16, 413.18).
fn upload_size(text: &str) -> Option<(f64, f64)> {
    let line = text.lines().find(|l| l.contains("Total Upload:"))?;
    let (total, gzip) = line.split_once("Total Upload:")?.1.split_once("/ gzip:")?;
    let kib = |s: &str| s.trim().strip_suffix("KiB")?.trim().parse::<f64>().ok();
    Some((kib(total)?, kib(gzip)?))
}

/// The quoted values of `key = "value"` lines, and of `key = ["a", "b"]` lines.
fn values(toml: &str, key: &str) -> Vec<String> {
    toml.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.trim_start().strip_prefix('='))
        .flat_map(|v| v.split('"').skip(1).step_by(2).map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// Every bound Durable Object class is created by a migration, and no
/// migration tag repeats (Cloudflare applies migrations by tag, once).
fn check_migrations(toml: &str) -> Result<(), String> {
    let created: Vec<String> =
        values(toml, "new_sqlite_classes").into_iter().chain(values(toml, "new_classes")).collect();
    let missing: Vec<String> =
        values(toml, "class_name").into_iter().filter(|c| !created.contains(c)).collect();
    if !missing.is_empty() {
        return Err(format!("wrangler.toml binds {} without a migration creating it", missing.join(", ")));
    }
    let tags = values(toml, "tag");
    if let Some(t) = tags.iter().enumerate().find_map(|(i, t)| tags.get(..i)?.contains(t).then_some(t)) {
        return Err(format!("wrangler.toml repeats the migration tag {t}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upload_size_is_read_from_wranglers_report() {
        let text = "✨ Read 15 files\nTotal Upload: 1076.16 KiB / gzip: 413.18 KiB\nYour Worker has access";
        assert_eq!(upload_size(text), Some((1076.16, 413.18)));
        assert_eq!(upload_size("nothing"), None);
    }

    #[test]
    fn a_class_bound_without_its_migration_or_a_repeated_tag_is_refused() {
        let ok = "[[durable_objects.bindings]]\nname = \"JOBS\"\nclass_name = \"JobObject\"\n\
                  [[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"JobObject\"]\n";
        assert_eq!(check_migrations(ok), Ok(()));
        let unmigrated =
            format!("{ok}[[durable_objects.bindings]]\nname = \"Q\"\nclass_name = \"QuotaObject\"\n");
        assert!(check_migrations(&unmigrated).is_err_and(|e| e.contains("QuotaObject")));
        let repeated = format!("{ok}[[migrations]]\ntag = \"v1\"\nnew_sqlite_classes = [\"Other\"]\n");
        assert!(check_migrations(&repeated).is_err_and(|e| e.contains("v1")));
        assert_eq!(
            check_migrations(&std::fs::read_to_string(root().join("wrangler.toml")).unwrap_or_default()),
            Ok(())
        );
    }
}
