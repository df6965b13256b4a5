//! The subscriptions' store (`indications.db`) against what the provider answered: every change
//! a call reports done is stored, one that fails leaves the store and the served instances as
//! they were, and a daemon opened again over the file serves what the last one did.

use std::path::Path;
use std::sync::Arc;

use httpd::auth::{Principal, Role};
use indications::store::Store;
use indications::{SubscriptionProvider, Subscriptions};
use wbem::cim::{CimStatus, Instance, ObjectPath};
use wbem::interop::INTEROP_NAMESPACE;
use wbem::mof::Repository;
use wbem::provider::{OpContext, Provider};

fn repo() -> Arc<Repository> {
    Arc::new(Repository::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../mof"))).expect("schema loads"))
}

struct Daemon {
    provider: SubscriptionProvider,
    ctx: OpContext,
}

impl Daemon {
    /// What a daemon starting over `path` loads.
    fn open(repo: &Arc<Repository>, path: &Path) -> Daemon {
        let store = Store::open(path).expect("store opens");
        let subs = Subscriptions::open(repo.clone(), store, "host", 100, false);
        let ctx = OpContext::new(Principal { user: "admin".into(), role: Role::PoolAdmin }, INTEROP_NAMESPACE, repo.clone());
        Daemon { provider: SubscriptionProvider(subs), ctx }
    }

    fn create(&self, i: Instance) -> Result<ObjectPath, wbem::cim::CimError> {
        self.provider.create_instance(&self.ctx, i)
    }

    fn names(&self, class: &str) -> Vec<String> {
        self.provider
            .enumerate_instances(&self.ctx, class)
            .unwrap()
            .map(|i| {
                let i = i.unwrap();
                match i.value("Name") {
                    Some(v) => v.scalar_text().unwrap_or_default(),
                    None => {
                        let f = i.value("Filter").and_then(|v| v.as_reference()).and_then(|p| p.key("Name")).map(|k| k.text());
                        f.unwrap_or_default()
                    }
                }
            })
            .collect()
    }

    fn instance(&self, class: &str) -> Instance {
        let mut all: Vec<Instance> = self.provider.enumerate_instances(&self.ctx, class).unwrap().map(Result::unwrap).collect();
        assert_eq!(all.len(), 1, "one {class}");
        all.remove(0)
    }

    /// A filter, a destination and a subscription of it named `name`: their paths.
    fn subscribe(&self, name: &str) -> [ObjectPath; 3] {
        let f = self
            .create(
                Instance::new("CIM_IndicationFilter")
                    .with("Name", name)
                    .with("Query", "SELECT * FROM CIM_InstCreation")
                    .with("QueryLanguage", "WQL"),
            )
            .unwrap();
        let d = self
            .create(
                Instance::new("CIM_ListenerDestinationCIMXML")
                    .with("Name", format!("{name}-dest").as_str())
                    .with("Destination", "http://127.0.0.1:9"),
            )
            .unwrap();
        let s = self.create(Instance::new("CIM_IndicationSubscription").with("Filter", f.clone()).with("Handler", d.clone())).unwrap();
        [f, d, s]
    }

    fn set_state(&self, sub: &ObjectPath, state: u16) -> Result<(), wbem::cim::CimError> {
        let i = Instance::new("CIM_IndicationSubscription").with("SubscriptionState", state).with_path(sub.clone());
        self.provider.modify_instance(&self.ctx, i, Some(&["SubscriptionState".to_string()]))
    }
}

/// Makes the store refuse writes to one table as a full disk or an I/O error would.
fn refuse_writes(path: &Path, table: &str) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(&format!(
        "CREATE TRIGGER refuse_insert BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END;
         CREATE TRIGGER refuse_update BEFORE UPDATE ON {table} BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END;"
    ))
    .unwrap();
}

fn allow_writes(path: &Path) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch("DROP TRIGGER refuse_insert; DROP TRIGGER refuse_update;").unwrap();
}

