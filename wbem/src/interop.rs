//! The interop namespace (`root/interop`, also answered as `interop`): the WBEM server describing
//! itself (DSP1071 classes CIM_ObjectManager, CIM_Namespace, CIM_CIMXMLCommunicationMechanism and
//! their associations) and Profile Registration (DSP1033): the registered profiles, how they
//! reference each other and which elements conform to them.
//!
//! The MOF declares the profiles that are fixed (`mof/xen/Xen_RegisteredProfiles.mof`); providers
//! add theirs at run time through the [`ProfileRegistry`]:
//!
//! ```no_run
//! # use wbem::interop::{ProfileRegistry, RegisteredProfile};
//! # use wbem::cim::ObjectPath;
//! # fn f(profiles: &ProfileRegistry) {
//! profiles.add_profile(RegisteredProfile::dmtf("CIM:DSP1057-VirtualSystem-1.0.0", "Virtual System", "1.0.0"));
//! profiles.add_reference("CIM:DSP1057-VirtualSystem-1.0.0", "CIM:DSP1042-SystemVirtualization-1.0.0");
//! profiles.add_conformance("CIM:DSP1057-VirtualSystem-1.0.0", || {
//!     vec![ObjectPath::new(Some("root/virt"), "Xen_ComputerSystem").with_key("Name", "uuid")]
//! });
//! # }
//! ```
//!
//! Profile Registration itself conforms through the CIM_ObjectManager, as OpenPegasus does.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::cim::{names_equal, CimError, Instance, ObjectPath};
use crate::mof::Repository;
use crate::provider::{InstanceIter, OpContext, ProvidedClass, Provider};

pub const INTEROP_NAMESPACE: &str = "root/interop";
/// The InstanceID of the Profile Registration profile.
pub const PROFILE_REGISTRATION_ID: &str = "CIM:DSP1033-ProfileRegistration-1.0.0";

/// A profile to register.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredProfile {
    pub instance_id: String,
    /// `RegisteredOrganization`: 2 = DMTF, 1 = Other (then `other_organization`).
    pub organization: u16,
    pub other_organization: Option<String>,
    pub name: String,
    pub version: String,
    /// `AdvertiseTypes`: 2 = Not Advertised, 3 = SLP.
    pub advertise_types: Vec<u16>,
}

impl RegisteredProfile {
    /// A DMTF profile, not advertised (no SLP).
    pub fn dmtf(instance_id: &str, name: &str, version: &str) -> RegisteredProfile {
        RegisteredProfile {
            instance_id: instance_id.into(),
            organization: 2,
            other_organization: None,
            name: name.into(),
            version: version.into(),
            advertise_types: vec![2],
        }
    }
}

type Elements = Arc<dyn Fn() -> Vec<ObjectPath> + Send + Sync>;

/// The profiles providers register, their references and their conformant elements.
#[derive(Default)]
pub struct ProfileRegistry {
    profiles: RwLock<Vec<RegisteredProfile>>,
    /// (antecedent = referenced component profile, dependent = referencing scoping profile).
    references: RwLock<Vec<(String, String)>>,
    conformance: RwLock<Vec<(String, Elements)>>,
}

impl std::fmt::Debug for ProfileRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileRegistry").field("profiles", &self.profiles.read().len()).finish()
    }
}

impl ProfileRegistry {
    pub fn new() -> ProfileRegistry {
        ProfileRegistry::default()
    }

    /// Registers a profile; a second registration of the same InstanceID replaces the first.
    pub fn add_profile(&self, profile: RegisteredProfile) {
        let mut list = self.profiles.write();
        list.retain(|p| p.instance_id != profile.instance_id);
        list.push(profile);
    }

    /// Records that `antecedent` (a component profile) is referenced by `dependent` (the
    /// profile that scopes it): CIM_ReferencedProfile in DMTF direction.
    pub fn add_reference(&self, antecedent: &str, dependent: &str) {
        self.references.write().push((antecedent.into(), dependent.into()));
    }

