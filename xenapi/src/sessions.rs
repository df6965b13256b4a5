//! Sessions: login through the [`Authenticator`](httpd::Authenticator), the caller's role for
//! each later call, idle expiry, and the local user store behind the default authenticator.

use crate::bootstrap::now_xapi;
use crate::datamodel::{class, session};
use crate::db::{default_fields, Ref};
use crate::error::{codes, ApiError, ApiResult};
use crate::model::Model;
use crate::store::{Store, StoredUser};
use crate::value::Value;
use httpd::{AuthError, Authenticator, Principal, Role};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub principal: Principal,
    pub last_active: Instant,
}

/// Who holds each live session. Sessions are also objects of the registry (class `session`),
/// so that `session.get_record` and events see them.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<Live>,
}

#[derive(Default)]
struct Live {
    sessions: HashMap<Ref, SessionInfo>,
    /// Logins of each user that passed the per-user bound and are still creating their session.
    opening: HashMap<String, usize>,
}

/// Room for one more session of a user, held from the bound's check until the session is live
/// (so that concurrent logins cannot overshoot the bound); dropped unused, it frees the room.
pub struct Slot<'a> {
    sessions: &'a Sessions,
    user: String,
    filled: bool,
}

impl Slot<'_> {
    /// The session is live: it counts from now on instead of the slot (under one lock, so the
    /// user's count never dips or doubles meanwhile).
    pub fn fill(mut self, session_ref: Ref, info: SessionInfo) {
        let mut live = self.sessions.live.lock();
        live.sessions.insert(session_ref, info);
        Live::done_opening(&mut live.opening, &self.user);
        self.filled = true;
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if !self.filled {
            Live::done_opening(&mut self.sessions.live.lock().opening, &self.user);
        }
    }
}

impl Live {
    fn done_opening(opening: &mut HashMap<String, usize>, user: &str) {
        if let Some(n) = opening.get_mut(user) {
            *n -= 1;
            if *n == 0 {
                opening.remove(user);
            }
        }
    }
}

impl Sessions {
    /// The caller behind a session ref, or SESSION_INVALID (the SDK logs in again on it).
    pub fn check(&self, reference: &str) -> ApiResult<Principal> {
        let mut live = self.live.lock();
        match live.sessions.get_mut(reference) {
            Some(info) => {
                info.last_active = Instant::now();
                Ok(info.principal.clone())
            }
            None => Err(ApiError::new(codes::SESSION_INVALID, [reference])),
        }
    }

    pub fn expired(&self, idle: Duration) -> Vec<Ref> {
        self.live.lock().sessions.iter().filter(|(_, i)| i.last_active.elapsed() > idle).map(|(r, _)| r.clone()).collect()
    }

    pub fn count(&self) -> usize {
        self.live.lock().sessions.len()
    }

    /// Sessions of `user` that count against the per-user bound: live and idle for no longer
    /// than `idle` (older ones are expired, whether or not housekeeping has logged them out yet).
    pub fn count_of(&self, user: &str, idle: Duration) -> usize {
        Self::held(&self.live.lock(), user, idle)
    }

    fn held(live: &Live, user: &str, idle: Duration) -> usize {
        live.sessions.values().filter(|i| i.principal.user == user && i.last_active.elapsed() <= idle).count()
            + live.opening.get(user).copied().unwrap_or(0)
    }

    /// Room for one more session of `user`, or TOO_MANY_SESSIONS [user, limit] when the user
    /// already holds `limit` sessions (counting logins of theirs still under way).
    pub fn reserve(&self, user: &str, limit: usize, idle: Duration) -> ApiResult<Slot<'_>> {
        let mut live = self.live.lock();
        if Self::held(&live, user, idle) >= limit {
            return Err(ApiError::new(codes::TOO_MANY_SESSIONS, [user.to_owned(), limit.to_string()]));
        }
        *live.opening.entry(user.to_owned()).or_insert(0) += 1;
        Ok(Slot { sessions: self, user: user.to_owned(), filled: false })
    }

    /// Who holds a session, without touching its idle clock (for the audit log).
    pub fn user_of(&self, reference: &str) -> Option<String> {
        self.live.lock().sessions.get(reference).map(|i| i.principal.user.clone())
    }
}

