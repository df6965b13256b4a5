//! The registry: every object of every class in memory, one writer at a time, each write one
//! SQLite transaction and one generation of the event stream.
//!
//! Writers work through a [`Tx`]; if their closure fails, or the store refuses the commit,
//! every change is undone, so a failed call leaves no trace.

use crate::datamodel::{class, default_value, ClassId, FieldId, Type, CLASSES, NULL_REF, RELATIONS};
use crate::error::{codes, ApiError, ApiResult};
use crate::store::{to_json, Store, StoreBatch};
use crate::value::Value;
use parking_lot::{Condvar, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Instant;

pub type Ref = String;

pub fn new_ref() -> Ref {
    format!("OpaqueRef:{}", uuid::Uuid::new_v4())
}

/// Classes whose objects live only as long as the process: sessions, tasks and events.
pub fn is_persistent(c: ClassId) -> bool {
    !matches!(c, class::session | class::task | class::event)
}

#[derive(Clone, Debug)]
pub struct Row {
    /// Shared copy-on-write, so that records, event snapshots and undo entries are O(1).
    pub fields: Arc<Vec<Value>>,
    /// Generation of the transaction that created the object.
    pub created: u64,
    /// Generation of the last transaction that changed it.
    pub modified: u64,
}

impl Row {
    pub fn get(&self, f: FieldId) -> &Value {
        &self.fields[f.index()]
    }
    pub fn str(&self, f: FieldId) -> &str {
        self.get(f).as_str().unwrap_or("")
    }
    pub fn int(&self, f: FieldId) -> i64 {
        match self.get(f) {
            Value::Int(i) => *i,
            Value::Float(x) => *x as i64,
            _ => 0,
        }
    }
    pub fn float(&self, f: FieldId) -> f64 {
        match self.get(f) {
            Value::Float(x) => *x,
            Value::Int(i) => *i as f64,
            _ => 0.0,
        }
    }
    pub fn bool(&self, f: FieldId) -> bool {
        matches!(self.get(f), Value::Bool(true))
    }
    pub fn list(&self, f: FieldId) -> &[Value] {
        match self.get(f) {
            Value::Array(items) => items,
            _ => &[],
        }
    }
    pub fn strs(&self, f: FieldId) -> Vec<String> {
        self.list(f).iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
    }
    pub fn map(&self, f: FieldId) -> &[(String, Value)] {
        match self.get(f) {
            Value::Struct(m) => m,
            _ => &[],
        }
    }
    pub fn map_get(&self, f: FieldId, key: &str) -> Option<&str> {
        self.map(f).iter().find(|(k, _)| k == key).and_then(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Table {
    rows: BTreeMap<Ref, Row>,
    by_uuid: HashMap<String, Ref>,
}

#[derive(Clone, Debug)]
pub struct Deletion {
    pub generation: u64,
    pub class: ClassId,
    pub reference: Ref,
    pub uuid: String,
}

/// Deletions kept for `event.from` callers that come back with an older token.
const DELETION_LOG: usize = 65_536;

pub struct Data {
    tables: Vec<Table>,
    generation: u64,
    deleted: VecDeque<Deletion>,
}

impl Data {
    fn table(&self, c: ClassId) -> &Table {
        &self.tables[c.0 as usize]
    }
    fn table_mut(&mut self, c: ClassId) -> &mut Table {
        &mut self.tables[c.0 as usize]
    }
    pub fn generation(&self) -> u64 {
        self.generation
    }
    pub fn row(&self, c: ClassId, r: &str) -> Option<&Row> {
        self.table(c).rows.get(r)
    }
    /// The row, or `HANDLE_INVALID [Class, ref]`.
    pub fn expect(&self, c: ClassId, r: &str) -> ApiResult<&Row> {
        self.row(c, r).ok_or_else(|| ApiError::handle_invalid(c.name(), r))
    }
    pub fn rows(&self, c: ClassId) -> impl Iterator<Item = (&Ref, &Row)> {
        self.table(c).rows.iter()
    }
    pub fn count(&self, c: ClassId) -> usize {
        self.table(c).rows.len()
    }
    pub fn by_uuid(&self, c: ClassId, uuid: &str) -> Option<&Ref> {
        self.table(c).by_uuid.get(uuid)
    }
    /// Resolves a ref; for seed-era clients, which passed UUIDs where refs were expected, a
    /// UUID of an object of the class works too.
    pub fn resolve<'a>(&'a self, c: ClassId, r: &'a str) -> Option<&'a str> {
        if self.table(c).rows.contains_key(r) {
            Some(r)
        } else {
            self.by_uuid(c, r).map(String::as_str)
        }
    }
    pub fn deletions_since(&self, generation: u64) -> impl Iterator<Item = &Deletion> {
        self.deleted.iter().filter(move |d| d.generation > generation)
    }
    /// The oldest generation whose deletions are all still known.
    pub fn deletion_horizon(&self) -> u64 {
        if self.deleted.len() < DELETION_LOG {
            0
        } else {
            self.deleted.front().map(|d| d.generation).unwrap_or(0)
        }
    }
    /// An object as a wire record: every field by name, in datamodel order.
    pub fn record(&self, c: ClassId, r: &str) -> Option<Value> {
        self.row(c, r).map(|row| record_of(c, &row.fields))
    }
}

pub fn record_of(c: ClassId, fields: &Arc<Vec<Value>>) -> Value {
    Value::Record(crate::value::Record { class: c, fields: fields.clone() })
}

/// A new row of a class with every field at its default and a fresh UUID.
pub fn default_fields(c: ClassId) -> Vec<Value> {
    let mut fields: Vec<Value> = c.def().fields.iter().map(default_value).collect();
    if c.def().fields.first().is_some_and(|f| f.name == "uuid") {
        fields[0] = Value::Str(uuid::Uuid::new_v4().to_string());
    }
    fields
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Add,
    Mod,
    Del,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Mod => "mod",
            Op::Del => "del",
        }
    }
}

/// One object's change in a committed transaction, with its state before and after.
#[derive(Debug)]
pub struct Change {
    pub class: ClassId,
    pub reference: Ref,
    pub op: Op,
    pub before: Option<Arc<Vec<Value>>>,
    pub after: Option<Arc<Vec<Value>>>,
}

/// What one committed transaction changed, for event queues and CIM indications.
#[derive(Debug)]
pub struct Commit {
    pub generation: u64,
    pub changes: Vec<Change>,
}

/// A transaction in progress over the registry.
pub struct Tx<'a> {
    data: &'a mut Data,
    /// The state of each touched object before its first change (None: did not exist).
    undo: Vec<(ClassId, Ref, Option<Row>)>,
    touched: HashSet<(ClassId, Ref)>,
}

impl<'a> Tx<'a> {
    pub fn data(&self) -> &Data {
        self.data
    }

    fn remember(&mut self, c: ClassId, r: &str) {
        if self.touched.insert((c, r.to_owned())) {
            let before = self.data.row(c, r).cloned();
            self.undo.push((c, r.to_owned(), before));
        }
    }

    /// Creates an object; relations of its many-to-one fields are kept.
    pub fn insert(&mut self, c: ClassId, fields: Vec<Value>) -> Ref {
        let r = new_ref();
        self.insert_with_ref(c, r.clone(), fields);
        r
    }

    pub fn insert_with_ref(&mut self, c: ClassId, r: Ref, fields: Vec<Value>) {
        debug_assert_eq!(fields.len(), c.def().fields.len());
        self.remember(c, &r);
        let uuid = fields[0].as_str().unwrap_or("").to_owned();
        let t = self.data.table_mut(c);
        if !uuid.is_empty() {
            t.by_uuid.insert(uuid, r.clone());
        }
        t.rows.insert(r.clone(), Row { fields: Arc::new(fields), created: 0, modified: 0 });
        for rel in RELATIONS.iter().filter(|rel| rel.from.0 == c) {
            let target = self.data.row(c, &r).unwrap().str(rel.from.1).to_owned();
            self.link(rel.to, &target, &r, true);
        }
    }

    /// Adds or removes `member` in the set field `to` of `target`, if that object exists.
    fn link(&mut self, to: (ClassId, FieldId), target: &str, member: &str, add: bool) {
        if target == NULL_REF || self.data.row(to.0, target).is_none() {
            return;
        }
        self.remember(to.0, target);
        let row = self.data.table_mut(to.0).rows.get_mut(target).unwrap();
        if let Value::Array(items) = &mut Arc::make_mut(&mut row.fields)[to.1.index()] {
            let present = items.iter().position(|v| v.as_str() == Some(member));
            match (add, present) {
                (true, None) => items.push(Value::Str(member.to_owned())),
                (false, Some(i)) => {
                    items.remove(i);
                }
                _ => {}
            }
        }
    }

    pub fn set(&mut self, c: ClassId, r: &str, f: FieldId, value: Value) -> ApiResult<()> {
        let old = self.data.expect(c, r)?.get(f).clone();
        if old == value {
            return Ok(());
        }
        self.remember(c, r);
        for rel in RELATIONS.iter().filter(|rel| rel.from == (c, f)) {
            self.link(rel.to, old.as_str().unwrap_or(NULL_REF), r, false);
            self.link(rel.to, value.as_str().unwrap_or(NULL_REF), r, true);
        }
        let row = self.data.table_mut(c).rows.get_mut(r).unwrap();
        Arc::make_mut(&mut row.fields)[f.index()] = value;
        Ok(())
    }

    /// Applies `edit` to a field in place (maps and sets), recording the change.
    pub fn update(&mut self, c: ClassId, r: &str, f: FieldId, edit: impl FnOnce(&mut Value)) -> ApiResult<()> {
        let mut v = self.data.expect(c, r)?.get(f).clone();
        edit(&mut v);
        self.set(c, r, f, v)
    }

    /// Refs of the objects of a class that this transaction has touched so far.
    pub fn touched_refs(&self, c: ClassId) -> Vec<Ref> {
        self.undo.iter().filter(|(cc, _, _)| *cc == c).map(|(_, r, _)| r.clone()).collect()
    }

    /// Marks an object as modified without changing it (`event.inject`).
    pub fn touch(&mut self, c: ClassId, r: &str) -> ApiResult<()> {
        self.data.expect(c, r)?;
        self.remember(c, r);
        Ok(())
    }

    /// Deletes an object; it leaves the sets that referred to it through relations.
    pub fn remove(&mut self, c: ClassId, r: &str) -> ApiResult<Row> {
        self.data.expect(c, r)?;
        self.remember(c, r);
        for rel in RELATIONS.iter().filter(|rel| rel.from.0 == c) {
            let target = self.data.row(c, r).unwrap().str(rel.from.1).to_owned();
            self.link(rel.to, &target, r, false);
        }
        let t = self.data.table_mut(c);
        let row = t.rows.remove(r).unwrap();
        if let Some(uuid) = row.fields[0].as_str() {
            t.by_uuid.remove(uuid);
        }
        Ok(row)
    }

    /// Restores every touched row. Also runs when a writer panics (through `Drop`), so a
    /// panic inside a transaction cannot leave half a change behind.
    fn rollback(&mut self) {
        for (c, r, before) in std::mem::take(&mut self.undo).into_iter().rev() {
            let t = self.data.table_mut(c);
            if let Some(old) = t.rows.remove(&r) {
                if let Some(uuid) = old.fields[0].as_str() {
                    t.by_uuid.remove(uuid);
                }
            }
            if let Some(row) = before {
                if let Some(uuid) = row.fields[0].as_str() {
                    t.by_uuid.insert(uuid.to_owned(), r.clone());
                }
                t.rows.insert(r, row);
            }
        }
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        // Committed transactions have taken their undo log; anything left is unfinished.
        if !self.undo.is_empty() {
            self.rollback();
        }
    }
}

/// Sees every commit, in generation order, with the registry exactly as that commit left it
/// (see [`Db::observe`]).
pub type Observer = Box<dyn FnMut(&Data, &Commit) + Send>;

/// The registry and its durable store.
pub struct Db {
    data: RwLock<Data>,
    store: Mutex<Store>,
    /// Latest committed generation, for waiters (`event.from`, `event.next`).
    latest: Mutex<u64>,
    committed: Condvar,
    subscribers: Mutex<Vec<Sender<Arc<Commit>>>>,
    observers: Mutex<Vec<Observer>>,
}

impl Db {
    /// Opens the registry from a store, loading every persisted object.
    pub fn open(store: Store) -> anyhow::Result<Db> {
        let mut data = Data { tables: CLASSES.iter().map(|_| Table::default()).collect(), generation: 1, deleted: VecDeque::new() };
        let started = Instant::now();
        let count = store.for_each_object(|obj| {
            let Some(def) = crate::datamodel::class_by_name(&obj.class) else {
                tracing::warn!(class = %obj.class, "stored object of an unknown class; ignored");
                return;
            };
            let fields = fields_from_json(def.id, &obj.fields);
            let t = data.table_mut(def.id);
            if let Some(uuid) = fields[0].as_str() {
                t.by_uuid.insert(uuid.to_owned(), obj.reference.clone());
            }
            t.rows.insert(obj.reference, Row { fields: Arc::new(fields), created: 1, modified: 1 });
        })?;
        tracing::info!(objects = count, elapsed_ms = started.elapsed().as_millis() as u64, "registry loaded");
        Ok(Db {
            data: RwLock::new(data),
            store: Mutex::new(store),
            latest: Mutex::new(1),
            committed: Condvar::new(),
            subscribers: Mutex::new(vec![]),
            observers: Mutex::new(vec![]),
        })
    }

    pub fn read(&self) -> RwLockReadGuard<'_, Data> {
        self.data.read()
    }

    pub fn store(&self) -> parking_lot::MutexGuard<'_, Store> {
        self.store.lock()
    }

    /// Runs `f` as one transaction: all its changes are committed to the store and published as
    /// one generation, or none are.
    pub fn write<R>(&self, f: impl FnOnce(&mut Tx) -> ApiResult<R>) -> ApiResult<R> {
        let mut data = self.data.write();
        let mut tx = Tx { data: &mut data, undo: Vec::new(), touched: HashSet::new() };
        let result = match f(&mut tx) {
            Ok(r) => r,
            Err(e) => {
                tx.rollback();
                return Err(e);
            }
        };
        if tx.undo.is_empty() {
            return Ok(result);
        }
        let generation = tx.data.generation + 1;
        let mut batch = StoreBatch::default();
        for (c, r, _) in &tx.undo {
            if !is_persistent(*c) {
                continue;
            }
            match tx.data.row(*c, r) {
                Some(row) => batch.puts.push((c.name().to_owned(), r.clone(), fields_to_json(*c, &row.fields))),
                None => batch.deletes.push(r.clone()),
            }
        }
        if !batch.puts.is_empty() || !batch.deletes.is_empty() {
            if let Err(e) = self.store.lock().apply(&batch) {
                tracing::error!(error = %e, "store commit failed; transaction rolled back");
                tx.rollback();
                return Err(ApiError::internal(format!("database commit failed: {e}")));
            }
        }
        let undo = std::mem::take(&mut tx.undo);
        drop(tx);
        let d = &mut *data;
        d.generation = generation;
        let want_changes = !self.subscribers.lock().is_empty() || !self.observers.lock().is_empty();
        let mut changes = Vec::new();
        for (c, r, before) in undo {
            let after = d.table_mut(c).rows.get_mut(&r).map(|row| {
                if before.is_none() {
                    row.created = generation;
                }
                row.modified = generation;
                row.fields.clone()
            });
            let op = match (&before, &after) {
                (None, Some(_)) => Op::Add,
                (Some(_), None) => Op::Del,
                (Some(_), Some(_)) => Op::Mod,
                (None, None) => continue,
            };
            if op == Op::Del {
                let uuid = before.as_ref().and_then(|b| b.fields[0].as_str()).unwrap_or("").to_owned();
                d.deleted.push_back(Deletion { generation, class: c, reference: r.clone(), uuid });
                if d.deleted.len() > DELETION_LOG {
                    d.deleted.pop_front();
                }
            }
            if want_changes {
                changes.push(Change { class: c, reference: r, op, before: before.map(|b| b.fields), after });
            }
        }
        // Published while writers still wait (the lock downgraded to a read lock): observers see
        // the registry as this commit left it, and commits reach observers and subscribers in
        // generation order (two writers releasing the lock and then publishing could swap).
        let data = RwLockWriteGuard::downgrade(data);
        *self.latest.lock() = generation;
        if want_changes {
            let commit = Arc::new(Commit { generation, changes });
            for observe in self.observers.lock().iter_mut() {
                // The commit stands whatever an observer does; its bug is not the writer's error.
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| observe(&data, &commit))).is_err() {
                    tracing::error!(generation, "a commit observer panicked");
                }
            }
            self.subscribers.lock().retain(|s| s.send(commit.clone()).is_ok());
        }
        drop(data);
        self.committed.notify_all();
        Ok(result)
    }

    /// Changes a field without a new generation or a store write: for bookkeeping that is not
    /// an event (a session's last activity).
    pub fn set_quietly(&self, c: ClassId, r: &str, f: FieldId, value: Value) {
        if let Some(row) = self.data.write().table_mut(c).rows.get_mut(r) {
            Arc::make_mut(&mut row.fields)[f.index()] = value;
        }
    }

    /// Blocks until a generation newer than `seen` is committed or `deadline` passes.
    pub fn wait_for_change(&self, seen: u64, deadline: Instant) -> u64 {
        let mut latest = self.latest.lock();
        while *latest <= seen {
            if self.committed.wait_until(&mut latest, deadline).timed_out() {
                break;
            }
        }
        *latest
    }

    /// Wakes every waiter (for example when a session's event queue is closed).
    pub fn wake_all(&self) {
        self.committed.notify_all();
    }

    /// Registers an observer of every commit from now on. `start` sees the registry as it is
    /// (no commit can fall between it and the first observed one) and returns the observer.
    /// The observer runs on the committing thread, in generation order, with the registry as
    /// that commit left it, while other writers wait: it must be quick, must not read or write
    /// the registry through the `Db` (it is given the data), and hands heavier work to a thread
    /// of its own. Unlike a [`Db::subscribe`] receiver, which reads the registry when it gets
    /// to a commit, possibly several commits later, it never misses an intermediate state.
    pub fn observe(&self, start: impl FnOnce(&Data) -> Observer) {
        let data = self.data.write();
        let observer = start(&data);
        self.observers.lock().push(observer);
    }

    /// Every committed transaction from now on, with its changes, in generation order.
    pub fn subscribe(&self) -> Receiver<Arc<Commit>> {
        let (tx, rx) = channel();
        self.subscribers.lock().push(tx);
        rx
    }
}

