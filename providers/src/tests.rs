//! The providers over a real model (sim hypervisor, SQLite store in a temporary directory) and
//! the real schema, called through the `Provider` trait as the dispatcher calls them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use httpd::auth::{Principal, Role};
use wbem::cim::{CimStatus, CimValue, Instance, ObjectPath};
use wbem::mof::Repository;
use wbem::provider::{MethodOutput, MethodParams, OpContext, Provider};
use xenapi::datamodel::{class, vbd, vm};
use xenapi::model::{Model, ModelConfig};

use crate::names::{self, *};
use crate::provider::{served_classes, XenProvider};
use crate::Ctx;

struct World {
    _dir: tempfile::TempDir,
    model: Arc<Model>,
    repo: Arc<Repository>,
    provider: XenProvider,
}

fn repo() -> Arc<Repository> {
    static REPO: std::sync::OnceLock<Arc<Repository>> = std::sync::OnceLock::new();
    REPO.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../mof");
        Arc::new(Repository::load(root).expect("the schema compiles"))
    })
    .clone()
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let hv = Arc::new(hypervisor::sim::SimHypervisor::new(hypervisor::sim::SimConfig {
        state_dir: dir.path().join("sim"),
        ..Default::default()
    }));
    let auth = Arc::new(xenapi::sessions::LocalAuthenticator::new(dir.path().join("xencim.db")));
    let model = Model::open(ModelConfig::new(dir.path().to_path_buf()), hv, auth).unwrap();
    let provider = XenProvider::new(Arc::new(Ctx { model: model.clone() }));
    World { _dir: dir, model, repo: repo(), provider }
}

impl World {
    fn op(&self, role: Role) -> OpContext {
        OpContext::new(Principal { user: "tester".into(), role }, NS, self.repo.clone())
    }

    fn admin(&self) -> OpContext {
        self.op(Role::PoolAdmin)
    }

    fn enumerate(&self, class: &str) -> Vec<Instance> {
        self.provider.enumerate_instances(&self.admin(), class).unwrap().map(Result::unwrap).collect()
    }

    fn get(&self, path: &ObjectPath) -> Result<Instance, wbem::cim::CimError> {
        self.provider.get_instance(&self.admin(), path)
    }

    fn call(&self, target: &ObjectPath, method: &str, params: Vec<(&str, CimValue)>) -> Result<MethodOutput, wbem::cim::CimError> {
        let params = MethodParams(params.into_iter().map(|(n, v)| (n.to_string(), Some(v))).collect());
        self.provider.invoke_method(&self.admin(), target, method, &params)
    }

    fn host_name(&self) -> String {
        self.enumerate(HOST)[0].value("Name").unwrap().as_str().unwrap().to_owned()
    }

    fn vsms(&self) -> ObjectPath {
        names::vsms_path(&self.host_name())
    }

    fn mof(&self, text: &str) -> Instance {
        self.repo.parse_instances(NS, text).unwrap().remove(0)
    }

    /// Polls a job until it ends; returns its last instance.
    fn wait_job(&self, job: &ObjectPath) -> Instance {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let j = self.get(job).unwrap();
            let state = j.value("JobState").and_then(CimValue::as_integer).unwrap();
            if state >= 7 {
                return j;
            }
            assert!(Instant::now() < deadline, "job did not end: {j:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn vm_count(&self) -> usize {
        self.model.db.read().rows(class::VM).count()
    }

    fn vdi_count(&self) -> usize {
        self.model.db.read().rows(class::VDI).count()
    }

    fn power_state(&self, uuid: &str) -> String {
        let data = self.model.db.read();
        let r = data.by_uuid(class::VM, uuid).unwrap();
        data.row(class::VM, r).unwrap().str(vm::POWER_STATE).to_owned()
    }
}

fn rc(out: &MethodOutput) -> i128 {
    out.return_value.as_ref().and_then(CimValue::as_integer).unwrap()
}

fn out_ref<'a>(out: &'a MethodOutput, name: &str) -> Option<&'a ObjectPath> {
    out.out_params.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.as_ref()).and_then(CimValue::as_reference)
}

