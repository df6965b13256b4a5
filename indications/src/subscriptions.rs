//! The subscription objects of root/interop (DSP1054): CIM_IndicationFilter,
//! CIM_ListenerDestinationCIMXML (and the older CIM_IndicationHandlerCIMXML),
//! CIM_IndicationSubscription, and the CIM_IndicationService with its capabilities. They are kept
//! in memory for matching and in [`Store`] for restarts. Every change is made in the store first
//! and in memory after, while the in-memory state is locked for writing, so that two calls about
//! one object cannot leave the store and the memory disagreeing, and a change the store refuses
//! fails the call and changes nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use httpd::auth::Role;
use parking_lot::RwLock;
use wbem::cim::{fold_name, names_equal, CimDateTime, CimError, CimStatus, CimValue, Instance, ObjectPath};
use wbem::interop::INTEROP_NAMESPACE;
use wbem::mof::Repository;
use wbem::provider::{InstanceIter, OpContext, ProvidedClass, Provider};

use crate::delivery::{check_url, Delivery, FatalAction, RetrySettings};
use crate::filter::CompiledFilter;
use crate::store::{Kind, Store};

pub const FILTER: &str = "CIM_IndicationFilter";
pub const DESTINATION: &str = "CIM_ListenerDestinationCIMXML";
pub const HANDLER: &str = "CIM_IndicationHandlerCIMXML";
pub const SUBSCRIPTION: &str = "CIM_IndicationSubscription";
pub const SERVICE: &str = "CIM_IndicationService";
pub const CAPABILITIES: &str = "CIM_IndicationServiceCapabilities";
pub const ELEMENT_CAPABILITIES: &str = "CIM_ElementCapabilities";
const SYSTEM_CLASS: &str = "CIM_ComputerSystem";
const SERVICE_NAME: &str = "xencim:IndicationService";
const CAPABILITIES_ID: &str = "xencim:IndicationServiceCapabilities";

/// Limits on what clients may create (each destination has a delivery thread).
pub const MAX_FILTERS: usize = 1024;
pub const MAX_DESTINATIONS: usize = 64;
pub const MAX_SUBSCRIPTIONS: usize = 256;

pub const STATE_ENABLED: u16 = 2;
pub const STATE_DISABLED: u16 = 4;

/// The indication service's settings (CIM_IndicationService, writable by pool-admin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSettings {
    pub retry_attempts: u16,
    pub retry_interval_secs: u32,
    /// SubscriptionRemovalAction: 2 Remove, 3 Disable, 4 Ignore, 5 Disable Destination; applies
    /// to subscriptions whose OnFatalErrorPolicy is NULL or Other.
    pub removal_action: u16,
}

impl Default for ServiceSettings {
    fn default() -> ServiceSettings {
        ServiceSettings { retry_attempts: 3, retry_interval_secs: 5, removal_action: 3 }
    }
}

struct FilterEntry {
    instance: Instance,
    compiled: Arc<CompiledFilter>,
}

struct DestEntry {
    instance: Instance,
    url: String,
}

struct SubEntry {
    instance: Instance,
    filter: String,
    destination: String,
    state: u16,
    /// Monotonic start and duration, for expiry.
    started: Instant,
    duration: Option<u64>,
}

#[derive(Default)]
struct State {
    filters: BTreeMap<String, FilterEntry>,
    destinations: BTreeMap<String, DestEntry>,
    subscriptions: BTreeMap<String, SubEntry>,
}

/// Subscriptions, their persistence, and the entry point of indications ([`Subscriptions::deliver`]).
pub struct Subscriptions {
    repo: Arc<Repository>,
    store: Store,
    system_name: String,
    state: RwLock<State>,
    settings: RwLock<ServiceSettings>,
    retry: Arc<RwLock<RetrySettings>>,
    pub delivery: Delivery,
}

fn key_of(name: &str) -> String {
    fold_name(name)
}

fn sub_key(filter: &str, destination: &str) -> String {
    format!("{filter}\u{1f}{destination}")
}

fn text(i: &Instance, name: &str) -> Option<String> {
    match i.value(name)? {
        CimValue::String(s) => Some(s.clone()),
        v => v.scalar_text(),
    }
}

fn texts(i: &Instance, name: &str) -> Vec<String> {
    match i.value(name) {
        Some(CimValue::Array(a)) => a.values().filter_map(CimValue::scalar_text).collect(),
        Some(v) => v.scalar_text().into_iter().collect(),
        None => Vec::new(),
    }
}

