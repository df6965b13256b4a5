//! Durable storage in SQLite: every object as one JSON row, written in one transaction per
//! API call (WAL), plus local users and a few facts about the installation.
//!
//! Rows name fields by their wire name, so a datamodel that gains a field reads older stores:
//! the new field takes its default.

use crate::store_identity;
use crate::value::Value;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

pub struct Store {
    conn: Connection,
}

/// One object as stored: its class name, ref and fields by name.
pub struct StoredObject {
    pub class: String,
    pub reference: String,
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// What a committed API call changes: objects written in full and objects removed.
#[derive(Default)]
pub struct StoreBatch {
    pub puts: Vec<(String, String, String)>,
    pub deletes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredUser {
    pub name: String,
    pub password_hash: String,
    pub role: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS objects (ref TEXT PRIMARY KEY, class TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS objects_class ON objects(class);
CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, role TEXT NOT NULL);
";

/// `PRAGMA application_id` of a xencim store ("xcm1"): `file(1)` and the check at open tell a
/// xencim store from any other SQLite database by it.
pub const APPLICATION_ID: i32 = store_identity::MODEL_APPLICATION_ID;
/// The store's layout version, in `meta` as `schema_version`. A store written by a newer
/// version is refused rather than misread.
pub const SCHEMA_VERSION: u32 = 1;

/// How the check at open ([`store_identity::check`]) knows this store: a mistyped
/// `--state-dir`, a damaged file or another program's database is refused before anything is
/// written to it. Stores written before the application id was set (exactly the tables of
/// [`SCHEMA`]) are adopted.
pub const IDENTITY: store_identity::Identity = store_identity::Identity {
    name: "xencim",
    application_id: APPLICATION_ID,
    schema_version: SCHEMA_VERSION,
    unmarked: &[("objects", &["ref", "class", "record"]), ("meta", &["key", "value"]), ("users", &["name", "password_hash", "role"])],
};

impl Store {
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        // WAL keeps every committed transaction across a kill -9; NORMAL sync only risks the
        // last transactions on power loss, which is the usual trade for a management daemon.
        let conn = store_identity::open(path, &IDENTITY, SCHEMA, "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(Store { conn })
    }

    /// Calls `f` for every stored object, one at a time, so that loading a large store never
    /// holds all of its text at once.
    pub fn for_each_object(&self, mut f: impl FnMut(StoredObject)) -> rusqlite::Result<usize> {
        let mut stmt = self.conn.prepare("SELECT class, ref, record FROM objects")?;
        let mut rows = stmt.query([])?;
        let mut count = 0;
        while let Some(row) = rows.next()? {
            let (class, reference): (String, String) = (row.get(0)?, row.get(1)?);
            let record = row
                .get_ref(2)?
                .as_str()
                .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e)))?;
            match serde_json::from_str::<serde_json::Value>(record) {
                Ok(serde_json::Value::Object(fields)) => {
                    count += 1;
                    f(StoredObject { class, reference, fields });
                }
                _ => tracing::error!(%reference, %class, "stored record is not a JSON object; skipped"),
            }
        }
        Ok(count)
    }

    pub fn apply(&mut self, batch: &StoreBatch) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT INTO objects (ref, class, record) VALUES (?1, ?2, ?3) ON CONFLICT(ref) DO UPDATE SET record = excluded.record",
            )?;
            for (class, reference, record) in &batch.puts {
                put.execute(params![reference, class, record])?;
            }
            let mut del = tx.prepare_cached("DELETE FROM objects WHERE ref = ?1")?;
            for reference in &batch.deletes {
                del.execute(params![reference])?;
            }
        }
        tx.commit()
    }

    pub fn meta(&self, key: &str) -> rusqlite::Result<Option<String>> {
        self.conn.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| r.get(0)).optional()
    }

    pub fn set_meta(&self, key: &str, value: &str) -> rusqlite::Result<()> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    pub fn user(&self, name: &str) -> rusqlite::Result<Option<StoredUser>> {
        self.conn
            .query_row("SELECT name, password_hash, role FROM users WHERE name = ?1", params![name], |r| {
                Ok(StoredUser { name: r.get(0)?, password_hash: r.get(1)?, role: r.get(2)? })
            })
            .optional()
    }

    pub fn users(&self) -> rusqlite::Result<Vec<StoredUser>> {
        let mut stmt = self.conn.prepare("SELECT name, password_hash, role FROM users ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok(StoredUser { name: r.get(0)?, password_hash: r.get(1)?, role: r.get(2)? }))?;
        rows.collect()
    }

    /// Inserts a user; false when the name is taken.
    pub fn add_user(&self, user: &StoredUser) -> rusqlite::Result<bool> {
        let n = self.conn.execute(
            "INSERT OR IGNORE INTO users (name, password_hash, role) VALUES (?1, ?2, ?3)",
            params![user.name, user.password_hash, user.role],
        )?;
        Ok(n == 1)
    }

    /// Updates the password hash or role of an existing user; false when there is none.
    pub fn update_user(&self, name: &str, password_hash: Option<&str>, role: Option<&str>) -> rusqlite::Result<bool> {
        let n = self.conn.execute(
            "UPDATE users SET password_hash = COALESCE(?2, password_hash), role = COALESCE(?3, role) WHERE name = ?1",
            params![name, password_hash, role],
        )?;
        Ok(n == 1)
    }

    pub fn remove_user(&self, name: &str) -> rusqlite::Result<bool> {
        Ok(self.conn.execute("DELETE FROM users WHERE name = ?1", params![name])? == 1)
    }
}

