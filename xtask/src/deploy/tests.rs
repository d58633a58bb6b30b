//! The deploy repository against real git: a bare repository that refuses non-fast-forward pushes (so a
//! forced write could not go unnoticed), releases racing, and rollbacks.

use std::{path::Path, process::Command, sync::Barrier};

use super::*;

fn rollback(
    repository: &DeployRepository,
    release_id: &str,
    environments: &[String],
) -> anyhow::Result<Option<Pushed>> {
    publish_rollback(repository, &RollbackRequest { release_id, environments, by: "tester" })
}

fn bare_repository(dir: &Path) -> String {
    let path = dir.join("deploy.git");
    let git = |args: &[&str]| assert!(Command::new("git").args(args).status().unwrap().success());
    git(&["init", "--quiet", "--bare", "--initial-branch", "main", path.to_str().unwrap()]);
    git(&["--git-dir", path.to_str().unwrap(), "config", "receive.denyNonFastForwards", "true"]);
    path.to_str().unwrap().to_owned()
}

fn entry(release_id: &str, source_time: i64) -> ReleaseEntry {
    ReleaseEntry {
        release_id: release_id.to_owned(),
        source_commit: format!("{:0<40}", release_id.len()),
        source_time,
    }
}

fn environments(marker: &str) -> Vec<EnvironmentFiles> {
    ["staging", "production"]
        .iter()
        .map(|environment| EnvironmentFiles {
            environment: (*environment).to_owned(),
            manifests: format!("# {marker} for {environment}\n"),
        })
        .collect()
}

fn release(url: &str, checkout: &Path, entry: &ReleaseEntry) -> Published {
    release_with_migrations(url, checkout, entry, &[])
}

/// A release whose record lists `migrations` as `(name, kind)`.
fn release_with_migrations(
    url: &str,
    checkout: &Path,
    entry: &ReleaseEntry,
    migrations: &[(&str, &str)],
) -> Published {
    let repository = DeployRepository::open(url, checkout).unwrap();
    let mut record = serde_json::to_value(entry).unwrap();
    record["migrations"] = migrations
        .iter()
        .map(|(name, kind)| serde_json::json!({"name": name, "kind": kind}))
        .collect();
    let record = serde_json::to_vec(&record).unwrap();
    publish_release(
        &repository,
        entry,
        &record,
        &environments(&entry.release_id),
        |_| Ok(vec![(state::CANDIDATE_FILE.to_owned(), b"{}\n".to_vec())]),
        |previous| {
            let previous =
                previous.map_or("none".to_owned(), |record| record["release_id"].to_string());
            format!("previous: {previous}")
        },
    )
    .unwrap()
}

/// Promotes a recorded release to production, as `cargo xtask promote` writes it once confirmed.
fn promote(url: &str, checkout: &Path, release_id: &str) -> Option<Pushed> {
    let repository = DeployRepository::open(url, checkout).unwrap();
    let root = repository.fresh_checkout().unwrap();
    let before = state::current(root, "production").unwrap().map(|entry| entry.release_id);
    let line = serde_json::json!({"release_id": release_id, "outcome": "promoted", "by": "tester"});
    publish_promotion(
        &repository,
        &Promotion {
            release_id,
            environment: "production",
            desired_before: before.as_deref(),
            body: "the summary",
            trailers: &[("Promoted-By", "tester".to_owned()), ("Acknowledged", "none".to_owned())],
            line: &line,
            signing: &Signing::None,
        },
    )
    .unwrap()
}

/// Releases and promotes, as the two steps of a release reaching production.
fn release_to_production(url: &str, checkout: &Path, entry: &ReleaseEntry) {
    release(url, checkout, entry);
    promote(url, checkout, &entry.release_id);
}