fn uint(i: &Instance, name: &str) -> Result<Option<u64>, CimError> {
    let Some(v) = i.value(name) else { return Ok(None) };
    let n = match v {
        CimValue::String(s) => s.trim().parse::<i128>().ok(),
        v => v.as_integer(),
    };
    match n {
        Some(n) if (0..=i128::from(u64::MAX)).contains(&n) => Ok(Some(n as u64)),
        _ => Err(CimError::invalid_parameter(format!("{name} must be an unsigned integer"))),
    }
}

fn reference(i: &Instance, name: &str) -> Result<ObjectPath, CimError> {
    match i.value(name) {
        Some(CimValue::Reference(p)) => Ok(p.clone()),
        Some(CimValue::String(s)) => ObjectPath::parse(s),
        _ => Err(CimError::invalid_parameter(format!("{SUBSCRIPTION} needs the reference {name}"))),
    }
}

fn now() -> CimDateTime {
    CimDateTime::now()
}

/// The path of a stored filter or destination, from the key properties it was stored with (the
/// store keeps instances without their paths).
fn stored_path(i: &Instance) -> ObjectPath {
    let key = |n: &str| text(i, n).unwrap_or_default();
    ObjectPath::new(Some(INTEROP_NAMESPACE), i.class_name.as_str())
        .with_key("SystemCreationClassName", key("SystemCreationClassName"))
        .with_key("SystemName", key("SystemName"))
        .with_key("CreationClassName", key("CreationClassName"))
        .with_key("Name", key("Name"))
}

impl Subscriptions {
    /// Opens the store and loads what it holds; filters that no longer compile (a schema change)
    /// are logged and kept out, with their subscriptions.
    pub fn open(repo: Arc<Repository>, store: Store, system_name: &str, queue_limit: usize, tls_verify: bool) -> Arc<Subscriptions> {
        let mut settings = ServiceSettings::default();
        if let Some(v) = store.setting("DeliveryRetryAttempts").and_then(|v| v.parse().ok()) {
            settings.retry_attempts = v;
        }
        if let Some(v) = store.setting("DeliveryRetryInterval").and_then(|v| v.parse().ok()) {
            settings.retry_interval_secs = v;
        }
        if let Some(v) = store.setting("SubscriptionRemovalAction").and_then(|v| v.parse().ok()) {
            settings.removal_action = v;
        }
        let retry = Arc::new(RwLock::new(RetrySettings {
            attempts: settings.retry_attempts,
            interval: Duration::from_secs(u64::from(settings.retry_interval_secs)),
        }));
        let subs = Arc::new_cyclic(|weak: &Weak<Subscriptions>| {
            let weak = weak.clone();
            let on_fatal = Arc::new(move |dest: &str, sub: &str, error: &str| match weak.upgrade() {
                Some(s) => s.fatal(dest, sub, error),
                None => FatalAction::Stop,
            });
            Subscriptions {
                repo,
                store,
                system_name: system_name.to_string(),
                state: RwLock::new(State::default()),
                settings: RwLock::new(settings),
                retry: retry.clone(),
                delivery: Delivery::new(retry, queue_limit, tls_verify, on_fatal),
            }
        });
        subs.load();
        subs
    }

    fn load(&self) {
        let mut st = self.state.write();
        for (key, mut i) in self.store.load(Kind::Filter).unwrap_or_default() {
            i.path = Some(stored_path(&i));
            let name = text(&i, "Name").unwrap_or_default();
            let lang = text(&i, "QueryLanguage").unwrap_or_default();
            let query = text(&i, "Query").unwrap_or_default();
            match CompiledFilter::compile(&self.repo, &name, &lang, &query, &source_namespaces(&i)) {
                Ok(c) => {
                    st.filters.insert(key, FilterEntry { instance: i, compiled: Arc::new(c) });
                }
                Err(e) => tracing::error!(filter = name, error = %e, "stored indication filter no longer compiles; not loaded"),
            }
        }
        for (key, mut i) in self.store.load(Kind::Destination).unwrap_or_default() {
            i.path = Some(stored_path(&i));
            let url = text(&i, "Destination").unwrap_or_default();
            st.destinations.insert(key, DestEntry { instance: i, url });
        }
        for (key, mut i) in self.store.load(Kind::Subscription).unwrap_or_default() {
            let (Ok(f), Ok(d)) = (reference(&i, "Filter"), reference(&i, "Handler")) else { continue };
            let filter = key_of(&f.key("Name").map(|k| k.text()).unwrap_or_default());
            let destination = key_of(&d.key("Name").map(|k| k.text()).unwrap_or_default());
            let (Some(f), Some(d)) = (st.filters.get(&filter), st.destinations.get(&destination)) else {
                tracing::error!(subscription = key, "stored subscription names a missing filter or destination; not loaded");
                continue;
            };
            i.path = Some(self.subscription_path(&f.instance, &d.instance));
            let state = uint(&i, "SubscriptionState").ok().flatten().map(|v| v as u16).unwrap_or(STATE_ENABLED);
            // A duration counts from the restart: the time the daemon was down is not known to
            // have been observed by the listener either.
            let duration = uint(&i, "SubscriptionDuration").ok().flatten();
            st.subscriptions.insert(key, SubEntry { instance: i, filter, destination, state, started: Instant::now(), duration });
        }
        tracing::info!(
            filters = st.filters.len(),
            destinations = st.destinations.len(),
            subscriptions = st.subscriptions.len(),
            "indication subscriptions loaded"
        );
    }

