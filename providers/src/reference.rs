//! The CIM class reference (docs/cim-classes.md), generated from the compiled `mof/` tree and the
//! mapping table below, so that neither can drift from the other:
//! `XENCIM_UPDATE_DOCS=1 cargo test -p providers reference` rewrites it, and the test fails when it
//! is stale or when the table names a property its class does not have.

use std::fmt::Write;

use wbem::cim::{CimType, CimValue, Class, Property};
use wbem::mof::Repository;

use crate::names::{self, *};

/// Where each property comes from: (CIM class, property, Xen-API class.field or how it is
/// computed).
pub const MAPPING: &[(&str, &str, &str)] = &[
    (HOST, "Name", "host.hostname"),
    (HOST, "ElementName", "host.name_label"),
    (HOST, "OtherIdentifyingInfo", "host.uuid"),
    (CS, "Name", "VM.uuid (VMs, including dom0; not templates or snapshots)"),
    (CS, "UUID", "VM.uuid"),
    (CS, "ElementName", "VM.name_label"),
    (CS, "Description", "VM.name_description"),
    (CS, "EnabledState", "VM.power_state: Running 2, Halted 3, Suspended 6, Paused 9; while VM.current_operations holds start/resume 10, a shutdown 4"),
    (CS, "RequestedState", "the target of the operation in VM.current_operations; when none, the state it is in (as EnabledState)"),
    (CS, "TransitioningToState", "the target of the operation in VM.current_operations; 12 (Not Applicable) when none"),
    (CS, "EnabledDefault", "VM.other_config:auto_poweron = true: 2, otherwise 3"),
    (CS, "AvailableRequestedStates", "VM.allowed_operations (start/unpause/resume 2, hard_shutdown 3, clean_shutdown 4, suspend 6, pause 9, clean_reboot 10, hard_reboot 11)"),
    (CS, "OperationalStatus", "VM.power_state: Running/Paused 2 OK, Halted 10 Stopped, Suspended 15 Dormant; + 8 Starting / 9 Stopping"),
    (CS, "HealthState", "5 OK"),
    (CS, "OnTimeInMilliseconds", "now - VM_metrics.start_time while the VM has a domain, else 0"),
    (CS, "TimeOfLastStateChange", "VM_metrics.last_updated"),
    (CS, "Roles", "\"control domain\" when VM.is_control_domain"),
    (ELEC, "InstanceID", "VM.uuid"),
    (ELEC, "RequestedStatesSupported", "VM.allowed_operations, as AvailableRequestedStates"),
    (VSSD, "InstanceID", "\"Xen:\" + VM.uuid (templates and snapshots too)"),
    (VSSD, "ElementName", "VM.name_label"),
    (VSSD, "Description", "VM.name_description"),
    (VSSD, "VirtualSystemIdentifier", "VM.uuid"),
    (VSSD, "UUID", "VM.uuid"),
    (VSSD, "VirtualSystemType", "DMTF:Xen:HVM when VM.domain_type = hvm or VM.HVM_boot_policy is set, else DMTF:Xen:PV"),
    (VSSD, "IsFullVirt", "as VirtualSystemType"),
    (VSSD, "IsTemplate", "VM.is_a_template"),
    (VSSD, "Kernel", "VM.PV_kernel"),
    (VSSD, "Ramdisk", "VM.PV_ramdisk"),
    (VSSD, "CommandLine", "VM.PV_args"),
    (VSSD, "Bootloader", "VM.PV_bootloader"),
    (VSSD, "BootloaderArgs", "VM.PV_bootloader_args"),
    (VSSD, "BootDevices", "VM.HVM_boot_params:order (c hd, d cdrom, n network, a floppy)"),
    (VSSD, "EnableACPI", "VM.platform:acpi"),
    (VSSD, "EnableAPIC", "VM.platform:apic"),
    (VSSD, "EnablePAE", "VM.platform:pae"),
    (VSSD, "ClockOffset", "VM.platform:localtime (1 local time, 0 UTC)"),
    (VSSD, "Emulator", "VM.platform:device_model"),
    (VSSD, "ActionAfterShutdown", "VM.actions_after_shutdown"),
    (VSSD, "ActionAfterReboot", "VM.actions_after_reboot"),
    (VSSD, "ActionAfterCrash", "VM.actions_after_crash"),
    (VSSD, "AutomaticRecoveryAction", "VM.actions_after_crash: a restart 3, else 2"),
    (VSSD, "CreationTime", "VM_metrics.install_time"),
    (PROC_RASD, "InstanceID", "VM.uuid + \"/proc\""),
    (PROC_RASD, "VirtualQuantity", "VM.VCPUs_at_startup (count)"),
    (PROC_RASD, "MaxVirtualQuantity", "VM.VCPUs_max"),
    (PROC_RASD, "Weight", "VM.VCPUs_params:weight"),
    (PROC_RASD, "Limit", "VM.VCPUs_params:cap (percent of one processor)"),
    (MEM_RASD, "InstanceID", "VM.uuid + \"/mem\""),
    (MEM_RASD, "VirtualQuantity", "VM.memory_dynamic_max (byte*2^20)"),
    (MEM_RASD, "Reservation", "VM.memory_dynamic_min (byte*2^20)"),
    (MEM_RASD, "Limit", "VM.memory_static_max (byte*2^20)"),
    (DISK_RASD, "InstanceID", "VM.uuid + \"/\" + VBD.device"),
    (DISK_RASD, "VirtualDevice", "VBD.device"),
    (DISK_RASD, "AddressOnParent", "VBD.userdevice"),
    (DISK_RASD, "ResourceType", "VBD.type: Disk 17, CD 15, Floppy 14"),
    (DISK_RASD, "EmulatedType", "VBD.type: Disk 0, CD 1, Floppy 2"),
    (DISK_RASD, "ReadOnly", "VBD.mode = RO"),
    (DISK_RASD, "Access", "VBD.mode: RO 1, RW 3"),
    (DISK_RASD, "Bootable", "VBD.bootable"),
    (DISK_RASD, "VirtualQuantity", "VDI.virtual_size (byte)"),
    (DISK_RASD, "HostExtentName", "VDI.uuid"),
    (DISK_RASD, "HostResource", "VDI.location"),
    (DISK_RASD, "Address", "VDI.location"),
    (DISK_RASD, "ElementName", "VDI.name_label (VBD.device when empty)"),
    (DISK_RASD, "PoolID", "\"DiskPool/\" + the VDI's SR.uuid"),
    (NET_RASD, "InstanceID", "VM.uuid + \"/\" + VIF.MAC"),
    (NET_RASD, "Address", "VIF.MAC"),
    (NET_RASD, "VirtualDevice", "\"vif\" + VIF.device"),
    (NET_RASD, "AddressOnParent", "VIF.device"),
    (NET_RASD, "MTU", "VIF.MTU"),
    (NET_RASD, "PoolID", "\"NetworkPool/\" + the VIF's network.uuid"),
    (NET_RASD, "NetworkName", "network.name_label"),
    (NET_RASD, "Connection", "network.name_label"),
    (CONSOLE_RASD, "InstanceID", "VM.uuid + \"/console\", while VM.consoles has one (the VM has a domain)"),
    (CONSOLE_RASD, "Protocol", "console.protocol"),
    (CONSOLE_RASD, "Location", "console.location"),
    (PROCESSOR, "DeviceID", "VM.uuid + \"/\" + n for each vCPU: VM_metrics.VCPUs_number while running, VM.VCPUs_at_startup otherwise"),
    (PROCESSOR, "EnabledState", "VM.power_state"),
    (MEMORY, "DeviceID", "VM.uuid + \"/mem\""),
    (MEMORY, "NumberOfBlocks", "VM_metrics.memory_actual while running, VM.memory_dynamic_max otherwise (1 MiB blocks)"),
    (DISK, "DeviceID", "VM.uuid + \"/\" + VBD.device"),
    (DISK, "NumberOfBlocks", "VDI.virtual_size / 512"),
    (DISK, "EnabledState", "VBD.currently_attached and VM.power_state"),
    (NETPORT, "DeviceID", "VM.uuid + \"/\" + VIF.MAC"),
    (NETPORT, "PermanentAddress", "VIF.MAC (12 hex digits)"),
    (NETPORT, "NetworkAddresses", "VIF.MAC"),
    (NETPORT, "PortNumber", "VIF.device"),
    (NETPORT, "ActiveMaximumTransmissionUnit", "VIF.MTU"),
    (NETPORT, "EnabledState", "VIF.currently_attached and VM.power_state"),
    (PROC_POOL, "Capacity", "the number of host_cpu objects"),
    (PROC_POOL, "Reserved", "the vCPUs of VMs that have a domain"),
    (MEM_POOL, "Capacity", "host_metrics.memory_total (byte*2^20)"),
    (MEM_POOL, "Reserved", "host_metrics.memory_total - host_metrics.memory_free"),
    (DISK_POOL, "InstanceID", "\"DiskPool/\" + SR.uuid"),
    (DISK_POOL, "ElementName", "SR.name_label"),
    (DISK_POOL, "Capacity", "SR.physical_size (byte)"),
    (DISK_POOL, "Reserved", "the sum of VDI.virtual_size of the SR's VDIs"),
    (DISK_POOL, "Type", "SR.type"),
    (DISK_POOL, "Path", "the SR's directory (file SRs)"),
    (NET_POOL, "InstanceID", "\"NetworkPool/\" + network.uuid"),
    (NET_POOL, "ElementName", "network.name_label"),
    (NET_POOL, "Bridge", "network.bridge"),
    (NET_POOL, "Reserved", "the number of the network's VIFs"),
    (VSMS, "SystemName", "host.hostname"),
    (VSMS, "Release", "the xencim version"),
    (JOB, "InstanceID", "task.uuid (every task, whichever door made it)"),
    (JOB, "Name", "task.name_label (Async.VM.start for a CIM start, as for the Xen-API)"),
    (JOB, "Description", "task.name_description"),
    (JOB, "JobState", "task.status: pending 4, cancelling 6, success 7, cancelled 8, failure 10"),
    (JOB, "JobStatus", "task.status"),
    (JOB, "PercentComplete", "task.progress * 100"),
    (JOB, "TimeSubmitted", "task.created"),
    (JOB, "StartTime", "task.created"),
    (JOB, "TimeOfLastStateChange", "task.finished (task.created while it runs)"),
    (JOB, "ElapsedTime", "task.finished (or now) - task.created"),
    (JOB, "ErrorCode", "0 on success; on failure the return value the CIM method would have given (task.other_config:xencim_cim_method)"),
    (JOB, "ErrorDescription", "task.error_info, with VM refs shown as uuid and name"),
    (JOB, "DeleteOnCompletion", "true: finished tasks are removed"),
    (JOB, "TimeBeforeRemoval", "the task_retention_secs setting"),
];

