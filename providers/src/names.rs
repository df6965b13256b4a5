//! Class names, key formats and instance paths of the classes the providers serve, and the
//! reverse: which model object an instance path names.

use wbem::cim::{KeyValue, ObjectPath};

/// The implementation namespace.
pub const NS: &str = "root/virt";

pub const HOST: &str = "Xen_HostSystem";
pub const CS: &str = "Xen_ComputerSystem";
pub const VSMS: &str = "Xen_VirtualSystemManagementService";
pub const VSMC: &str = "Xen_VirtualSystemManagementCapabilities";
pub const ELEC: &str = "Xen_EnabledLogicalElementCapabilities";
pub const ALLOC_CAPS: &str = "Xen_AllocationCapabilities";
pub const VSSD: &str = "Xen_VirtualSystemSettingData";
pub const PROC_RASD: &str = "Xen_ProcResourceAllocationSettingData";
pub const MEM_RASD: &str = "Xen_MemResourceAllocationSettingData";
pub const DISK_RASD: &str = "Xen_DiskResourceAllocationSettingData";
pub const NET_RASD: &str = "Xen_NetResourceAllocationSettingData";
pub const CONSOLE_RASD: &str = "Xen_ConsoleResourceAllocationSettingData";
pub const PROCESSOR: &str = "Xen_Processor";
pub const MEMORY: &str = "Xen_Memory";
pub const DISK: &str = "Xen_LogicalDisk";
pub const NETPORT: &str = "Xen_NetworkPort";
pub const PROC_POOL: &str = "Xen_ProcessorPool";
pub const MEM_POOL: &str = "Xen_MemoryPool";
pub const DISK_POOL: &str = "Xen_DiskPool";
pub const NET_POOL: &str = "Xen_NetworkPool";
pub const JOB: &str = "Xen_ConcreteJob";

pub const SYSTEM_DEVICE: &str = "Xen_SystemDevice";
pub const SETTINGS_DEFINE_STATE: &str = "Xen_SettingsDefineState";
pub const VSSD_COMPONENT: &str = "Xen_VirtualSystemSettingDataComponent";
pub const ELEMENT_SETTING_DATA: &str = "Xen_ElementSettingData";
pub const HOSTED_SERVICE: &str = "Xen_HostedService";
pub const HOSTED_DEPENDENCY: &str = "Xen_HostedDependency";
pub const HOSTED_POOL: &str = "Xen_HostedResourcePool";
pub const ELEMENT_CAPABILITIES: &str = "Xen_ElementCapabilities";
pub const ALLOCATED_FROM_POOL: &str = "Xen_ElementAllocatedFromPool";
pub const ALLOCATION_FROM_POOL: &str = "Xen_ResourceAllocationFromPool";
pub const SETTINGS_DEFINE_CAPS: &str = "Xen_SettingsDefineCapabilities";
pub const SERVICE_AFFECTS: &str = "Xen_ServiceAffectsElement";
pub const AFFECTED_JOB: &str = "Xen_AffectedJobElement";
pub const OWNING_JOB: &str = "Xen_OwningJobElement";

/// The association classes, in the order the class reference lists them.
pub const ASSOCIATIONS: [&str; 14] = [
    SYSTEM_DEVICE,
    SETTINGS_DEFINE_STATE,
    VSSD_COMPONENT,
    ELEMENT_SETTING_DATA,
    HOSTED_SERVICE,
    HOSTED_DEPENDENCY,
    HOSTED_POOL,
    ELEMENT_CAPABILITIES,
    ALLOCATED_FROM_POOL,
    ALLOCATION_FROM_POOL,
    SETTINGS_DEFINE_CAPS,
    SERVICE_AFFECTS,
    AFFECTED_JOB,
    OWNING_JOB,
];

/// `Name` of the management service (libvirt-cim's, which existing scripts look for).
pub const VSMS_NAME: &str = "Management Service";
/// `InstanceID` of the management capabilities (libvirt-cim's).
pub const VSMC_ID: &str = "ManagementCapabilities";

/// The kinds of virtual resource a VM has; each is a RASD class and a logical device class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Res {
    Proc,
    Mem,
    Disk,
    Net,
}

