//! The store the config names: one unusable or out of reach at start is exit 69 naming
//! its URL (never its password); a Redis backend needs a Redis URL.

use std::fs;

use crate::cli_env::{Env, assert_has, assert_lacks};

#[test]
fn an_unusable_store_at_start_is_exit_69_naming_the_url() {
    let mut env = Env::new();
    // A regular file where the database folder should be: the store cannot be created.
    fs::write(env.path("blocker"), "not a folder").unwrap();
    let url = format!("sqlite://{}/r.db", env.path_str("blocker"));
    env.set("RAPPORT__STORAGE__URL", url.clone());
    for args in [&["run"][..], &["contacts", "show", "x"][..]] {
        let run = env.run(args).expect(69);
        assert_has(&run.stderr, &url);
    }
}

#[test]
fn an_unreachable_redis_at_start_is_exit_69_naming_the_url_without_its_password() {
    let mut env = Env::new();
    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    env.set("RAPPORT__STORAGE__BACKEND", "redis");
    env.set(
        "RAPPORT__STORAGE__URL",
        format!("redis://:hunter2secret@127.0.0.1:{port}/0"),
    );
    for args in [&["run"][..], &["import", "nothing.csv"][..]] {
        let run = env.run(args).expect(69);
        assert_has(&run.stderr, &format!("redis://:***@127.0.0.1:{port}/0"));
        assert_lacks(&run.stderr, "hunter2secret");
    }
}

#[test]
fn a_redis_backend_needs_a_redis_url() {
    let mut env = Env::new();
    env.set("RAPPORT__STORAGE__BACKEND", "redis");
    env.set("RAPPORT__STORAGE__URL", "sqlite://data/r.db");
    env.set("RAPPORT__STORAGE__PREFIX", "has space");
    let run = env.run(&["check"]).expect(78);
    assert_has(&run.stderr, "storage.url");
    assert_has(&run.stderr, "is not a redis URL");
    assert_has(&run.stderr, "storage.prefix");
}
