//! What the CLI tests share: the repository, the exit codes they expect, the fixture
//! contacts, and a quoted-printable body made searchable.

pub(crate) const REPO: &str = env!("CARGO_MANIFEST_DIR");
pub(crate) const CONFIG_ERROR: i32 = 78;
pub(crate) const DATA_ERROR: i32 = 65;

/// Four good contacts: fam1 (family, Tokyo, --07-14), fri1 (friend, UTC), acq1
/// (acquaintance, Paris) and ny1 (friend, New York, --07-14).
pub(crate) const CONTACTS: &str = include_str!("../fixtures/cli/contacts.csv");
pub(crate) const BAD_ROWS_CSV: &str = include_str!("../fixtures/cli/bad_rows.csv");

/// Undoes quoted-printable soft line breaks so phrases can be searched in a body.
pub(crate) fn unfold_qp(s: &str) -> String {
    let s = s.replace("=\r\n", "").replace("=\n", "");
    s.replace("=3D", "=")
}
