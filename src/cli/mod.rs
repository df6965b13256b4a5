//! The xm-style command line: a Xen-API client of a running daemon, local or remote. Never
//! opens the store itself. `connection` is the wire and the session, `credentials` who logs
//! in, `domcfg` and `devspec` the xm/xl config syntax, `lookup` VM arguments, `verbs` the
//! commands, `output` what they print, `errors` how they fail.

pub mod connection;
pub mod credentials;
pub mod devspec;
pub mod domcfg;
pub mod errors;
pub mod lookup;
pub mod output;
pub mod verbs;

use clap::{ArgMatches, Args, Command, FromArgMatches, Subcommand};
use connection::{Connection, Endpoint, TlsOptions, Transport};
use errors::{Failure, Result};
use std::path::PathBuf;
use std::process::ExitCode;

// How to reach and log in to the daemon. Accepted before the verb (`xencim --server URL list`)
// and after it (`xencim list --server URL`). No doc comment: clap would make it the `about` of
// every verb it is added to.
#[derive(Args, Debug, Default, Clone)]
#[command(next_help_heading = "Connection")]
pub struct ConnArgs {
    /// Xen-API server: http://HOST:9363/ or https://HOST:9364/ [default: $XENCIM_SERVER, the
    /// credentials file's server, or http://127.0.0.1:9363/]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// User to log in as [default: $XENCIM_USER, the credentials file's user, or admin on the
    /// daemon's host]
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Read the password from the first line of standard input (else $XENCIM_PASSWORD)
    #[arg(long)]
    pub password_stdin: bool,
    /// State directory of a daemon on this host, for its initial admin password and its
    /// certificate [default: $XENCIM_STATE_DIR or ./xencim-state]
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Trust this PEM certificate for https:// (the daemon's is <state-dir>/tls/server.pem)
    /// [default: $XENCIM_CA_FILE]
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Do not check the server's TLS certificate (only for a server you reach over a network you trust)
    #[arg(long)]
    pub insecure: bool,
}

impl ConnArgs {
    /// Options given after the verb win over the same ones given before it.
    fn merged(self, before: &ConnArgs) -> ConnArgs {
        ConnArgs {
            server: self.server.or_else(|| before.server.clone()),
            user: self.user.or_else(|| before.user.clone()),
            password_stdin: self.password_stdin || before.password_stdin,
            state_dir: self.state_dir.or_else(|| before.state_dir.clone()),
            ca_file: self.ca_file.or_else(|| before.ca_file.clone()),
            insecure: self.insecure || before.insecure,
        }
    }
}

