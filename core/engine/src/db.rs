//! The engine's records in SQLite (bundled): containers and the build cache.
//!
//! Many `berth` processes use one database at once: WAL mode, a busy timeout, and every
//! multi-step change in one transaction. Name uniqueness is a UNIQUE constraint, so two
//! processes can never both get one name.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use crate::{
    container::{ContainerConfig, ContainerRecord, NetworkState, State},
    EngineError,
};

/// The connection sits behind a mutex that every method takes for its own duration only,
/// so no caller can hold it across other engine calls (which would deadlock).
pub struct Db {
    conn: std::sync::Mutex<Connection>,
}

fn db_err(context: &str, e: rusqlite::Error) -> EngineError {
    EngineError::Invalid(format!("database: {context}: {e}"))
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS containers (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    image        TEXT NOT NULL,
    image_id     TEXT NOT NULL,
    created      TEXT NOT NULL,
    state        TEXT NOT NULL,
    pid          INTEGER NOT NULL DEFAULT 0,
    monitor_pid  INTEGER NOT NULL DEFAULT 0,
    exit_code    INTEGER NOT NULL DEFAULT 0,
    oom_killed   INTEGER NOT NULL DEFAULT 0,
    started_at   TEXT NOT NULL DEFAULT '',
    finished_at  TEXT NOT NULL DEFAULT '',
    restart_count INTEGER NOT NULL DEFAULT 0,
    error        TEXT NOT NULL DEFAULT '',
    config       TEXT NOT NULL,
    network      TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS build_cache (
    key        TEXT PRIMARY KEY,
    image_id   TEXT NOT NULL,
    created    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS volumes (
    name       TEXT PRIMARY KEY,
    created    TEXT NOT NULL,
    anonymous  INTEGER NOT NULL DEFAULT 0,
    labels     TEXT NOT NULL DEFAULT '{}'
);
"#;

impl Db {
    pub fn open(root: &Path) -> Result<Db, EngineError> {
        let path = root.join("berth.db");
        let conn = Connection::open(&path).map_err(|e| db_err(&path.display().to_string(), e))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| db_err("busy timeout", e))?;
        // WAL is a property of the database file: set it once. Switching needs an exclusive
        // lock that the busy timeout does not wait for, so concurrent first opens retry.
        let mut tries = 0;
        loop {
            let mode: String = conn
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .map_err(|e| db_err("journal mode", e))?;
            if mode.eq_ignore_ascii_case("wal") {
                break;
            }
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Ok(()) => break,
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if f.code == rusqlite::ErrorCode::DatabaseBusy && tries < 500 =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => return Err(db_err("WAL mode", e)),
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| db_err("synchronous", e))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| db_err("schema", e))?;
        Ok(Db {
            conn: std::sync::Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Inserts a new container; a taken name is a `Conflict` naming the holder.
    pub fn insert(&self, c: &ContainerRecord) -> Result<(), EngineError> {
        let config = serde_json::to_string(&c.config)
            .map_err(|e| EngineError::Invalid(format!("serialising config: {e}")))?;
        let r = self.conn().execute(
            "INSERT INTO containers (id, name, image, image_id, created, state, config)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                c.id,
                c.name,
                c.image,
                c.image_id,
                c.created,
                c.state.as_str(),
                config
            ],
        );
        match r {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                let holder: Option<String> = self
                    .conn()
                    .query_row(
                        "SELECT id FROM containers WHERE name = ?1",
                        [&c.name],
                        |r| r.get(0),
                    )
                    .optional()
                    .ok()
                    .flatten();
                Err(EngineError::Conflict(format!(
                    "the container name \"/{}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name",
                    c.name,
                    holder.unwrap_or_default()
                )))
            }
            Err(e) => Err(db_err("inserting container", e)),
        }
    }

    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ContainerRecord> {
        let config: String = r.get("config")?;
        let network: String = r.get("network")?;
        let state: String = r.get("state")?;
        Ok(ContainerRecord {
            id: r.get("id")?,
            name: r.get("name")?,
            image: r.get("image")?,
            image_id: r.get("image_id")?,
            created: r.get("created")?,
            state: State::parse(&state),
            pid: r.get("pid")?,
            monitor_pid: r.get("monitor_pid")?,
            exit_code: r.get("exit_code")?,
            oom_killed: r.get::<_, i64>("oom_killed")? != 0,
            started_at: r.get("started_at")?,
            finished_at: r.get("finished_at")?,
            restart_count: r.get("restart_count")?,
            error: r.get("error")?,
            config: serde_json::from_str::<ContainerConfig>(&config).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?,
            network: serde_json::from_str::<NetworkState>(&network).unwrap_or_default(),
        })
    }

    pub fn list(&self) -> Result<Vec<ContainerRecord>, EngineError> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT * FROM containers ORDER BY created DESC")
            .map_err(|e| db_err("listing", e))?;
        let rows = st
            .query_map([], Self::row)
            .map_err(|e| db_err("listing", e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| db_err("reading container", e))?;
        Ok(rows)
    }

    pub fn get(&self, id: &str) -> Result<Option<ContainerRecord>, EngineError> {
        self.conn()
            .query_row("SELECT * FROM containers WHERE id = ?1", [id], Self::row)
            .optional()
            .map_err(|e| db_err("reading container", e))
    }

    /// Finds a container by full id, name, or unique id prefix (Docker's rules).
    pub fn resolve(&self, what: &str) -> Result<ContainerRecord, EngineError> {
        let by = |sql: &str, arg: &str| -> Result<Vec<ContainerRecord>, EngineError> {
            let conn = self.conn();
            let mut st = conn.prepare(sql).map_err(|e| db_err("lookup", e))?;
            let v = st
                .query_map([arg], Self::row)
                .map_err(|e| db_err("lookup", e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| db_err("lookup", e))?;
            Ok(v)
        };
        let name = what.trim_start_matches('/');
        if let Some(c) = by("SELECT * FROM containers WHERE id = ?1", what)?.pop() {
            return Ok(c);
        }
        if let Some(c) = by("SELECT * FROM containers WHERE name = ?1", name)?.pop() {
            return Ok(c);
        }
        if !what.is_empty() && what.chars().all(|c| c.is_ascii_hexdigit()) {
            let mut v = by(
                "SELECT * FROM containers WHERE id LIKE ?1 || '%'",
                &what.to_ascii_lowercase(),
            )?;
            match v.len() {
                1 => return v.pop().ok_or_else(|| EngineError::NotFound(what.into())),
                0 => {}
                n => {
                    return Err(EngineError::Conflict(format!(
                        "multiple containers ({n}) match id prefix {what:?}: use more characters"
                    )))
                }
            }
        }
        Err(EngineError::NotFound(format!("no such container: {what}")))
    }

    pub fn set_state(&self, id: &str, state: State) -> Result<(), EngineError> {
        self.conn()
            .execute(
                "UPDATE containers SET state = ?2 WHERE id = ?1",
                params![id, state.as_str()],
            )
            .map_err(|e| db_err("updating state", e))?;
        Ok(())
    }

    pub fn set_running(
        &self,
        id: &str,
        pid: i32,
        monitor_pid: i32,
        started_at: &str,
        network: &NetworkState,
    ) -> Result<(), EngineError> {
        let net = serde_json::to_string(network).unwrap_or_else(|_| "{}".into());
        self.conn()
            .execute(
                "UPDATE containers SET state = 'running', pid = ?2, monitor_pid = ?3, started_at = ?4,
                 finished_at = '', exit_code = 0, oom_killed = 0, error = '', network = ?5 WHERE id = ?1",
                params![id, pid, monitor_pid, started_at, net],
            )
            .map_err(|e| db_err("recording start", e))?;
        Ok(())
    }

    pub fn set_exited(
        &self,
        id: &str,
        exit_code: i32,
        oom_killed: bool,
        finished_at: &str,
        error: &str,
    ) -> Result<(), EngineError> {
        self.conn()
            .execute(
                "UPDATE containers SET state = 'exited', pid = 0, monitor_pid = 0, exit_code = ?2,
                 oom_killed = ?3, finished_at = ?4, error = ?5, network = '{}' WHERE id = ?1",
                params![id, exit_code, oom_killed as i64, finished_at, error],
            )
            .map_err(|e| db_err("recording exit", e))?;
        Ok(())
    }

    /// Between two runs of a restart policy: still supervised by `monitor_pid`, so other
    /// commands don't mistake it for a container whose supervisor died.
    pub fn set_restarting(&self, id: &str, monitor_pid: i32) -> Result<(), EngineError> {
        self.conn()
            .execute(
                "UPDATE containers SET state = 'restarting', monitor_pid = ?2 WHERE id = ?1",
                params![id, monitor_pid],
            )
            .map_err(|e| db_err("recording restart", e))?;
        Ok(())
    }

    /// The networks a running container is attached to (after `network connect`).
    pub fn set_network(&self, id: &str, network: &NetworkState) -> Result<(), EngineError> {
        let net = serde_json::to_string(network).unwrap_or_else(|_| "{}".into());
        self.conn()
            .execute(
                "UPDATE containers SET network = ?2 WHERE id = ?1",
                params![id, net],
            )
            .map_err(|e| db_err("recording networks", e))?;
        Ok(())
    }

    pub fn bump_restart(&self, id: &str) -> Result<(), EngineError> {
        self.conn()
            .execute(
                "UPDATE containers SET restart_count = restart_count + 1 WHERE id = ?1",
                [id],
            )
            .map_err(|e| db_err("restart count", e))?;
        Ok(())
    }

    pub fn rename(&self, id: &str, new_name: &str) -> Result<(), EngineError> {
        self.conn()
            .execute(
                "UPDATE containers SET name = ?2 WHERE id = ?1",
                params![id, new_name],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    EngineError::Conflict(format!(
                        "the container name \"/{new_name}\" is already in use"
                    ))
                }
                e => db_err("rename", e),
            })?;
        Ok(())
    }

    pub fn update_config(&self, id: &str, config: &ContainerConfig) -> Result<(), EngineError> {
        let config = serde_json::to_string(config)
            .map_err(|e| EngineError::Invalid(format!("serialising config: {e}")))?;
        self.conn()
            .execute(
                "UPDATE containers SET config = ?2 WHERE id = ?1",
                params![id, config],
            )
            .map_err(|e| db_err("update config", e))?;
        Ok(())
    }

    pub fn delete(&self, id: &str) -> Result<(), EngineError> {
        self.conn()
            .execute("DELETE FROM containers WHERE id = ?1", [id])
            .map_err(|e| db_err("deleting container", e))?;
        Ok(())
    }

    // ---- build cache -------------------------------------------------------------------

    pub fn cache_get(&self, key: &str) -> Result<Option<String>, EngineError> {
        self.conn()
            .query_row(
                "SELECT image_id FROM build_cache WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| db_err("build cache", e))
    }

    pub fn cache_put(&self, key: &str, image_id: &str, created: &str) -> Result<(), EngineError> {
        self.conn()
            .execute(
                "INSERT OR REPLACE INTO build_cache (key, image_id, created) VALUES (?1, ?2, ?3)",
                params![key, image_id, created],
            )
            .map_err(|e| db_err("build cache", e))?;
        Ok(())
    }

    pub fn cache_images(&self) -> Result<Vec<String>, EngineError> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT DISTINCT image_id FROM build_cache")
            .map_err(|e| db_err("build cache", e))?;
        let v = st
            .query_map([], |r| r.get(0))
            .map_err(|e| db_err("build cache", e))?
            .collect::<Result<Vec<String>, _>>()
            .map_err(|e| db_err("build cache", e))?;
        Ok(v)
    }

    pub fn cache_clear(&self) -> Result<usize, EngineError> {
        self.conn()
            .execute("DELETE FROM build_cache", [])
            .map_err(|e| db_err("build cache", e))
    }

    // ---- volumes -------------------------------------------------------------------------

    pub fn volume_insert(
        &self,
        name: &str,
        created: &str,
        anonymous: bool,
    ) -> Result<bool, EngineError> {
        let n = self
            .conn()
            .execute(
                "INSERT OR IGNORE INTO volumes (name, created, anonymous) VALUES (?1, ?2, ?3)",
                params![name, created, anonymous as i64],
            )
            .map_err(|e| db_err("volume", e))?;
        Ok(n == 1)
    }

    pub fn volumes(&self) -> Result<Vec<(String, String, bool)>, EngineError> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT name, created, anonymous FROM volumes ORDER BY name")
            .map_err(|e| db_err("volumes", e))?;
        let v = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0)))
            .map_err(|e| db_err("volumes", e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| db_err("volumes", e))?;
        Ok(v)
    }

    pub fn volume_delete(&self, name: &str) -> Result<bool, EngineError> {
        let n = self
            .conn()
            .execute("DELETE FROM volumes WHERE name = ?1", [name])
            .map_err(|e| db_err("volume", e))?;
        Ok(n == 1)
    }
}