/// `session.login_with_password` (and `slave_local_login_with_password`, over XML-RPC or
/// JSON-RPC). The credentials are checked first, then the per-user bound on sessions
/// (`max_sessions_per_user`): a user who already holds that many live sessions is refused with
/// TOO_MANY_SESSIONS [user, limit] and no session is made. xapi instead logs out the oldest
/// sessions beyond its bound (500 per originator or user name) when it next collects garbage;
/// a refusal tells the client at once and never pulls a session from under another client.
/// On a connection whose client certificate names `cert_user`,
/// the certificate is the credential: `user` must be `cert_user` and the password is not
/// checked (see docs/tls.md).
pub fn login(model: &Model, user: &str, password: &str, originator: &str, peer: IpAddr, cert_user: Option<&str>) -> ApiResult<Ref> {
    let verdict = match cert_user {
        Some(cert_user) => model.auth.authenticate_certificate(user, cert_user, peer),
        None => model.auth.authenticate(user, password, peer),
    };
    let principal = verdict.map_err(|e| match e {
        AuthError::NoRole(u) => {
            ApiError::new(codes::SESSION_AUTHORIZATION_FAILED, [u, "The user has no role that allows a login".to_owned()])
        }
        // The limiter's refusal says so and for how long; the others stay vague on purpose.
        other => ApiError::new(codes::SESSION_AUTHENTICATION_FAILED, [user.to_owned(), other.to_string()]),
    })?;
    let limit = model.config.max_sessions_per_user;
    let slot = model.sessions.reserve(&principal.user, limit, model.config.session_idle_timeout).inspect_err(|_| {
        tracing::warn!(user = %principal.user, %peer, limit, "login refused: the user holds as many sessions as allowed");
    })?;
    tracing::info!(user, %peer, role = %principal.role, client_cert = cert_user.is_some(), "login");
    let session_ref = model.write(|tx| {
        let mut f = default_fields(class::session);
        f[session::THIS_HOST.index()] = Value::str(model.known.host.clone());
        f[session::LAST_ACTIVE.index()] = Value::DateTime(now_xapi());
        f[session::IS_LOCAL_SUPERUSER.index()] = Value::Bool(principal.role == Role::PoolAdmin);
        f[session::AUTH_USER_NAME.index()] = Value::str(user);
        f[session::ORIGINATOR.index()] = Value::str(originator);
        f[session::RBAC_PERMISSIONS.index()] = Value::Array(vec![]);
        f[session::OTHER_CONFIG.index()] = crate::bootstrap::map(&[("role", principal.role.name().to_owned())]);
        Ok(tx.insert(class::session, f))
    })?;
    slot.fill(session_ref.clone(), SessionInfo { principal, last_active: Instant::now() });
    Ok(session_ref)
}

pub fn logout(model: &Model, session_ref: &str) -> ApiResult<()> {
    model.sessions.live.lock().sessions.remove(session_ref);
    model.events.unregister_session(session_ref);
    model.write(|tx| {
        if tx.data().row(class::session, session_ref).is_some() {
            tx.remove(class::session, session_ref).map(|_| ())
        } else {
            Ok(())
        }
    })
}

/// Local users, hashed with argon2 in the store. Opens its own connection, so `xencim user`
/// commands take effect at once, even while the daemon runs.
pub struct LocalAuthenticator {
    store_path: PathBuf,
    conn: Mutex<Option<Store>>,
}

impl LocalAuthenticator {
    pub fn new(store_path: PathBuf) -> LocalAuthenticator {
        LocalAuthenticator { store_path, conn: Mutex::new(None) }
    }

    fn with_store<T>(&self, f: impl FnOnce(&Store) -> rusqlite::Result<T>) -> Result<T, AuthError> {
        let mut conn = self.conn.lock();
        if conn.is_none() {
            *conn = Some(Store::open(&self.store_path).map_err(|e| AuthError::Unavailable(e.to_string()))?);
        }
        f(conn.as_ref().unwrap()).map_err(|e| AuthError::Unavailable(e.to_string()))
    }
}

/// A hash to verify against when the user does not exist, so that both failures cost the same.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password that nobody has"))
}

impl Authenticator for LocalAuthenticator {
    fn authenticate(&self, user: &str, password: &str, _peer: IpAddr) -> Result<Principal, AuthError> {
        let stored = self.with_store(|s| s.user(user))?;
        let hash = stored.as_ref().map(|u| u.password_hash.as_str()).unwrap_or_else(|| decoy_hash());
        let ok = verify_password(password, hash);
        match stored {
            Some(u) if ok => {
                u.role.parse::<Role>().map(|role| Principal { user: u.name, role }).map_err(|_| AuthError::NoRole(user.to_owned()))
            }
            _ => Err(AuthError::BadCredentials),
        }
    }

    /// Any entry of the user table: a local user, or a role-only entry made for a PAM user.
    fn authenticate_certificate(&self, user: &str, cert_user: &str, _peer: IpAddr) -> Result<Principal, AuthError> {
        if user != cert_user {
            return Err(AuthError::BadCredentials);
        }
        match self.with_store(|s| s.user(user))? {
            Some(u) => u.role.parse::<Role>().map(|role| Principal { user: u.name, role }).map_err(|_| AuthError::NoRole(user.to_owned())),
            None => Err(AuthError::BadCredentials),
        }
    }
}

