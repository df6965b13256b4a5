//! Failed logins slow down guessing: after a number of failures for one user name, or from one
//! address, further attempts are refused outright for a while, doubling with each failure.
//! Refusing is immediate (no sleeping), so a locked-out guesser costs the server nothing and
//! other clients are not delayed; the lock is held only to read and update a counter.

use crate::audit::{AuditEvent, AuditSink};
use crate::auth::{AuthError, Authenticator, Principal};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How quickly failed logins lock a user name or an address out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failures for one user name allowed before the backoff starts.
    pub user_failures: u32,
    /// Failures from one address allowed before the backoff starts. Higher than for a user, as
    /// many people may share an address (a NAT, a management station).
    pub address_failures: u32,
    /// The first lockout; each further failure doubles it.
    pub base_backoff: Duration,
    /// The longest lockout.
    pub max_backoff: Duration,
    /// Failures are forgotten after this long without a new one.
    pub forget_after: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            user_failures: 5,
            address_failures: 20,
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            forget_after: Duration::from_secs(900),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Keys tracked at most; beyond it the forgotten ones are dropped, then the oldest, so that a
/// flood of made-up user names cannot grow the map without bound.
const MAX_TRACKED: usize = 65_536;

#[derive(Hash, PartialEq, Eq, Clone, Debug)]
enum Key {
    User(String),
    Address(IpAddr),
}

/// Counts failed logins per user name and per address; shared by both front doors.
#[derive(Default)]
pub struct LoginLimiter {
    limits: LoginLimits,
    failures: Mutex<HashMap<Key, Failures>>,
}

impl LoginLimiter {
    pub fn new(limits: LoginLimits) -> LoginLimiter {
        LoginLimiter { limits, failures: Mutex::new(HashMap::new()) }
    }

    fn threshold(&self, key: &Key) -> u32 {
        match key {
            Key::User(_) => self.limits.user_failures,
            Key::Address(_) => self.limits.address_failures,
        }
    }

    /// How long `key` is still locked out, if it is.
    fn locked_for(&self, key: &Key, f: &Failures, now: Instant) -> Option<Duration> {
        let free = self.threshold(key);
        if f.count < free {
            return None;
        }
        let doublings = (f.count - free).min(30);
        let backoff = self.limits.base_backoff.saturating_mul(1u32 << doublings).min(self.limits.max_backoff);
        let until = f.last + backoff;
        (until > now).then(|| until - now)
    }

    fn keys(user: &str, peer: IpAddr) -> [Key; 2] {
        // IPv4-mapped IPv6 and plain IPv4 are one address.
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        [Key::User(user.to_owned()), Key::Address(peer)]
    }

    /// Refuses at once while the user name or the address is locked out.
    pub fn check(&self, user: &str, peer: IpAddr) -> Result<(), AuthError> {
        let now = Instant::now();
        let failures = self.failures.lock();
        let wait = Self::keys(user, peer).iter().filter_map(|k| failures.get(k).and_then(|f| self.locked_for(k, f, now))).max();
        match wait {
            Some(w) => Err(AuthError::RateLimited { retry_after_secs: w.as_secs().max(1) }),
            None => Ok(()),
        }
    }

    pub fn failed(&self, user: &str, peer: IpAddr) {
        let now = Instant::now();
        let mut failures = self.failures.lock();
        if failures.len() >= MAX_TRACKED {
            let forget = self.limits.forget_after.max(self.limits.max_backoff);
            failures.retain(|_, f| now.duration_since(f.last) < forget);
            if failures.len() >= MAX_TRACKED {
                failures.clear();
            }
        }
        for key in Self::keys(user, peer) {
            let entry = failures.entry(key).or_insert(Failures { count: 0, last: now });
            if now.duration_since(entry.last) > self.limits.forget_after {
                entry.count = 0;
            }
            entry.count = entry.count.saturating_add(1);
            entry.last = now;
        }
    }

    /// A successful login clears the user's failures and the address's.
    pub fn succeeded(&self, user: &str, peer: IpAddr) {
        let mut failures = self.failures.lock();
        for key in Self::keys(user, peer) {
            failures.remove(&key);
        }
    }
}