#[test]
fn a_service_modification_is_stored_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("indications.db");
    let repo = repo();
    let d = Daemon::open(&repo, &path);
    let mut svc = d.instance("CIM_IndicationService");
    let service_path = svc.path.clone().unwrap();
    svc.set("DeliveryRetryAttempts", 7u16);
    svc.set("DeliveryRetryInterval", 9u32);
    let list = ["DeliveryRetryAttempts".to_string(), "DeliveryRetryInterval".to_string()];
    d.provider.modify_instance(&d.ctx, svc.clone(), Some(&list)).unwrap();

    // The second of the settings cannot be written: the whole call fails and nothing of it stays.
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TRIGGER refuse_interval BEFORE UPDATE ON settings WHEN NEW.name = 'DeliveryRetryInterval'
             BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END;",
        )
        .unwrap();
    }
    svc.set("DeliveryRetryAttempts", 1u16);
    svc.set("DeliveryRetryInterval", 2u32);
    svc.path = Some(service_path);
    let e = d.provider.modify_instance(&d.ctx, svc, Some(&list)).unwrap_err();
    assert_eq!(e.status, CimStatus::Failed);
    let served = d.instance("CIM_IndicationService");
    assert_eq!(served.value("DeliveryRetryAttempts").and_then(|v| v.as_integer()), Some(7));
    assert_eq!(served.value("DeliveryRetryInterval").and_then(|v| v.as_integer()), Some(9));
    let again = Daemon::open(&repo, &path).instance("CIM_IndicationService");
    assert_eq!(again.value("DeliveryRetryAttempts").and_then(|v| v.as_integer()), Some(7), "half of a failed call was stored");
    assert_eq!(again.value("DeliveryRetryInterval").and_then(|v| v.as_integer()), Some(9));
}

#[test]
fn a_state_change_that_cannot_be_stored_fails_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("indications.db");
    let repo = repo();
    let d = Daemon::open(&repo, &path);
    let [_, _, sub] = d.subscribe("s");
    refuse_writes(&path, "objects");
    let e = d.set_state(&sub, 4).unwrap_err();
    assert_eq!(e.status, CimStatus::Failed);
    let state = |d: &Daemon| d.instance("CIM_IndicationSubscription").value("SubscriptionState").and_then(|v| v.as_integer());
    assert_eq!(state(&d), Some(2), "the call failed; the subscription is as it was");
    assert_eq!(state(&Daemon::open(&repo, &path)), Some(2));
    allow_writes(&path);
    d.set_state(&sub, 4).unwrap();
    assert_eq!(state(&Daemon::open(&repo, &path)), Some(4));
}

#[test]
fn a_deleted_subscription_stays_deleted_while_its_state_changes_at_the_same_time() {
    // DeleteInstance of a subscription racing a ModifyInstance of it (or a delivery giving up
    // and disabling it): whatever order they take, what is served is what is stored.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("indications.db");
    let repo = repo();
    let d = Arc::new(Daemon::open(&repo, &path));
    for round in 0..60 {
        let name = format!("race{round}");
        let [f, h, sub] = d.subscribe(&name);
        let modifier = {
            let (d, sub) = (d.clone(), sub.clone());
            std::thread::spawn(move || {
                let mut disable = true;
                while d.set_state(&sub, if disable { 4 } else { 2 }).is_ok() {
                    disable = !disable;
                }
            })
        };
        std::thread::yield_now();
        d.provider.delete_instance(&d.ctx, &sub).unwrap();
        modifier.join().unwrap();
        assert!(d.names("CIM_IndicationSubscription").is_empty());
        let stored = Store::open(&path).unwrap().load(indications::store::Kind::Subscription).unwrap();
        assert!(stored.is_empty(), "round {round}: the deleted subscription is back in the store: {:?}", stored[0].0);
        d.provider.delete_instance(&d.ctx, &f).unwrap();
        d.provider.delete_instance(&d.ctx, &h).unwrap();
    }
}

