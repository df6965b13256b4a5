//! Telling xencim's SQLite files from anything else at open, so that a mistyped `--state-dir`,
//! a damaged file or one copied over another is refused before anything is written to it.
//!
//! Each file carries `PRAGMA application_id` (one per kind of file, all in
//! [`APPLICATION_IDS`]) and a `meta` table with `store` (the kind's name) and `schema_version`
//! (its layout). [`check`] reads them and refuses a file that is not SQLite, has another
//! application id (another program's, or another xencim file's), names another store or has a
//! newer schema. A file written before the identity existed (application id 0) is adopted only
//! when its tables are exactly the ones that store made then, column for column ([`Identity::unmarked`]).
//! [`stamp`] marks a new or adopted file, in one transaction.

use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

/// The model's store, `xencim.db` ("xcm1").
pub const MODEL_APPLICATION_ID: i32 = 0x7863_6d31;
/// The subscriptions' store, `indications.db` ("xci1").
pub const INDICATIONS_APPLICATION_ID: i32 = 0x7863_6931;

/// Every application id xencim uses, with the file it marks: one place, so that they stay
/// distinct and a file copied over another is named for what it is.
pub const APPLICATION_IDS: [(i32, &str); 2] =
    [(MODEL_APPLICATION_ID, "the model's store (xencim.db)"), (INDICATIONS_APPLICATION_ID, "the subscriptions' store (indications.db)")];

/// What identifies one kind of store.
pub struct Identity {
    /// `meta.store`, and in messages "not a {name} store".
    pub name: &'static str,
    pub application_id: i32,
    /// The newest layout this build reads; a file with a higher `meta.schema_version` is refused.
    pub schema_version: u32,
    /// The tables (with their columns, in order) that this store had before it carried an
    /// identity. An unmarked file is adopted when every table it has is one of these, with
    /// these columns, and it has the first; anything else unmarked with tables is foreign.
    pub unmarked: &'static [(&'static str, &'static [&'static str])],
}

/// What [`check`] found in a file it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// No tables yet: a new file.
    New,
    /// Marked as this store.
    Marked,
    /// Written before the identity existed, with this store's tables: adopt it by [`stamp`].
    Unmarked,
}

fn tables(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?;
    let names = stmt.query_map([], |r| r.get(0))?.collect();
    names
}

fn columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
    let names = stmt.query_map(params![table], |r| r.get(0))?.collect();
    names
}

fn shown_id(id: i32) -> String {
    let bytes = id.to_be_bytes();
    if bytes.iter().all(|b| b.is_ascii_graphic()) {
        format!("{id:#x} \"{}\"", String::from_utf8_lossy(&bytes))
    } else {
        format!("{id:#x}")
    }
}

/// Reads the file's identity and refuses it unless it is `id`'s store (or new, or an unmarked
/// one of its own). Writes nothing: a refused file is left as it was.
pub fn check(conn: &Connection, path: &Path, id: &Identity) -> anyhow::Result<Found> {
    let shown = path.display();
    let name = id.name;
    let tables = tables(conn).map_err(|e| {
        anyhow::anyhow!(
            "{shown} is not a {name} store (SQLite cannot read it: {e}); refusing to use it. Move it away to start with an empty store"
        )
    })?;
    let app_id: i32 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    if app_id != id.application_id && app_id != 0 {
        if let Some((_, what)) = APPLICATION_IDS.iter().find(|(other, _)| *other == app_id) {
            anyhow::bail!(
                "{shown} is not a {name} store: it is {what} (application id {}); refusing to use it. Put the right file back or move it away",
                shown_id(app_id)
            );
        }
        anyhow::bail!(
            "{shown} is a SQLite database of another program (application id {}, tables {}); refusing to use it. Point --state-dir elsewhere or move the file away",
            shown_id(app_id),
            if tables.is_empty() { "none".to_string() } else { tables.join(", ") }
        );
    }
    let found = if app_id != 0 {
        Found::Marked
    } else if tables.is_empty() {
        return Ok(Found::New);
    } else {
        let mut ours = tables.iter().any(|t| id.unmarked.first().is_some_and(|(first, _)| first == t));
        for t in &tables {
            let expected = id.unmarked.iter().find(|(name, _)| name == t).map(|(_, cols)| *cols);
            ours &= match expected {
                Some(cols) => columns(conn, t)? == cols,
                None => false,
            };
        }
        anyhow::ensure!(
            ours,
            "{shown} is a SQLite database of another program (application id 0, tables {}); refusing to use it. Point --state-dir elsewhere or move the file away",
            tables.join(", ")
        );
        Found::Unmarked
    };
    if tables.iter().any(|t| t == "meta") {
        let meta = |key: &str| -> anyhow::Result<Option<String>> {
            Ok(conn.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| r.get(0)).optional()?)
        };
        if let Some(store) = meta("store")? {
            anyhow::ensure!(store == name, "{shown} is not a {name} store: its meta names the store {store:?}; refusing to use it");
        }
        if let Some(v) = meta("schema_version")? {
            let v: u32 = v.parse().map_err(|_| anyhow::anyhow!("{shown}: unreadable schema_version {v:?}; refusing to use it"))?;
            anyhow::ensure!(
                v <= id.schema_version,
                "{shown} was written by a newer xencim ({name} store schema {v}, this one knows up to {}); refusing to use it",
                id.schema_version
            );
        }
    }
    Ok(found)
}

