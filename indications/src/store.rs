//! The subscriptions' own SQLite file (`<state-dir>/indications.db`): filters, destinations and
//! subscriptions as the CIM-XML of their instances, and the indication service's settings. A
//! separate file keeps the `wbem` door independent of the model's store.
//!
//! Every change is one SQLite transaction (one statement, or [`Store::set_settings`] for several
//! settings at once) in WAL mode, so a kill at any moment leaves each object wholly there or
//! wholly absent. The callers make a change in the store first and in memory after, under the
//! lock of their in-memory state, so what is served is what a restart loads.

use std::path::Path;

use parking_lot::Mutex;
use rusqlite::{params, Connection};
use wbem::cim::{CimValue, Instance};
use wbem::cimxml::{decode_embedded_object, write::embedded_text, CimObject};

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

impl Store {
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        let conn = Connection::open(path)?;
        // WAL, like the model's store: a kill -9 keeps every committed transaction. FULL sync
        // (the model's store uses NORMAL) also keeps the last ones across a power loss: these
        // objects change rarely, and a client that was told its subscription exists should
        // keep it.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS objects(kind TEXT NOT NULL, key TEXT NOT NULL, instance TEXT NOT NULL, PRIMARY KEY(kind, key));
             CREATE TABLE IF NOT EXISTS settings(name TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )?;
        Ok(Store { conn: Mutex::new(conn) })
    }

    /// An in-memory store (tests).
    pub fn memory() -> Store {
        let conn = Connection::open_in_memory().expect("in-memory sqlite");
        conn.execute_batch(
            "CREATE TABLE objects(kind TEXT NOT NULL, key TEXT NOT NULL, instance TEXT NOT NULL, PRIMARY KEY(kind, key));
             CREATE TABLE settings(name TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )
        .expect("schema");
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