    /// The elements conforming to a profile, computed when asked (the set changes as VMs come
    /// and go). Paths should carry their namespace.
    pub fn add_conformance(&self, profile_id: &str, elements: impl Fn() -> Vec<ObjectPath> + Send + Sync + 'static) {
        self.conformance.write().push((profile_id.into(), Arc::new(elements)));
    }

    pub fn profiles(&self) -> Vec<RegisteredProfile> {
        self.profiles.read().clone()
    }
}

/// Who the server is, for CIM_ObjectManager and the keys of the interop instances.
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    /// The host name (`SystemName` keys).
    pub system_name: String,
    pub product: String,
    pub version: String,
    /// Namespaces to list as CIM_Namespace instances.
    pub namespaces: Vec<String>,
}

/// Serves the interop namespace's dynamic classes.
pub struct InteropProvider {
    identity: ServerIdentity,
    repo: Arc<Repository>,
    profiles: Arc<ProfileRegistry>,
    profile_class: String,
    reference_class: String,
    conforms_class: String,
}

const SYSTEM_CLASS: &str = "CIM_ComputerSystem";
const OM_CLASS: &str = "CIM_ObjectManager";
const NAMESPACE_CLASS: &str = "CIM_Namespace";
const MECHANISM_CLASS: &str = "CIM_CIMXMLCommunicationMechanism";
const NAMESPACE_IN_MANAGER: &str = "CIM_NamespaceInManager";
const COMM_FOR_MANAGER: &str = "CIM_CommMechanismForManager";

impl InteropProvider {
    /// The provider over `repo`'s classes: the Xen_ subclasses of the profile classes when the
    /// schema has them, the CIM_ ones otherwise. Registers Profile Registration unless the MOF
    /// already declares it.
    pub fn new(identity: ServerIdentity, repo: Arc<Repository>, profiles: Arc<ProfileRegistry>) -> InteropProvider {
        let pick = |xen: &str, cim: &str| if repo.get_class(INTEROP_NAMESPACE, xen).is_some() { xen.to_string() } else { cim.to_string() };
        let profile_class = pick("Xen_RegisteredProfile", "CIM_RegisteredProfile");
        let reference_class = pick("Xen_ReferencedProfile", "CIM_ReferencedProfile");
        let conforms_class = pick("Xen_ElementConformsToProfile", "CIM_ElementConformsToProfile");
        let declared =
            repo.instances(INTEROP_NAMESPACE).any(|i| i.value("InstanceID").and_then(|v| v.as_str()) == Some(PROFILE_REGISTRATION_ID));
        if !declared {
            profiles.add_profile(RegisteredProfile::dmtf(PROFILE_REGISTRATION_ID, "Profile Registration", "1.0.0"));
        }
        let om = object_manager_path(&identity);
        profiles.add_conformance(PROFILE_REGISTRATION_ID, move || vec![om.clone()]);
        InteropProvider { identity, repo, profiles, profile_class, reference_class, conforms_class }
    }

    fn object_manager(&self) -> Instance {
        let id = &self.identity;
        Instance::new(OM_CLASS)
            .with("SystemCreationClassName", SYSTEM_CLASS)
            .with("SystemName", id.system_name.as_str())
            .with("CreationClassName", OM_CLASS)
            .with("Name", id.product.as_str())
            .with("ElementName", id.product.as_str())
            .with("Caption", id.product.as_str())
            .with("Description", format!("{} version {}", id.product, id.version))
            .with("EnabledState", 2u16)
            .with("RequestedState", 12u16)
            .with("OperationalStatus", vec![2u16])
            .with("Started", true)
            .with("GatherStatisticalData", false)
            .with_path(object_manager_path(id))
    }

    fn namespace_path(&self, name: &str) -> ObjectPath {
        let id = &self.identity;
        ObjectPath::new(Some(INTEROP_NAMESPACE), NAMESPACE_CLASS)
            .with_key("SystemCreationClassName", SYSTEM_CLASS)
            .with_key("SystemName", id.system_name.as_str())
            .with_key("ObjectManagerCreationClassName", OM_CLASS)
            .with_key("ObjectManagerName", id.product.as_str())
            .with_key("CreationClassName", NAMESPACE_CLASS)
            .with_key("Name", name)
    }