    fn persist(&self, kind: Kind, key: &str, instance: &Instance) -> Result<(), CimError> {
        self.store.put(kind, key, instance).map_err(|e| CimError::failed(format!("cannot store the {}: {e}", instance.class_name)))
    }

    fn unpersist(&self, kind: Kind, key: &str) -> Result<(), CimError> {
        self.store.delete(kind, key).map_err(|e| CimError::failed(format!("cannot update the store: {e}")))
    }

    pub fn settings(&self) -> ServiceSettings {
        *self.settings.read()
    }

    /// Offers an indication raised in `namespace` to every enabled subscription; those whose
    /// filter selects it get it, projected, on their destination's queue.
    pub fn deliver(&self, namespace: &str, indication: &Instance) {
        let mut expired = Vec::new();
        {
            let st = self.state.read();
            for (key, sub) in &st.subscriptions {
                if sub.state != STATE_ENABLED {
                    continue;
                }
                if sub.duration.is_some_and(|d| sub.started.elapsed() >= Duration::from_secs(d)) {
                    expired.push(key.clone());
                    continue;
                }
                let (Some(filter), Some(dest)) = (st.filters.get(&sub.filter), st.destinations.get(&sub.destination)) else { continue };
                if !filter.compiled.matches(&self.repo, namespace, indication) {
                    continue;
                }
                let mut i = filter.compiled.project(indication.clone());
                i.set("IndicationFilterName", filter.compiled.name.as_str());
                self.delivery.enqueue(&sub.destination, &dest.url, key, i);
            }
        }
        for key in expired {
            tracing::info!(subscription = key, "subscription duration elapsed; removed");
            self.remove_subscription(&key);
        }
    }

    /// Whether any subscription could receive an indication (the generator skips work otherwise).
    pub fn any_enabled(&self) -> bool {
        self.state.read().subscriptions.values().any(|s| s.state == STATE_ENABLED)
    }

    /// Removes a subscription the daemon itself ends (its duration elapsed, or the Remove policy).
    fn remove_subscription(&self, key: &str) {
        let mut st = self.state.write();
        if !st.subscriptions.contains_key(key) {
            return;
        }
        if let Err(e) = self.store.delete(Kind::Subscription, key) {
            // Gone from memory all the same: it stopped; a restart would bring it back.
            tracing::error!(subscription = key, error = %e, "cannot remove the subscription from the store");
        }
        st.subscriptions.remove(key);
        drop(st);
        self.delivery.purge_subscription(key);
    }

    /// Sets a subscription's SubscriptionState, in the store and then in memory; a subscription
    /// that is gone (deleted meanwhile) stays gone.
    fn set_state(&self, key: &str, state: u16) -> Result<(), CimError> {
        let mut st = self.state.write();
        let Some(sub) = st.subscriptions.get_mut(key) else {
            return Err(CimError::not_found("the subscription was deleted meanwhile"));
        };
        let mut instance = sub.instance.clone();
        instance.set("SubscriptionState", state);
        instance.set("TimeOfLastStateChange", now());
        self.persist(Kind::Subscription, key, &instance)?;
        sub.state = state;
        sub.instance = instance;
        Ok(())
    }

    /// [`Subscriptions::set_state`] for the daemon's own decisions (a delivery failed fatally).
    fn disable(&self, key: &str) {
        if let Err(e) = self.set_state(key, STATE_DISABLED) {
            if e.status != CimStatus::NotFound {
                tracing::error!(subscription = key, error = %e.description, "cannot disable the subscription");
            }
        }
    }