/// The remote's view: each environment's release ("-" for none) and every recorded release.
fn remote_state(url: &str, dir: &Path) -> (String, String, Vec<String>) {
    let view = dir.join("view");
    let _ = std::fs::remove_dir_all(&view);
    assert!(
        Command::new("git").args(["clone", "--quiet", url]).arg(&view).status().unwrap().success()
    );
    let running = |environment: &str| {
        state::current(&view, environment)
            .unwrap()
            .map_or_else(|| "-".to_owned(), |entry| entry.release_id)
    };
    let mut recorded: Vec<String> = std::fs::read_dir(view.join("releases"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    recorded.sort();
    (running("staging"), running("production"), recorded)
}

#[test]
fn a_release_is_recorded_with_trailers() {
    let dir = tempfile::tempdir().unwrap();
    let url = bare_repository(dir.path());
    let (pushed, outcomes) = release(&url, &dir.path().join("a"), &entry("2026.11.27-1", 100));
    assert_eq!(pushed.unwrap().attempts, 1);
    assert_eq!(
        outcomes,
        [("staging".into(), Outcome::Deployed), ("production".into(), Outcome::Candidate)]
    );
    let repository = DeployRepository::open(&url, &dir.path().join("a")).unwrap();
    let message = &repository.log().unwrap()[0];
    assert!(message.starts_with("release 2026.11.27-1\n"), "{message}");
    assert!(message.contains("production: unchanged; 2026.11.27-1 is a candidate"), "{message}");
    assert!(
        message.ends_with(
            "Release-Id: 2026.11.27-1\nSource-Commit: 1200000000000000000000000000000000000000"
        ),
        "{message}"
    );
    let kustomization =
        std::fs::read_to_string(dir.path().join("a/environments/staging/kustomization.yaml"))
            .unwrap();
    assert!(kustomization.contains("resources:\n  - manifests.yaml"));
    // Production is not written by a release: the candidate and its files wait in the archive.
    assert!(!dir.path().join("a/environments/production").exists());
    let archive = dir.path().join("a/releases/2026.11.27-1");
    assert!(archive.join("production/manifests.yaml").is_file());
    assert!(archive.join(state::CANDIDATE_FILE).is_file());
    assert_eq!(repository.remote_head(PRODUCTION_BRANCH).unwrap(), None);
    // Releasing the same thing again changes nothing and commits nothing.
    let (pushed, _) = release(&url, &dir.path().join("a"), &entry("2026.11.27-1", 100));
    assert_eq!(pushed, None);
}

#[test]
fn racing_releases_are_both_recorded_and_the_later_wins() {
    let dir = tempfile::tempdir().unwrap();
    let url = bare_repository(dir.path());
    release(&url, &dir.path().join("seed"), &entry("0-seed", 1));
    for round in 0..3 {
        let older = entry(&format!("{round}-older"), 10 + round);
        let newer = entry(&format!("{round}-newer"), 20 + round);
        let barrier = Barrier::new(2);
        std::thread::scope(|scope| {
            for (name, entry) in [("older", &older), ("newer", &newer)] {
                let (barrier, url, checkout) =
                    (&barrier, &url, dir.path().join(format!("{name}-{round}")));
                scope.spawn(move || {
                    let repository = DeployRepository::open(url, &checkout).unwrap();
                    let record = serde_json::to_vec(entry).unwrap();
                    // Both fetch the same head, then both try to push.
                    barrier.wait();
                    publish_release(
                        &repository,
                        entry,
                        &record,
                        &environments(&entry.release_id),
                        |_| Ok(Vec::new()),
                        |_| String::new(),
                    )
                    .unwrap()
                });
            }
        });
        let (staging, production, recorded) = remote_state(&url, dir.path());
        assert_eq!((staging.as_str(), production.as_str()), (newer.release_id.as_str(), "-"));
        assert!(
            recorded.contains(&older.release_id) && recorded.contains(&newer.release_id),
            "{recorded:?}"
        );
    }
    let repository = DeployRepository::open(&url, &dir.path().join("seed")).unwrap();
    assert_eq!(repository.log().unwrap().len(), 7, "one commit per release, none lost");
}

#[test]
fn an_older_release_pushed_last_is_only_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let url = bare_repository(dir.path());
    release(&url, &dir.path().join("a"), &entry("2-newer", 20));
    let (pushed, outcomes) = release(&url, &dir.path().join("b"), &entry("1-older", 10));
    assert!(pushed.is_some());
    assert_eq!(outcomes[0].1, Outcome::KeptNewer("2-newer".into()));
    let (staging, _, recorded) = remote_state(&url, dir.path());
    assert_eq!(staging, "2-newer");
    assert_eq!(recorded, ["1-older", "2-newer"]);
}

#[test]
fn a_rollback_is_a_new_commit_restoring_the_release() {
    let dir = tempfile::tempdir().unwrap();
    let url = bare_repository(dir.path());
    release_to_production(&url, &dir.path().join("a"), &entry("1-good", 10));
    release_to_production(&url, &dir.path().join("a"), &entry("2-bad", 20));
    let repository = DeployRepository::open(&url, &dir.path().join("a")).unwrap();
    rollback(&repository, "1-good", &[]).unwrap().unwrap();
    let head = repository.log().unwrap().len();
    assert_eq!(head, 5, "two releases, two promotions, one rollback");
    assert_eq!(
        repository.remote_head(PRODUCTION_BRANCH).unwrap(),
        repository.remote_head(MAIN_BRANCH).unwrap(),
        "a rollback of production moves the branch production syncs"
    );
    let (staging, production, _) = remote_state(&url, dir.path());
    assert_eq!((staging.as_str(), production.as_str()), ("1-good", "1-good"));
    let manifests =
        std::fs::read_to_string(dir.path().join("view/environments/production/manifests.yaml"))
            .unwrap();
    assert_eq!(manifests, "# 1-good for production\n");
    let log = repository.log().unwrap();
    assert!(log[0].starts_with("rollback to release 1-good"), "{}", log[0]);
    assert!(log[1].starts_with("promote release 2-bad to production"), "{}", log[1]);
    // The summary of a release is written against the release staging was told to run before it.
    assert!(log[2].contains("previous: \"1-good\""), "{}", log[2]);
    assert!(log[4].contains("previous: none"), "{}", log[4]);
    assert!(
        log[0].contains("Release-Id: 1-good\n")
            && log[0].contains("Rollback-From: 2-bad\n")
            && log[0].ends_with("Rolled-Back-By: tester"),
        "{}",
        log[0]
    );
    let error = rollback(&repository, "9-unknown", &[]).unwrap_err().to_string();
    assert!(error.contains("release 9-unknown is not recorded"), "{error}");
}

#[test]
fn a_rollback_holds_until_a_release_of_a_newer_commit() {
    let dir = tempfile::tempdir().unwrap();
    let url = bare_repository(dir.path());
    let checkout = dir.path().join("a");
    release_to_production(&url, &checkout, &entry("1-good", 10));
    release_to_production(&url, &checkout, &entry("2-bad", 20));
    let repository = DeployRepository::open(&url, &checkout).unwrap();
    rollback(&repository, "1-good", &[]).unwrap().unwrap();
    // CI runs again for the bad commit: recorded, not deployed.
    let (pushed, outcomes) = release(&url, &checkout, &entry("2-bad", 20));
    assert_eq!(pushed, None, "the record is already there, nothing changes");
    assert_eq!(outcomes[0], ("staging".into(), Outcome::Held("1-good".into())));
    // Nor can it be promoted past the hold.
    let root = repository.fresh_checkout().unwrap();
    let error = state::apply_promotion(root, "2-bad", "production").unwrap_err().to_string();
    assert!(error.contains("production is held at 1-good"), "{error}");
    let (staging, production, _) = remote_state(&url, dir.path());
    assert_eq!((staging.as_str(), production.as_str()), ("1-good", "1-good"));
    assert!(dir.path().join("view/environments/production/hold.json").is_file());
    // An older commit stays held too; a newer one deploys and ends the hold.
    let (_, outcomes) = release(&url, &checkout, &entry("1b-older", 15));
    assert_eq!(outcomes[0].1, Outcome::Held("1-good".into()));
    let (_, outcomes) = release(&url, &checkout, &entry("3-fix", 30));
    assert_eq!(outcomes[0].1, Outcome::Deployed);
    assert!(!dir.path().join("a/environments/staging/hold.json").exists());
    assert!(dir.path().join("a/environments/production/hold.json").exists(), "until promoted");
    promote(&url, &checkout, "3-fix").unwrap();
    let (staging, production, _) = remote_state(&url, dir.path());
    assert_eq!((staging.as_str(), production.as_str()), ("3-fix", "3-fix"));
    assert!(!dir.path().join("view/environments/production/hold.json").exists());
}

#[test]
fn a_lifted_hold_lets_the_held_release_deploy_and_records_who_lifted_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = bare_repository(dir.path());
    let checkout = dir.path().join("a");
    release_to_production(&url, &checkout, &entry("1-good", 10));
    release_to_production(&url, &checkout, &entry("2-bad", 20));
    let repository = DeployRepository::open(&url, &checkout).unwrap();
    rollback(&repository, "1-good", &["production".to_owned()]).unwrap().unwrap();
    let (staging, production, _) = remote_state(&url, dir.path());
    assert_eq!(
        (staging.as_str(), production.as_str()),
        ("2-bad", "1-good"),
        "only production rolled back"
    );
    publish_hold_lift(&repository, "production", "Kim Minji", "the upstream fault is fixed")
        .unwrap()
        .unwrap();
    let message = &repository.log().unwrap()[0];
    assert!(message.starts_with("lift the rollback hold on production"), "{message}");
    assert!(
        message
            .ends_with("Hold-Lifted-By: Kim Minji\nHold-Lift-Reason: the upstream fault is fixed"),
        "{message}"
    );
    assert_eq!(
        publish_hold_lift(&repository, "production", "x", "y").unwrap(),
        None,
        "no hold left"
    );
    promote(&url, &checkout, "2-bad").unwrap();
    let (_, production, _) = remote_state(&url, dir.path());
    assert_eq!(production, "2-bad", "the lifted hold lets the held release be promoted again");
}

