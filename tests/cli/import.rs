//! `rapport import`: CSV and JSONL rows rejected by line and field while the good ones
//! are stored, a re-import is an upsert, and the sample contacts import cleanly.

use crate::cli_env::{Env, assert_has};
use crate::shared::{BAD_ROWS_CSV, CONTACTS, DATA_ERROR, REPO};

const BAD_ROWS_JSONL: &str = include_str!("../fixtures/cli/bad_rows.jsonl");

#[test]
fn csv_import_rejects_bad_rows_by_line_and_stores_the_good_ones() {
    let env = Env::new();
    let run = env.import("c.csv", BAD_ROWS_CSV).expect(DATA_ERROR);
    assert_has(&run.stdout, "3 contact(s) imported, 6 row(s) rejected");
    let expected = [
        (3, "email"),
        (5, "birthday"),
        (6, "tier"),
        (7, "timezone"),
        (8, "id"),
        (9, "(row)"),
    ];
    for (line, field) in expected {
        assert_has(
            &run.stderr,
            &format!("c.csv: line {line}: field `{field}`: "),
        );
    }
    assert_eq!(
        run.stderr.matches("c.csv: line ").count(),
        6,
        "{}",
        run.stderr
    );
    assert_eq!(env.count_contacts(), 3);
    let fam = env.show("fam1").expect(0).stdout;
    assert_has(&fam, "\"favourite_product\":\"the blue teapot\"");
    assert_has(&fam, "Asia/Tokyo");
    env.show("acq1").expect(0);
    env.show("fri1").expect(0);
    for bad in ["bad1", "bad2", "bad3", "bad4", "bad6"] {
        assert_has(
            &env.show(bad).failed().stderr,
            &format!("no contact with id {bad}"),
        );
    }
}

#[test]
fn csv_reimport_is_an_upsert() {
    let env = Env::new();
    let run = env.import("c.csv", CONTACTS).expect(0);
    assert_has(&run.stdout, "4 contact(s) imported, 0 row(s) rejected");
    assert_eq!(env.count_contacts(), 4);
    env.import("c.csv", CONTACTS).expect(0);
    assert_eq!(env.count_contacts(), 4);
    env.import("c.csv", &CONTACTS.replace("Fiona", "Fifi"))
        .expect(0);
    assert_eq!(env.count_contacts(), 4);
    assert_has(
        &env.show("fam1").expect(0).stdout,
        "name           Fifi Family",
    );
}

#[test]
fn jsonl_import_reports_bad_lines_and_stores_the_good_ones() {
    let env = Env::new();
    let run = env.import("c.jsonl", BAD_ROWS_JSONL).expect(DATA_ERROR);
    assert_has(&run.stdout, "2 contact(s) imported, 4 row(s) rejected");
    for (line, what) in [
        (2, "field `(row)`: not a JSON object"),
        (3, "field `email`: "),
        (5, "field `(row)`: not valid JSON"),
        (7, "field `first_name`: "),
    ] {
        assert_has(&run.stderr, &format!("c.jsonl: line {line}: {what}"));
    }
    assert_eq!(
        run.stderr.matches("c.jsonl: line ").count(),
        4,
        "{}",
        run.stderr
    );
    assert_eq!(env.count_contacts(), 2);
    let j1 = env.show("j1").expect(0).stdout;
    assert_has(&j1, "\"favourite_product\":\"the travel mug\"");
    assert_has(
        &env.show("j4").expect(0).stdout,
        "kim@example.com (no consent)",
    );
    for bad in ["j2", "j3", "j5"] {
        env.show(bad).failed();
    }
}

#[test]
fn the_sample_contacts_import_cleanly() {
    let env = Env::new();
    let samples = format!("{REPO}/samples/contacts.csv");
    let run = env.run(&["import", &samples]).expect(0);
    assert_has(&run.stdout, "366 contact(s) imported, 0 row(s) rejected");
    assert_eq!(env.count_contacts(), 366);
}