    /// A delivery failed after every retry: apply the subscription's OnFatalErrorPolicy (or the
    /// service's SubscriptionRemovalAction when the policy is NULL or Other).
    fn fatal(&self, destination: &str, subscription: &str, error: &str) -> FatalAction {
        let policy = self.state.read().subscriptions.get(subscription).and_then(|s| uint(&s.instance, "OnFatalErrorPolicy").ok().flatten());
        let action = match policy {
            Some(2) => 4,
            Some(3) => 3,
            Some(4) => 2,
            _ => self.settings.read().removal_action,
        };
        match action {
            4 => FatalAction::Ignore,
            2 => {
                tracing::warn!(subscription, error, "delivery failed fatally: subscription removed");
                self.remove_subscription(subscription);
                FatalAction::Stop
            }
            5 => {
                tracing::warn!(destination, error, "delivery failed fatally: every subscription of the destination disabled");
                let keys: Vec<String> =
                    self.state.read().subscriptions.iter().filter(|(_, s)| s.destination == destination).map(|(k, _)| k.clone()).collect();
                for k in keys {
                    self.disable(&k);
                    self.delivery.purge_subscription(&k);
                }
                FatalAction::Stop
            }
            _ => {
                tracing::warn!(subscription, error, "delivery failed fatally: subscription disabled");
                self.disable(subscription);
                FatalAction::Stop
            }
        }
    }

    fn system_keys(&self, path: ObjectPath, class: &str) -> ObjectPath {
        path.with_key("SystemCreationClassName", SYSTEM_CLASS)
            .with_key("SystemName", self.system_name.as_str())
            .with_key("CreationClassName", class)
    }

    fn filter_path(&self, name: &str) -> ObjectPath {
        self.system_keys(ObjectPath::new(Some(INTEROP_NAMESPACE), FILTER), FILTER).with_key("Name", name)
    }

    fn destination_path(&self, class: &str, name: &str) -> ObjectPath {
        self.system_keys(ObjectPath::new(Some(INTEROP_NAMESPACE), class), class).with_key("Name", name)
    }

    fn subscription_path(&self, filter: &Instance, destination: &Instance) -> ObjectPath {
        ObjectPath::new(Some(INTEROP_NAMESPACE), SUBSCRIPTION)
            .with_key("Filter", filter.path.clone().unwrap_or_else(|| ObjectPath::new(None, FILTER)))
            .with_key("Handler", destination.path.clone().unwrap_or_else(|| ObjectPath::new(None, DESTINATION)))
    }

    fn service_path(&self) -> ObjectPath {
        self.system_keys(ObjectPath::new(Some(INTEROP_NAMESPACE), SERVICE), SERVICE).with_key("Name", SERVICE_NAME)
    }

    fn capabilities_path(&self) -> ObjectPath {
        ObjectPath::new(Some(INTEROP_NAMESPACE), CAPABILITIES).with_key("InstanceID", CAPABILITIES_ID)
    }

    /// The path of the indication service (for profile conformance).
    pub fn service_object_path(&self) -> ObjectPath {
        self.service_path()
    }

    fn service_instance(&self) -> Instance {
        let s = self.settings();
        Instance::new(SERVICE)
            .with("SystemCreationClassName", SYSTEM_CLASS)
            .with("SystemName", self.system_name.as_str())
            .with("CreationClassName", SERVICE)
            .with("Name", SERVICE_NAME)
            .with("ElementName", "xencim indication service")
            .with("Description", "Filters the model's changes and delivers them as CIM-XML indications (DSP1054)")
            .with("EnabledState", 2u16)
            .with("RequestedState", 12u16)
            .with("EnabledDefault", 2u16)
            .with("OperationalStatus", vec![2u16])
            .with("HealthState", 5u16)
            .with("Started", true)
            .with("FilterCreationEnabled", true)
            .with("SubscriptionRemovalAction", s.removal_action)
            .with("SubscriptionRemovalTimeInterval", s.retry_interval_secs.saturating_mul(u32::from(s.retry_attempts) + 1))
            .with("DeliveryRetryAttempts", s.retry_attempts)
            .with("DeliveryRetryInterval", s.retry_interval_secs)
            .with_path(self.service_path())
    }