/// The password hash stored for a user who logs in through PAM only: it is not a valid hash, so
/// local authentication never accepts it; the entry carries the user's role.
pub const PAM_ONLY: &str = "!pam";

/// Passwords checked by the host's PAM stack; roles from the store's user table (an entry made
/// with `xencim user add NAME --pam --role R`, or a local user's entry of the same name), or
/// the configured default role for PAM users without an entry.
pub struct PamAuthenticator {
    service: String,
    default_role: Option<Role>,
    roles: LocalAuthenticator,
}

impl PamAuthenticator {
    pub fn new(service: String, default_role: Option<Role>, store_path: PathBuf) -> PamAuthenticator {
        PamAuthenticator { service, default_role, roles: LocalAuthenticator::new(store_path) }
    }
}

impl Authenticator for PamAuthenticator {
    fn authenticate(&self, user: &str, password: &str, peer: IpAddr) -> Result<Principal, AuthError> {
        match httpd::pam::check(&self.service, user, password, peer) {
            Ok(()) => {}
            Err(httpd::pam::PamError::Denied(why)) => {
                tracing::debug!(user, %peer, reason = %why, "PAM refused the login");
                return Err(AuthError::BadCredentials);
            }
            Err(httpd::pam::PamError::Unavailable(why)) => return Err(AuthError::Unavailable(why)),
        }
        let stored = self.roles.with_store(|s| s.user(user))?;
        let role = match stored {
            Some(u) => u.role.parse::<Role>().ok(),
            None => self.default_role,
        };
        role.map(|role| Principal { user: user.to_owned(), role }).ok_or_else(|| AuthError::NoRole(user.to_owned()))
    }

    /// The user needs an entry in the user table (`xencim user add NAME --pam --role R`):
    /// PAM cannot say whether a user exists without a password, so `pam_default_role` does not
    /// apply to certificates.
    fn authenticate_certificate(&self, user: &str, cert_user: &str, peer: IpAddr) -> Result<Principal, AuthError> {
        self.roles.authenticate_certificate(user, cert_user, peer)
    }
}

pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default().hash_password(password.as_bytes(), &salt).expect("argon2 hashing").to_string()
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).map(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok()).unwrap_or(false)
}

/// User management for the `xencim user` commands, straight on the store.
pub struct UserAdmin {
    store: Store,
}

impl UserAdmin {
    pub fn open(state_dir: &std::path::Path) -> anyhow::Result<UserAdmin> {
        std::fs::create_dir_all(state_dir)?;
        Ok(UserAdmin { store: Store::open(&state_dir.join("xencim.db"))? })
    }

    pub fn add(&self, name: &str, password: &str, role: Role) -> anyhow::Result<()> {
        validate_user_name(name)?;
        let added = self.store.add_user(&StoredUser {
            name: name.to_owned(),
            password_hash: hash_password(password),
            role: role.name().to_owned(),
        })?;
        anyhow::ensure!(added, "user {name} already exists");
        Ok(())
    }

    /// A role-only entry for a user whose password PAM checks (`--auth pam`).
    pub fn add_pam(&self, name: &str, role: Role) -> anyhow::Result<()> {
        validate_user_name(name)?;
        let added =
            self.store.add_user(&StoredUser { name: name.to_owned(), password_hash: PAM_ONLY.to_owned(), role: role.name().to_owned() })?;
        anyhow::ensure!(added, "user {name} already exists");
        Ok(())
    }

    pub fn list(&self) -> anyhow::Result<Vec<(String, String)>> {
        Ok(self.store.users()?.into_iter().map(|u| (u.name, u.role)).collect())
    }

    pub fn remove(&self, name: &str) -> anyhow::Result<()> {
        anyhow::ensure!(self.store.remove_user(name)?, "no user named {name}");
        Ok(())
    }

    pub fn set_password(&self, name: &str, password: &str) -> anyhow::Result<()> {
        anyhow::ensure!(self.store.update_user(name, Some(&hash_password(password)), None)?, "no user named {name}");
        Ok(())
    }

    pub fn set_role(&self, name: &str, role: Role) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.store.update_user(name, None, Some(role.name()))?,
            "no user named {name} (for a PAM user, add a role-only entry: xencim user add {name} --pam --role {role})"
        );
        Ok(())
    }

    pub fn is_empty(&self) -> anyhow::Result<bool> {
        Ok(self.store.users()?.is_empty())
    }
}

fn validate_user_name(name: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c)),
        "invalid user name {name:?}: use 1 to 64 letters, digits, '.', '_', '-' or '@'"
    );
    Ok(())
}

#[cfg(test)]
mod tests;