#[test]
fn a_rollback_across_a_contract_migration_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let url = bare_repository(dir.path());
    let checkout = dir.path().join("a");
    let a = [("1_base.sql", "expand")];
    let b = [("1_base.sql", "expand"), ("2_add_note.sql", "expand")];
    let c =
        [("1_base.sql", "expand"), ("2_add_note.sql", "expand"), ("3_drop_old.sql", "contract")];
    release_with_migrations(&url, &checkout, &entry("1-a", 10), &a);
    promote(&url, &checkout, "1-a");
    release_with_migrations(&url, &checkout, &entry("2-b", 20), &b);
    promote(&url, &checkout, "2-b");
    let repository = DeployRepository::open(&url, &checkout).unwrap();
    // Across an expand migration: fine.
    rollback(&repository, "1-a", &[]).unwrap().unwrap();
    release_with_migrations(&url, &checkout, &entry("3-c", 30), &c);
    promote(&url, &checkout, "3-c");
    let commits = repository.log().unwrap().len();
    for target in ["2-b", "1-a"] {
        let error = rollback(&repository, target, &[]).unwrap_err();
        let refused = error.downcast_ref::<rollback::Refused>().expect("refused");
        let named: Vec<(&str, &str)> = refused
            .blockers
            .iter()
            .map(|blocker| (blocker.environment.as_str(), blocker.migration.as_str()))
            .collect();
        assert_eq!(named, [("production", "3_drop_old.sql"), ("staging", "3_drop_old.sql")]);
        let text = error.to_string();
        assert!(text.contains("3_drop_old.sql (contract, shipped by 3-c)"), "{text}");
        assert!(!text.contains("2_add_note.sql"), "expand migrations do not block: {text}");
    }
    assert_eq!(repository.log().unwrap().len(), commits, "nothing was written");
    let (staging, production, _) = remote_state(&url, dir.path());
    assert_eq!((staging.as_str(), production.as_str()), ("3-c", "3-c"));
}