    fn capabilities_instance(&self) -> Instance {
        Instance::new(CAPABILITIES)
            .with("InstanceID", CAPABILITIES_ID)
            .with("ElementName", "xencim indication service capabilities")
            .with("FilterCreationEnabledIsSettable", false)
            .with("DeliveryRetryAttemptsIsSettable", true)
            .with("DeliveryRetryIntervalIsSettable", true)
            .with("SubscriptionRemovalActionIsSettable", true)
            .with("SubscriptionRemovalTimeIntervalIsSettable", false)
            .with("MaxListenerDestinations", MAX_DESTINATIONS as u32)
            .with("MaxActiveSubscriptions", MAX_SUBSCRIPTIONS as u32)
            .with("SubscriptionsPersisted", true)
            .with_path(self.capabilities_path())
    }

    fn subscription_instance(&self, sub: &SubEntry) -> Instance {
        let mut i = sub.instance.clone();
        if let Some(d) = sub.duration {
            i.set("SubscriptionTimeRemaining", d.saturating_sub(sub.started.elapsed().as_secs()));
        }
        i
    }

    fn create_filter(&self, mut i: Instance) -> Result<ObjectPath, CimError> {
        let name = text(&i, "Name").filter(|n| !n.is_empty()).unwrap_or_else(|| format!("xencim-filter-{}", uuid::Uuid::new_v4()));
        let query = text(&i, "Query").ok_or_else(|| CimError::invalid_parameter("CIM_IndicationFilter needs Query"))?;
        let lang = text(&i, "QueryLanguage").ok_or_else(|| CimError::invalid_parameter("CIM_IndicationFilter needs QueryLanguage"))?;
        let compiled = CompiledFilter::compile(&self.repo, &name, &lang, &query, &source_namespaces(&i))?;
        let path = self.filter_path(&name);
        for (k, v) in &path.keybindings {
            i.set(k, v.text());
        }
        if i.value("IndividualSubscriptionSupported").is_none() {
            i.set("IndividualSubscriptionSupported", true);
        }
        i.path = Some(path.clone());
        let key = key_of(&name);
        let mut st = self.state.write();
        if st.filters.contains_key(&key) {
            return Err(CimError::new(CimStatus::AlreadyExists, format!("filter {name} already exists")));
        }
        if st.filters.len() >= MAX_FILTERS {
            return Err(CimError::new(CimStatus::ServerLimitsExceeded, format!("at most {MAX_FILTERS} filters")));
        }
        self.persist(Kind::Filter, &key, &i)?;
        st.filters.insert(key, FilterEntry { instance: i, compiled: Arc::new(compiled) });
        Ok(path)
    }

    fn create_destination(&self, mut i: Instance) -> Result<ObjectPath, CimError> {
        let class = if names_equal(&i.class_name, HANDLER) { HANDLER } else { DESTINATION };
        let name = text(&i, "Name").filter(|n| !n.is_empty()).unwrap_or_else(|| format!("xencim-listener-{}", uuid::Uuid::new_v4()));
        let url = text(&i, "Destination").ok_or_else(|| CimError::invalid_parameter(format!("{class} needs Destination")))?;
        check_url(&url).map_err(|e| CimError::invalid_parameter(format!("Destination: {e}")))?;
        let path = self.destination_path(class, &name);
        i.class_name = class.to_string();
        for (k, v) in &path.keybindings {
            i.set(k, v.text());
        }
        if i.value("PersistenceType").is_none() {
            i.set("PersistenceType", 2u16);
        }
        if i.value("Protocol").is_none() {
            i.set("Protocol", 2u16);
        }
        i.path = Some(path.clone());
        let key = key_of(&name);
        let mut st = self.state.write();
        if st.destinations.contains_key(&key) {
            return Err(CimError::new(CimStatus::AlreadyExists, format!("listener destination {name} already exists")));
        }
        if st.destinations.len() >= MAX_DESTINATIONS {
            return Err(CimError::new(CimStatus::ServerLimitsExceeded, format!("at most {MAX_DESTINATIONS} listener destinations")));
        }
        self.persist(Kind::Destination, &key, &i)?;
        st.destinations.insert(key, DestEntry { instance: i, url });
        Ok(path)
    }