    fn namespaces(&self) -> Vec<Instance> {
        let mut names = self.identity.namespaces.clone();
        // pywbem finds the interop namespace under the name `interop` first, then looks for that
        // name among the CIM_Namespace instances: list the alias too.
        if names.iter().any(|n| n == INTEROP_NAMESPACE) {
            names.push("interop".into());
        }
        names
            .into_iter()
            .map(|n| {
                let path = self.namespace_path(&n);
                let mut i = Instance::new(NAMESPACE_CLASS);
                for (k, v) in &path.keybindings {
                    i.set(k, v.text());
                }
                i.set("ClassType", 2u16);
                i.set("ClassTypeVersion", "2.x");
                if n == "interop" {
                    i.set("Description", "another name of root/interop");
                }
                i.with_path(path)
            })
            .collect()
    }

    fn mechanism_path(&self) -> ObjectPath {
        ObjectPath::new(Some(INTEROP_NAMESPACE), MECHANISM_CLASS)
            .with_key("SystemCreationClassName", SYSTEM_CLASS)
            .with_key("SystemName", self.identity.system_name.as_str())
            .with_key("CreationClassName", MECHANISM_CLASS)
            .with_key("Name", "cim-xml")
    }

    fn mechanism(&self) -> Instance {
        let path = self.mechanism_path();
        let mut i = Instance::new(MECHANISM_CLASS);
        for (k, v) in &path.keybindings {
            i.set(k, v.text());
        }
        i.with("ElementName", "CIM-XML over HTTP(S)")
            .with("CommunicationMechanism", 2u16)
            // Basic Read, Basic Write, Instance Manipulation, Association Traversal, Query Execution.
            .with("FunctionalProfilesSupported", vec![2u16, 3, 5, 6, 7])
            .with(
                "FunctionalProfileDescriptions",
                vec!["Basic Read", "Basic Write", "Instance Manipulation", "Association Traversal", "Query Execution"],
            )
            .with("MultipleOperationsSupported", false)
            .with("AuthenticationMechanismsSupported", vec![3u16])
            .with("AuthenticationMechanismDescriptions", vec!["Basic"])
            .with("Version", "1.3")
            .with("CIMValidated", false)
            .with("EnabledState", 2u16)
            .with_path(path)
    }

    fn association(class: &str, antecedent: ObjectPath, dependent: ObjectPath) -> Instance {
        let path = ObjectPath::new(Some(INTEROP_NAMESPACE), class)
            .with_key("Antecedent", antecedent.clone())
            .with_key("Dependent", dependent.clone());
        Instance::new(class).with("Antecedent", antecedent).with("Dependent", dependent).with_path(path)
    }

    fn profile_path(&self, instance_id: &str) -> ObjectPath {
        ObjectPath::new(Some(INTEROP_NAMESPACE), self.profile_class.clone()).with_key("InstanceID", instance_id)
    }

    fn profile(&self, p: &RegisteredProfile) -> Instance {
        let mut i = Instance::new(self.profile_class.clone())
            .with("InstanceID", p.instance_id.as_str())
            .with("RegisteredOrganization", p.organization)
            .with("RegisteredName", p.name.as_str())
            .with("RegisteredVersion", p.version.as_str())
            .with("AdvertiseTypes", p.advertise_types.clone())
            .with("ElementName", p.name.as_str());
        if let Some(o) = &p.other_organization {
            i.set("OtherRegisteredOrganization", o.as_str());
        }
        i.with_path(self.profile_path(&p.instance_id))
    }

    /// The path of a profile by InstanceID, wherever it is declared (MOF or registry).
    fn find_profile_path(&self, instance_id: &str) -> ObjectPath {
        for i in self.repo.instances(INTEROP_NAMESPACE) {
            if i.value("InstanceID").and_then(|v| v.as_str()) == Some(instance_id)
                && self.repo.is_a(INTEROP_NAMESPACE, &i.class_name, "CIM_RegisteredProfile")
            {
                return ObjectPath::new(Some(INTEROP_NAMESPACE), i.class_name.clone()).with_key("InstanceID", instance_id);
            }
        }
        self.profile_path(instance_id)
    }