impl Res {
    pub const ALL: [Res; 4] = [Res::Proc, Res::Mem, Res::Disk, Res::Net];

    pub fn rasd_class(self) -> &'static str {
        match self {
            Res::Proc => PROC_RASD,
            Res::Mem => MEM_RASD,
            Res::Disk => DISK_RASD,
            Res::Net => NET_RASD,
        }
    }

    pub fn device_class(self) -> &'static str {
        match self {
            Res::Proc => PROCESSOR,
            Res::Mem => MEMORY,
            Res::Disk => DISK,
            Res::Net => NETPORT,
        }
    }

    pub fn pool_class(self) -> &'static str {
        match self {
            Res::Proc => PROC_POOL,
            Res::Mem => MEM_POOL,
            Res::Disk => DISK_POOL,
            Res::Net => NET_POOL,
        }
    }

    pub fn from_rasd_class(class: &str) -> Option<Res> {
        Res::ALL.into_iter().find(|r| r.rasd_class().eq_ignore_ascii_case(class))
    }

    pub fn from_device_class(class: &str) -> Option<Res> {
        Res::ALL.into_iter().find(|r| r.device_class().eq_ignore_ascii_case(class))
    }

    pub fn from_pool_class(class: &str) -> Option<Res> {
        Res::ALL.into_iter().find(|r| r.pool_class().eq_ignore_ascii_case(class))
    }

    /// The DMTF ResourceType this implementation reports.
    pub fn resource_type(self) -> u16 {
        match self {
            Res::Proc => 3,
            Res::Mem => 4,
            Res::Disk => 17,
            Res::Net => 10,
        }
    }

    /// The prefix of the pools' InstanceID (and PoolID).
    pub fn pool_prefix(self) -> &'static str {
        match self {
            Res::Proc => "ProcessorPool",
            Res::Mem => "MemoryPool",
            Res::Disk => "DiskPool",
            Res::Net => "NetworkPool",
        }
    }
}

/// A resource pool: the host's processors and memory, an SR, a network.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PoolId {
    Proc,
    Mem,
    /// An SR, by uuid.
    Disk(String),
    /// A network, by uuid.
    Net(String),
}

impl PoolId {
    pub fn res(&self) -> Res {
        match self {
            PoolId::Proc => Res::Proc,
            PoolId::Mem => Res::Mem,
            PoolId::Disk(_) => Res::Disk,
            PoolId::Net(_) => Res::Net,
        }
    }

    /// `ProcessorPool/0`, `MemoryPool/0`, `DiskPool/<sr-uuid>`, `NetworkPool/<network-uuid>`: the
    /// pool's InstanceID, PoolID, and its allocation capabilities' InstanceID.
    pub fn id(&self) -> String {
        match self {
            PoolId::Proc | PoolId::Mem => format!("{}/0", self.res().pool_prefix()),
            PoolId::Disk(u) | PoolId::Net(u) => format!("{}/{u}", self.res().pool_prefix()),
        }
    }

    pub fn parse(id: &str) -> Option<PoolId> {
        let (prefix, rest) = id.split_once('/')?;
        match prefix {
            "ProcessorPool" if rest == "0" => Some(PoolId::Proc),
            "MemoryPool" if rest == "0" => Some(PoolId::Mem),
            "DiskPool" if !rest.is_empty() && !rest.contains('/') => Some(PoolId::Disk(rest.to_owned())),
            "NetworkPool" if !rest.is_empty() && !rest.contains('/') => Some(PoolId::Net(rest.to_owned())),
            _ => None,
        }
    }
}

/// The four template settings of a pool's allocation capabilities (DSP1043).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Template {
    Default,
    Minimum,
    Maximum,
    Increment,
}

impl Template {
    pub const ALL: [Template; 4] = [Template::Default, Template::Minimum, Template::Maximum, Template::Increment];

    pub fn name(self) -> &'static str {
        match self {
            Template::Default => "Default",
            Template::Minimum => "Minimum",
            Template::Maximum => "Maximum",
            Template::Increment => "Increment",
        }
    }

    /// SettingsDefineCapabilities.ValueRole and ValueRange.
    pub fn role_and_range(self) -> (u16, u16) {
        match self {
            Template::Default => (0, 0),
            Template::Minimum => (3, 1),
            Template::Maximum => (3, 2),
            Template::Increment => (3, 3),
        }
    }
}