fn instances(list: Vec<Instance>) -> CimValue {
    let values: Vec<CimValue> = list.into_iter().map(|i| CimValue::Instance(Box::new(i))).collect();
    CimValue::Array(wbem::cim::CimArray::from_values(wbem::cim::CimType::String, values).unwrap())
}

fn vssd(name: &str) -> Instance {
    Instance::new(VSSD).with("ElementName", name).with("VirtualSystemType", "DMTF:Xen:PV").with("Kernel", "/boot/vmlinuz")
}

fn proc_rasd(n: u64) -> Instance {
    Instance::new(PROC_RASD).with("ResourceType", 3u16).with("VirtualQuantity", n)
}

fn mem_rasd(mib: u64) -> Instance {
    Instance::new(MEM_RASD).with("ResourceType", 4u16).with("VirtualQuantity", mib).with("AllocationUnits", "byte*2^20")
}

fn disk_rasd(device: &str, mib: u64) -> Instance {
    Instance::new(DISK_RASD)
        .with("ResourceType", 17u16)
        .with("VirtualDevice", device)
        .with("VirtualQuantity", mib)
        .with("VirtualQuantityUnits", "byte*2^20")
}

fn net_rasd(mac: &str) -> Instance {
    Instance::new(NET_RASD).with("ResourceType", 10u16).with("Address", mac)
}

/// DefineSystem without disks to make: finishes in the call.
fn define_small(w: &World, name: &str) -> (String, ObjectPath) {
    let out = w
        .call(
            &w.vsms(),
            "DefineSystem",
            vec![
                ("SystemSettings", CimValue::Instance(Box::new(vssd(name)))),
                ("ResourceSettings", instances(vec![proc_rasd(2), mem_rasd(512), net_rasd("00:16:3e:aa:bb:01")])),
            ],
        )
        .unwrap();
    assert_eq!(rc(&out), 0, "{out:?}");
    let cs = out_ref(&out, "ResultingSystem").unwrap().clone();
    let uuid = cs.key("Name").unwrap().as_str().unwrap().to_owned();
    (uuid, cs)
}

/// Every property of every instance of every class exists in its class, with its keys.
#[test]
fn instances_fit_their_classes() {
    let w = world();
    define_small(&w, "fit");
    for class in served_classes() {
        let decl = w.repo.get_class(NS, class).unwrap_or_else(|| panic!("{class} is not in the schema"));
        for i in w.enumerate(class) {
            for p in &i.properties {
                assert!(decl.property(&p.name).is_some(), "{class} has no property {}", p.name);
            }
            if !decl.is_association() {
                assert!(i.path.is_some(), "{class} instance without a path");
                let again = w.get(i.path.as_ref().unwrap()).unwrap();
                assert_eq!(again.path, i.path);
            }
        }
    }
}

#[test]
fn the_host_its_service_and_dom0() {
    let w = world();
    let hosts = w.enumerate(HOST);
    assert_eq!(hosts.len(), 1);
    let vsms = w.enumerate(VSMS);
    assert_eq!(vsms[0].value("SystemName"), hosts[0].value("Name"));
    let systems = w.enumerate(CS);
    assert_eq!(systems.len(), 1, "dom0 is a virtual system, as on Xen");
    assert_eq!(systems[0].value("ElementName").unwrap().as_str(), Some("Domain-0"));
    assert_eq!(systems[0].value("EnabledState").unwrap().as_integer(), Some(2));
    let pools = w.enumerate(PROC_POOL).len() + w.enumerate(MEM_POOL).len() + w.enumerate(DISK_POOL).len() + w.enumerate(NET_POOL).len();
    assert_eq!(pools, 4);
    assert_eq!(w.enumerate(ALLOC_CAPS).len(), 4);
    let mem_templates: Vec<String> = w
        .enumerate(MEM_RASD)
        .iter()
        .map(|i| i.value("InstanceID").unwrap().as_str().unwrap().to_owned())
        .filter(|id| id.starts_with("MemoryPool/0/"))
        .collect();
    assert_eq!(mem_templates.len(), 4);
    let made_up = names::vm_path("6f1c9b1e-2a7d-4a34-9d5e-6b1c2f9e0a11");
    assert_eq!(w.get(&made_up).unwrap_err().status, CimStatus::NotFound);
    assert_eq!(w.get(&names::host_path("not-this-host")).unwrap_err().status, CimStatus::NotFound);
}

