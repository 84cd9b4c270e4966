//! The web page in a real browser: the JavaScript tests under `ui/tests/`
//! (`node --test`, `playwright-core` driving Debian's Chromium, `axe-core`,
//! `lighthouse`) against a real `rendezvous up` with a fresh data directory.
//!
//! Needs `node`, `/usr/bin/chromium` and `ui/node_modules` (`./scripts/test` installs
//! all three). Without them a test skips with a loud message, except under
//! `CI=true`, where it fails. Screenshots and reports go to
//! `CARGO_TARGET_TMPDIR/ui/` (the build directory, never the repository).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn ui_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ui")
}

/// Whatever is missing to run the browser tests, if anything.
fn missing() -> Option<String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("node is not installed".into());
    }
    let chromium =
        std::env::var("RENDEZVOUS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!("{chromium} is missing (apt-get install chromium)"));
    }
    if !ui_dir().join("node_modules/playwright-core").exists() {
        return Some("ui/node_modules is missing (npm ci --prefix ui)".into());
    }
    None
}

/// One browser test at a time: they measure speed, and two at once on two cores
/// would measure each other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Run `node --test ui/tests/FILE` against a fresh `rendezvous up`.
fn run_ui_test(file: &str, up_env: &[(&str, &str)]) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(why) = missing() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{why}: the browser tests need it under CI=true (run ./scripts/test)");
        }
        eprintln!("SKIPPED (not CI): {why}");
        return;
    }
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui");
    std::fs::create_dir_all(&artifacts).unwrap();
    let log = artifacts.join(format!("{file}.up.log"));
    let up = common::start_up_with(common::fresh_data_dir(), &[], up_env, Some(&log));
    // `localhost`, as people type it; the page must work there (secure-context
    // rules for cookies and media treat it as trustworthy).
    let base = up.base.replace("127.0.0.1", "localhost");
    let out = Command::new("node")
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        .arg(format!("tests/{file}"))
        .current_dir(ui_dir())
        .env("RENDEZVOUS_URL", &base)
        .env("RENDEZVOUS_ARTIFACTS", &artifacts)
        .output()
        .expect("run node");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "ui/tests/{file} failed (the server's log is {})",
        log.display()
    );
    drop(up);
}

#[test]
fn chat_state_follows_the_room_protocol() {
    run_ui_test("chat.test.mjs", &[]);
}

#[test]
fn two_people_meet_through_an_invite_link_in_chromium() {
    run_ui_test("e2e.test.mjs", &[]);
}

#[test]
fn a_video_room_checks_camera_and_microphone_in_chromium() {
    run_ui_test("media.test.mjs", &[]);
}

#[test]
fn people_see_and_hear_each_other_through_the_sfu_in_chromium() {
    run_ui_test("video.test.mjs", &[]);
}

#[test]
fn one_person_holds_two_conversations_at_once() {
    run_ui_test("rooms.test.mjs", &[]);
}

#[test]
fn a_conversation_outlives_its_access_and_room_tokens() {
    run_ui_test(
        "tokens.test.mjs",
        &[
            ("RENDEZVOUS_ACCESS_TOKEN_TTL", "8s"),
            ("RENDEZVOUS_ROOM_TOKEN_TTL", "8s"),
        ],
    );
}

#[test]
fn every_page_is_accessible_fast_and_light() {
    // The latency runs are twenty people, registered from one address.
    run_ui_test(
        "quality.test.mjs",
        &[("RENDEZVOUS_REGISTER_PER_ADDRESS_PER_HOUR", "100")],
    );
}