/// A VM's device as RASD InstanceIDs and device DeviceIDs name it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Dev {
    /// The processor settings (`proc`); as a device, vCPU number n.
    Proc(Option<u32>),
    Mem,
    /// A VBD, by its device name (`xvda`).
    Disk(String),
    /// A VIF, by its MAC.
    Net(String),
}

impl Dev {
    pub fn res(&self) -> Res {
        match self {
            Dev::Proc(_) => Res::Proc,
            Dev::Mem => Res::Mem,
            Dev::Disk(_) => Res::Disk,
            Dev::Net(_) => Res::Net,
        }
    }

    /// The part after `<vm-uuid>/`.
    pub fn suffix(&self) -> String {
        match self {
            Dev::Proc(None) => "proc".into(),
            Dev::Proc(Some(n)) => n.to_string(),
            Dev::Mem => "mem".into(),
            Dev::Disk(d) => d.clone(),
            Dev::Net(mac) => mac.clone(),
        }
    }
}

/// What an instance path names, in model terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Obj {
    Host,
    Vsms,
    Vsmc,
    /// A VM (Xen_ComputerSystem), by uuid.
    Vm(String),
    Elec(String),
    Vssd(String),
    Rasd(String, Dev),
    /// A VM's text console (`<uuid>/console`), while it has one.
    ConsoleRasd(String),
    Device(String, Dev),
    Pool(PoolId),
    AllocCaps(PoolId),
    TemplateRasd(PoolId, Template),
    /// A task, by uuid.
    Job(String),
}

fn key_str<'a>(path: &'a ObjectPath, key: &str) -> Option<&'a str> {
    path.key(key).and_then(KeyValue::as_str)
}

fn split_vm_id(id: &str) -> Option<(&str, &str)> {
    let (vm, rest) = id.split_once('/')?;
    (uuid::Uuid::parse_str(vm).is_ok() && !rest.is_empty()).then_some((vm, rest))
}

/// The RASD behind an InstanceID of `class`: a VM's (`<uuid>/proc`, `<uuid>/mem`, `<uuid>/xvda`,
/// `<uuid>/<MAC>`) or a pool's template (`<pool id>/<Default|Minimum|Maximum|Increment>`).
pub fn parse_rasd_id(class: &str, id: &str) -> Option<Obj> {
    let res = Res::from_rasd_class(class)?;
    if let Some((pool, role)) = id.rsplit_once('/') {
        if let Some(pool) = PoolId::parse(pool) {
            let t = Template::ALL.into_iter().find(|t| t.name() == role)?;
            return (pool.res() == res).then_some(Obj::TemplateRasd(pool, t));
        }
    }
    let (vm, rest) = split_vm_id(id)?;
    let dev = match res {
        Res::Proc if rest == "proc" => Dev::Proc(None),
        Res::Mem if rest == "mem" => Dev::Mem,
        Res::Disk if !rest.contains(':') => Dev::Disk(rest.to_owned()),
        Res::Net if rest.contains(':') => Dev::Net(rest.to_ascii_lowercase()),
        _ => return None,
    };
    Some(Obj::Rasd(vm.to_owned(), dev))
}

