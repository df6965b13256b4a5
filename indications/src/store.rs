//! The subscriptions' own SQLite file (`<state-dir>/indications.db`): filters, destinations and
//! subscriptions as the CIM-XML of their instances, and the indication service's settings. A
//! separate file keeps the `wbem` door independent of the model's store.
//!
//! Every change is one SQLite transaction (one statement, or [`Store::set_settings`] for several
//! settings at once) in WAL mode, so a kill at any moment leaves each object wholly there or
//! wholly absent. The callers make a change in the store first and in memory after, under the
//! lock of their in-memory state, so what is served is what a restart loads.
//!
//! The file carries its identity like the model's store (see [`xenapi::store_identity`]): its
//! own `PRAGMA application_id` and `meta` `store`/`schema_version`, checked at open ([`IDENTITY`]).

use std::path::Path;

use parking_lot::Mutex;
use rusqlite::{params, Connection};
use wbem::cim::{CimValue, Instance};
use wbem::cimxml::{decode_embedded_object, write::embedded_text, CimObject};
use xenapi::store_identity;

pub struct Store {
    conn: Mutex<Connection>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Filter,
    Destination,
    Subscription,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Filter => "filter",
            Kind::Destination => "destination",
            Kind::Subscription => "subscription",
        }
    }
}