    fn create_subscription(&self, mut i: Instance) -> Result<ObjectPath, CimError> {
        let f = reference(&i, "Filter")?;
        let h = reference(&i, "Handler")?;
        if !names_equal(&f.class_name, FILTER) {
            return Err(CimError::invalid_parameter(format!("Filter must name a {FILTER}, not a {}", f.class_name)));
        }
        if !self.repo.is_a(INTEROP_NAMESPACE, &h.class_name, "CIM_ListenerDestination") {
            return Err(CimError::invalid_parameter(format!("Handler must name a CIM_ListenerDestination, not a {}", h.class_name)));
        }
        let fname = f.key("Name").map(|k| k.text()).unwrap_or_default();
        let hname = h.key("Name").map(|k| k.text()).unwrap_or_default();
        let (fkey, hkey) = (key_of(&fname), key_of(&hname));
        let state = match uint(&i, "SubscriptionState")? {
            None => STATE_ENABLED,
            Some(s) if s == u64::from(STATE_ENABLED) || s == u64::from(STATE_DISABLED) => s as u16,
            Some(s) => {
                return Err(CimError::invalid_parameter(format!("SubscriptionState {s} cannot be set (2 Enabled and 4 Disabled can)")))
            }
        };
        if let Some(p) = uint(&i, "OnFatalErrorPolicy")? {
            if !(1..=4).contains(&p) {
                return Err(CimError::invalid_parameter(format!("OnFatalErrorPolicy {p} is not 1 to 4")));
            }
        }
        let duration = uint(&i, "SubscriptionDuration")?.filter(|d| *d > 0);
        let key = sub_key(&fkey, &hkey);
        let mut st = self.state.write();
        let filter = st.filters.get(&fkey).ok_or_else(|| CimError::invalid_parameter(format!("there is no filter {fname}")))?;
        let dest =
            st.destinations.get(&hkey).ok_or_else(|| CimError::invalid_parameter(format!("there is no listener destination {hname}")))?;
        if !names_equal(&dest.instance.class_name, &h.class_name) {
            return Err(CimError::invalid_parameter(format!("there is no {} {hname}", h.class_name)));
        }
        let path = self.subscription_path(&filter.instance, &dest.instance);
        if st.subscriptions.contains_key(&key) {
            return Err(CimError::new(CimStatus::AlreadyExists, format!("filter {fname} is already subscribed to {hname}")));
        }
        if st.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            return Err(CimError::new(CimStatus::ServerLimitsExceeded, format!("at most {MAX_SUBSCRIPTIONS} subscriptions")));
        }
        i.class_name = SUBSCRIPTION.to_string();
        i.set("Filter", filter.instance.path.clone().expect("filters have paths"));
        i.set("Handler", dest.instance.path.clone().expect("destinations have paths"));
        i.set("SubscriptionState", state);
        i.set("TimeOfLastStateChange", now());
        i.set("SubscriptionStartTime", now());
        if i.value("RepeatNotificationPolicy").is_none() {
            i.set("RepeatNotificationPolicy", 2u16);
        }
        i.path = Some(path.clone());
        self.persist(Kind::Subscription, &key, &i)?;
        let (filter, destination) = (fkey, hkey);
        st.subscriptions.insert(key, SubEntry { instance: i, filter, destination, state, started: Instant::now(), duration });
        Ok(path)
    }

    fn find_subscription(&self, path: &ObjectPath) -> Result<String, CimError> {
        let name = |k: &str| path.key(k).and_then(|v| v.as_reference().cloned()).and_then(|p| p.key("Name").map(|n| n.text()));
        let (Some(f), Some(h)) = (name("Filter"), name("Handler")) else {
            return Err(CimError::not_found(format!("no subscription {}", path.local())));
        };
        let key = sub_key(&key_of(&f), &key_of(&h));
        if self.state.read().subscriptions.contains_key(&key) {
            Ok(key)
        } else {
            Err(CimError::not_found(format!("no subscription of filter {f} to {h}")))
        }
    }

    fn all(&self, class: &str) -> Vec<Instance> {
        let st = self.state.read();
        if names_equal(class, FILTER) {
            st.filters.values().map(|f| f.instance.clone()).collect()
        } else if names_equal(class, DESTINATION) || names_equal(class, HANDLER) {
            st.destinations.values().filter(|d| names_equal(&d.instance.class_name, class)).map(|d| d.instance.clone()).collect()
        } else if names_equal(class, SUBSCRIPTION) {
            st.subscriptions.values().map(|s| self.subscription_instance(s)).collect()
        } else if names_equal(class, SERVICE) {
            vec![self.service_instance()]
        } else if names_equal(class, CAPABILITIES) {
            vec![self.capabilities_instance()]
        } else if names_equal(class, ELEMENT_CAPABILITIES) {
            vec![Instance::new(ELEMENT_CAPABILITIES)
                .with("ManagedElement", self.service_path())
                .with("Capabilities", self.capabilities_path())
                .with("Characteristics", vec![2u16])]
        } else {
            Vec::new()
        }
    }

    fn modify_service(&self, i: &Instance, list: Option<&[String]>) -> Result<(), CimError> {
        let wanted = |n: &str| list.is_none_or(|l| l.iter().any(|x| names_equal(x, n))) && i.value(n).is_some();
        // Held to the end: two modifications at once each apply wholly, one after the other.
        let mut settings = self.settings.write();
        let mut s = *settings;
        if wanted("DeliveryRetryAttempts") {
            s.retry_attempts = u16::try_from(uint(i, "DeliveryRetryAttempts")?.unwrap_or(0))
                .map_err(|_| CimError::invalid_parameter("DeliveryRetryAttempts is a uint16"))?;
        }
        if wanted("DeliveryRetryInterval") {
            let v = uint(i, "DeliveryRetryInterval")?.unwrap_or(0);
            if v == 0 || v > 3600 {
                return Err(CimError::invalid_parameter("DeliveryRetryInterval must be 1 to 3600 seconds"));
            }
            s.retry_interval_secs = v as u32;
        }
        if wanted("SubscriptionRemovalAction") {
            let v = uint(i, "SubscriptionRemovalAction")?.unwrap_or(0);
            if !(2..=5).contains(&v) {
                return Err(CimError::invalid_parameter(
                    "SubscriptionRemovalAction must be 2 (Remove), 3 (Disable), 4 (Ignore) or 5 (Disable Destination)",
                ));
            }
            s.removal_action = v as u16;
        }
        for name in ["FilterCreationEnabled", "SubscriptionRemovalTimeInterval"] {
            if wanted(name) {
                return Err(CimError::not_supported(format!("{name} cannot be changed")));
            }
        }
        self.store
            .set_settings(&[
                ("DeliveryRetryAttempts", s.retry_attempts.to_string()),
                ("DeliveryRetryInterval", s.retry_interval_secs.to_string()),
                ("SubscriptionRemovalAction", s.removal_action.to_string()),
            ])
            .map_err(|e| CimError::failed(format!("cannot store the indication service's settings: {e}")))?;
        *settings = s;
        *self.retry.write() = RetrySettings { attempts: s.retry_attempts, interval: Duration::from_secs(u64::from(s.retry_interval_secs)) };
        Ok(())
    }

    fn modify_subscription(&self, path: &ObjectPath, i: &Instance, list: Option<&[String]>) -> Result<(), CimError> {
        let key = self.find_subscription(path)?;
        for p in &i.properties {
            let listed = list.is_none_or(|l| l.iter().any(|x| names_equal(x, &p.name)));
            if !listed || names_equal(&p.name, "Filter") || names_equal(&p.name, "Handler") {
                continue;
            }
            if !names_equal(&p.name, "SubscriptionState") {
                let current = self.state.read().subscriptions.get(&key).and_then(|s| s.instance.value(&p.name).cloned());
                if current != p.value {
                    return Err(CimError::not_supported(format!("{} of a subscription cannot be changed (SubscriptionState can)", p.name)));
                }
            }
        }
        if list.is_none_or(|l| l.iter().any(|x| names_equal(x, "SubscriptionState"))) {
            if let Some(s) = uint(i, "SubscriptionState")? {
                if s != u64::from(STATE_ENABLED) && s != u64::from(STATE_DISABLED) {
                    return Err(CimError::invalid_parameter(format!("SubscriptionState {s} cannot be set (2 Enabled and 4 Disabled can)")));
                }
                self.set_state(&key, s as u16)?;
                if s == u64::from(STATE_DISABLED) {
                    self.delivery.purge_subscription(&key);
                }
            }
        }
        Ok(())
    }
}