/// Which model object a path of one of the provided classes names; `None` when the keys do not
/// have the forms this implementation gives them (such a path names nothing).
pub fn parse(path: &ObjectPath) -> Option<Obj> {
    let class = path.class_name.as_str();
    let is = |c: &str| class.eq_ignore_ascii_case(c);
    let ccn_ok = |expected: &str| key_str(path, "CreationClassName").is_some_and(|c| c.eq_ignore_ascii_case(expected));
    if is(HOST) {
        return ccn_ok(HOST).then_some(Obj::Host);
    }
    if is(CS) {
        let name = key_str(path, "Name")?;
        return (ccn_ok(CS) && uuid::Uuid::parse_str(name).is_ok()).then(|| Obj::Vm(name.to_ascii_lowercase()));
    }
    if is(VSMS) {
        let ok = ccn_ok(VSMS)
            && key_str(path, "Name") == Some(VSMS_NAME)
            && key_str(path, "SystemCreationClassName").is_some_and(|c| c.eq_ignore_ascii_case(HOST));
        return ok.then_some(Obj::Vsms);
    }
    let id = key_str(path, "InstanceID");
    if is(VSMC) {
        return (id? == VSMC_ID).then_some(Obj::Vsmc);
    }
    if is(ELEC) {
        let id = id?;
        return uuid::Uuid::parse_str(id).is_ok().then(|| Obj::Elec(id.to_ascii_lowercase()));
    }
    if is(VSSD) {
        let u = id?.strip_prefix("Xen:")?;
        return uuid::Uuid::parse_str(u).is_ok().then(|| Obj::Vssd(u.to_ascii_lowercase()));
    }
    if let Some(res) = Res::from_pool_class(class) {
        let pool = PoolId::parse(id?)?;
        return (pool.res() == res).then_some(Obj::Pool(pool));
    }
    if is(ALLOC_CAPS) {
        return PoolId::parse(id?).map(Obj::AllocCaps);
    }
    if is(JOB) {
        let id = id?;
        return uuid::Uuid::parse_str(id).is_ok().then(|| Obj::Job(id.to_ascii_lowercase()));
    }
    if Res::from_rasd_class(class).is_some() {
        return parse_rasd_id(class, id?);
    }
    if is(CONSOLE_RASD) {
        let (vm, rest) = split_vm_id(id?)?;
        return (rest == "console").then(|| Obj::ConsoleRasd(vm.to_ascii_lowercase()));
    }
    if let Some(res) = Res::from_device_class(class) {
        if !ccn_ok(res.device_class()) || !key_str(path, "SystemCreationClassName").is_some_and(|c| c.eq_ignore_ascii_case(CS)) {
            return None;
        }
        let (vm, rest) = split_vm_id(key_str(path, "DeviceID")?)?;
        if key_str(path, "SystemName").map(str::to_ascii_lowercase).as_deref() != Some(&vm.to_ascii_lowercase()) {
            return None;
        }
        let dev = match res {
            Res::Proc => Dev::Proc(Some(rest.parse().ok()?)),
            Res::Mem if rest == "mem" => Dev::Mem,
            Res::Disk if !rest.contains(':') => Dev::Disk(rest.to_owned()),
            Res::Net if rest.contains(':') => Dev::Net(rest.to_ascii_lowercase()),
            _ => return None,
        };
        return Some(Obj::Device(vm.to_ascii_lowercase(), dev));
    }
    None
}

fn path(class: &str) -> ObjectPath {
    ObjectPath::new(Some(NS), class)
}

pub fn host_path(host_name: &str) -> ObjectPath {
    path(HOST).with_key("CreationClassName", HOST).with_key("Name", host_name)
}

pub fn vm_path(uuid: &str) -> ObjectPath {
    path(CS).with_key("CreationClassName", CS).with_key("Name", uuid)
}

pub fn vsms_path(host_name: &str) -> ObjectPath {
    path(VSMS)
        .with_key("CreationClassName", VSMS)
        .with_key("Name", VSMS_NAME)
        .with_key("SystemCreationClassName", HOST)
        .with_key("SystemName", host_name)
}

pub fn vsmc_path() -> ObjectPath {
    path(VSMC).with_key("InstanceID", VSMC_ID)
}

pub fn elec_path(uuid: &str) -> ObjectPath {
    path(ELEC).with_key("InstanceID", uuid)
}

pub fn vssd_id(uuid: &str) -> String {
    format!("Xen:{uuid}")
}

pub fn vssd_path(uuid: &str) -> ObjectPath {
    path(VSSD).with_key("InstanceID", vssd_id(uuid))
}

pub fn rasd_id(uuid: &str, dev: &Dev) -> String {
    format!("{uuid}/{}", dev.suffix())
}

pub fn rasd_path(uuid: &str, dev: &Dev) -> ObjectPath {
    path(dev.res().rasd_class()).with_key("InstanceID", rasd_id(uuid, dev))
}