#[test]
fn define_start_pause_suspend_resume_shutdown_destroy() {
    let w = world();
    let (uuid, cs) = define_small(&w, "life");
    let i = w.get(&cs).unwrap();
    assert_eq!(i.value("ElementName").unwrap().as_str(), Some("life"));
    assert_eq!(i.value("EnabledState").unwrap().as_integer(), Some(3));
    let rasds: Vec<String> = w.enumerate(MEM_RASD).iter().map(|i| i.value("InstanceID").unwrap().as_str().unwrap().to_owned()).collect();
    assert!(rasds.contains(&format!("{uuid}/mem")));
    let mem = w.get(&names::rasd_path(&uuid, &Dev::Mem)).unwrap();
    assert_eq!(mem.value("VirtualQuantity").unwrap().as_integer(), Some(512));
    assert_eq!(mem.value("AllocationUnits").unwrap().as_str(), Some("byte*2^20"));

    let rsc = |state: u16| w.call(&cs, "RequestStateChange", vec![("RequestedState", CimValue::UInt16(state))]).unwrap();
    let out = rsc(2);
    assert_eq!(rc(&out), 4096, "start runs as a job");
    let job = w.wait_job(out_ref(&out, "Job").unwrap());
    assert_eq!(job.value("JobState").unwrap().as_integer(), Some(7), "{job:?}");
    assert_eq!(job.value("Name").unwrap().as_str(), Some("Async.VM.start"));
    assert_eq!(w.power_state(&uuid), "Running");
    assert_eq!(rc(&rsc(2)), 0, "already enabled");
    assert_eq!(rc(&rsc(9)), 0);
    assert_eq!(w.power_state(&uuid), "Paused");
    assert_eq!(w.get(&cs).unwrap().value("EnabledState").unwrap().as_integer(), Some(9));
    assert_eq!(rc(&rsc(2)), 0, "unpause is quick");
    let out = rsc(6);
    assert_eq!(rc(&out), 4096);
    w.wait_job(out_ref(&out, "Job").unwrap());
    assert_eq!(w.power_state(&uuid), "Suspended");
    assert_eq!(w.get(&cs).unwrap().value("EnabledState").unwrap().as_integer(), Some(6));
    let out = rsc(2);
    assert_eq!(rc(&out), 4096, "resume runs as a job");
    w.wait_job(out_ref(&out, "Job").unwrap());
    assert_eq!(w.power_state(&uuid), "Running");

    // A running VM cannot be destroyed: 2, and a job that says why.
    let out = w.call(&w.vsms(), "DestroySystem", vec![("AffectedSystem", CimValue::Reference(cs.clone()))]).unwrap();
    assert_eq!(rc(&out), 2);
    let job = w.get(out_ref(&out, "Job").unwrap()).unwrap();
    assert_eq!(job.value("JobState").unwrap().as_integer(), Some(10));
    let why = job.value("ErrorDescription").unwrap().as_str().unwrap().to_owned();
    assert!(why.contains("VM_BAD_POWER_STATE") && why.contains(&uuid), "{why}");
    let err = w.call(out_ref(&out, "Job").unwrap(), "GetError", vec![]).unwrap();
    let cim_error =
        err.out_params.iter().find(|(n, _)| n == "Error").and_then(|(_, v)| v.as_ref()).and_then(CimValue::as_instance).unwrap();
    assert_eq!(cim_error.value("MessageID").unwrap().as_str(), Some("VM_BAD_POWER_STATE"));

    let out = rsc(4);
    assert_eq!(rc(&out), 4096);
    w.wait_job(out_ref(&out, "Job").unwrap());
    assert_eq!(w.power_state(&uuid), "Halted");

    // Halted: pausing is an invalid state transition, with the model's reason in the job.
    let out = rsc(9);
    assert_eq!(rc(&out), 4097);
    let job = w.get(out_ref(&out, "Job").unwrap()).unwrap();
    assert_eq!(job.value("ErrorCode").unwrap().as_integer(), Some(4097));
    assert!(job.value("ErrorDescription").unwrap().as_str().unwrap().contains("VM_BAD_POWER_STATE"));
    assert_eq!(
        w.call(&cs, "RequestStateChange", vec![("RequestedState", CimValue::UInt16(7))]).unwrap_err().status,
        CimStatus::InvalidParameter
    );

    let out = w.call(&w.vsms(), "DestroySystem", vec![("AffectedSystem", CimValue::Reference(cs.clone()))]).unwrap();
    assert_eq!(rc(&out), 0);
    assert_eq!(w.get(&cs).unwrap_err().status, CimStatus::NotFound);
    assert!(w.get(&names::vssd_path(&uuid)).is_err());
    assert!(!w.enumerate(NET_RASD).iter().any(|i| i.value("InstanceID").unwrap().as_str().unwrap().starts_with(&uuid)));
    assert_eq!(
        w.call(&w.vsms(), "DestroySystem", vec![("AffectedSystem", CimValue::Reference(cs))]).unwrap_err().status,
        CimStatus::NotFound
    );
}

