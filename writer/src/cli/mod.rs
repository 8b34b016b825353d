//! `adcast-writer import FILE` and `adcast-writer export [--out FILE]`:
//! clients of a running writer, over its import and export routes.
//!
//! - `client`: the HTTP client, its flags (`--writer-url`, the token) and
//!   how an answer becomes an exit status.
//! - `import`: splits the file, sends it in chunks with a resumable
//!   `Idempotency-Key` each, shows progress.
//! - `export`: streams the catalog to standard output or, atomically, a file.

pub mod client;
pub mod export;
pub mod import;
mod progress;

use std::process::ExitCode;

pub use client::ClientArgs;

/// Exit statuses of the commands, as `--help` states them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// The input is invalid (a line of the file, or the file itself), or
    /// the writer refused the request for what it holds.
    Invalid = 1,
    /// Wrong flags, or a token that is missing, unknown or lacks the scope.
    Usage = 2,
    /// The writer could not be reached, or answered 5xx, also after retries.
    Unavailable = 3,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// What a command prints on failure, and its status.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
        }
    }
}

/// Runs a command's result to an exit status, printing the failure.
pub fn finish(command: &str, result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) => Exit::Ok.into(),
        Err(failure) => {
            eprintln!("adcast-writer {command}: {}", failure.message);
            failure.exit.into()
        }
    }
}

/// The exit statuses, for `--help`.
pub const EXIT_STATUS_HELP: &str = "\
Exit status: 0 done; 1 invalid input (the first invalid ad is reported with its \
line number, or its index in a JSON array, and the writer's message); 2 usage \
(bad flags, or a token that is missing, unknown or lacks the scope); 3 the \
writer could not be reached or answered 5xx, also after retries.";
