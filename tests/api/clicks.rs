//! Click tracking: with `channels.email.track_clicks`, the links of a sent email point
//! at `PUBLIC_URL/c/TOKEN`; following one records a `click` on that touch (once per
//! link) and redirects to the original URL. The unsubscribe link is never wrapped; a
//! token we did not sign is a 404.

use crate::support::backends::TestStore;
use std::path::Path;

use rapport::domain::ContactId;

use crate::{harness::Backend, unsubscribe::sent_birthday};

const LINK: &str = "https://shop.example/gift?for=bea&amp;size=m";
const ORIGINAL: &str = "https://shop.example/gift?for=bea&size=m";

/// The shipped templates, with links in the family birthday email.
fn templates(into: &Path) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap().flatten() {
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), target).unwrap();
            }
        }
    }
    copy(&Path::new(crate::harness::REPO).join("templates"), into);
    std::fs::write(
        into.join("birthday/email.family.hbs"),
        format!(
            "---\nsubject: Happy birthday\n---\nA gift for you: {ORIGINAL}.\nOr write to us: mailto:hi@shop.example\n\
             --- html ---\n<p><a href=\"{LINK}\">A gift</a> and <a href='https://shop.example/'>the shop</a>, \
             <a href=\"mailto:hi@shop.example\">mail us</a>, <a href=\"https://rapport.example/u/not-wrapped\">unsubscribe</a>.</p>\n"
        ),
    )
    .unwrap();
}

/// Quoted-printable undone enough to read links: soft breaks joined, `=3D` back to `=`.
fn unfold(email: &str) -> String {
    email
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

fn tracked_links(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find("https://rapport.example/c/") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>'))
            .unwrap_or(tail.len());
        let link = tail[..end].trim_end_matches(['.', ',']);
        if !out.contains(&link.to_owned()) {
            out.push(link.to_owned());
        }
        rest = &tail[end..];
    }
    out
}

pub(crate) async fn clicks_are_recorded_and_redirected<S: TestStore>(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    templates(dir.path());
    let (s, email) = sent_birthday::<S>(
        b,
        &[
            ("RAPPORT__TEMPLATES__DIR", dir.path().display().to_string()),
            ("RAPPORT__CHANNELS__EMAIL__TRACK_CLICKS", "true".into()),
        ],
    )
    .await;
    let email = unfold(&email);
    assert!(
        !email.contains("shop.example/gift"),
        "the original link is wrapped:\n{email}"
    );
    assert!(email.contains("mailto:hi@shop.example"), "mail links stay");
    assert!(
        email.contains("https://rapport.example/u/not-wrapped"),
        "unsubscribe links stay:\n{email}"
    );
    let links = tracked_links(&email);
    // The gift link is in both parts with one token (same touch, same URL).
    assert_eq!(links.len(), 2, "the gift and the shop: {links:?}\n{email}");

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let follow = |link: String| {
        let url = link.replace("https://rapport.example", &s.base);
        let http = no_redirects.clone();
        async move {
            let res = http.get(url).send().await.unwrap();
            let location = res
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned());
            (res.status().as_u16(), location)
        }
    };
    let id = ContactId::parse("bday").unwrap();
    assert!(s.store.responses_for_contact(&id).await.unwrap().is_empty());
    for link in &links {
        let (status, location) = follow(link.clone()).await;
        assert_eq!(status, 302, "{link}");
        let location = location.unwrap();
        assert!(
            location == ORIGINAL || location == "https://shop.example/",
            "{location}"
        );
    }
    // Again: still redirected, nothing new learned.
    assert_eq!(follow(links[0].clone()).await.0, 302);
    let clicks = s.store.responses_for_contact(&id).await.unwrap();
    assert_eq!(
        clicks.len(),
        2,
        "one per link (the gift link is in both parts): {clicks:?}"
    );
    assert!(
        clicks
            .iter()
            .all(|r| r.kind.as_str() == "click" && r.touch.is_some())
    );
    let touch = &s.store.touches_for_contact(&id).await.unwrap()[0];
    assert!(touch.responded_at.is_some());

    // A token changed by one character, or made up, is not ours.
    let mut forged = links[0].clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert_eq!(follow(forged).await.0, 404);
    assert_eq!(
        follow("https://rapport.example/c/made-up".into()).await.0,
        404
    );
}