/// The subscriptions' tables. `meta` (the store's identity) comes from [`store_identity::stamp`].
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS objects(kind TEXT NOT NULL, key TEXT NOT NULL, instance TEXT NOT NULL, PRIMARY KEY(kind, key));
CREATE TABLE IF NOT EXISTS settings(name TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// `PRAGMA application_id` of `indications.db` ("xci1"), distinct from the model's store's.
pub const APPLICATION_ID: i32 = store_identity::INDICATIONS_APPLICATION_ID;
/// The layout version, in `meta` as `schema_version`; a file written by a newer xencim is
/// refused rather than misread.
pub const SCHEMA_VERSION: u32 = 1;

/// How the check at open knows this file: one that is not SQLite, another program's database,
/// the model's `xencim.db` copied over it, or a newer schema is refused before anything is
/// written to it. A file written before the identity existed (exactly the `objects` and
/// `settings` tables of [`SCHEMA`], no application id) is adopted: it is stamped and kept.
pub const IDENTITY: store_identity::Identity = store_identity::Identity {
    name: "xencim indications",
    application_id: APPLICATION_ID,
    schema_version: SCHEMA_VERSION,
    unmarked: &[("objects", &["kind", "key", "instance"]), ("settings", &["name", "value"])],
};

impl Store {
    /// Opens (or creates) the store at `path`, refusing a file that is not one (see [`IDENTITY`]).
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        // WAL, like the model's store: a kill -9 keeps every committed transaction. FULL sync
        // (the model's store uses NORMAL) also keeps the last ones across a power loss: these
        // objects change rarely, and a client that was told its subscription exists should
        // keep it.
        let conn = store_identity::open(path, &IDENTITY, SCHEMA, "FULL")?;
        Ok(Store { conn: Mutex::new(conn) })
    }

    /// An in-memory store (tests).
    pub fn memory() -> Store {
        let mut conn = Connection::open_in_memory().expect("in-memory sqlite");
        store_identity::stamp(&mut conn, &IDENTITY, SCHEMA).expect("schema");
        Store { conn: Mutex::new(conn) }
    }

    pub fn put(&self, kind: Kind, key: &str, instance: &Instance) -> anyhow::Result<()> {
        let text = embedded_text(&CimValue::Instance(Box::new(instance.clone())))
            .ok_or_else(|| anyhow::anyhow!("the {} cannot be written as CIM-XML", instance.class_name))?;
        self.conn.lock().execute(
            "INSERT INTO objects(kind, key, instance) VALUES (?1, ?2, ?3) ON CONFLICT(kind, key) DO UPDATE SET instance = excluded.instance",
            params![kind.name(), key, text],
        )?;
        Ok(())
    }

    pub fn delete(&self, kind: Kind, key: &str) -> anyhow::Result<()> {
        self.conn.lock().execute("DELETE FROM objects WHERE kind = ?1 AND key = ?2", params![kind.name(), key])?;
        Ok(())
    }

    /// Every stored instance of a kind, in insertion order; unreadable rows are logged and skipped.
    pub fn load(&self, kind: Kind) -> anyhow::Result<Vec<(String, Instance)>> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare("SELECT key, instance FROM objects WHERE kind = ?1 ORDER BY rowid")?;
        let rows = stmt.query_map(params![kind.name()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (key, text) = row?;
            match decode_embedded_object(&text) {
                Ok(CimObject::Instance(i)) => out.push((key, i)),
                Ok(_) => tracing::warn!(kind = kind.name(), key, "stored indication object is not an instance; skipped"),
                Err(e) => tracing::warn!(kind = kind.name(), key, error = %e, "stored indication object does not parse; skipped"),
            }
        }
        Ok(out)
    }

    pub fn setting(&self, name: &str) -> Option<String> {
        self.conn.lock().query_row("SELECT value FROM settings WHERE name = ?1", params![name], |r| r.get(0)).ok()
    }

    pub fn set_setting(&self, name: &str, value: &str) -> anyhow::Result<()> {
        self.set_settings(&[(name, value.to_string())])
    }

    /// Several settings in one transaction: all of them are stored or none.
    pub fn set_settings(&self, settings: &[(&str, String)]) -> anyhow::Result<()> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        for (name, value) in settings {
            tx.execute(
                "INSERT INTO settings(name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                params![name, value],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod identity_tests {
    use super::*;

    fn refused(path: &Path) -> String {
        let before = std::fs::read(path).unwrap();
        let e = format!("{:#}", Store::open(path).err().expect("refused"));
        assert!(e.contains(&path.display().to_string()), "the message names the file: {e}");
        assert_eq!(std::fs::read(path).unwrap(), before, "a refused file is left as it was");
        e
    }

    fn app_id(path: &Path) -> i32 {
        Connection::open(path).unwrap().query_row("PRAGMA application_id", [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_new_store_is_marked_as_the_indications_store_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("indications.db");
        Store::open(&path).unwrap().set_setting("a", "1").unwrap();
        let s = Store::open(&path).unwrap();
        assert_eq!(s.setting("a").as_deref(), Some("1"));
        let meta = |k: &str| s.conn.lock().query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get::<_, String>(0)).unwrap();
        assert_eq!(meta("store"), "xencim indications");
        assert_eq!(meta("schema_version"), SCHEMA_VERSION.to_string());
        drop(s);
        assert_eq!(app_id(&path), APPLICATION_ID);
        assert_ne!(APPLICATION_ID, xenapi::store::APPLICATION_ID);
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("indications.db");
        let bytes: Vec<u8> = (0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let e = refused(&path);
        assert!(e.contains("is not a xencim indications store (SQLite cannot read it"), "{e}");
    }

    #[test]
    fn the_models_store_copied_over_it_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("xencim.db");
        let s = xenapi::store::Store::open(&model).unwrap();
        s.set_meta("installed", "yes").unwrap();
        drop(s);
        let path = dir.path().join("indications.db");
        std::fs::copy(&model, &path).unwrap();
        let e = refused(&path);
        assert!(e.contains("is not a xencim indications store: it is the model's store (xencim.db)"), "{e}");

        // A model store from before the application id: its tables are not the subscriptions'.
        let old = dir.path().join("old-model.db");
        Connection::open(&old)
            .unwrap()
            .execute_batch(
                "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                 CREATE TABLE objects (ref TEXT PRIMARY KEY, class TEXT NOT NULL, record TEXT NOT NULL);
                 CREATE TABLE users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, role TEXT NOT NULL);",
            )
            .unwrap();
        let e = refused(&old);
        assert!(e.contains("another program") && e.contains("meta, objects, users"), "{e}");
        // And the other way round: the model's store refuses an indications.db.
        let ours = dir.path().join("copy.db");
        drop(Store::open(&ours).unwrap());
        let e = xenapi::store::Store::open(&ours).err().unwrap().to_string();
        assert!(e.contains("is not a xencim store: it is the subscriptions' store (indications.db)"), "{e}");
    }

    #[test]
    fn another_programs_database_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("indications.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE moz_bookmarks (id INTEGER PRIMARY KEY, title TEXT); INSERT INTO moz_bookmarks (title) VALUES ('keep me');",
            )
            .unwrap();
        let e = refused(&path);
        assert!(e.contains("another program") && e.contains("moz_bookmarks"), "{e}");
        // Our table names with another program's id, or with other columns, are not ours either.
        let other = dir.path().join("other.db");
        Connection::open(&other).unwrap().execute_batch("CREATE TABLE objects (x); CREATE TABLE settings (y);").unwrap();
        assert!(refused(&other).contains("another program"));
        let c = Connection::open(&other).unwrap();
        c.execute_batch(&format!("DROP TABLE objects; DROP TABLE settings; {SCHEMA} PRAGMA application_id = 42;")).unwrap();
        drop(c);
        assert!(refused(&other).contains("application id 0x2a"));
    }

    #[test]
    fn a_store_of_a_newer_schema_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("indications.db");
        let s = Store::open(&path).unwrap();
        s.conn.lock().execute("UPDATE meta SET value = ?1 WHERE key = 'schema_version'", [(SCHEMA_VERSION + 1).to_string()]).unwrap();
        drop(s);
        let e = refused(&path);
        assert!(e.contains("newer xencim") && e.contains(&format!("schema {}", SCHEMA_VERSION + 1)), "{e}");
    }

    #[test]
    fn a_store_from_before_the_identity_is_adopted_with_its_contents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("indications.db");
        // What the store wrote before it carried an identity.
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.execute_batch(
            "CREATE TABLE IF NOT EXISTS objects(kind TEXT NOT NULL, key TEXT NOT NULL, instance TEXT NOT NULL, PRIMARY KEY(kind, key));
             CREATE TABLE IF NOT EXISTS settings(name TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO settings VALUES ('DeliveryRetryAttempts', '7');",
        )
        .unwrap();
        drop(c);
        assert_eq!(app_id(&path), 0);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.setting("DeliveryRetryAttempts").as_deref(), Some("7"));
        drop(s);
        assert_eq!(app_id(&path), APPLICATION_ID);
        assert_eq!(Store::open(&path).unwrap().setting("DeliveryRetryAttempts").as_deref(), Some("7"));
    }

    #[test]
    fn the_memory_store_is_marked_too() {
        let s = Store::memory();
        let id: i32 = s.conn.lock().query_row("PRAGMA application_id", [], |r| r.get(0)).unwrap();
        assert_eq!(id, APPLICATION_ID);
    }
}