fn source_namespaces(i: &Instance) -> Vec<String> {
    let mut list = texts(i, "SourceNamespaces");
    if list.is_empty() {
        list.extend(text(i, "SourceNamespace"));
    }
    list.retain(|n| !n.trim().is_empty());
    list
}

/// The WBEM provider of the subscription classes.
pub struct SubscriptionProvider(pub Arc<Subscriptions>);

const CLASSES: [&str; 7] = [FILTER, DESTINATION, HANDLER, SUBSCRIPTION, SERVICE, CAPABILITIES, ELEMENT_CAPABILITIES];

impl Provider for SubscriptionProvider {
    fn classes(&self) -> Vec<ProvidedClass> {
        CLASSES.iter().map(|c| ProvidedClass::new(INTEROP_NAMESPACE, *c)).collect()
    }

    fn enumerate_instances(&self, _ctx: &OpContext, class: &str) -> Result<InstanceIter, CimError> {
        Ok(Box::new(self.0.all(class).into_iter().map(Ok)))
    }

    fn create_instance(&self, ctx: &OpContext, instance: Instance) -> Result<ObjectPath, CimError> {
        ctx.require(Role::VmOperator)?;
        let c = instance.class_name.clone();
        if names_equal(&c, FILTER) {
            self.0.create_filter(instance)
        } else if names_equal(&c, DESTINATION) || names_equal(&c, HANDLER) {
            self.0.create_destination(instance)
        } else if names_equal(&c, SUBSCRIPTION) {
            self.0.create_subscription(instance)
        } else {
            Err(CimError::not_supported(format!("instances of {c} cannot be created")))
        }
    }

