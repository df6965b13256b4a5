//! `xencim`: the daemon (`serve`), its user administration (`user`), and later the xm-style
//! client verbs. This file only parses the command line and hands over.

mod config;
mod serve;
mod users;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "xencim", version, about = "Manage a virtualization host through WBEM/CIM-XML and the Xen-API")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: the Xen-API and WBEM front doors over the model and the hypervisor.
    Serve(config::ServeArgs),
    /// Manage the local users who may log in (stored hashed in the state directory).
    #[command(subcommand)]
    User(users::UserCommand),
}

/// glibc gives every thread that allocates its own heap; with a blocking pool of many threads
/// each keeps freed memory. A few shared heaps keep the daemon's RSS near what it uses.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called first thing in main, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Where state lives when nothing says otherwise: `$XENCIM_STATE_DIR` or `./xencim-state`.
pub fn default_state_dir() -> PathBuf {
    std::env::var_os("XENCIM_STATE_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("xencim-state"))
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::User(cmd) => users::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xencim: {e:#}");
            ExitCode::FAILURE
        }
    }
}
