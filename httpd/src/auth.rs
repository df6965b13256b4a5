//! Who is calling, and what they may do. Both front doors authenticate through one
//! [`Authenticator`] (local users in the store, or PAM) and authorise by [`Role`].

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// The three roles of the product, from least to most privileged. Both doors decide what a
/// call may do from these alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads everything, changes nothing.
    ReadOnly,
    /// Reads everything and drives VMs: lifecycle, devices, VM settings.
    VmOperator,
    /// Everything, including users, networks and storage.
    PoolAdmin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::ReadOnly, Role::VmOperator, Role::PoolAdmin];

    /// The name used on the command line, in the store and in xapi's role table.
    pub fn name(self) -> &'static str {
        match self {
            Role::ReadOnly => "read-only",
            Role::VmOperator => "vm-operator",
            Role::PoolAdmin => "pool-admin",
        }
    }

    /// Whether this role includes everything `other` may do.
    pub fn includes(self, other: Role) -> bool {
        self >= other
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown role {s:?} (expected read-only, vm-operator or pool-admin)"))
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub role: Role,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// Unknown user or wrong password; deliberately not saying which.
    #[error("Authentication failure")]
    BadCredentials,
    /// The credentials are right but the user holds no role.
    #[error("user {0} has no role")]
    NoRole(String),
    /// Too many failures from this address or for this user; try again later.
    #[error("too many failed logins for this user or from this address; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("authentication service unavailable: {0}")]
    Unavailable(String),
}

/// Checks a user name and password. Implementations must take about the same time for an
/// unknown user as for a wrong password.
pub trait Authenticator: Send + Sync {
    fn authenticate(&self, user: &str, password: &str, peer: IpAddr) -> Result<Principal, AuthError>;

    /// A caller on a TLS connection whose client certificate, verified against the
    /// configured client CA, names `cert_user`, asks to act as `user` (the name it sent, or
    /// `cert_user` itself when it sent none). No password is involved: the certificate is the
    /// credential, so `user` must equal `cert_user` and be a user the authenticator knows.
    /// The default refuses every certificate.
    fn authenticate_certificate(&self, user: &str, cert_user: &str, peer: IpAddr) -> Result<Principal, AuthError> {
        let _ = (user, cert_user, peer);
        Err(AuthError::BadCredentials)
    }
}
