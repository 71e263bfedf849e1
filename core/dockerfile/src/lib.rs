//! berth-dockerfile: the pure logic of `berth build`.
//!
//! * [`Dockerfile::parse`]: BuildKit-compatible parsing (directives, comments,
//!   continuations, heredocs, JSON/shell forms, builder flags, every instruction).
//! * [`shell`]: variable expansion and quote removal exactly where the builder applies it.
//! * [`StageEnv`]: ENV/ARG/SHELL/WORKDIR tracking inside a stage; the executor calls
//!   [`StageEnv::apply`] for each instruction and gets the expanded instruction back.
//! * [`plan`]: stage selection for a `--target`, dependency order, base resolution,
//!   unused `--build-arg` reporting.
//! * [`DockerIgnore`]: `.dockerignore` matching.
//!
//! Nothing here touches the file system except [`Dockerfile::from_path`] and
//! [`DockerIgnore::load`], which read the file they are given.

mod env;
pub mod ignore;
pub mod instruction;
mod parser;
mod plan;
pub mod shell;

use std::path::PathBuf;

pub use env::{StageEnv, PROXY_ARGS};
pub use ignore::{DockerIgnore, IgnoreError};
pub use instruction::*;
pub use parser::{
    parse_go_duration, parse_health_duration, Directives, Dockerfile, Stage, Warning,
};
pub use plan::{plan, plan_with, Base, BuildPlan, PlanOptions, PlannedStage};
pub use shell::{expand, expand_words, ExpandError, Lexer};

/// Errors of parsing, expansion and planning. Positioned errors print as
/// `Dockerfile:12: message`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Dockerfile could not be read.
    #[error("failed to read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A problem at a line of the file.
    #[error("{file}:{line}: {message}")]
    At {
        /// File name as given to the parser.
        file: String,
        /// 1-based line of the instruction.
        line: usize,
        /// What is wrong (names the instruction).
        message: String,
    },
    /// A problem with the file as a whole or with the build request.
    #[error("{file}: {message}")]
    File {
        /// File name as given to the parser.
        file: String,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    /// The 1-based line, when the error has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Error::At { line, .. } => Some(*line),
            _ => None,
        }
    }
}
