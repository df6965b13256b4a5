//! Password checks through the host's PAM stack (`/etc/pam.d/<service>`), by a small FFI to
//! Linux-PAM. libpam is loaded with `dlopen` the first time it is needed, so the binary builds
//! without PAM's headers and runs on hosts without libpam as long as `--auth pam` is not used.
//!
//! A check is `pam_start` → `pam_authenticate` → `pam_acct_mgmt` → `pam_end` on the calling
//! thread, with a conversation that answers password prompts with the password and nothing
//! else. It blocks (modules may consult a directory server): call it off the async runtime.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::net::IpAddr;
use std::sync::OnceLock;

const PAM_SUCCESS: c_int = 0;
const PAM_BUF_ERR: c_int = 5;
const PAM_PERM_DENIED: c_int = 6;
const PAM_AUTH_ERR: c_int = 7;
const PAM_CRED_INSUFFICIENT: c_int = 8;
const PAM_USER_UNKNOWN: c_int = 10;
const PAM_MAXTRIES: c_int = 11;
const PAM_NEW_AUTHTOK_REQD: c_int = 12;
const PAM_ACCT_EXPIRED: c_int = 13;
const PAM_CONV_ERR: c_int = 19;

const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;

const PAM_RHOST: c_int = 4;
const PAM_FAIL_DELAY: c_int = 10;

const PAM_SILENT: c_int = 0x8000;
const PAM_DISALLOW_NULL_AUTHTOK: c_int = 0x0001;

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = unsafe extern "C" fn(c_int, *mut *const PamMessage, *mut *mut PamResponse, *mut c_void) -> c_int;

#[repr(C)]
struct PamConv {
    conv: ConvFn,
    appdata_ptr: *mut c_void,
}

type PamHandle = c_void;

type StartFn = unsafe extern "C" fn(*const c_char, *const c_char, *const PamConv, *mut *mut PamHandle) -> c_int;
type HandleFn = unsafe extern "C" fn(*mut PamHandle, c_int) -> c_int;
type SetItemFn = unsafe extern "C" fn(*mut PamHandle, c_int, *const c_void) -> c_int;
type StrerrorFn = unsafe extern "C" fn(*mut PamHandle, c_int) -> *const c_char;

struct Lib {
    start: StartFn,
    authenticate: HandleFn,
    acct_mgmt: HandleFn,
    end: HandleFn,
    set_item: SetItemFn,
    strerror: StrerrorFn,
}

