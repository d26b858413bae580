//! `rapport check`: the shipped config files and templates pass, listing every occasion
//! and tier; a missing template or one using an undefined variable fails it.

use std::{fs, path::Path};

use crate::cli_env::{Env, TEMPLATES, assert_has};
use crate::shared::{CONFIG_ERROR, REPO};

#[test]
fn missing_templates_are_a_config_error_naming_the_occasion() {
    let mut env = Env::new();
    fs::create_dir(env.path("empty")).unwrap();
    env.set("RAPPORT__TEMPLATES__DIR", env.path_str("empty"));
    let run = env.run(&["check"]).expect(CONFIG_ERROR);
    assert_has(&run.stderr, "occasions.birthday: missing template");
    assert_has(&run.stderr, &env.path_str("empty/birthday/email.hbs"));
    assert!(!env.path("r.db").exists());
}

#[test]
fn check_fails_on_a_template_using_an_undefined_variable() {
    let mut env = Env::new();
    let dir = env.path("templates");
    for sub in [
        "birthday",
        "anniversary",
        "thank_you",
        "check_in",
        "partials",
    ] {
        fs::create_dir_all(dir.join(sub)).unwrap();
        for f in fs::read_dir(Path::new(TEMPLATES).join(sub)).unwrap() {
            let f = f.unwrap().path();
            fs::copy(&f, dir.join(sub).join(f.file_name().unwrap())).unwrap();
        }
    }
    let base = dir.join("birthday/email.hbs");
    let text = fs::read_to_string(&base).unwrap();
    let broken = text.replacen("Hi {{contact.first_name}},", "Hi {{contact.nickname}},", 1);
    assert_ne!(text, broken, "the shipped template changed");
    fs::write(&base, broken).unwrap();
    env.set("RAPPORT__TEMPLATES__DIR", dir.display().to_string());
    let run = env.run(&["check"]).expect(CONFIG_ERROR);
    assert_has(
        &run.stdout,
        "FAIL  birthday / email / friend: birthday/email.hbs",
    );
    assert_has(&run.stdout, "contact.nickname");
    assert_has(&run.stderr, "1 check(s) failed");
}

#[test]
fn check_with_the_shipped_templates_lists_every_occasion_and_tier() {
    let run = Env::new().run(&["check"]).expect(0);
    for (occasion, tier, file) in [
        ("birthday", "family", "email.family.hbs"),
        ("birthday", "friend", "email.hbs"),
        ("birthday", "acquaintance", "email.acquaintance.hbs"),
        ("anniversary", "family", "email.family.hbs"),
        ("anniversary", "friend", "email.hbs"),
        ("anniversary", "acquaintance", "email.acquaintance.hbs"),
        ("thank_you", "family", "email.family.hbs"),
        ("thank_you", "friend", "email.hbs"),
        ("check_in", "acquaintance", "email.acquaintance.hbs"),
    ] {
        let line = format!("ok    {occasion} / email / {tier}: {TEMPLATES}/{occasion}/{file}\n");
        assert_has(&run.stdout, &line);
    }
    // SMS too, for the tiers that allow it (acquaintances are email only).
    for (occasion, tier, file) in [
        ("birthday", "family", "sms.family.hbs"),
        ("birthday", "friend", "sms.hbs"),
        ("check_in", "friend", "sms.hbs"),
    ] {
        let line = format!("ok    {occasion} / sms / {tier}: {TEMPLATES}/{occasion}/{file}\n");
        assert_has(&run.stdout, &line);
    }
    assert!(
        !run.stdout.contains("/ sms / acquaintance"),
        "{}",
        run.stdout
    );
    let oks = run.stdout.lines().filter(|l| l.starts_with("ok ")).count();
    assert_eq!(oks, 20, "{}", run.stdout);
    assert_has(&run.stdout, "config and templates OK");
}

#[test]
fn every_shipped_config_file_validates() {
    let mut env = Env::new();
    env.vars.retain(|(k, _)| k != "RAPPORT__TEMPLATES__DIR");
    let mut seen = 0;
    for entry in fs::read_dir(Path::new(REPO).join("config")).unwrap() {
        let file = entry.unwrap().path();
        if file.extension().is_some_and(|e| e == "toml") {
            seen += 1;
            let run = env.run_in(
                Path::new(REPO),
                &["--config", file.to_str().unwrap(), "check"],
            );
            assert_has(&run.expect(0).stdout, "config and templates OK");
        }
    }
    assert!(
        seen >= 2,
        "expected config/rapport.toml and config/demo.toml"
    );
}