#[test]
fn define_with_new_disks_is_a_job_and_mof_text_works() {
    let w = world();
    let sys = w.mof(r#"instance of Xen_VirtualSystemSettingData { ElementName = "disks"; VirtualSystemType = "DMTF:Xen:HVM"; BootDevices = {"cdrom", "hd"}; };"#);
    let disk = w.mof(r#"instance of Xen_DiskResourceAllocationSettingData { ResourceType = 17; VirtualDevice = "xvdb"; VirtualQuantity = 64; AllocationUnits = "MegaBytes"; };"#);
    let cd = w.mof(r#"instance of Xen_DiskResourceAllocationSettingData { ResourceType = 15; VirtualDevice = "hdc"; };"#);
    let vdis = w.vdi_count();
    let out = w
        .call(
            &w.vsms(),
            "DefineSystem",
            vec![
                ("SystemSettings", CimValue::Instance(Box::new(sys))),
                ("ResourceSettings", instances(vec![mem_rasd(256), disk, cd, disk_rasd("xvda", 32)])),
            ],
        )
        .unwrap();
    assert_eq!(rc(&out), 4096);
    assert!(out_ref(&out, "ResultingSystem").is_none());
    let job_path = out_ref(&out, "Job").unwrap().clone();
    let job = w.wait_job(&job_path);
    assert_eq!(job.value("JobState").unwrap().as_integer(), Some(7), "{job:?}");
    let affected: Vec<Instance> = w.provider.references(&w.admin(), AFFECTED_JOB, &job_path, None).unwrap().map(Result::unwrap).collect();
    assert_eq!(affected.len(), 1);
    let cs = affected[0].value("AffectedElement").unwrap().as_reference().unwrap().clone();
    let uuid = cs.key("Name").unwrap().as_str().unwrap().to_owned();
    let vssd = w.get(&names::vssd_path(&uuid)).unwrap();
    assert_eq!(vssd.value("VirtualSystemType").unwrap().as_str(), Some("DMTF:Xen:HVM"));
    assert_eq!(vssd.value("BootDevices"), Some(&CimValue::from(vec!["cdrom", "hd"])));
    assert_eq!(w.vdi_count(), vdis + 2);
    let xvdb = w.get(&names::rasd_path(&uuid, &Dev::Disk("xvdb".into()))).unwrap();
    assert_eq!(xvdb.value("VirtualQuantity").unwrap().as_integer(), Some(64 << 20));
    let hdc = w.get(&names::rasd_path(&uuid, &Dev::Disk("hdc".into()))).unwrap();
    assert_eq!(hdc.value("ResourceType").unwrap().as_integer(), Some(15));
    let owning: Vec<Instance> = w.provider.references(&w.admin(), OWNING_JOB, &job_path, None).unwrap().map(Result::unwrap).collect();
    assert_eq!(owning[0].value("OwningElement").unwrap().as_reference(), Some(&w.vsms()));
}

#[test]
fn invalid_settings_name_the_property_and_leave_nothing() {
    let w = world();
    let (vms, vdis) = (w.vm_count(), w.vdi_count());
    let define = |rasds: Vec<Instance>| {
        w.call(
            &w.vsms(),
            "DefineSystem",
            vec![("SystemSettings", CimValue::Instance(Box::new(vssd("bad")))), ("ResourceSettings", instances(rasds))],
        )
    };
    let cases: Vec<(Vec<Instance>, &str)> = vec![
        (vec![disk_rasd("xvda", 8).with("PoolID", "DiskPool/nope")], "PoolID"),
        (vec![mem_rasd(1 << 40)], "VirtualQuantity"),
        (vec![disk_rasd("xvda", 8), disk_rasd("xvdb", 1 << 40)], "VirtualQuantity"),
        (vec![Instance::new("CIM_ResourceAllocationSettingData").with("VirtualQuantity", 1u64)], "ResourceType"),
        (vec![mem_rasd(256).with("AllocationUnits", "furlongs")], "AllocationUnits"),
        (vec![net_rasd("not-a-mac")], "Address"),
        (vec![proc_rasd(1000)], "VirtualQuantity"),
        (vec![disk_rasd("floppy9", 8)], "VirtualDevice"),
        (vec![proc_rasd(1), proc_rasd(2)], "ResourceType"),
    ];
    for (rasds, property) in cases {
        let e = define(rasds).unwrap_err();
        assert_eq!(e.status, CimStatus::InvalidParameter, "{e}");
        assert!(e.description.contains(property), "{property}: {e}");
    }
    let e = w
        .call(&w.vsms(), "DefineSystem", vec![("SystemSettings", CimValue::Instance(Box::new(Instance::new(VSSD).with("Kernel", "/k"))))])
        .unwrap_err();
    assert!(e.description.contains("ElementName"), "{e}");
    let e = w.call(&w.vsms(), "DefineSystem", vec![("SystemSettings", CimValue::String("garbage".into()))]).unwrap_err();
    assert_eq!(e.status, CimStatus::InvalidParameter);
    let e = w.call(&w.vsms(), "DefineSystem", vec![("SystemSettings", CimValue::Instance(Box::new(proc_rasd(1))))]).unwrap_err();
    assert!(e.description.contains("is not a CIM_VirtualSystemSettingData"), "{e}");
    assert_eq!((w.vm_count(), w.vdi_count()), (vms, vdis), "a refused DefineSystem leaves nothing behind");
}

#[test]
fn a_failing_build_is_undone() {
    let w = world();
    let (vms, vdis) = (w.vm_count(), w.vdi_count());
    // Each disk passes the checks, but the first takes slot 0 and the model refuses hda there.
    let unnamed =
        Instance::new(DISK_RASD).with("ResourceType", 17u16).with("VirtualQuantity", 8u64).with("VirtualQuantityUnits", "byte*2^20");
    let out = w
        .call(
            &w.vsms(),
            "DefineSystem",
            vec![
                ("SystemSettings", CimValue::Instance(Box::new(vssd("undo")))),
                ("ResourceSettings", instances(vec![unnamed, disk_rasd("hda", 8), net_rasd("00:16:3e:aa:bb:02")])),
            ],
        )
        .unwrap();
    assert_eq!(rc(&out), 4096);
    let job = w.wait_job(out_ref(&out, "Job").unwrap());
    assert_eq!(job.value("JobState").unwrap().as_integer(), Some(10), "{job:?}");
    assert!(job.value("ErrorDescription").unwrap().as_str().unwrap().contains("DEVICE_ALREADY_EXISTS"), "{job:?}");
    assert_eq!((w.vm_count(), w.vdi_count()), (vms, vdis), "the half-made VM and its disks are gone");
}

#[test]
fn resource_settings_change_live_where_the_model_allows() {
    let w = world();
    let (uuid, cs) = define_small(&w, "live");
    let out = w.call(&cs, "RequestStateChange", vec![("RequestedState", CimValue::UInt16(2))]).unwrap();
    w.wait_job(out_ref(&out, "Job").unwrap());
    // A disk added to the running VM is plugged at once.
    let out = w
        .call(
            &w.vsms(),
            "AddResourceSettings",
            vec![
                ("AffectedConfiguration", CimValue::Reference(names::vssd_path(&uuid))),
                ("ResourceSettings", instances(vec![disk_rasd("xvdc", 16)])),
            ],
        )
        .unwrap();
    assert_eq!(rc(&out), 0, "{out:?}");
    let added = out.out_params.iter().find(|(n, _)| n == "ResultingResourceSettings").and_then(|(_, v)| v.clone()).unwrap();
    let added = added.as_array().unwrap().values().next().unwrap().as_reference().unwrap().clone();
    assert_eq!(added, names::rasd_path(&uuid, &Dev::Disk("xvdc".into())));
    {
        let data = w.model.db.read();
        let r = data.by_uuid(class::VM, &uuid).unwrap();
        let row = data.row(class::VM, r).unwrap();
        let b = crate::settings::find_vbd(&data, row, "xvdc").unwrap();
        assert!(b.bool(vbd::CURRENTLY_ATTACHED));
    }
    let disk = w.get(&names::device_path(&uuid, &Dev::Disk("xvdc".into()))).unwrap();
    assert_eq!(disk.value("EnabledState").unwrap().as_integer(), Some(2));

    // Memory within the dynamic range changes live; the RASD sent back whole.
    let mut mem = w.get(&names::rasd_path(&uuid, &Dev::Mem)).unwrap();
    mem.path = None;
    mem.set("VirtualQuantity", 384u64);
    let out = w.call(&w.vsms(), "ModifyResourceSettings", vec![("ResourceSettings", instances(vec![mem]))]).unwrap();
    assert_eq!(rc(&out), 0, "{out:?}");
    let mem = w.get(&names::rasd_path(&uuid, &Dev::Mem)).unwrap();
    assert_eq!(mem.value("VirtualQuantity").unwrap().as_integer(), Some(384));
    let memdev = w.get(&names::device_path(&uuid, &Dev::Mem)).unwrap();
    assert_eq!(memdev.value("NumberOfBlocks").unwrap().as_integer(), Some(384));

    // The static maximum cannot change while it runs: 2 with the model's reason.
    let mut mem = w.get(&names::rasd_path(&uuid, &Dev::Mem)).unwrap();
    mem.set("Limit", 2048u64);
    let out = w.call(&w.vsms(), "ModifyResourceSettings", vec![("ResourceSettings", instances(vec![mem]))]).unwrap();
    assert_eq!(rc(&out), 2);
    let job = w.get(out_ref(&out, "Job").unwrap()).unwrap();
    assert!(job.value("ErrorDescription").unwrap().as_str().unwrap().contains("VM_BAD_POWER_STATE"));

    // vCPUs grow live up to the maximum.
    let proc = w.get(&names::rasd_path(&uuid, &Dev::Proc(None))).unwrap().with("VirtualQuantity", 1u64);
    let out = w.call(&w.vsms(), "ModifyResourceSettings", vec![("ResourceSettings", instances(vec![proc]))]).unwrap();
    assert_eq!(rc(&out), 0, "{out:?}");
    assert_eq!(w.enumerate(PROCESSOR).iter().filter(|p| p.value("SystemName").unwrap().as_str() == Some(uuid.as_str())).count(), 1);
    let proc = w.get(&names::rasd_path(&uuid, &Dev::Proc(None))).unwrap().with("VirtualQuantity", 3u64);
    let out = w.call(&w.vsms(), "ModifyResourceSettings", vec![("ResourceSettings", instances(vec![proc]))]).unwrap();
    assert_eq!(rc(&out), 2, "more than VCPUs_max");

    // Removing the disk unplugs it first.
    let out = w.call(&w.vsms(), "RemoveResourceSettings", vec![("ResourceSettings", crate::vsms::ref_array(vec![added.clone()]))]);
    assert_eq!(rc(&out.unwrap()), 0);
    assert_eq!(w.get(&added).unwrap_err().status, CimStatus::NotFound);
    let e = w
        .call(
            &w.vsms(),
            "RemoveResourceSettings",
            vec![("ResourceSettings", crate::vsms::ref_array(vec![names::rasd_path(&uuid, &Dev::Mem)]))],
        )
        .unwrap_err();
    assert_eq!(e.status, CimStatus::InvalidParameter);
}

#[test]
fn modify_system_settings_and_read_only_users() {
    let w = world();
    let (uuid, cs) = define_small(&w, "before");
    let sys =
        Instance::new(VSSD).with("InstanceID", names::vssd_id(&uuid)).with("ElementName", "after").with("ActionAfterCrash", "preserve");
    let out = w.call(&w.vsms(), "ModifySystemSettings", vec![("SystemSettings", CimValue::Instance(Box::new(sys)))]).unwrap();
    assert_eq!(rc(&out), 0);
    assert_eq!(w.get(&cs).unwrap().value("ElementName").unwrap().as_str(), Some("after"));
    assert_eq!(w.get(&names::vssd_path(&uuid)).unwrap().value("ActionAfterCrash").unwrap().as_str(), Some("preserve"));
    let bad = Instance::new(VSSD).with("InstanceID", names::vssd_id(&uuid)).with("ActionAfterCrash", "explode");
    let e = w.call(&w.vsms(), "ModifySystemSettings", vec![("SystemSettings", CimValue::Instance(Box::new(bad)))]).unwrap_err();
    assert!(e.description.contains("ActionAfterCrash"));
    let params = MethodParams(vec![("RequestedState".into(), Some(CimValue::UInt16(2)))]);
    let e = w.provider.invoke_method(&w.op(Role::ReadOnly), &cs, "RequestStateChange", &params).unwrap_err();
    assert_eq!(e.status, CimStatus::AccessDenied);
}

#[test]
fn reference_configuration_clones() {
    let w = world();
    let (uuid, _) = define_small(&w, "origin");
    let out = w
        .call(
            &w.vsms(),
            "DefineSystem",
            vec![
                ("SystemSettings", CimValue::Instance(Box::new(vssd("copy")))),
                ("ReferenceConfiguration", CimValue::Reference(names::vssd_path(&uuid))),
                ("ResourceSettings", instances(vec![mem_rasd(768)])),
            ],
        )
        .unwrap();
    assert_eq!(rc(&out), 0, "{out:?}");
    let copy = out_ref(&out, "ResultingSystem").unwrap().key("Name").unwrap().as_str().unwrap().to_owned();
    assert_ne!(copy, uuid);
    let mem = w.get(&names::rasd_path(&copy, &Dev::Mem)).unwrap();
    assert_eq!(mem.value("VirtualQuantity").unwrap().as_integer(), Some(768));
    let procs = w.get(&names::rasd_path(&copy, &Dev::Proc(None))).unwrap();
    assert_eq!(procs.value("VirtualQuantity").unwrap().as_integer(), Some(2), "the clone keeps what it was not told to change");
    assert_eq!(w.enumerate(NET_RASD).iter().filter(|i| i.value("InstanceID").unwrap().as_str().unwrap().starts_with(&copy)).count(), 1);
}

/// Every association instance leads to instances that exist, and each end finds it again
/// through `references`: forward and backward agree.
#[test]
fn associations_are_consistent_both_ways() {
    let w = world();
    let (uuid, cs) = define_small(&w, "assoc");
    let out = w.call(&cs, "RequestStateChange", vec![("RequestedState", CimValue::UInt16(2))]).unwrap();
    w.wait_job(out_ref(&out, "Job").unwrap());
    for assoc in ASSOCIATIONS {
        let all = w.enumerate(assoc);
        for a in &all {
            let ends: Vec<&ObjectPath> = a.properties.iter().filter_map(|p| p.value.as_ref().and_then(CimValue::as_reference)).collect();
            assert_eq!(ends.len(), 2, "{assoc}: {a:?}");
            for end in ends {
                w.get(end).unwrap_or_else(|e| panic!("{assoc}: end {end} does not exist: {e}"));
                let back: Vec<Instance> = w.provider.references(&w.admin(), assoc, end, None).unwrap().map(Result::unwrap).collect();
                assert!(back.iter().any(|b| b.properties == a.properties), "{assoc}: {end} does not lead back to {a:?}");
            }
        }
    }
    let devices: Vec<Instance> = w.provider.references(&w.admin(), SYSTEM_DEVICE, &cs, None).unwrap().map(Result::unwrap).collect();
    // 2 vCPUs, memory, one port.
    assert_eq!(devices.len(), 4);
    let hosted: Vec<Instance> = w
        .provider
        .references(&w.admin(), HOSTED_DEPENDENCY, &names::host_path(&w.host_name()), None)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(hosted.len(), 2, "dom0 and the new VM");
    assert!(hosted.iter().all(|h| h.value("Antecedent").unwrap().as_reference().unwrap().class_name == HOST));
    let _ = uuid;
}

#[test]
fn jobs_are_tasks() {
    let w = world();
    let (_, cs) = define_small(&w, "jobs");
    let out = w.call(&cs, "RequestStateChange", vec![("RequestedState", CimValue::UInt16(2))]).unwrap();
    let job = out_ref(&out, "Job").unwrap().clone();
    let done = w.wait_job(&job);
    let task_uuid = job.key("InstanceID").unwrap().as_str().unwrap().to_owned();
    {
        let data = w.model.db.read();
        let t = data.by_uuid(class::task, &task_uuid).expect("the job is a model task");
        assert_eq!(data.row(class::task, t).unwrap().str(xenapi::datamodel::task::STATUS), "success");
    }
    assert_eq!(done.value("PercentComplete").unwrap().as_integer(), Some(100));
    assert_eq!(done.value("ErrorCode").unwrap().as_integer(), Some(0));
    let err = w.call(&job, "GetError", vec![]).unwrap();
    assert_eq!(rc(&err), 0);
    assert!(err.out_params.is_empty());
    assert_eq!(
        rc(&w.call(&job, "RequestStateChange", vec![("RequestedState", CimValue::UInt16(4))]).unwrap()),
        4097,
        "a finished job cannot be killed"
    );
    w.provider.delete_instance(&w.admin(), &job).unwrap();
    assert_eq!(w.get(&job).unwrap_err().status, CimStatus::NotFound);
}

/// Text the dispatcher leaves as a string (a comment before the MOF, an XML declaration before
/// the CIM-XML) is decoded by the providers; broken text is CIM_ERR_INVALID_PARAMETER.
#[test]
fn embedded_text_the_dispatcher_left_alone() {
    let w = world();
    let mof = "// made by a script\ninstance of Xen_VirtualSystemSettingData { ElementName = \"commented\"; };";
    let xml = r#"<?xml version="1.0"?><INSTANCE CLASSNAME="Xen_MemResourceAllocationSettingData"><PROPERTY NAME="ResourceType" TYPE="uint16"><VALUE>4</VALUE></PROPERTY><PROPERTY NAME="VirtualQuantity" TYPE="uint64"><VALUE>96</VALUE></PROPERTY></INSTANCE>"#;
    let out = w
        .call(
            &w.vsms(),
            "DefineSystem",
            vec![("SystemSettings", CimValue::String(mof.into())), ("ResourceSettings", CimValue::from(vec![xml]))],
        )
        .unwrap();
    assert_eq!(rc(&out), 0, "{out:?}");
    let uuid = out_ref(&out, "ResultingSystem").unwrap().key("Name").unwrap().as_str().unwrap().to_owned();
    assert_eq!(w.get(&names::rasd_path(&uuid, &Dev::Mem)).unwrap().value("VirtualQuantity").unwrap().as_integer(), Some(96));
    for bad in ["// x\ninstance of Xen_VirtualSystemSettingData { ElementName = ; };", "<?xml version=\"1.0\"?><INSTANCE CLASSNAME=\"X\">"]
    {
        let e = w.call(&w.vsms(), "DefineSystem", vec![("SystemSettings", CimValue::String(bad.into()))]).unwrap_err();
        assert_eq!(e.status, CimStatus::InvalidParameter, "{e}");
        assert!(e.description.starts_with("SystemSettings: embedded"), "{e}");
    }
}