/// The xm verbs.
#[derive(Subcommand, Debug)]
pub enum Verb {
    /// Define a managed VM from an xm/xl domain config file; it stays halted.
    #[command(after_help = "Examples:\n  xencim new /etc/xen/vm1.cfg\n  xencim --server https://host:9364/ --user alice new vm1.cfg\n\n\
A disk whose file does not exist yet is created when its spec has size=, e.g.\n  disk = [ 'vdev=xvda, access=rw, size=10G, target=/srv/vm1.img' ]")]
    New {
        /// Domain config file (name = "vm1", memory = 512, disk = [...], vif = [...])
        config: PathBuf,
    },
    /// Define a VM from a config file and start it (new + start); nothing stays if it cannot start.
    #[command(after_help = "Examples:\n  xencim create vm1.cfg\n  xencim create --paused vm1.cfg")]
    Create {
        config: PathBuf,
        /// Leave the new domain paused
        #[arg(short, long)]
        paused: bool,
    },
    /// Delete a halted (or suspended) VM's definition; its disk images are kept.
    #[command(after_help = "Examples:\n  xencim delete vm1\n  xencim delete 6f1b7e55")]
    Delete {
        /// The VM: its name, UUID, a unique UUID prefix, or its domain ID
        vm: String,
    },
    /// Start a halted VM.
    #[command(after_help = "Examples:\n  xencim start vm1\n  xencim start --paused vm1")]
    Start {
        /// The VM: its name, UUID, a unique UUID prefix, or its domain ID
        vm: String,
        /// Start it paused
        #[arg(short, long)]
        paused: bool,
    },
    /// Ask a VM's guest to power off.
    #[command(
        after_help = "Examples:\n  xencim shutdown vm1            # ask, return at once\n  xencim shutdown --wait vm1     # ask and wait until halted\n  xencim shutdown --force --wait vm1   # power off if the guest does not"
    )]
    Shutdown {
        /// The VM: its name, UUID, a unique UUID prefix, or its domain ID
        vm: String,
        /// Power the VM off when the guest does not shut down (clean, then hard)
        #[arg(short = 'F', long)]
        force: bool,
        /// Wait until the VM is halted
        #[arg(short, long)]
        wait: bool,
    },
    /// Power a VM off at once, without asking its guest (xm's destroy; the VM stays defined).
    #[command(after_help = "Example:\n  xencim destroy vm1")]
    Destroy {
        /// The VM: its name, UUID, a unique UUID prefix, or its domain ID
        vm: String,
    },
    /// Reboot a VM's guest.
    #[command(after_help = "Examples:\n  xencim reboot vm1\n  xencim reboot --force vm1     # reset without asking the guest")]
    Reboot {
        /// The VM: its name, UUID, a unique UUID prefix, or its domain ID
        vm: String,
        /// Reset the domain instead of asking the guest
        #[arg(short = 'F', long)]
        force: bool,
    },
    /// Pause a running VM.
    #[command(after_help = "Example:\n  xencim pause vm1")]
    Pause {
        /// The VM: its name, UUID, a unique UUID prefix, or its domain ID
        vm: String,
    },
    /// Unpause a paused VM.
    #[command(after_help = "Example:\n  xencim unpause vm1")]
    Unpause {
        /// The VM: its name, UUID, a unique UUID prefix, or its domain ID
        vm: String,
    },
    /// Suspend a running VM to disk.
    #[command(after_help = "Example:\n  xencim suspend vm1")]
    Suspend {
        /// The VM: its name, UUID, a unique UUID prefix, or its domain ID
        vm: String,
    },
    /// Resume a suspended VM.
    #[command(after_help = "Examples:\n  xencim resume vm1\n  xencim resume --paused vm1")]
    Resume {
        /// The VM: its name, UUID, a unique UUID prefix, or its domain ID
        vm: String,
        /// Leave it paused
        #[arg(short, long)]
        paused: bool,
    },
    /// List VMs: Name, ID, Mem (MiB), VCPUs, State (r running, p paused, s suspended), Time(s).
    #[command(
        after_help = "Examples:\n  xencim list\n  xencim list --all\n  xencim list --long vm1\n  xencim list --all --json | jq '.[].name'"
    )]
    List {
        /// Only these VMs (names, UUIDs or UUID prefixes), whatever their state
        vms: Vec<String>,
        /// Include VMs without a domain (halted and suspended)
        #[arg(short, long)]
        all: bool,
        /// The whole record of each VM, with its disks (VBDs) and interfaces (VIFs)
        #[arg(short, long)]
        long: bool,
        /// JSON for scripts
        #[arg(long)]
        json: bool,
    },
    /// Set a VM's memory: live for a running VM, its configuration for a halted one.
    #[command(after_help = "Examples:\n  xencim mem-set vm1 512      # MiB\n  xencim mem-set vm1 2G")]
    MemSet {
        /// The VM: its name, UUID, a unique UUID prefix, or its domain ID
        vm: String,
        /// Memory in MiB, or with a unit (512M, 2G)
        memory: String,
    },
    /// Set a VM's number of vCPUs: live for a running VM (up to its maximum), its configuration for a halted one.
    #[command(after_help = "Example:\n  xencim vcpu-set vm1 2")]
    VcpuSet {
        /// The VM: its name, UUID, a unique UUID prefix, or its domain ID
        vm: String,
        #[arg(value_parser = clap::value_parser!(i64).range(1..=64))]
        vcpus: i64,
    },
    /// Attach a disk (hot-plugged into a running VM).
    #[command(
        after_help = "Examples:\n  xencim block-attach vm1 file:/srv/data.img,xvdb,w\n  xencim block-attach vm1 phy:/dev/vg0/data xvdc r\n  xencim block-attach vm1 'vdev=xvdd, size=4G, target=/srv/new.img'"
    )]
    BlockAttach {
        /// The VM: its name, UUID, a unique UUID prefix, or its domain ID
        vm: String,
        /// Disk spec, as in a config file's disk list (its parts may be separate words)
        #[arg(required = true, num_args = 1..)]
        spec: Vec<String>,
    },
    /// Detach a disk; its image is kept.
    #[command(after_help = "Example:\n  xencim block-detach vm1 xvdb")]
    BlockDetach {
        /// The VM: its name, UUID, a unique UUID prefix, or its domain ID
        vm: String,
        /// Device name (xvdb) or number
        device: String,
    },
    /// Attach a network interface (hot-plugged into a running VM).
    #[command(
        after_help = "Examples:\n  xencim network-attach vm1\n  xencim network-attach vm1 mac=00:16:3e:00:00:42,bridge=xenbr0\n  xencim network-attach vm1 bridge=xenbr0 mac=00:16:3e:00:00:42"
    )]
    NetworkAttach {
        /// The VM: its name, UUID, a unique UUID prefix, or its domain ID
        vm: String,
        /// vif spec (mac=..., bridge=..., mtu=...); empty for the default network and a random MAC
        spec: Vec<String>,
    },
    /// Detach a network interface.
    #[command(after_help = "Examples:\n  xencim network-detach vm1 00:16:3e:00:00:42\n  xencim network-detach vm1 1")]
    NetworkDetach {
        /// The VM: its name, UUID, a unique UUID prefix, or its domain ID
        vm: String,
        /// MAC address or device number
        device: String,
    },
    /// Show where a running VM's console is.
    #[command(after_help = "Example:\n  xencim console-info vm1")]
    ConsoleInfo {
        /// The VM: its name, UUID, a unique UUID prefix, or its domain ID
        vm: String,
    },
    /// How long the running VMs (or the ones named) have been up.
    #[command(after_help = "Examples:\n  xencim uptime\n  xencim uptime vm1")]
    Uptime { vms: Vec<String> },
    /// Facts about the host: CPUs, memory, versions.
    #[command(after_help = "Examples:\n  xencim info\n  xencim info --json")]
    Info {
        #[arg(long)]
        json: bool,
    },
}

