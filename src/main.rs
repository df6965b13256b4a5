//! `xencim`: the daemon (`serve`), its user administration (`user`), and the xm-style client
//! verbs (`list`, `create`, `start`...; see `cli`). This file only parses the command line and
//! hands over.

mod cli;
mod config;
mod indication_view;
mod serve;
mod users;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "xencim",
    version,
    about = "Manage a virtualization host through WBEM/CIM-XML and the Xen-API",
    after_help = cli::MAIN_HELP
)]
struct Cli {
    #[command(flatten)]
    conn: cli::ConnArgs,
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
    #[command(flatten)]
    Client(cli::Verb),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Examples:\n  xencim completions bash > /etc/bash_completion.d/xencim\n  xencim completions zsh > ~/.zfunc/_xencim"
    )]
    Completions { shell: clap_complete::Shell },
    /// Print the man page, or write one page per command into DIR.
    #[command(after_help = "Examples:\n  xencim man | man -l -\n  xencim man /usr/local/share/man/man1")]
    Man { dir: Option<PathBuf> },
}

/// Where state lives when nothing says otherwise: `$XENCIM_STATE_DIR` or `./xencim-state`.
pub fn default_state_dir() -> PathBuf {
    std::env::var_os("XENCIM_STATE_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("xencim-state"))
}

fn command() -> clap::Command {
    cli::augment(Cli::command())
}

fn main() -> ExitCode {
    let matches = command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::User(cmd) => users::run(cmd),
        Command::Client(verb) => {
            let (_, verb_matches) = matches.subcommand().expect("a verb was parsed");
            return cli::run(verb, &cli.conn, verb_matches);
        }
        Command::Completions { shell } => {
            cli::completions(command(), shell);
            Ok(())
        }
        Command::Man { dir } => cli::man(command(), dir.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xencim: {e:#}");
            ExitCode::FAILURE
        }
    }
}