#[test]
fn what_was_served_before_is_served_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("indications.db");
    let repo = repo();
    let d = Daemon::open(&repo, &path);
    let [_, _, a] = d.subscribe("a");
    let [bf, bh, _] = d.subscribe("b");
    d.set_state(&a, 4).unwrap();
    let b_filter = d.names("CIM_IndicationFilter").into_iter().find(|n| n == "b").unwrap();
    assert_eq!(b_filter, "b");
    let before: Vec<Instance> = ["CIM_IndicationFilter", "CIM_ListenerDestinationCIMXML", "CIM_IndicationSubscription"]
        .iter()
        .flat_map(|c| d.provider.enumerate_instances(&d.ctx, c).unwrap().map(Result::unwrap).collect::<Vec<_>>())
        .collect();
    drop(d);
    let d = Daemon::open(&repo, &path);
    let after: Vec<Instance> = ["CIM_IndicationFilter", "CIM_ListenerDestinationCIMXML", "CIM_IndicationSubscription"]
        .iter()
        .flat_map(|c| d.provider.enumerate_instances(&d.ctx, c).unwrap().map(Result::unwrap).collect::<Vec<_>>())
        .collect();
    assert_eq!(before, after);

    // What was made before can be used as before: subscribed again, deleted.
    let c = d.create(Instance::new("CIM_ListenerDestinationCIMXML").with("Name", "c").with("Destination", "http://127.0.0.1:9")).unwrap();
    let s = d.create(Instance::new("CIM_IndicationSubscription").with("Filter", bf.clone()).with("Handler", c.clone())).unwrap();
    assert_eq!(d.names("CIM_IndicationSubscription"), ["a", "b", "b"]);
    d.provider.delete_instance(&d.ctx, &a).unwrap();
    d.provider.delete_instance(&d.ctx, &s).unwrap();
    let e = d.provider.delete_instance(&d.ctx, &bh.clone()).unwrap_err();
    assert_eq!(e.status, CimStatus::Failed, "b-dest is still used by b's subscription");
    d.set_state(&before[5].path.clone().unwrap(), 4).unwrap();
    let d = Daemon::open(&repo, &path);
    assert_eq!(d.names("CIM_IndicationSubscription"), ["b"]);
    assert_eq!(d.instance("CIM_IndicationSubscription").value("SubscriptionState").and_then(|v| v.as_integer()), Some(4));
}

#[test]
fn subscriptions_in_a_file_from_before_the_store_identity_are_served_after_adoption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("indications.db");
    let repo = repo();
    let d = Daemon::open(&repo, &path);
    let [_, _, sub] = d.subscribe("old");
    d.set_state(&sub, 4).unwrap();
    let served = |d: &Daemon| -> Vec<Instance> {
        ["CIM_IndicationFilter", "CIM_ListenerDestinationCIMXML", "CIM_IndicationSubscription", "CIM_IndicationService"]
            .iter()
            .flat_map(|c| d.provider.enumerate_instances(&d.ctx, c).unwrap().map(Result::unwrap).collect::<Vec<_>>())
            .collect()
    };
    let before = served(&d);
    drop(d);
    // The file as the store wrote it before it carried an identity: no meta, no application id.
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch("DROP TABLE meta; PRAGMA application_id = 0;").unwrap();
    drop(c);

    let d = Daemon::open(&repo, &path);
    assert_eq!(served(&d), before);
    let c = rusqlite::Connection::open(&path).unwrap();
    let id: i32 = c.query_row("PRAGMA application_id", [], |r| r.get(0)).unwrap();
    assert_eq!(id, indications::store::APPLICATION_ID, "the adopted file is stamped");
    let store: String = c.query_row("SELECT value FROM meta WHERE key = 'store'", [], |r| r.get(0)).unwrap();
    assert_eq!(store, indications::store::IDENTITY.name);
}