impl Verb {
    pub const NAMES: &'static [&'static str] = &[
        "new",
        "create",
        "delete",
        "start",
        "shutdown",
        "destroy",
        "reboot",
        "pause",
        "unpause",
        "suspend",
        "resume",
        "list",
        "mem-set",
        "vcpu-set",
        "block-attach",
        "block-detach",
        "network-attach",
        "network-detach",
        "console-info",
        "uptime",
        "info",
    ];
}

pub const MAIN_HELP: &str = "\
Examples:
  xencim serve                                  run the daemon (state in ./xencim-state)
  xencim list --all                             VMs, as xm list shows them
  xencim create /etc/xen/vm1.cfg                define and start a VM from an xm/xl config file
  xencim shutdown --wait vm1
  xencim --server https://host:9364/ --user alice --password-stdin list < pw.txt

Credentials: --user and --password-stdin, or XENCIM_USER and XENCIM_PASSWORD, or
~/.config/xencim/credentials (mode 0600: user = \"...\", password = \"...\", server = \"...\");
on the daemon's own host, admin with <state-dir>/initial-admin-password.

Exit codes: 0 done, 1 the operation failed (Xen-API error, unknown VM, bad config file),
2 usage error, 3 cannot reach or log in to the server.";

/// Adds the connection options to every verb, so they may follow it too.
pub fn augment(cmd: Command) -> Command {
    Verb::NAMES.iter().fold(cmd, |cmd, name| cmd.mut_subcommand(*name, ConnArgs::augment_args))
}

/// The state directory named by the options or the environment.
fn state_dir(args: &ConnArgs) -> PathBuf {
    args.state_dir.clone().unwrap_or_else(crate::default_state_dir)
}

fn connect(args: &ConnArgs) -> Result<Connection> {
    let cred_path = credentials::default_path();
    let file = match &cred_path {
        Some(p) => credentials::read_file(p)?,
        None => None,
    };
    // The environment is read here rather than by clap, so that an option given before the
    // verb is not overridden by the environment's value for the same option after it.
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let server = args
        .server
        .clone()
        .or_else(|| env("XENCIM_SERVER"))
        .or_else(|| file.as_ref().and_then(|f| f.server.clone()))
        .unwrap_or_else(|| "http://127.0.0.1:9363/".into());
    let endpoint = Endpoint::parse(&server).map_err(Failure::Unreachable)?;
    let local_state = endpoint.is_local().then(|| state_dir(args));
    let mut tls = TlsOptions { insecure: args.insecure, ca_files: Vec::new() };
    if let Some(ca) = args.ca_file.clone().or_else(|| env("XENCIM_CA_FILE").map(PathBuf::from)) {
        tls.ca_files.push(ca);
    } else if let Some(cert) = local_state.as_deref().and_then(connection::local_certificate) {
        tls.ca_files.push(cert);
    }
    let transport = Transport::new(endpoint.clone(), &tls)?;
    let creds = credentials::resolve(credentials::Sources {
        user_flag: args.user.as_deref(),
        password_stdin: args.password_stdin,
        env_user: env("XENCIM_USER"),
        env_password: std::env::var("XENCIM_PASSWORD").ok(),
        file: match (&cred_path, &file) {
            (Some(p), Some(f)) => Some((p.as_path(), f)),
            _ => None,
        },
        local_state_dir: local_state.as_deref(),
        server: &endpoint.url(),
    })?;
    Connection::login(transport, &creds.user, &creds.password, &creds.source)
}

fn dispatch(c: &Connection, verb: &Verb) -> Result<()> {
    match verb {
        Verb::New { config } => verbs::new(c, config),
        Verb::Create { config, paused } => verbs::create(c, config, *paused),
        Verb::Delete { vm } => verbs::delete(c, vm),
        Verb::Start { vm, paused } => verbs::start(c, vm, *paused),
        Verb::Shutdown { vm, force, wait } => verbs::shutdown(c, vm, *force, *wait),
        Verb::Destroy { vm } => verbs::destroy(c, vm),
        Verb::Reboot { vm, force } => verbs::reboot(c, vm, *force),
        Verb::Pause { vm } => verbs::simple(c, vm, "VM.pause", "is paused"),
        Verb::Unpause { vm } => verbs::simple(c, vm, "VM.unpause", "is running"),
        Verb::Suspend { vm } => verbs::suspend(c, vm),
        Verb::Resume { vm, paused } => verbs::resume(c, vm, *paused),
        Verb::List { vms, all, long, json } => verbs::list(c, vms, *all, *long, *json),
        Verb::MemSet { vm, memory } => verbs::mem_set(c, vm, memory),
        Verb::VcpuSet { vm, vcpus } => verbs::vcpu_set(c, vm, *vcpus),
        Verb::BlockAttach { vm, spec } => verbs::block_attach(c, vm, spec),
        Verb::BlockDetach { vm, device } => verbs::block_detach(c, vm, device),
        Verb::NetworkAttach { vm, spec } => verbs::network_attach(c, vm, spec),
        Verb::NetworkDetach { vm, device } => verbs::network_detach(c, vm, device),
        Verb::ConsoleInfo { vm } => verbs::console_info(c, vm),
        Verb::Uptime { vms } => verbs::uptime(c, vms),
        Verb::Info { json } => verbs::info(c, *json),
    }
}

/// Runs a verb. `before` holds the connection options given before the verb, `matches` the
/// verb's own (which include the connection options given after it).
pub fn run(verb: Verb, before: &ConnArgs, matches: &ArgMatches) -> ExitCode {
    let args = ConnArgs::from_arg_matches(matches).unwrap_or_default().merged(before);
    let c = match connect(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error: {e}");
            return e.exit_code();
        }
    };
    let result = dispatch(&c, &verb);
    c.logout();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {}", errors::render(&e, &c.names()));
            e.exit_code()
        }
    }
}