/// The associations: (class, ends, what the model says).
pub const ASSOCIATION_TABLE: &[(&str, &str, &str)] = &[
    (SYSTEM_DEVICE, "GroupComponent Xen_ComputerSystem, PartComponent a device", "VM.VBDs, VM.VIFs, its vCPUs and memory"),
    (SETTINGS_DEFINE_STATE, "ManagedElement Xen_ComputerSystem or a device, SettingData its VSSD or RASD", "the same VM record"),
    (VSSD_COMPONENT, "GroupComponent VSSD, PartComponent each RASD", "VM.VBDs, VM.VIFs, its vCPUs and memory"),
    (ELEMENT_SETTING_DATA, "ManagedElement Xen_ComputerSystem or a device, SettingData its VSSD or RASD (IsDefault, IsCurrent, IsNext 1)", "the same VM record"),
    (HOSTED_SERVICE, "Antecedent Xen_HostSystem, Dependent the management service", "the host"),
    (HOSTED_DEPENDENCY, "Antecedent Xen_HostSystem, Dependent each Xen_ComputerSystem", "every VM, running or not"),
    (HOSTED_POOL, "GroupComponent Xen_HostSystem, PartComponent each pool", "host, its SRs and networks"),
    (ELEMENT_CAPABILITIES, "host and service to Xen_VirtualSystemManagementCapabilities; VM to its Xen_EnabledLogicalElementCapabilities; pool to its Xen_AllocationCapabilities", "-"),
    (ALLOCATED_FROM_POOL, "Antecedent a pool, Dependent a device", "VBD.VDI.SR, VIF.network; processors and memory from the host's pools"),
    (ALLOCATION_FROM_POOL, "Antecedent a pool, Dependent a RASD", "as ElementAllocatedFromPool"),
    (SETTINGS_DEFINE_CAPS, "GroupComponent Xen_AllocationCapabilities, PartComponent its template RASDs (ValueRole, ValueRange)", "-"),
    (SERVICE_AFFECTS, "AffectingElement the management service, AffectedElement each Xen_ComputerSystem (ElementEffects 5 Manages)", "every VM"),
    (AFFECTED_JOB, "AffectingElement Xen_ConcreteJob, AffectedElement the VM", "task.other_config:applies_to"),
    (OWNING_JOB, "OwnedElement Xen_ConcreteJob, OwningElement the VM or the service whose method started it", "task.other_config:xencim_cim_owner"),
    ("Xen_ElementConformsToProfile", "ConformantStandard a Xen_RegisteredProfile (root/interop), ManagedElement its central instances (root/virt); served from both namespaces", "see Profiles"),
    ("Xen_ReferencedProfile", "Antecedent a component profile, Dependent System Virtualization", "static, mof/xen/Xen_RegisteredProfiles.mof"),
];

