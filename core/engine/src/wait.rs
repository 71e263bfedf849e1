//! Waiting for a container with Docker's conditions (`not-running`, `next-exit`,
//! `removed`), for API clients that ask before the container even starts.
//!
//! A removed container has no record left to read its exit code from, so every removal
//! of a container that ran leaves a small exit note under `<root>/run/exits/<id>`; a
//! waiter for `removed` reads it. Notes older than [`EXIT_NOTE_TTL`] are swept.

use std::{
    path::PathBuf,
    time::{Duration, Instant, SystemTime},
};

use crate::{container::ContainerRecord, Engine, EngineError};

/// How long a removed container's exit note is kept for late waiters.
pub const EXIT_NOTE_TTL: Duration = Duration::from_secs(600);

/// Docker's `condition` of `POST /containers/{id}/wait`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// Returns as soon as the container is not running (at once for a created or
    /// exited one).
    NotRunning,
    /// The next exit from now (a created container is waited for through its start).
    NextExit,
    /// The container is gone (after its exit; `--rm` containers remove themselves).
    Removed,
}

impl WaitCondition {
    pub fn parse(s: &str) -> Result<WaitCondition, EngineError> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            other => Err(EngineError::Invalid(format!(
                "invalid condition {other:?}: use not-running, next-exit or removed"
            ))),
        }
    }
}

/// What a wait returns: the exit code and the error the engine recorded, if any.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WaitOutcome {
    pub exit_code: i32,
    pub error: String,
}

impl Engine {
    fn exit_notes_dir(&self) -> PathBuf {
        self.config.run_dir().join("exits")
    }

    /// Writes the exit note of a container about to be removed (best effort: a waiter
    /// that finds none reports exit code 0 with an error text saying so).
    pub(crate) fn write_exit_note(&self, rec: &ContainerRecord) {
        let dir = self.exit_notes_dir();
        if std::fs::create_dir_all(&dir).is_err() {
            return;
        }
        let note = WaitOutcome {
            exit_code: rec.exit_code,
            error: rec.error.clone(),
        };
        if let Ok(text) = serde_json::to_vec(&note) {
            let tmp = dir.join(format!(".{}.tmp", rec.id));
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, dir.join(&rec.id));
            }
        }
        self.sweep_exit_notes();
    }

    fn sweep_exit_notes(&self) {
        let Ok(rd) = std::fs::read_dir(self.exit_notes_dir()) else {
            return;
        };
        let now = SystemTime::now();
        for e in rd.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > EXIT_NOTE_TTL);
            if old {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    fn read_exit_note(&self, id: &str) -> Option<WaitOutcome> {
        let text = std::fs::read(self.exit_notes_dir().join(id)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Blocks until `condition` holds for container `what` (an id, name or prefix,
    /// resolved once). `keep_going` is asked between polls; when it says no (the caller
    /// went away), the wait ends with `Ok(None)`.
    pub fn wait_condition(
        &self,
        what: &str,
        condition: WaitCondition,
        keep_going: &dyn Fn() -> bool,
    ) -> Result<Option<WaitOutcome>, EngineError> {
        let rec = self.db()?.resolve(what)?;
        let id = rec.id.clone();
        let outcome = |r: &ContainerRecord| WaitOutcome {
            exit_code: r.exit_code,
            error: r.error.clone(),
        };
        // `next-exit` of a container that already ran: its next exit, not the last one.
        let first_finish = rec.finished_at.clone();
        let mut seen_live = rec.state.is_live();
        let mut sleep = Duration::from_millis(2);
        let start = Instant::now();
        loop {
            match self.db()?.get(&id)? {
                None => {
                    // Gone: removed (by `--rm`, `rm -f` or another client).
                    return Ok(Some(self.read_exit_note(&id).unwrap_or(WaitOutcome {
                        exit_code: 0,
                        error: "the container was removed before its exit code was read".into(),
                    })));
                }
                Some(r) => {
                    let live = r.state.is_live();
                    seen_live |= live;
                    let exited_since = r.finished_at != first_finish && !live;
                    let done = match condition {
                        WaitCondition::NotRunning => !live,
                        WaitCondition::NextExit => (seen_live || exited_since) && !live,
                        WaitCondition::Removed => false,
                    };
                    if done {
                        return Ok(Some(outcome(&r)));
                    }
                    if live
                        && !crate::lifecycle::alive(r.monitor_pid)
                        && !crate::lifecycle::alive(r.pid)
                    {
                        // A supervisor that died: repair the record, then look again.
                        self.reconcile_records()?;
                        continue;
                    }
                }
            }
            if !keep_going() {
                return Ok(None);
            }
            std::thread::sleep(sleep);
            // Short at first (a `run --rm` waits a few ms), then at most 50 ms.
            sleep = if start.elapsed() < Duration::from_secs(1) {
                (sleep * 2).min(Duration::from_millis(20))
            } else {
                Duration::from_millis(50)
            };
        }
    }
}
