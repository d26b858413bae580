//! `rapport run` refuses to start on what `rapport check` rejects: a template using a
//! variable the sample contact lacks (strict mode) stops it with exit 78, naming the
//! occasion, channel, tier and file, before anything is sent; fixed, it starts and sends.

mod support;

use rapport::store::{Coordination, Ledger, SqliteStore};
use std::{path::Path, process::Stdio, time::Duration};

use support::{
    daemon::{Guard, REPO, Workspace, wait_exit},
    people::people,
    smtp::{SmtpOptions, SmtpServer},
};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn run_refuses_what_check_rejects_and_sends_nothing() {
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let ws = Workspace::new(&smtp.url(), "");
    copy_dir(&Path::new(REPO).join("templates"), &ws.path("templates"));
    let config = std::fs::read_to_string(ws.path("test.toml")).unwrap();
    let ours = format!("{}/templates", REPO);
    assert!(config.contains(&ours), "{config}");
    let config = config.replace(&ours, &ws.path("templates").display().to_string());
    std::fs::write(ws.path("test.toml"), config).unwrap();
    let template = ws.path("templates/birthday/email.hbs");
    let good = std::fs::read_to_string(&template).unwrap();
    let broken = good.replacen(
        "Hi {{contact.first_name}},",
        "Hi {{contact.attributes.shoe_size}},",
        1,
    );
    assert_ne!(good, broken, "the shipped template changed");
    std::fs::write(&template, &broken).unwrap();
    let (csv, people) = people(12);
    let due = people.iter().filter(|p| p.due).count();
    assert!(due > 0);
    ws.import_csv(&csv);

    let problem = "birthday / email / friend: birthday/email.hbs";
    let check = ws.run(&["check"]);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(78), "{check:?}");
    assert!(
        stdout.contains(&format!("FAIL  {problem}")) && stdout.contains("shoe_size"),
        "{stdout}"
    );

    let mut child = ws
        .command()
        .arg("run")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(20));
    let run = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(status.code(), Some(78), "{stderr}");
    let named = stderr
        .lines()
        .find(|l| l.contains(problem))
        .unwrap_or_else(|| panic!("{problem} is not named:\n{stderr}"));
    assert!(named.contains("shoe_size"), "{stderr}");
    assert!(stderr.contains("not starting"), "{stderr}");
    assert_eq!(smtp.count(), 0, "nothing is sent");
    let store = SqliteStore::open(&ws.db_url()).await.unwrap();
    assert!(
        store.status_counts().await.unwrap().is_empty(),
        "nothing is even planned"
    );
    store.close().await;

    // Fixed: it starts and sends.
    std::fs::write(&template, &good).unwrap();
    assert_eq!(ws.run(&["check"]).status.code(), Some(0));
    let mut daemon = Guard(Some(ws.start(0)));
    assert!(
        smtp.wait_for_count(due, Duration::from_secs(60)).await,
        "{} of {due} sent; log:\n{}",
        smtp.count(),
        ws.log(0)
    );
    daemon.stop_gracefully();
}
