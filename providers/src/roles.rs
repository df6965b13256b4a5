//! Which role each CIM method needs: the same rule as the Xen-API door (`xenapi::rbac`):
//! reading is read-only, a VM's lifecycle, settings and devices are vm-operator, everything else
//! is pool-admin. docs/roles.md shows this table in words.

use httpd::auth::Role;

use crate::names::{CS, JOB, VSMS};

/// (class, method, role, the Xen-API messages it amounts to).
pub const METHOD_ROLES: &[(&str, &str, Role, &str)] = &[
    (
        CS,
        "RequestStateChange",
        Role::VmOperator,
        "VM.start, unpause, resume, hard_shutdown, clean_shutdown, suspend, pause, clean_reboot, hard_reboot",
    ),
    (VSMS, "DefineSystem", Role::VmOperator, "VM.create or VM.clone, VDI.create, VBD.create, VIF.create"),
    (VSMS, "DestroySystem", Role::VmOperator, "VM.destroy"),
    (VSMS, "ModifySystemSettings", Role::VmOperator, "VM.set_name_label, set_PV_*, set_actions_after_*, platform"),
    (VSMS, "AddResourceSettings", Role::VmOperator, "VDI.create, VBD.create, VIF.create, VBD.plug, VIF.plug"),
    (VSMS, "ModifyResourceSettings", Role::VmOperator, "VM.set_VCPUs_*, set_memory_*, VDI.resize, VBD.set_bootable"),
    (VSMS, "RemoveResourceSettings", Role::VmOperator, "VBD.unplug, VBD.destroy, VIF.unplug, VIF.destroy"),
    (JOB, "GetError", Role::ReadOnly, "task.get_error_info"),
    (JOB, "RequestStateChange", Role::VmOperator, "task.cancel"),
    (JOB, "KillJob", Role::VmOperator, "task.cancel"),
];

/// The role a method needs; a method not in the table needs pool-admin.
pub fn required(class: &str, method: &str) -> Role {
    METHOD_ROLES
        .iter()
        .find(|(c, m, _, _)| c.eq_ignore_ascii_case(class) && m.eq_ignore_ascii_case(method))
        .map(|(_, _, r, _)| *r)
        .unwrap_or(Role::PoolAdmin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_need_what_their_xenapi_messages_need() {
        assert_eq!(required("xen_computersystem", "requeststatechange"), Role::VmOperator);
        assert_eq!(required(VSMS, "DefineSystem"), Role::VmOperator);
        assert_eq!(required(JOB, "GetError"), Role::ReadOnly);
        assert_eq!(required("Xen_HostSystem", "RequestStateChange"), Role::PoolAdmin);
        // The same answer as the Xen-API door for the underlying messages.
        assert_eq!(xenapi::rbac::required_role("VM", "start"), required(CS, "RequestStateChange"));
        assert_eq!(xenapi::rbac::required_role("VM", "destroy"), required(VSMS, "DestroySystem"));
        assert_eq!(xenapi::rbac::required_role("VBD", "plug"), required(VSMS, "AddResourceSettings"));
    }
}