#[test]
fn a_promotion_writes_production_moves_its_branch_and_leaves_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = bare_repository(dir.path());
    let checkout = dir.path().join("a");
    release(&url, &checkout, &entry("1-a", 10));
    let pushed = promote(&url, &checkout, "1-a").unwrap();
    let repository = DeployRepository::open(&url, &checkout).unwrap();
    assert_eq!(repository.remote_head(PRODUCTION_BRANCH).unwrap(), Some(pushed.commit.clone()));
    let message = &repository.log().unwrap()[0];
    assert!(message.starts_with("promote release 1-a to production\n\nthe summary\n"), "{message}");
    let trailers = ledger::trailers(message);
    assert_eq!(trailers["Release-Id"], "1-a");
    assert_eq!(trailers["Promoted-By"], "tester");
    assert_eq!(trailers["Acknowledged"], "none");
    let (staging, production, _) = remote_state(&url, dir.path());
    assert_eq!((staging.as_str(), production.as_str()), ("1-a", "1-a"));
    // The next release moves main and staging only: production's branch stays on what was confirmed.
    release(&url, &checkout, &entry("2-b", 20));
    assert_eq!(repository.remote_head(PRODUCTION_BRANCH).unwrap(), Some(pushed.commit));
    let (staging, production, _) = remote_state(&url, dir.path());
    assert_eq!((staging.as_str(), production.as_str()), ("2-b", "1-a"));
    let lines = state::promotions(&dir.path().join("view"), "production").unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["release_id"], "1-a");
}