    fn modify_instance(&self, ctx: &OpContext, instance: Instance, property_list: Option<&[String]>) -> Result<(), CimError> {
        let path = instance.path.clone().ok_or_else(|| CimError::invalid_parameter("ModifyInstance needs the instance's path"))?;
        if names_equal(&path.class_name, SERVICE) {
            ctx.require(Role::PoolAdmin)?;
            self.get_instance(ctx, &path)?;
            self.0.modify_service(&instance, property_list)
        } else if names_equal(&path.class_name, SUBSCRIPTION) {
            ctx.require(Role::VmOperator)?;
            self.0.modify_subscription(&path, &instance, property_list)
        } else {
            Err(CimError::not_supported(format!("instances of {} cannot be modified", path.class_name)))
        }
    }

    fn delete_instance(&self, ctx: &OpContext, path: &ObjectPath) -> Result<(), CimError> {
        ctx.require(Role::VmOperator)?;
        let s = &self.0;
        let name = path.key("Name").map(|k| k.text()).unwrap_or_default();
        if names_equal(&path.class_name, SUBSCRIPTION) {
            let key = s.find_subscription(path)?;
            let mut st = s.state.write();
            if !st.subscriptions.contains_key(&key) {
                return Err(CimError::not_found(format!("no subscription {}", path.local())));
            }
            s.unpersist(Kind::Subscription, &key)?;
            st.subscriptions.remove(&key);
            drop(st);
            s.delivery.purge_subscription(&key);
            return Ok(());
        }
        let is_filter = names_equal(&path.class_name, FILTER);
        let is_dest = names_equal(&path.class_name, DESTINATION) || names_equal(&path.class_name, HANDLER);
        if !is_filter && !is_dest {
            return Err(CimError::not_supported(format!("instances of {} cannot be deleted", path.class_name)));
        }
        let key = key_of(&name);
        let mut st = s.state.write();
        let exists = if is_filter {
            st.filters.contains_key(&key)
        } else {
            st.destinations.get(&key).is_some_and(|d| names_equal(&d.instance.class_name, &path.class_name))
        };
        if !exists {
            return Err(CimError::not_found(format!("no {} {name}", path.class_name)));
        }
        let users: Vec<String> = st
            .subscriptions
            .values()
            .filter(|sub| if is_filter { sub.filter == key } else { sub.destination == key })
            .map(|sub| {
                let other = if is_filter { &sub.destination } else { &sub.filter };
                let other_name = if is_filter {
                    st.destinations.get(other).and_then(|d| text(&d.instance, "Name"))
                } else {
                    st.filters.get(other).and_then(|f| text(&f.instance, "Name"))
                };
                other_name.unwrap_or_else(|| other.clone())
            })
            .collect();
        if !users.is_empty() {
            let what = if is_filter { "filter" } else { "listener destination" };
            let others = if is_filter { "destination" } else { "filter" };
            return Err(CimError::failed(format!(
                "{what} {name} is used by {} subscription(s) (with {others} {}); delete them first",
                users.len(),
                users.join(", ")
            )));
        }
        if is_filter {
            s.unpersist(Kind::Filter, &key)?;
            st.filters.remove(&key);
        } else {
            s.unpersist(Kind::Destination, &key)?;
            st.destinations.remove(&key);
            drop(st);
            s.delivery.remove_destination(&key);
        }
        Ok(())
    }
}