/// An [`Authenticator`] behind the login limiter, writing each login to the audit log. Each
/// front door gets its own (sharing the limiter and the log) so that the log names the door.
pub struct Guarded {
    inner: Arc<dyn Authenticator>,
    limiter: Arc<LoginLimiter>,
    audit: Option<Arc<dyn AuditSink>>,
    door: &'static str,
}

impl Guarded {
    pub fn new(
        inner: Arc<dyn Authenticator>,
        limiter: Arc<LoginLimiter>,
        audit: Option<Arc<dyn AuditSink>>,
        door: &'static str,
    ) -> Guarded {
        Guarded { inner, limiter, audit, door }
    }
}

impl Guarded {
    /// Runs one login attempt for `user` behind the limiter and records it in the audit log.
    fn attempt(
        &self,
        user: &str,
        peer: IpAddr,
        method: &str,
        check: impl FnOnce() -> Result<Principal, AuthError>,
    ) -> Result<Principal, AuthError> {
        let verdict = self.limiter.check(user, peer).and_then(|()| check());
        match &verdict {
            Ok(_) => self.limiter.succeeded(user, peer),
            // A user without a role knew the password: not a guess.
            Err(AuthError::BadCredentials) => self.limiter.failed(user, peer),
            Err(_) => {}
        }
        if let Some(audit) = &self.audit {
            let result = match &verdict {
                Ok(p) => Ok(p.role.name()),
                Err(AuthError::BadCredentials) => Err("bad credentials"),
                Err(AuthError::NoRole(_)) => Err("no role"),
                Err(AuthError::RateLimited { .. }) => Err("rate limited"),
                Err(AuthError::Unavailable(_)) => Err("authentication service unavailable"),
            };
            audit.record(&AuditEvent {
                door: self.door,
                user,
                peer,
                action: "login",
                method: Some(method),
                target: None,
                result: result.map(|_| ()).map_err(|e| e.to_owned()),
            });
        }
        verdict
    }
}

impl Authenticator for Guarded {
    fn authenticate(&self, user: &str, password: &str, peer: IpAddr) -> Result<Principal, AuthError> {
        self.attempt(user, peer, "password", || self.inner.authenticate(user, password, peer))
    }

