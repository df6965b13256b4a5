//! The per-user bound on sessions: refused beyond it, others unaffected, freed by logout and by
//! expiry, never overshot by concurrent logins.

use super::*;
use crate::datamodel::class;
use crate::model::ModelConfig;
use std::sync::Arc;

/// Any password is right; every user is a pool admin.
struct AnyPassword;

impl Authenticator for AnyPassword {
    fn authenticate(&self, user: &str, _password: &str, _peer: IpAddr) -> Result<Principal, AuthError> {
        Ok(Principal { user: user.to_owned(), role: Role::PoolAdmin })
    }
}

fn model(limit: usize, idle: Duration) -> (tempfile::TempDir, Arc<Model>) {
    let dir = tempfile::tempdir().unwrap();
    let hv = Arc::new(hypervisor::sim::SimHypervisor::new(hypervisor::sim::SimConfig {
        state_dir: dir.path().join("sim"),
        ..Default::default()
    }));
    let mut config = ModelConfig::new(dir.path().to_path_buf());
    config.max_sessions_per_user = limit;
    config.session_idle_timeout = idle;
    let model = Model::open(config, hv, Arc::new(AnyPassword)).unwrap();
    (dir, model)
}

fn log_in(model: &Model, user: &str) -> ApiResult<Ref> {
    login(model, user, "pw", "tests", IpAddr::from([127, 0, 0, 1]), None)
}

fn session_objects(model: &Model) -> usize {
    model.db.read().count(class::session)
}

#[test]
fn a_login_beyond_the_bound_is_refused_and_makes_no_session() {
    let (_dir, m) = model(3, Duration::from_secs(3600));
    let mine: Vec<Ref> = (0..3).map(|_| log_in(&m, "alice").unwrap()).collect();
    let before = session_objects(&m);
    let err = log_in(&m, "alice").unwrap_err();
    assert_eq!(err.code, codes::TOO_MANY_SESSIONS);
    assert_eq!(err.args, ["alice", "3"]);
    assert_eq!(session_objects(&m), before, "a refused login leaves no session object");
    assert_eq!(m.sessions.count(), 3);
    // Another user is not affected, and alice's sessions still work.
    let bob = log_in(&m, "bob").unwrap();
    assert_eq!(m.sessions.check(&bob).unwrap().user, "bob");
    assert_eq!(m.sessions.check(&mine[0]).unwrap().user, "alice");
    // A logout frees a slot, for one more login only.
    logout(&m, &mine[1]).unwrap();
    log_in(&m, "alice").unwrap();
    assert_eq!(log_in(&m, "alice").unwrap_err().code, codes::TOO_MANY_SESSIONS);
}

#[test]
fn expired_sessions_do_not_count_even_before_housekeeping() {
    let (_dir, m) = model(2, Duration::from_millis(200));
    log_in(&m, "alice").unwrap();
    log_in(&m, "alice").unwrap();
    assert_eq!(log_in(&m, "alice").unwrap_err().code, codes::TOO_MANY_SESSIONS);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(m.sessions.count_of("alice", m.config.session_idle_timeout), 0);
    log_in(&m, "alice").unwrap();
    log_in(&m, "alice").unwrap();
    assert_eq!(log_in(&m, "alice").unwrap_err().code, codes::TOO_MANY_SESSIONS);
}

#[test]
fn concurrent_logins_never_overshoot_the_bound() {
    let (_dir, m) = model(5, Duration::from_secs(3600));
    let results: Vec<ApiResult<Ref>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..24).map(|_| s.spawn(|| log_in(&m, "alice"))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 5);
    assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|e| e.code == codes::TOO_MANY_SESSIONS));
    assert_eq!(m.sessions.count_of("alice", Duration::from_secs(3600)), 5);
}

#[test]
fn an_unused_slot_frees_its_room() {
    let sessions = Sessions::default();
    let idle = Duration::from_secs(60);
    let slot = sessions.reserve("alice", 1, idle).unwrap();
    assert_eq!(sessions.count_of("alice", idle), 1);
    assert_eq!(sessions.reserve("alice", 1, idle).err().map(|e| e.code), Some(codes::TOO_MANY_SESSIONS.to_owned()));
    drop(slot);
    assert_eq!(sessions.count_of("alice", idle), 0);
    let slot = sessions.reserve("alice", 1, idle).unwrap();
    slot.fill(
        "OpaqueRef:x".into(),
        SessionInfo { principal: Principal { user: "alice".into(), role: Role::ReadOnly }, last_active: Instant::now() },
    );
    assert_eq!(sessions.count_of("alice", idle), 1);
    assert!(sessions.reserve("alice", 1, idle).is_err());
}