#[test]
fn a_refusal_is_recorded_on_main_and_moves_nothing_production_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let url = bare_repository(dir.path());
    let checkout = dir.path().join("a");
    release_to_production(&url, &checkout, &entry("1-a", 10));
    release(&url, &checkout, &entry("2-b", 20));
    let repository = DeployRepository::open(&url, &checkout).unwrap();
    let production_before = repository.remote_head(PRODUCTION_BRANCH).unwrap();
    let line = serde_json::json!({"release_id": "2-b", "outcome": "refused", "by": "tester",
                                  "reasons": ["no passing staging smoke check of 2-b"]});
    publish_refusal(&repository, "2-b", "production", &line).unwrap().unwrap();
    assert_eq!(repository.remote_head(PRODUCTION_BRANCH).unwrap(), production_before);
    let message = &repository.log().unwrap()[0];
    assert!(message.starts_with("refused: promote release 2-b to production"), "{message}");
    assert!(message.contains("- no passing staging smoke check of 2-b"), "{message}");
    let (_, production, _) = remote_state(&url, dir.path());
    assert_eq!(production, "1-a");
    let lines = state::promotions(&dir.path().join("view"), "production").unwrap();
    let outcomes: Vec<&str> = lines.iter().map(|line| line["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["promoted", "refused"]);
}

#[test]
fn a_promotion_confirmed_against_a_state_that_moved_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = bare_repository(dir.path());
    let checkout = dir.path().join("a");
    release(&url, &checkout, &entry("1-a", 10));
    release(&url, &checkout, &entry("2-b", 20));
    let repository = DeployRepository::open(&url, &checkout).unwrap();
    let line = serde_json::json!({});
    let promotion = |desired_before| Promotion {
        release_id: "2-b",
        environment: "production",
        desired_before,
        body: "",
        trailers: &[],
        line: &line,
        signing: &Signing::None,
    };
    // The person read a summary while production named 1-a, but nothing runs there yet.
    let error = publish_promotion(&repository, &promotion(Some("1-a"))).unwrap_err().to_string();
    assert!(error.contains("moved to nothing while the summary was read"), "{error}");
    assert_eq!(repository.remote_head(PRODUCTION_BRANCH).unwrap(), None, "nothing written");
    publish_promotion(&repository, &promotion(None)).unwrap().unwrap();
}

#[test]
fn a_rollback_returns_only_where_the_release_ran() {
    let dir = tempfile::tempdir().unwrap();
    let url = bare_repository(dir.path());
    let checkout = dir.path().join("a");
    release_to_production(&url, &checkout, &entry("1-a", 10));
    release(&url, &checkout, &entry("2-b", 20));
    release(&url, &checkout, &entry("3-c", 30));
    let repository = DeployRepository::open(&url, &checkout).unwrap();
    // 2-b ran in staging only: a rollback to it covers staging and leaves production's branch alone.
    let production = repository.remote_head(PRODUCTION_BRANCH).unwrap();
    rollback(&repository, "2-b", &[]).unwrap().unwrap();
    assert_eq!(repository.remote_head(PRODUCTION_BRANCH).unwrap(), production);
    let (staging, production, _) = remote_state(&url, dir.path());
    assert_eq!((staging.as_str(), production.as_str()), ("2-b", "1-a"));
    let error = rollback(&repository, "2-b", &["production".to_owned()]).unwrap_err().to_string();
    assert!(error.contains("production never ran release 2-b"), "{error}");
}

#[test]
fn a_signed_promotion_verifies_with_git() {
    let dir = tempfile::tempdir().unwrap();
    let url = bare_repository(dir.path());
    let checkout = dir.path().join("a");
    release(&url, &checkout, &entry("1-a", 10));
    let key = dir.path().join("signing");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "deploy", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen (openssh-client; .ci/run installs it)");
    assert!(keygen.success());
    let repository = DeployRepository::open(&url, &checkout).unwrap();
    let line = serde_json::json!({});
    let pushed = publish_promotion(
        &repository,
        &Promotion {
            release_id: "1-a",
            environment: "production",
            desired_before: None,
            body: "",
            trailers: &[],
            line: &line,
            signing: &Signing::Ssh(key.clone()),
        },
    )
    .unwrap()
    .unwrap();
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let allowed = dir.path().join("allowed_signers");
    std::fs::write(&allowed, format!("release@hangangjari.app {public}")).unwrap();
    let verify = Command::new("git")
        .arg("-C")
        .arg(&checkout)
        .arg("-c")
        .arg(format!("gpg.ssh.allowedSignersFile={}", allowed.display()))
        .args(["verify-commit", &pushed.commit])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
}