    /// Limited and audited like a password login (method `client-cert`): asking for a user
    /// other than the certificate's counts as a failed login for that user name.
    fn authenticate_certificate(&self, user: &str, cert_user: &str, peer: IpAddr) -> Result<Principal, AuthError> {
        self.attempt(user, peer, "client-cert", || {
            if user != cert_user {
                tracing::warn!(user, cert_user, %peer, door = self.door, "login as another user than the client certificate's refused");
                return Err(AuthError::BadCredentials);
            }
            self.inner.authenticate_certificate(user, cert_user, peer)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(user_failures: u32, address_failures: u32) -> LoginLimiter {
        LoginLimiter::new(LoginLimits {
            user_failures,
            address_failures,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
            forget_after: Duration::from_secs(60),
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_user_is_locked_after_its_failures_and_freed_by_time() {
        let l = limiter(3, 100);
        for _ in 0..3 {
            l.check("alice", ip("10.0.0.1")).unwrap();
            l.failed("alice", ip("10.0.0.1"));
        }
        let Err(AuthError::RateLimited { retry_after_secs }) = l.check("alice", ip("10.0.0.2")) else { panic!() };
        assert!(retry_after_secs >= 1);
        // Other users from the same address and the same user's neighbours carry on.
        l.check("bob", ip("10.0.0.1")).unwrap();
        std::thread::sleep(Duration::from_millis(250));
        l.check("alice", ip("10.0.0.1")).unwrap();
        // One more failure doubles the lockout.
        l.failed("alice", ip("10.0.0.1"));
        std::thread::sleep(Duration::from_millis(250));
        assert!(l.check("alice", ip("10.0.0.1")).is_err());
        std::thread::sleep(Duration::from_millis(200));
        l.check("alice", ip("10.0.0.1")).unwrap();
    }

    #[test]
    fn an_address_is_locked_for_every_user_and_others_are_not() {
        let l = limiter(100, 4);
        for i in 0..4 {
            l.failed(&format!("guess{i}"), ip("192.0.2.7"));
        }
        assert!(l.check("admin", ip("192.0.2.7")).is_err());
        assert!(l.check("admin", ip("::ffff:192.0.2.7")).is_err());
        l.check("admin", ip("192.0.2.8")).unwrap();
    }

    #[test]
    fn success_clears_and_the_map_stays_bounded() {
        let l = limiter(2, 100);
        l.failed("carol", ip("10.1.1.1"));
        l.succeeded("carol", ip("10.1.1.1"));
        l.failed("carol", ip("10.1.1.1"));
        l.check("carol", ip("10.1.1.1")).unwrap();
        for i in 0..(MAX_TRACKED + 10) {
            l.failed(&format!("u{i}"), ip("10.2.2.2"));
        }
        assert!(l.failures.lock().len() <= MAX_TRACKED + 2);
    }

    struct Fixed;
    impl Authenticator for Fixed {
        fn authenticate(&self, user: &str, password: &str, _peer: IpAddr) -> Result<Principal, AuthError> {
            match (user, password) {
                ("root", "right") => Ok(Principal { user: user.into(), role: crate::Role::PoolAdmin }),
                ("norole", "right") => Err(AuthError::NoRole(user.into())),
                _ => Err(AuthError::BadCredentials),
            }
        }
    }

    struct Recorder;

    impl Authenticator for Recorder {
        fn authenticate(&self, user: &str, password: &str, peer: IpAddr) -> Result<Principal, AuthError> {
            Fixed.authenticate(user, password, peer)
        }
        fn authenticate_certificate(&self, user: &str, _cert_user: &str, _peer: IpAddr) -> Result<Principal, AuthError> {
            match user {
                "root" => Ok(Principal { user: user.into(), role: crate::Role::PoolAdmin }),
                _ => Err(AuthError::BadCredentials),
            }
        }
    }

    #[derive(Default)]
    struct Lines(Mutex<Vec<String>>);
    impl AuditSink for Lines {
        fn record(&self, event: &AuditEvent<'_>) {
            self.0.lock().push(crate::audit::audit_line(event));
        }
    }

    #[test]
    fn certificate_logins_are_limited_and_audited() {
        let lines = Arc::new(Lines::default());
        let g = Guarded::new(Arc::new(Recorder), Arc::new(limiter(2, 100)), Some(lines.clone()), "test");
        let peer = ip("10.8.8.8");
        assert_eq!(g.authenticate_certificate("root", "root", peer).unwrap().role, crate::Role::PoolAdmin);
        // Another name than the certificate's is refused without asking the store, and counts.
        assert_eq!(g.authenticate_certificate("admin", "root", peer), Err(AuthError::BadCredentials));
        assert_eq!(g.authenticate_certificate("admin", "root", peer), Err(AuthError::BadCredentials));
        assert!(matches!(g.authenticate_certificate("admin", "admin", peer), Err(AuthError::RateLimited { .. })));
        // The default of the trait refuses every certificate.
        assert_eq!(Fixed.authenticate_certificate("root", "root", peer), Err(AuthError::BadCredentials));
        let lines: Vec<serde_json::Value> = lines.0.lock().iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 4);
        assert!(lines.iter().all(|l| l["method"] == "client-cert" && l["action"] == "login"));
        assert_eq!(lines[0]["result"], "ok");
        assert_eq!(lines[1]["user"], "admin");
        assert_eq!(lines[1]["result"], "error: bad credentials");
        assert_eq!(lines[3]["result"], "error: rate limited");
        g.authenticate("root", "right", peer).unwrap();
    }

    #[test]
    fn guarded_refuses_even_the_right_password_while_locked() {
        let g = Guarded::new(Arc::new(Fixed), Arc::new(limiter(2, 100)), None, "test");
        let peer = ip("10.9.9.9");
        assert_eq!(g.authenticate("root", "wrong", peer), Err(AuthError::BadCredentials));
        assert_eq!(g.authenticate("root", "wrong", peer), Err(AuthError::BadCredentials));
        assert!(matches!(g.authenticate("root", "right", peer), Err(AuthError::RateLimited { .. })));
        // A known password without a role is not counted as a guess.
        for _ in 0..5 {
            assert_eq!(g.authenticate("norole", "right", peer), Err(AuthError::NoRole("norole".into())));
        }
    }
}
