//! The `gemini-emulator` binary as users and CI start it.

use batchgate_e2e::process::{Service, emulator_bin, memory_kib};
use std::process::Command;

#[test]
fn starts_on_a_free_port_applies_flags_and_stops_on_sigterm() {
    let svc =
        Service::emulator(&["--api-key", "k1", "--config", r#"{"pendingSecs": 42}"#, "--running-secs", "7"])
            .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (health, cfg, unauth) = rt.block_on(async {
        let c = reqwest::Client::new();
        let health = c.get(format!("{}/_emulator/health", svc.url)).send().await.unwrap().status();
        let cfg: serde_json::Value =
            c.get(format!("{}/_emulator/config", svc.url)).send().await.unwrap().json().await.unwrap();
        let unauth = c
            .get(format!("{}/v1beta/files", svc.url))
            .header("x-goog-api-key", "k2")
            .send()
            .await
            .unwrap()
            .status();
        (health, cfg, unauth)
    });
    assert!(health.is_success());
    assert_eq!(cfg["apiKey"], "k1");
    assert_eq!(cfg["pendingSecs"], 42.0);
    assert_eq!(cfg["runningSecs"], 7.0, "flags override --config");
    assert_eq!(unauth.as_u16(), 400);
    assert!(memory_kib(svc.pid()).is_some_and(|(peak, _)| peak > 0));
    let status = svc.terminate().expect("exits on SIGTERM");
    assert!(status.success());
}

#[test]
fn bad_flags_exit_2_with_usage() {
    let out = Command::new(emulator_bin()).args(["--port"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--port needs a value"));
    let out = Command::new(emulator_bin()).args(["--config", "{\"nope\": 1}"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown config field"));
}
