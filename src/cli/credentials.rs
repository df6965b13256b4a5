//! Who the command line logs in as. In order: `--user` and `--password-stdin`;
//! `XENCIM_USER` and `XENCIM_PASSWORD`; the file `~/.config/xencim/credentials` (mode 0600);
//! on the daemon's own host, `admin` with `<state-dir>/initial-admin-password`; and last a
//! prompt when standard input is a terminal. The user and the password are settled separately,
//! so `--user bob` with `XENCIM_PASSWORD` works.

use super::errors::{Failure, Result};
use serde::Deserialize;
use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsFile {
    pub user: Option<String>,
    pub password: Option<String>,
    /// The server to use when `--server` is not given.
    pub server: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
    /// Where they came from, for error messages.
    pub source: String,
}

/// `$XDG_CONFIG_HOME/xencim/credentials` or `~/.config/xencim/credentials`.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("xencim").join("credentials"))
}

/// Reads the credentials file when there is one; a file others may read is refused, since it
/// holds a password.
pub fn read_file(path: &Path) -> Result<Option<CredentialsFile>> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Failure::Auth(format!("cannot read {}: {e}", path.display()))),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Failure::Auth(format!(
            "refusing to use {}: it holds a password but its mode is {mode:04o}, so other users can read it; run `chmod 600 {}`",
            path.display(),
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| Failure::Auth(format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map(Some).map_err(|e| {
        Failure::Auth(format!("{}: {} (expected lines such as user = \"admin\" and password = \"...\")", path.display(), e.message()))
    })
}

/// What the command line was given.
pub struct Sources<'a> {
    pub user_flag: Option<&'a str>,
    pub password_stdin: bool,
    pub env_user: Option<String>,
    pub env_password: Option<String>,
    pub file: Option<(&'a Path, &'a CredentialsFile)>,
    /// The state directory, consulted only when the server is on this host.
    pub local_state_dir: Option<&'a Path>,
    pub server: &'a str,
}

fn read_stdin_line() -> Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| Failure::Auth(format!("reading the password from standard input: {e}")))?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        return Err(Failure::Auth("--password-stdin: standard input held no password".into()));
    }
    Ok(password)
}

/// Asks on the terminal with echo turned off.
fn prompt(user: &str, server: &str) -> Result<String> {
    eprint!("Password for {user} at {server}: ");
    let _ = std::io::stderr().flush();
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios is plain data filled in by tcgetattr on a descriptor we checked is a tty.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    let have_tty = unsafe { libc::tcgetattr(fd, &mut saved) } == 0;
    if have_tty {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) };
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if have_tty {
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
    eprintln!();
    read.map_err(|e| Failure::Auth(format!("reading the password: {e}")))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

pub fn resolve(s: Sources) -> Result<Credentials> {
    let file_user = s.file.and_then(|(_, f)| f.user.clone());
    let (user, user_source) = if let Some(u) = s.user_flag {
        (Some(u.to_owned()), "--user")
    } else if let Some(u) = s.env_user.clone().filter(|u| !u.is_empty()) {
        (Some(u), "XENCIM_USER")
    } else if let Some(u) = file_user.clone() {
        (Some(u), "the credentials file")
    } else {
        (None, "")
    };

    if s.password_stdin {
        let user = user.ok_or_else(|| Failure::Auth("--password-stdin needs a user name: give --user NAME".into()))?;
        return Ok(Credentials { user, password: read_stdin_line()?, source: "--password-stdin".into() });
    }
    if let Some(p) = s.env_password.clone().filter(|p| !p.is_empty()) {
        let user = user.ok_or_else(|| Failure::Auth("XENCIM_PASSWORD is set but no user is: set XENCIM_USER or give --user".into()))?;
        return Ok(Credentials { user, password: p, source: "XENCIM_PASSWORD".into() });
    }
    // The file's password belongs to the file's user; a different --user does not get it.
    if let Some((path, f)) = s.file {
        if let Some(p) = &f.password {
            let file_user = f.user.clone().unwrap_or_else(|| "admin".into());
            if user.as_deref().is_none_or(|u| u == file_user) {
                return Ok(Credentials { user: file_user, password: p.clone(), source: path.display().to_string() });
            }
        }
    }
    if let Some(dir) = s.local_state_dir {
        if user.as_deref().is_none_or(|u| u == "admin") {
            let path = dir.join("initial-admin-password");
            if let Ok(text) = std::fs::read_to_string(&path) {
                let password = text.trim().to_owned();
                if !password.is_empty() {
                    return Ok(Credentials { user: "admin".into(), password, source: path.display().to_string() });
                }
            }
        }
    }
    if std::io::stdin().is_terminal() {
        let user = user.unwrap_or_else(|| "admin".into());
        let password = prompt(&user, s.server)?;
        return Ok(Credentials { user, password, source: "the prompt".into() });
    }
    let who = match &user {
        Some(u) => format!(" for user {u} (from {user_source})"),
        None => String::new(),
    };
    Err(Failure::Auth(format!(
        "no password{who}: give --user NAME --password-stdin, set XENCIM_USER and XENCIM_PASSWORD, or write user and password to ~/.config/xencim/credentials (mode 0600)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources<'a>(server: &'a str) -> Sources<'a> {
        Sources { user_flag: None, password_stdin: false, env_user: None, env_password: None, file: None, local_state_dir: None, server }
    }

    #[test]
    fn a_file_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(&path, "user = \"alice\"\npassword = \"pw\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read_file(&path).unwrap_err().to_string();
        assert!(err.contains("mode is 0644") && err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let f = read_file(&path).unwrap().unwrap();
        assert_eq!((f.user.as_deref(), f.password.as_deref()), (Some("alice"), Some("pw")));
        assert!(read_file(&dir.path().join("none")).unwrap().is_none());
        std::fs::write(&path, "usr = 1\n").unwrap();
        assert!(read_file(&path).unwrap_err().to_string().contains("expected lines such as"));
    }

    #[test]
    fn the_order_of_sources() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("initial-admin-password"), "initial\n").unwrap();
        let file = CredentialsFile { user: Some("alice".into()), password: Some("alices".into()), server: None };
        let path = dir.path().join("credentials");

        let mut s = sources("http://127.0.0.1:9363/");
        s.env_user = Some("bob".into());
        s.env_password = Some("bobs".into());
        s.file = Some((&path, &file));
        s.local_state_dir = Some(dir.path());
        assert_eq!(resolve(s).unwrap().user, "bob");

        let mut s = sources("x");
        s.file = Some((&path, &file));
        s.local_state_dir = Some(dir.path());
        let c = resolve(s).unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("alice", "alices"));

        // --user of someone else does not take alice's password; admin falls to the local file.
        let mut s = sources("x");
        s.user_flag = Some("admin");
        s.file = Some((&path, &file));
        s.local_state_dir = Some(dir.path());
        let c = resolve(s).unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("admin", "initial"));

        let mut s = sources("x");
        s.env_password = Some("p".into());
        assert!(resolve(s).unwrap_err().to_string().contains("no user"));
    }
}