    fn conformance(&self) -> Vec<Instance> {
        let entries: Vec<(String, Elements)> = self.conformance_entries();
        let mut out = Vec::new();
        for (profile_id, elements) in entries {
            let profile = self.find_profile_path(&profile_id);
            for element in elements() {
                let path = ObjectPath::new(Some(INTEROP_NAMESPACE), self.conforms_class.clone())
                    .with_key("ConformantStandard", profile.clone())
                    .with_key("ManagedElement", element.clone());
                out.push(
                    Instance::new(self.conforms_class.clone())
                        .with("ConformantStandard", profile.clone())
                        .with("ManagedElement", element)
                        .with_path(path),
                );
            }
        }
        out
    }

    fn conformance_entries(&self) -> Vec<(String, Elements)> {
        self.profiles.conformance.read().clone()
    }

    fn instances(&self, namespace: &str, class: &str) -> Vec<Instance> {
        let id = &self.identity;
        if names_equal(class, &self.conforms_class) {
            // The same associations answer from both ends' namespaces; their paths stay in interop.
            return self.conformance();
        }
        if namespace != INTEROP_NAMESPACE {
            return Vec::new();
        }
        if names_equal(class, OM_CLASS) {
            vec![self.object_manager()]
        } else if names_equal(class, NAMESPACE_CLASS) {
            self.namespaces()
        } else if names_equal(class, MECHANISM_CLASS) {
            vec![self.mechanism()]
        } else if names_equal(class, NAMESPACE_IN_MANAGER) {
            self.namespaces()
                .into_iter()
                .filter_map(|n| n.path)
                .map(|p| Self::association(NAMESPACE_IN_MANAGER, object_manager_path(id), p))
                .collect()
        } else if names_equal(class, COMM_FOR_MANAGER) {
            vec![Self::association(COMM_FOR_MANAGER, object_manager_path(id), self.mechanism_path())]
        } else if names_equal(class, &self.profile_class) {
            self.profiles.profiles().iter().map(|p| self.profile(p)).collect()
        } else if names_equal(class, &self.reference_class) {
            let refs = self.profiles.references.read().clone();
            refs.iter()
                .map(|(a, d)| Self::association(&self.reference_class, self.find_profile_path(a), self.find_profile_path(d)))
                .collect()
        } else {
            Vec::new()
        }
    }
}

fn object_manager_path(id: &ServerIdentity) -> ObjectPath {
    ObjectPath::new(Some(INTEROP_NAMESPACE), OM_CLASS)
        .with_key("SystemCreationClassName", SYSTEM_CLASS)
        .with_key("SystemName", id.system_name.as_str())
        .with_key("CreationClassName", OM_CLASS)
        .with_key("Name", id.product.as_str())
}

impl Provider for InteropProvider {
    fn classes(&self) -> Vec<ProvidedClass> {
        let mut out = Vec::new();
        let interop = [
            OM_CLASS,
            NAMESPACE_CLASS,
            MECHANISM_CLASS,
            NAMESPACE_IN_MANAGER,
            COMM_FOR_MANAGER,
            &self.profile_class,
            &self.reference_class,
            &self.conforms_class,
        ];
        for c in interop {
            if self.repo.get_class(INTEROP_NAMESPACE, c).is_some() {
                out.push(ProvidedClass::new(INTEROP_NAMESPACE, c));
            }
        }
        // ElementConformsToProfile must be traversable from the implementation namespaces too.
        for ns in &self.identity.namespaces {
            if ns != INTEROP_NAMESPACE && self.repo.get_class(ns, &self.conforms_class).is_some() {
                out.push(ProvidedClass::new(ns.clone(), self.conforms_class.clone()));
            }
        }
        out
    }

    fn enumerate_instances(&self, ctx: &OpContext, class: &str) -> Result<InstanceIter, CimError> {
        Ok(Box::new(self.instances(&ctx.namespace, class).into_iter().map(Ok)))
    }
}