fn description(qualifiers: &[wbem::cim::Qualifier]) -> String {
    wbem::cim::find_qualifier(qualifiers, "Description")
        .and_then(|q| q.value.as_ref())
        .and_then(CimValue::as_str)
        .unwrap_or("")
        .replace('\n', " ")
        .replace('|', "\\|")
}

fn type_text(ty: CimType, is_array: bool, reference_class: Option<&str>) -> String {
    let base = match (ty, reference_class) {
        (CimType::Reference, Some(c)) => format!("{c} REF"),
        _ => ty.name().to_string(),
    };
    if is_array {
        format!("{base}[]")
    } else {
        base
    }
}

fn property_row(p: &Property) -> String {
    let key = if p.is_key() { " (key)" } else { "" };
    format!("| {}{key} | {} | {} |\n", p.name, type_text(p.cim_type, p.is_array, p.reference_class.as_deref()), description(&p.qualifiers))
}

fn chain(repo: &Repository, class: &Class) -> String {
    let mut names = vec![class.name.clone()];
    names.extend(repo.superclasses(NS, &class.name).into_iter().map(str::to_string));
    names.join(" → ")
}

/// The Xen_ classes of root/virt the providers serve, in the reference's order.
fn classes(repo: &Repository) -> Vec<&Class> {
    let mut served: Vec<&str> = crate::provider::served_classes();
    served.sort_by_key(|c| (ASSOCIATIONS.contains(c), c.to_string()));
    served.into_iter().filter_map(|c| repo.get_class(NS, c)).collect()
}