fn lib() -> Result<&'static Lib, String> {
    static LIB: OnceLock<Result<Lib, String>> = OnceLock::new();
    LIB.get_or_init(|| unsafe {
        let handle = ["libpam.so.0", "libpam.so"].iter().find_map(|name| {
            let name = CString::new(*name).unwrap();
            let h = libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
            (!h.is_null()).then_some(h)
        });
        let Some(handle) = handle else { return Err("cannot load libpam.so.0 (install libpam0g)".to_owned()) };
        let sym = |name: &str| -> Result<*mut c_void, String> {
            let c = CString::new(name).unwrap();
            let p = libc::dlsym(handle, c.as_ptr());
            if p.is_null() {
                Err(format!("libpam has no {name}"))
            } else {
                Ok(p)
            }
        };
        // The signatures are those of <security/pam_appl.h>.
        Ok(Lib {
            start: std::mem::transmute::<*mut c_void, StartFn>(sym("pam_start")?),
            authenticate: std::mem::transmute::<*mut c_void, HandleFn>(sym("pam_authenticate")?),
            acct_mgmt: std::mem::transmute::<*mut c_void, HandleFn>(sym("pam_acct_mgmt")?),
            end: std::mem::transmute::<*mut c_void, HandleFn>(sym("pam_end")?),
            set_item: std::mem::transmute::<*mut c_void, SetItemFn>(sym("pam_set_item")?),
            strerror: std::mem::transmute::<*mut c_void, StrerrorFn>(sym("pam_strerror")?),
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Why a PAM check did not succeed.
#[derive(Debug, PartialEq, Eq)]
pub enum PamError {
    /// Wrong password, unknown user, expired or locked account: the user may not log in.
    Denied(String),
    /// PAM itself failed (no libpam, a broken stack, a module that cannot reach its server).
    Unavailable(String),
}

struct ConvData {
    user: CString,
    password: CString,
}

/// Answers each prompt: echo-off prompts get the password, echo-on prompts the user name;
/// informational and error messages need no answer. PAM frees what is returned with free(3),
/// so every answer is allocated with malloc.
unsafe extern "C" fn conversation(num_msg: c_int, msg: *mut *const PamMessage, resp: *mut *mut PamResponse, appdata: *mut c_void) -> c_int {
    if num_msg <= 0 || num_msg > 32 || msg.is_null() || resp.is_null() || appdata.is_null() {
        return PAM_CONV_ERR;
    }
    let data = &*(appdata as *const ConvData);
    let n = num_msg as usize;
    let replies = libc::calloc(n, std::mem::size_of::<PamResponse>()) as *mut PamResponse;
    if replies.is_null() {
        return PAM_BUF_ERR;
    }
    for i in 0..n {
        // Linux-PAM passes an array of pointers to messages.
        let m = *msg.add(i);
        if m.is_null() {
            continue;
        }
        let answer = match (*m).msg_style {
            PAM_PROMPT_ECHO_OFF => Some(&data.password),
            PAM_PROMPT_ECHO_ON => Some(&data.user),
            _ => None,
        };
        if let Some(a) = answer {
            let copy = libc::strdup(a.as_ptr());
            if copy.is_null() {
                for j in 0..i {
                    let r = replies.add(j);
                    if !(*r).resp.is_null() {
                        libc::free((*r).resp as *mut c_void);
                    }
                }
                libc::free(replies as *mut c_void);
                return PAM_BUF_ERR;
            }
            (*replies.add(i)).resp = copy;
        }
    }
    *resp = replies;
    PAM_SUCCESS
}

/// Lets PAM skip the delay some modules impose after a failure (pam_unix: about 2 s): failed
/// logins are throttled by the login limiter, which refuses instead of holding a thread.
unsafe extern "C" fn no_fail_delay(_retval: c_int, _usec: c_uint, _appdata: *mut c_void) {}

/// Checks `user`'s `password` with the PAM service `service`, for a login from `peer`.
pub fn check(service: &str, user: &str, password: &str, peer: IpAddr) -> Result<(), PamError> {
    let lib = lib().map_err(PamError::Unavailable)?;
    let service = CString::new(service).map_err(|_| PamError::Unavailable("the PAM service name contains NUL".into()))?;
    let (Ok(c_user), Ok(c_password)) = (CString::new(user), CString::new(password)) else {
        return Err(PamError::Denied("NUL in the user name or password".into()));
    };
    let rhost = CString::new(peer.to_string()).expect("an address has no NUL");
    let data = Box::new(ConvData { user: c_user, password: c_password });
    let conv = PamConv { conv: conversation, appdata_ptr: &*data as *const ConvData as *mut c_void };
    let mut handle: *mut PamHandle = std::ptr::null_mut();
    unsafe {
        let rc = (lib.start)(service.as_ptr(), data.user.as_ptr(), &conv, &mut handle);
        if rc != PAM_SUCCESS || handle.is_null() {
            return Err(PamError::Unavailable(format!("pam_start failed ({rc})")));
        }
        let describe = |rc: c_int| -> String {
            let s = (lib.strerror)(handle, rc);
            if s.is_null() {
                format!("PAM error {rc}")
            } else {
                CStr::from_ptr(s).to_string_lossy().into_owned()
            }
        };
        let _ = (lib.set_item)(handle, PAM_RHOST, rhost.as_ptr() as *const c_void);
        let _ = (lib.set_item)(handle, PAM_FAIL_DELAY, no_fail_delay as *const c_void);
        let mut rc = (lib.authenticate)(handle, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
        if rc == PAM_SUCCESS {
            rc = (lib.acct_mgmt)(handle, PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK);
        }
        let result = match rc {
            PAM_SUCCESS => Ok(()),
            PAM_AUTH_ERR
            | PAM_USER_UNKNOWN
            | PAM_MAXTRIES
            | PAM_CRED_INSUFFICIENT
            | PAM_PERM_DENIED
            | PAM_ACCT_EXPIRED
            | PAM_NEW_AUTHTOK_REQD => Err(PamError::Denied(describe(rc))),
            other => Err(PamError::Unavailable(describe(other))),
        };
        (lib.end)(handle, rc);
        // `data` (the password) lives until after pam_end: modules may call the conversation
        // until then.
        drop(data);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service whose stack denies everyone (pam_deny), written where Linux-PAM looks when
    /// the test runs as root; otherwise the test checks what it can without a stack.
    #[test]
    fn denies_through_a_real_stack() {
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let service = format!("xencim-unit-deny-{}", std::process::id());
        let path = std::path::PathBuf::from("/etc/pam.d").join(&service);
        if std::fs::write(&path, "auth required pam_deny.so\naccount required pam_deny.so\n").is_err() {
            eprintln!("skipped: cannot write {} (not root)", path.display());
            return;
        }
        let verdict = check(&service, "root", "whatever", peer);
        let _ = std::fs::remove_file(&path);
        assert!(matches!(verdict, Err(PamError::Denied(_))), "{verdict:?}");
        assert!(matches!(check(&service, "ro\0ot", "x", peer), Err(PamError::Denied(_))));
    }
}
