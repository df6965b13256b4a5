//! `xencim user ...`: local user administration, straight on the store in the state dir.

use clap::Subcommand;
use httpd::Role;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use xenapi::sessions::UserAdmin;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a user with a role (read-only, vm-operator, pool-admin).
    Add {
        name: String,
        #[arg(long)]
        role: Role,
        /// A role-only entry for a user whose password PAM checks (`serve --auth pam`): no local password.
        #[arg(long, conflicts_with = "password_stdin")]
        pam: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// List users and their roles.
    List {
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Remove a user.
    Remove {
        name: String,
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Change a user's password.
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Change a user's role.
    Role {
        name: String,
        role: Role,
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !from_stdin && stdin.is_terminal() {
        eprint!("Password: ");
    } else if !from_stdin {
        anyhow::bail!("give --password-stdin to read the password from standard input");
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    anyhow::ensure!(!password.is_empty(), "the password is empty");
    Ok(password)
}

fn open(state_dir: Option<PathBuf>) -> anyhow::Result<UserAdmin> {
    UserAdmin::open(&state_dir.unwrap_or_else(crate::default_state_dir))
}

pub fn run(cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add { name, role, pam, password_stdin, state_dir } => {
            let admin = open(state_dir)?;
            if pam {
                admin.add_pam(&name, role)?;
                println!("added PAM user {name} with role {role} (its password is checked by PAM)");
            } else {
                admin.add(&name, &read_password(password_stdin)?, role)?;
                println!("added user {name} with role {role}");
            }
        }
        UserCommand::List { state_dir } => {
            for (name, role) in open(state_dir)?.list()? {
                println!("{name}\t{role}");
            }
        }
        UserCommand::Remove { name, state_dir } => {
            open(state_dir)?.remove(&name)?;
            println!("removed user {name}");
        }
        UserCommand::Passwd { name, password_stdin, state_dir } => {
            let admin = open(state_dir)?;
            admin.set_password(&name, &read_password(password_stdin)?)?;
            println!("changed the password of {name}");
        }
        UserCommand::Role { name, role, state_dir } => {
            open(state_dir)?.set_role(&name, role)?;
            println!("{name} now has role {role}");
        }
    }
    Ok(())
}
