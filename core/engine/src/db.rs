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

/// The one table of container state changes: for each target state, the states a record
/// may be in for the change to apply. Every state update is a compare-and-set against this
/// list (`UPDATE … WHERE id = ? AND state IN (…)`), so a change that lost a race (a pause
/// after the exit was recorded, a start of a container being removed) fails with a
/// `Conflict` instead of overwriting the newer state.
pub fn allowed_from(to: State) -> &'static [State] {
    use State::*;
    match to {
        // A first start, a start of a stopped container, or a restart-policy run.
        Running => &[Created, Exited, Restarting, Paused],
        Paused => &[Running],
        // The supervisor records the end of a start or of a run; `reconcile` repairs
        // records whose supervisor died.
        Exited => &[Created, Running, Paused, Restarting],
        // Between two runs of a restart policy (recorded after the exit).
        Restarting => &[Exited],
        // `rm` (also of a record a killed `rm` left in `removing`).
        Removing => &[Created, Exited, Dead, Removing],
        Created | Dead => &[],
    }
}

fn is_io_error(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if matches!(f.code, rusqlite::ErrorCode::SystemIoFailure | rusqlite::ErrorCode::DiskFull))
}

fn in_list(states: &[State]) -> String {
    states
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(",")
}

impl Db {
    /// Runs a compare-and-set state update (`sql` with `?1` = id; `{from}` is replaced by
    /// the allowed source states of `to`). No row changed means the precondition failed:
    /// `NotFound` if the record is gone, else a `Conflict` naming the current state.
    fn transition(
        &self,
        id: &str,
        to: State,
        sql: &str,
        params: &[&dyn rusqlite::ToSql],
        context: &str,
    ) -> Result<(), EngineError> {
        let sql = sql.replace("{from}", &in_list(allowed_from(to)));
        let n = self
            .conn()
            .execute(&sql, params)
            .map_err(|e| db_err(context, e))?;
        if n == 1 {
            return Ok(());
        }
        Err(self.conflict(id, to, context))
    }

    /// Why a compare-and-set did not apply: the record is gone, or in another state.
    fn conflict(&self, id: &str, to: State, context: &str) -> EngineError {
        let now: Option<String> = match self
            .conn()
            .query_row("SELECT state FROM containers WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
        {
            Ok(s) => s,
            Err(e) => return db_err(context, e),
        };
        match now {
            None => EngineError::NotFound(format!("no such container: {id}")),
            Some(cur) => EngineError::Conflict(format!(
                "container {}: cannot become {}: it is {cur} now (changed by another command)",
                &id[..id.len().min(12)],
                to.as_str()
            )),
        }
    }

    pub fn open(root: &Path) -> Result<Db, EngineError> {
        let path = root.join("berth.db");
        let conn = Self::connect(&path)?;
        match Self::setup(&conn) {
            Ok(()) => {}
            // A full disk: a WAL database whose shared-memory index (`berth.db-shm`) cannot
            // be created or grown fails every access with SQLITE_IOERR. In exclusive locking
            // mode SQLite keeps the index in process memory instead, so reading still works
            // (other berth processes wait for this one; writes fail as they must).
            Err(e) if is_io_error(&e) => {
                drop(conn);
                tracing::warn!(
                    "database {}: {e}; is the disk full? opening it exclusively",
                    path.display()
                );
                let conn = Self::connect(&path)?;
                conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
                    .map_err(|e| db_err("locking mode", e))?;
                Self::setup(&conn).map_err(|e| {
                    db_err(
                        &format!("{} (is the disk full? free some space)", path.display()),
                        e,
                    )
                })?;
                return Ok(Db {
                    conn: std::sync::Mutex::new(conn),
                });
            }
            Err(e) => return Err(db_err(&path.display().to_string(), e)),
        }
        Ok(Db {
            conn: std::sync::Mutex::new(conn),
        })
    }

    fn connect(path: &Path) -> Result<Connection, EngineError> {
        let conn = Connection::open(path).map_err(|e| db_err(&path.display().to_string(), e))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| db_err("busy timeout", e))?;
        Ok(conn)
    }