/// Marks the file as `id`'s store: the `meta` table with `store` and `schema_version` (values
/// already there are kept), `schema` (the store's own `CREATE ... IF NOT EXISTS`), and the
/// application id, all in one transaction, so a kill leaves the file marked or as it was. On a
/// file already marked it writes nothing.
pub fn stamp(conn: &mut Connection, id: &Identity, schema: &str) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);")?;
    tx.execute_batch(schema)?;
    tx.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('store', ?1)", params![id.name])?;
    tx.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?1)", params![id.schema_version.to_string()])?;
    let app_id: i32 = tx.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    if app_id != id.application_id {
        tx.pragma_update(None, "application_id", id.application_id)?;
    }
    tx.commit()
}

/// Opens `path` for `id`'s store: a 10 s busy timeout, refused unless [`check`] accepts it,
/// `schema` created and the file [`stamp`]ed, then WAL mode and `synchronous` as given.
pub fn open(path: &Path, id: &Identity, schema: &str, synchronous: &str) -> anyhow::Result<Connection> {
    let mut conn = Connection::open(path).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let found = check(&conn, path, id)?;
    // Stamped before WAL is turned on, so that a new file carries its identity in the file
    // itself from the start, not only in a `-wal` beside it that a copy may leave behind.
    stamp(&mut conn, id, schema)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    if found == Found::Unmarked {
        tracing::info!(path = %path.display(), store = id.name, "adopted a store written before stores carried an identity");
    }
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST: Identity = Identity {
        name: "test",
        application_id: 0x7465_7374,
        schema_version: 2,
        unmarked: &[("things", &["id", "what"]), ("extra", &["x"])],
    };

    #[test]
    fn application_ids_are_distinct() {
        for (i, (a, _)) in APPLICATION_IDS.iter().enumerate() {
            assert!(APPLICATION_IDS[i + 1..].iter().all(|(b, _)| a != b));
            assert_ne!(*a, 0);
        }
    }

    #[test]
    fn a_new_file_carries_its_identity_without_its_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let c = open(&path, &TEST, "CREATE TABLE IF NOT EXISTS things (id, what);", "FULL").unwrap();
        c.execute("INSERT INTO things VALUES (1, 'x')", []).unwrap();
        // A copy of the file alone while the store is open (its writes still in the WAL).
        let copy = dir.path().join("copy.db");
        std::fs::copy(&path, &copy).unwrap();
        let cc = Connection::open(&copy).unwrap();
        assert_eq!(check(&cc, &copy, &TEST).unwrap(), Found::Marked);
        assert_eq!(cc.query_row("PRAGMA application_id", [], |r| r.get::<_, i32>(0)).unwrap(), TEST.application_id);
        assert_eq!(cc.query_row("SELECT value FROM meta WHERE key = 'store'", [], |r| r.get::<_, String>(0)).unwrap(), "test");
        drop(c);
    }

    #[test]
    fn new_marked_unmarked_and_refused_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let schema = "CREATE TABLE IF NOT EXISTS things (id, what);";
        let c = open(&path, &TEST, schema, "FULL").unwrap();
        let v: String = c.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)).unwrap();
        assert_eq!(v, "2");
        drop(c);
        assert_eq!(check(&Connection::open(&path).unwrap(), &path, &TEST).unwrap(), Found::Marked);

        // Unmarked: exactly the old tables (or some of them, with the first) is adopted.
        let old = dir.path().join("old.db");
        Connection::open(&old).unwrap().execute_batch("CREATE TABLE things (id, what);").unwrap();
        assert_eq!(check(&Connection::open(&old).unwrap(), &old, &TEST).unwrap(), Found::Unmarked);
        // ... but not with other columns, another table, or without the first table.
        for (i, sql) in
            ["CREATE TABLE things (id, how);", "CREATE TABLE things (id, what); CREATE TABLE t2 (a);", "CREATE TABLE extra (x);"]
                .iter()
                .enumerate()
        {
            let p = dir.path().join(format!("other{i}.db"));
            Connection::open(&p).unwrap().execute_batch(sql).unwrap();
            let e = check(&Connection::open(&p).unwrap(), &p, &TEST).unwrap_err().to_string();
            assert!(e.contains("another program"), "{sql}: {e}");
        }

        // Another xencim file is named as such; an unknown id with no tables is still foreign.
        let model = dir.path().join("model.db");
        Connection::open(&model).unwrap().pragma_update(None, "application_id", MODEL_APPLICATION_ID).unwrap();
        let e = check(&Connection::open(&model).unwrap(), &model, &TEST).unwrap_err().to_string();
        assert!(e.contains("is not a test store: it is the model's store (xencim.db)") && e.contains("\"xcm1\""), "{e}");
        let empty = dir.path().join("empty.db");
        Connection::open(&empty).unwrap().pragma_update(None, "application_id", 7).unwrap();
        let e = check(&Connection::open(&empty).unwrap(), &empty, &TEST).unwrap_err().to_string();
        assert!(e.contains("another program (application id 0x7, tables none)"), "{e}");

        // A marked file whose meta names another store, or a newer or unreadable schema.
        for (key, value, says) in [
            ("store", "other", "names the store \"other\""),
            ("schema_version", "3", "newer xencim"),
            ("schema_version", "x", "unreadable"),
        ] {
            let c = open(&path, &TEST, schema, "FULL").unwrap();
            let before = c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get::<_, String>(0)).unwrap();
            c.execute("UPDATE meta SET value = ?2 WHERE key = ?1", [key, value]).unwrap();
            let e = check(&c, &path, &TEST).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains("t.db"), "{e}");
            c.execute("UPDATE meta SET value = ?2 WHERE key = ?1", [key, before.as_str()]).unwrap();
        }
    }
}
