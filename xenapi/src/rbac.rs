//! Which role a Xen-API message needs. The table in docs/roles.md is this function in words.

use crate::error::{codes, ApiError, ApiResult};
use httpd::{Principal, Role};

/// Classes a vm-operator manages: VMs and everything that belongs to one.
const VM_CLASSES: &[&str] = &["VM", "VBD", "VIF", "VDI", "console", "VM_metrics", "VM_guest_metrics", "VBD_metrics"];

/// Reading is always allowed; sessions, events and tasks belong to their caller.
fn is_read(msg: &str) -> bool {
    msg.starts_with("get_") || matches!(msg, "assert_operation_valid" | "assert_can_boot_here")
}

pub fn required_role(class: &str, msg: &str) -> Role {
    if is_read(msg) || matches!(class, "session" | "event" | "task") {
        Role::ReadOnly
    } else if VM_CLASSES.contains(&class) {
        Role::VmOperator
    } else {
        Role::PoolAdmin
    }
}

pub fn check(principal: &Principal, class: &str, msg: &str) -> ApiResult<()> {
    let needed = required_role(class, msg);
    if principal.role.includes(needed) {
        Ok(())
    } else {
        let permission = format!("{class}.{msg}");
        let message = format!("The role {} of user {} does not allow {permission}; it needs {needed}", principal.role, principal.user);
        Err(ApiError::new(codes::RBAC_PERMISSION_DENIED, [permission, message]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grow_in_privilege() {
        assert_eq!(required_role("VM", "get_record"), Role::ReadOnly);
        assert_eq!(required_role("VM", "start"), Role::VmOperator);
        assert_eq!(required_role("VBD", "plug"), Role::VmOperator);
        assert_eq!(required_role("network", "create"), Role::PoolAdmin);
        assert_eq!(required_role("user", "create"), Role::PoolAdmin);
        assert_eq!(required_role("session", "logout"), Role::ReadOnly);
        let ro = Principal { user: "r".into(), role: Role::ReadOnly };
        let e = check(&ro, "VM", "start").unwrap_err();
        assert_eq!(e.code, "RBAC_PERMISSION_DENIED");
        assert_eq!(e.args[0], "VM.start");
    }
}