pub fn console_rasd_path(uuid: &str) -> ObjectPath {
    path(CONSOLE_RASD).with_key("InstanceID", format!("{uuid}/console"))
}

pub fn device_path(uuid: &str, dev: &Dev) -> ObjectPath {
    let class = dev.res().device_class();
    path(class)
        .with_key("CreationClassName", class)
        .with_key("DeviceID", rasd_id(uuid, dev))
        .with_key("SystemCreationClassName", CS)
        .with_key("SystemName", uuid)
}

pub fn pool_path(pool: &PoolId) -> ObjectPath {
    path(pool.res().pool_class()).with_key("InstanceID", pool.id())
}

pub fn alloc_caps_path(pool: &PoolId) -> ObjectPath {
    path(ALLOC_CAPS).with_key("InstanceID", pool.id())
}

pub fn template_id(pool: &PoolId, t: Template) -> String {
    format!("{}/{}", pool.id(), t.name())
}

pub fn template_path(pool: &PoolId, t: Template) -> ObjectPath {
    path(pool.res().rasd_class()).with_key("InstanceID", template_id(pool, t))
}

pub fn job_path(task_uuid: &str) -> ObjectPath {
    path(JOB).with_key("InstanceID", task_uuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "6f1c9b1e-2a7d-4a34-9d5e-6b1c2f9e0a11";

    #[test]
    fn every_path_parses_back_to_its_object() {
        let pools = [PoolId::Proc, PoolId::Mem, PoolId::Disk(U.into()), PoolId::Net(U.into())];
        let mut cases = vec![
            (host_path("h"), Obj::Host),
            (vm_path(U), Obj::Vm(U.into())),
            (vsms_path("h"), Obj::Vsms),
            (vsmc_path(), Obj::Vsmc),
            (elec_path(U), Obj::Elec(U.into())),
            (vssd_path(U), Obj::Vssd(U.into())),
            (job_path(U), Obj::Job(U.into())),
            (console_rasd_path(U), Obj::ConsoleRasd(U.into())),
        ];
        for dev in [Dev::Proc(None), Dev::Mem, Dev::Disk("xvda".into()), Dev::Net("00:16:3e:01:02:03".into())] {
            cases.push((rasd_path(U, &dev), Obj::Rasd(U.into(), dev.clone())));
            let dev = if dev == Dev::Proc(None) { Dev::Proc(Some(3)) } else { dev };
            cases.push((device_path(U, &dev), Obj::Device(U.into(), dev)));
        }
        for p in &pools {
            cases.push((pool_path(p), Obj::Pool(p.clone())));
            cases.push((alloc_caps_path(p), Obj::AllocCaps(p.clone())));
            for t in Template::ALL {
                cases.push((template_path(p, t), Obj::TemplateRasd(p.clone(), t)));
            }
        }
        for (path, obj) in cases {
            assert_eq!(parse(&path), Some(obj), "{path}");
        }
    }

    #[test]
    fn paths_with_foreign_keys_name_nothing() {
        let bad = [
            ObjectPath::new(Some(NS), CS).with_key("CreationClassName", CS).with_key("Name", "vm1"),
            ObjectPath::new(Some(NS), CS).with_key("CreationClassName", HOST).with_key("Name", U),
            ObjectPath::new(Some(NS), VSSD).with_key("InstanceID", U),
            ObjectPath::new(Some(NS), MEM_RASD).with_key("InstanceID", format!("{U}/proc")),
            ObjectPath::new(Some(NS), PROC_RASD).with_key("InstanceID", "MemoryPool/0/Default"),
            ObjectPath::new(Some(NS), PROC_POOL).with_key("InstanceID", "ProcessorPool/1"),
            ObjectPath::new(Some(NS), JOB).with_key("InstanceID", "nope"),
            ObjectPath::new(Some(NS), MEMORY)
                .with_key("CreationClassName", MEMORY)
                .with_key("DeviceID", format!("{U}/mem"))
                .with_key("SystemCreationClassName", CS)
                .with_key("SystemName", "x"),
        ];
        for path in bad {
            assert_eq!(parse(&path), None, "{path}");
        }
    }
}