/// The JSON form of a stored value. Types come back from the datamodel on load.
pub fn to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Str(s) | Value::DateTime(s) => J::String(s.clone()),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map(J::Number).unwrap_or(J::Null),
        Value::Bool(b) => J::Bool(*b),
        Value::Array(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Struct(members) => J::Object(members.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        Value::Record(r) => J::Object(r.members().map(|(k, v)| (k.to_owned(), to_json(v))).collect()),
        Value::Nil => J::Null,
    }
}

pub fn from_json(json: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match json {
        J::String(s) => Value::Str(s.clone()),
        J::Number(n) => n.as_i64().map(Value::Int).unwrap_or_else(|| Value::Float(n.as_f64().unwrap_or(0.0))),
        J::Bool(b) => Value::Bool(*b),
        J::Array(items) => Value::Array(items.iter().map(from_json).collect()),
        J::Object(m) => Value::Struct(m.iter().map(|(k, v)| (k.clone(), from_json(v))).collect()),
        J::Null => Value::Nil,
    }
}

#[cfg(test)]
mod identity_tests {
    use super::*;

    #[test]
    fn a_new_store_is_marked_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("xencim.db");
        drop(Store::open(&path).unwrap());
        let s = Store::open(&path).unwrap();
        assert_eq!(s.meta("store").unwrap().as_deref(), Some("xencim"));
        assert_eq!(s.meta("schema_version").unwrap(), Some(SCHEMA_VERSION.to_string()));
        let id: i32 = s.conn.query_row("PRAGMA application_id", [], |r| r.get(0)).unwrap();
        assert_eq!(id, APPLICATION_ID);
    }

    #[test]
    fn garbage_and_foreign_databases_are_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = dir.path().join("garbage.db");
        let bytes: Vec<u8> = (0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        std::fs::write(&garbage, &bytes).unwrap();
        let e = Store::open(&garbage).err().unwrap().to_string();
        assert!(e.contains("is not a xencim store"), "{e}");
        assert_eq!(std::fs::read(&garbage).unwrap(), bytes);

        let foreign = dir.path().join("foreign.db");
        Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE moz_places (id INTEGER); INSERT INTO moz_places VALUES (1);")
            .unwrap();
        let before = std::fs::read(&foreign).unwrap();
        let e = Store::open(&foreign).err().unwrap().to_string();
        assert!(e.contains("another program") && e.contains("moz_places"), "{e}");
        assert_eq!(std::fs::read(&foreign).unwrap(), before);

        // A database that has our table names but another program's id is not ours either.
        let other = dir.path().join("other.db");
        let c = Connection::open(&other).unwrap();
        c.execute_batch("CREATE TABLE objects (x); PRAGMA application_id = 42;").unwrap();
        drop(c);
        assert!(Store::open(&other).is_err());
    }

    #[test]
    fn a_store_of_a_newer_version_is_refused_and_an_unmarked_one_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("xencim.db");
        let s = Store::open(&path).unwrap();
        s.set_meta("schema_version", "99").unwrap();
        drop(s);
        let e = Store::open(&path).err().unwrap().to_string();
        assert!(e.contains("newer xencim"), "{e}");

        let old = dir.path().join("old.db");
        Connection::open(&old).unwrap().execute_batch(SCHEMA).unwrap();
        let s = Store::open(&old).unwrap();
        assert_eq!(s.meta("store").unwrap().as_deref(), Some("xencim"));
    }
}