fn fields_to_json(c: ClassId, fields: &[Value]) -> String {
    let map: serde_json::Map<String, serde_json::Value> =
        c.def().fields.iter().zip(fields).map(|(f, v)| (f.name.to_owned(), to_json(v))).collect();
    serde_json::Value::Object(map).to_string()
}

fn fields_from_json(c: ClassId, stored: &serde_json::Map<String, serde_json::Value>) -> Vec<Value> {
    c.def()
        .fields
        .iter()
        .map(|f| match stored.get(f.name) {
            Some(json) => {
                let v = crate::store::from_json(json);
                match f.ty {
                    Type::Record(_) | Type::AnyRecord | Type::EventBatch => v,
                    ty => crate::datamodel::coerce(v, ty).unwrap_or_else(|_| default_value(f)),
                }
            }
            None => default_value(f),
        })
        .collect()
}

/// A fresh `Data`-free check used by tests: a UUID-keyed error for unknown UUIDs.
pub fn uuid_invalid(c: ClassId, uuid: &str) -> ApiError {
    ApiError::new(codes::UUID_INVALID, [c.name(), uuid])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datamodel::{vbd, vm};

    fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("x.db")).unwrap();
        (dir, Db::open(store).unwrap())
    }

    #[test]
    fn relations_follow_the_many_to_one_side() {
        let (_d, db) = db();
        let (vm_ref, vbd_ref) = db
            .write(|tx| {
                let vm_ref = tx.insert(class::VM, default_fields(class::VM));
                let mut f = default_fields(class::VBD);
                f[vbd::VM.index()] = Value::Str(vm_ref.clone());
                let vbd_ref = tx.insert(class::VBD, f);
                Ok((vm_ref, vbd_ref))
            })
            .unwrap();
        assert_eq!(db.read().row(class::VM, &vm_ref).unwrap().strs(vm::VBDS), vec![vbd_ref.clone()]);
        db.write(|tx| tx.remove(class::VBD, &vbd_ref).map(|_| ())).unwrap();
        assert!(db.read().row(class::VM, &vm_ref).unwrap().strs(vm::VBDS).is_empty());
    }

    #[test]
    fn a_failed_transaction_leaves_nothing() {
        let (_d, db) = db();
        let vm_ref = db.write(|tx| Ok(tx.insert(class::VM, default_fields(class::VM)))).unwrap();
        let gen = db.read().generation();
        let err = db.write(|tx| {
            tx.set(class::VM, &vm_ref, vm::NAME_LABEL, Value::str("changed"))?;
            tx.insert(class::VM, default_fields(class::VM));
            Err::<(), _>(ApiError::internal("boom"))
        });
        assert!(err.is_err());
        let data = db.read();
        assert_eq!(data.count(class::VM), 1);
        assert_eq!(data.row(class::VM, &vm_ref).unwrap().str(vm::NAME_LABEL), "");
        assert_eq!(data.generation(), gen);
    }

    #[test]
    fn a_panicking_writer_leaves_nothing() {
        let (_d, db) = db();
        let vm_ref = db.write(|tx| Ok(tx.insert(class::VM, default_fields(class::VM)))).unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = db.write(|tx| -> ApiResult<()> {
                tx.set(class::VM, &vm_ref, vm::NAME_LABEL, Value::str("half"))?;
                panic!("a bug in a writer");
            });
        }));
        assert!(result.is_err());
        assert_eq!(db.read().row(class::VM, &vm_ref).unwrap().str(vm::NAME_LABEL), "");
        // The registry is still usable after the panic.
        db.write(|tx| tx.set(class::VM, &vm_ref, vm::NAME_LABEL, Value::str("after"))).unwrap();
    }

    #[test]
    fn observers_see_every_commit_in_order_as_it_left_the_registry() {
        let (_d, db) = db();
        let db = Arc::new(db);
        let vm_ref = db.write(|tx| Ok(tx.insert(class::VM, default_fields(class::VM)))).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        db.observe(move |data| {
            let first = data.generation();
            s2.lock().push((first, first, String::new()));
            Box::new(move |data: &Data, commit: &Commit| {
                let label = data.row(class::VM, &commit.changes[0].reference).unwrap().str(vm::NAME_LABEL).to_owned();
                s2.lock().push((commit.generation, data.generation(), label));
            })
        });
        let receiver = db.subscribe();
        // Writers racing: each commit reaches the observer in generation order, with the
        // registry as that commit left it (not a later writer's state).
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (db, vm_ref) = (db.clone(), vm_ref.clone());
                std::thread::spawn(move || {
                    for n in 0..50 {
                        db.write(|tx| tx.set(class::VM, &vm_ref, vm::NAME_LABEL, Value::Str(format!("{w}-{n}")))).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let seen = seen.lock();
        assert_eq!(seen.len(), 201);
        for pair in seen.windows(2) {
            assert_eq!(pair[1].0, pair[0].0 + 1, "generations in order, none missed");
        }
        for (generation, data_generation, _) in seen.iter() {
            assert_eq!(generation, data_generation, "the registry as the commit left it");
        }
        // Every label a writer set was seen once (each commit's own state, none replaced).
        let mut labels: Vec<&str> = seen[1..].iter().map(|(_, _, l)| l.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), 200);
        // Subscribers get the same commits in the same order.
        let generations: Vec<u64> = receiver.try_iter().map(|c| c.generation).collect();
        assert_eq!(generations, seen[1..].iter().map(|(g, _, _)| *g).collect::<Vec<_>>());
        assert_eq!(db.read().generation(), seen.last().unwrap().0);
    }

    #[test]
    fn committed_objects_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let vm_ref = {
            let db = Db::open(Store::open(&path).unwrap()).unwrap();
            db.write(|tx| {
                let mut f = default_fields(class::VM);
                f[vm::NAME_LABEL.index()] = Value::str("persisted");
                f[vm::MEMORY_STATIC_MAX.index()] = Value::Int(1 << 30);
                Ok(tx.insert(class::VM, f))
            })
            .unwrap()
        };
        let db = Db::open(Store::open(&path).unwrap()).unwrap();
        let data = db.read();
        let row = data.row(class::VM, &vm_ref).unwrap();
        assert_eq!(row.str(vm::NAME_LABEL), "persisted");
        assert_eq!(row.int(vm::MEMORY_STATIC_MAX), 1 << 30);
        assert_eq!(data.by_uuid(class::VM, row.str(vm::UUID)), Some(&vm_ref));
    }
}