    /// WAL mode (set once: it is a property of the file), sync level and schema. Writes
    /// nothing when the database is already set up, so it works on a full disk.
    fn setup(conn: &Connection) -> Result<(), rusqlite::Error> {
        // Switching to WAL needs an exclusive lock that the busy timeout does not wait
        // for, so concurrent first opens retry.
        let mut tries = 0;
        loop {
            let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
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
                Err(e) => return Err(e),
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Only when a table is missing: even `CREATE … IF NOT EXISTS` takes the write lock.
        let tables: i64 = conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'
             AND name IN ('containers', 'build_cache', 'volumes')",
            [],
            |r| r.get(0),
        )?;
        if tables != 3 {
            conn.execute_batch(SCHEMA)?;
        }
        Ok(())
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

    /// A change of the state alone (pause, removing), from any state the transition table
    /// allows.
    pub fn set_state(&self, id: &str, state: State) -> Result<(), EngineError> {
        self.transition(
            id,
            state,
            "UPDATE containers SET state = ?2 WHERE id = ?1 AND state IN ({from})",
            &[&id, &state.as_str()],
            "updating state",
        )
    }

    /// A change of the state alone from exactly `from` (unpause: only a paused container
    /// becomes running this way). `(from, to)` must be in the transition table.
    pub fn set_state_from(&self, id: &str, from: State, to: State) -> Result<(), EngineError> {
        if !allowed_from(to).contains(&from) {
            return Err(EngineError::Invalid(format!(
                "internal: no state change from {} to {}",
                from.as_str(),
                to.as_str()
            )));
        }
        let n = self
            .conn()
            .execute(
                "UPDATE containers SET state = ?3 WHERE id = ?1 AND state = ?2",
                params![id, from.as_str(), to.as_str()],
            )
            .map_err(|e| db_err("updating state", e))?;
        if n == 1 {
            return Ok(());
        }
        Err(self.conflict(id, to, "updating state"))
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
        self.transition(
            id,
            State::Running,
            "UPDATE containers SET state = 'running', pid = ?2, monitor_pid = ?3, started_at = ?4,
             finished_at = '', exit_code = 0, oom_killed = 0, error = '', network = ?5
             WHERE id = ?1 AND state IN ({from})",
            &[&id, &pid, &monitor_pid, &started_at, &net],
            "recording start",
        )
    }

    pub fn set_exited(
        &self,
        id: &str,
        exit_code: i32,
        oom_killed: bool,
        finished_at: &str,
        error: &str,
    ) -> Result<(), EngineError> {
        self.transition(
            id,
            State::Exited,
            "UPDATE containers SET state = 'exited', pid = 0, monitor_pid = 0, exit_code = ?2,
             oom_killed = ?3, finished_at = ?4, error = ?5, network = '{}'
             WHERE id = ?1 AND state IN ({from})",
            &[&id, &exit_code, &(oom_killed as i64), &finished_at, &error],
            "recording exit",
        )
    }

    /// Between two runs of a restart policy: still supervised by `monitor_pid`, so other
    /// commands don't mistake it for a container whose supervisor died.
    pub fn set_restarting(&self, id: &str, monitor_pid: i32) -> Result<(), EngineError> {
        self.transition(
            id,
            State::Restarting,
            "UPDATE containers SET state = 'restarting', monitor_pid = ?2
             WHERE id = ?1 AND state IN ({from})",
            &[&id, &monitor_pid],
            "recording restart",
        )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::NetworkState;

    fn record(id: &str) -> ContainerRecord {
        ContainerRecord {
            id: id.into(),
            name: format!("n-{id}"),
            image: "img".into(),
            image_id: "sha256:00".into(),
            created: "2026-01-01T00:00:00Z".into(),
            state: State::Created,
            pid: 0,
            monitor_pid: 0,
            exit_code: 0,
            oom_killed: false,
            started_at: String::new(),
            finished_at: String::new(),
            restart_count: 0,
            error: String::new(),
            config: ContainerConfig::default(),
            network: NetworkState::default(),
        }
    }

    fn state(db: &Db, id: &str) -> State {
        db.get(id).unwrap().unwrap().state
    }

    /// A pause that lost the race against the exit must not store `paused` for a dead
    /// container: the update is a compare-and-set and fails with a conflict.
    #[test]
    fn pause_after_exit_is_a_conflict_and_keeps_exited() {
        let d = tempfile::tempdir().unwrap();
        let db = Db::open(d.path()).unwrap();
        let id = "0123456789abcdef0123";
        db.insert(&record(id)).unwrap();
        db.set_running(id, 42, 43, "now", &NetworkState::default())
            .unwrap();
        db.set_exited(id, 0, false, "later", "").unwrap();
        let e = db.set_state(id, State::Paused).unwrap_err();
        assert!(
            matches!(&e, EngineError::Conflict(m) if m.contains("cannot become paused") && m.contains("exited")),
            "{e}"
        );
        assert_eq!(state(&db, id), State::Exited);
        // Unpause of a container that is not paused, too.
        assert!(matches!(
            db.set_state_from(id, State::Paused, State::Running),
            Err(EngineError::Conflict(_))
        ));
        assert_eq!(state(&db, id), State::Exited);
    }

    #[test]
    fn transitions_follow_the_table() {
        let d = tempfile::tempdir().unwrap();
        let db = Db::open(d.path()).unwrap();
        let id = "fedcba9876543210fedc";
        db.insert(&record(id)).unwrap();
        db.set_running(id, 42, 43, "now", &NetworkState::default())
            .unwrap();
        db.set_state(id, State::Paused).unwrap();
        // A running (or paused) container cannot be marked removing.
        assert!(matches!(
            db.set_state(id, State::Removing),
            Err(EngineError::Conflict(_))
        ));
        db.set_state_from(id, State::Paused, State::Running)
            .unwrap();
        db.set_exited(id, 1, false, "later", "").unwrap();
        db.set_restarting(id, 7).unwrap();
        db.set_exited(id, 1, false, "later", "").unwrap();
        db.set_state(id, State::Removing).unwrap();
        // Removing is final: nothing starts or exits it again; a second rm may finish it.
        assert!(matches!(
            db.set_running(id, 1, 1, "x", &NetworkState::default()),
            Err(EngineError::Conflict(_))
        ));
        assert!(matches!(
            db.set_exited(id, 0, false, "x", ""),
            Err(EngineError::Conflict(_))
        ));
        db.set_state(id, State::Removing).unwrap();
        assert_eq!(state(&db, id), State::Removing);
        db.delete(id).unwrap();
        assert!(matches!(
            db.set_state(id, State::Paused),
            Err(EngineError::NotFound(_))
        ));
        // Every target state's sources are states that exist, and nothing becomes
        // `created` or `dead` by an update.
        assert!(allowed_from(State::Created).is_empty());
        assert!(allowed_from(State::Dead).is_empty());
    }

    /// A tmpfs of a few pages mounted for one test (prefix `bt-crash-db-`), unmounted on
    /// drop, also when the test fails.
    struct Tmpfs(std::path::PathBuf);

    impl Tmpfs {
        fn new(size: &str) -> Option<Tmpfs> {
            let p = std::env::temp_dir().join(format!("bt-crash-db-{}", std::process::id()));
            std::fs::create_dir_all(&p).unwrap();
            let st = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "bt-crash-db"])
                .arg(&p)
                .status();
            if !st.is_ok_and(|s| s.success()) {
                let _ = std::fs::remove_dir(&p);
                let why = "cannot mount a tmpfs (needs root)";
                assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
                eprintln!("skipping: {why}");
                return None;
            }
            Some(Tmpfs(p))
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
            let _ = std::fs::remove_dir(&self.0);
        }
    }

    /// At 0 bytes free, reading the records still works: the WAL index that cannot be
    /// created is kept in memory instead (exclusive locking mode).
    #[test]
    fn reads_work_on_a_full_disk() {
        let Some(fs) = Tmpfs::new("1m") else {
            return;
        };
        let id = "00112233445566778899";
        {
            let db = Db::open(&fs.0).unwrap();
            db.insert(&record(id)).unwrap();
        }
        // Fill it up.
        let mut f = std::fs::File::create(fs.0.join("fill")).unwrap();
        let chunk = vec![0u8; 4096];
        loop {
            use std::io::Write;
            if f.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = std::fs::remove_file(fs.0.join("berth.db-shm"));
        let db = Db::open(&fs.0).unwrap();
        let list = db.list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].id, id);
        assert_eq!(db.resolve("n-00112233445566778899").unwrap().id, id);
    }
}