pub fn markdown(repo: &Repository) -> String {
    let mut o = String::new();
    o.push_str("# CIM class reference\n\n");
    o.push_str("Generated from the MOF in `mof/` and the mapping table in `providers/src/reference.rs`\n");
    o.push_str("(`XENCIM_UPDATE_DOCS=1 cargo test -p providers reference` rewrites it). Every class below lives in\n");
    o.push_str("`root/virt`, is a `Xen_` subclass of a DMTF class (so that a query on the `CIM_` class finds it), and is\n");
    o.push_str("served by the virtualization provider (`providers/`), which computes every instance from the Xen-API\n");
    o.push_str("model. The profiles, methods and return codes are described in `docs/cim-example.md`.\n\n");
    o.push_str("## Classes\n\n| class | DMTF ancestry | keys |\n|---|---|---|\n");
    for c in classes(repo) {
        let keys: Vec<String> = c.key_properties().map(|k| k.name.clone()).collect();
        writeln!(
            o,
            "| [{}](#{}) | {} | {} |",
            c.name,
            c.name.to_ascii_lowercase(),
            chain(repo, c).split_once(" → ").map(|(_, r)| r).unwrap_or(""),
            keys.join(", ")
        )
        .unwrap();
    }
    o.push_str("\n## Key formats\n\n| class | key values |\n|---|---|\n");
    for (class, keys) in [
        (HOST, "CreationClassName = Xen_HostSystem, Name = the host's name (host.hostname)"),
        (CS, "CreationClassName = Xen_ComputerSystem, Name = VM uuid"),
        (VSMS, "CreationClassName, Name = \"Management Service\", SystemCreationClassName = Xen_HostSystem, SystemName = host name"),
        (VSMC, "InstanceID = \"ManagementCapabilities\""),
        (ELEC, "InstanceID = VM uuid"),
        (VSSD, "InstanceID = \"Xen:<vm uuid>\""),
        ("RASDs", "InstanceID = \"<vm uuid>/proc\", \"<vm uuid>/mem\", \"<vm uuid>/<VBD device>\" (xvda), \"<vm uuid>/<VIF MAC>\", \"<vm uuid>/console\"; templates \"<pool InstanceID>/Default\" (Minimum, Maximum, Increment)"),
        ("devices", "CreationClassName, DeviceID = \"<vm uuid>/<n>\" (vCPU n), \"<vm uuid>/mem\", \"<vm uuid>/<VBD device>\", \"<vm uuid>/<VIF MAC>\"; SystemCreationClassName = Xen_ComputerSystem, SystemName = VM uuid"),
        ("pools", "InstanceID = \"ProcessorPool/0\", \"MemoryPool/0\", \"DiskPool/<SR uuid>\", \"NetworkPool/<network uuid>\""),
        (ALLOC_CAPS, "InstanceID = the pool's InstanceID"),
        (JOB, "InstanceID = task uuid"),
    ] {
        writeln!(o, "| {class} | {keys} |").unwrap();
    }
    o.push_str("\n## Mapping to the Xen-API model\n\n| CIM class | property | Xen-API |\n|---|---|---|\n");
    for (class, prop, source) in MAPPING {
        writeln!(o, "| {class} | {prop} | {} |", source.replace('|', "\\|")).unwrap();
    }
    o.push_str("\n## Associations\n\n| association | ends | from the model |\n|---|---|---|\n");
    for (class, ends, source) in ASSOCIATION_TABLE {
        writeln!(o, "| {class} | {ends} | {source} |").unwrap();
    }
    o.push_str("\n## Profiles\n\nRegistered in root/interop (`mof/xen/Xen_RegisteredProfiles.mof`); CIM_ElementConformsToProfile leads\nfrom each to its central instances:\n\n| profile InstanceID | conformant elements |\n|---|---|\n");
    for (id, what) in crate::profiles::PROFILES {
        writeln!(o, "| {id} | {what} |").unwrap();
    }
    for c in classes(repo) {
        writeln!(o, "\n## {}\n\n{}\n\nAncestry: {}.", c.name, description(&c.qualifiers), chain(repo, c)).unwrap();
        let local = repo.get_local_class(NS, &c.name);
        let own: Vec<&Property> = local.map(|l| l.properties.iter().collect()).unwrap_or_default();
        let keys: Vec<&Property> = c.key_properties().collect();
        o.push_str("\n| property | type | description |\n|---|---|---|\n");
        let mut listed: Vec<&str> = Vec::new();
        for p in keys.iter().copied().chain(own.iter().copied()) {
            if !listed.iter().any(|n| n.eq_ignore_ascii_case(&p.name)) {
                listed.push(&p.name);
                o.push_str(&property_row(c.property(&p.name).unwrap_or(p)));
            }
        }
        for (class, prop, _) in MAPPING.iter().filter(|(cl, _, _)| cl.eq_ignore_ascii_case(&c.name)) {
            let _ = class;
            if !listed.iter().any(|n| n.eq_ignore_ascii_case(prop)) {
                if let Some(p) = c.property(prop) {
                    listed.push(&p.name);
                    o.push_str(&property_row(p));
                }
            }
        }
        writeln!(o, "\nThe class has {} properties in all (inherited ones: see the DMTF schema).", c.properties.len()).unwrap();
        if !c.methods.is_empty() {
            o.push_str("\nMethods:\n\n");
            for m in &c.methods {
                let params: Vec<String> = m
                    .parameters
                    .iter()
                    .map(|p| {
                        let dir = match (p.is_in(), p.is_out()) {
                            (true, true) => "IN/OUT ",
                            (false, true) => "OUT ",
                            _ => "",
                        };
                        format!("{dir}{} {}", type_text(p.cim_type, p.is_array, p.reference_class.as_deref()), p.name)
                    })
                    .collect();
                let role = crate::roles::required(&c.name, &m.name);
                writeln!(o, "- `{} {}({})` — role {role}", m.return_type.name(), m.name, params.join(", ")).unwrap();
            }
        }
    }
    o
}

/// Every property the mapping table names exists in its class.
pub fn unknown_mappings(repo: &Repository) -> Vec<String> {
    MAPPING
        .iter()
        .filter(|(class, prop, _)| repo.get_class(names::NS, class).and_then(|c| c.property(prop)).is_none())
        .map(|(class, prop, _)| format!("{class}.{prop}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn class_reference_is_current() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let repo = wbem::mof::Repository::load(root.join("mof")).expect("the mof tree compiles");
        assert_eq!(super::unknown_mappings(&repo), Vec::<String>::new(), "the mapping table names properties the MOF lacks");
        let path = root.join("docs/cim-classes.md");
        let fresh = super::markdown(&repo);
        if std::env::var_os("XENCIM_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &fresh).unwrap();
        }
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(current == fresh, "docs/cim-classes.md is stale: run XENCIM_UPDATE_DOCS=1 cargo test -p providers reference");
    }
}