/// `xencim man [DIR]`: the man page on stdout, or one page per command written into DIR.
pub fn man(cmd: Command, dir: Option<&std::path::Path>) -> anyhow::Result<()> {
    let Some(dir) = dir else {
        let mut out = std::io::stdout().lock();
        clap_mangen::Man::new(cmd).render(&mut out)?;
        return Ok(());
    };
    std::fs::create_dir_all(dir)?;
    let write = |name: &str, cmd: Command| -> anyhow::Result<()> {
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut buf)?;
        std::fs::write(dir.join(format!("{name}.1")), buf)?;
        Ok(())
    };
    write("xencim", cmd.clone())?;
    for sub in cmd.get_subcommands() {
        // clap names are 'static; these few strings live until the process exits anyway.
        let name: &'static str = Box::leak(format!("xencim-{}", sub.get_name()).into_boxed_str());
        write(name, sub.clone().name(name))?;
    }
    println!("wrote the man pages into {}", dir.display());
    Ok(())
}

/// `xencim completions SHELL`: the completion script on stdout.
pub fn completions(mut cmd: Command, shell: clap_complete::Shell) {
    clap_complete::generate(shell, &mut cmd, "xencim", &mut std::io::stdout());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `augment` adds the connection options by name, so the list must name every verb.
    #[test]
    fn every_verb_takes_the_connection_options() {
        let cmd = Verb::augment_subcommands(Command::new("xencim"));
        let names: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
        assert_eq!(names, Verb::NAMES);
        let cmd = augment(cmd);
        for sub in cmd.get_subcommands() {
            assert!(sub.get_arguments().any(|a| a.get_id() == "server"), "{}", sub.get_name());
        }
    }

    #[test]
    fn options_after_the_verb_win() {
        let before = ConnArgs { server: Some("a".into()), user: Some("u".into()), insecure: true, ..ConnArgs::default() };
        let after = ConnArgs { server: Some("b".into()), ..ConnArgs::default() };
        let m = after.merged(&before);
        assert_eq!((m.server.as_deref(), m.user.as_deref(), m.insecure), (Some("b"), Some("u"), true));
    }
}
