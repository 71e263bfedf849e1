//! The events journal: every state change of a container, image, network or volume, in
//! Docker's event shape, appended by whichever process made the change (a `berth`
//! command, a container's monitor, a server) and followed by `berth events`.
//!
//! On disk: `<root>/events/journal.jsonl`, one JSON object per line. Each event is one
//! `write(2)` to a descriptor opened with `O_APPEND`, so concurrent appenders never
//! interleave inside a line. When the file passes [`MAX_JOURNAL_BYTES`] the appender that
//! noticed renames it to `journal.1.jsonl` (under `events/rotate.lock`, replacing the
//! previous generation): the journal is bounded to two generations. Readers read the old
//! generation, then the current one, and notice a rotation by the current path's inode
//! changing.
//!
//! Recording an event never fails the operation that caused it: a journal that cannot be
//! written (a full disk, a read-only root) is logged and skipped.

use std::{
    collections::{BTreeMap, VecDeque},
    fs::File,
    io::{Read, Seek, SeekFrom, Write},
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{container::ContainerRecord, Engine, EngineError};

/// The journal is rotated once it grows past this many bytes (two generations are kept:
/// about 8 MiB, tens of thousands of events).
pub const MAX_JOURNAL_BYTES: u64 = 4 << 20;

const JOURNAL: &str = "journal.jsonl";
const OLD_JOURNAL: &str = "journal.1.jsonl";

/// The kinds of object an event is about (Docker's `Type`).
pub const EVENT_TYPES: &[&str] = &[
    "container",
    "image",
    "network",
    "volume",
    "daemon",
    "plugin",
    "builder",
];

/// The object an event is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

/// One event, serialised as Docker's API does (`docker events --format '{{json .}}'`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Docker's pre-1.22 fields, still sent for container and image events.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    /// Seconds since the epoch.
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

impl Event {
    /// An event of `kind` about `id`, dated now.
    pub fn new(kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) -> Event {
        let now = Utc::now();
        let nanos = now
            .timestamp_nanos_opt()
            .unwrap_or(now.timestamp() * 1_000_000_000);
        let legacy = kind == "container" || kind == "image";
        Event {
            status: if legacy {
                action.to_string()
            } else {
                String::new()
            },
            id: if legacy {
                id.to_string()
            } else {
                String::new()
            },
            from: if kind == "container" {
                attributes.get("image").cloned().unwrap_or_default()
            } else {
                String::new()
            },
            kind: kind.to_string(),
            action: action.to_string(),
            actor: Actor {
                id: id.to_string(),
                attributes,
            },
            scope: "local".into(),
            time: nanos.div_euclid(1_000_000_000),
            time_nano: nanos,
        }
    }

    /// When it happened.
    pub fn datetime(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.time_nano)
    }
}

/// What `Engine::events` returns.
#[derive(Debug, Clone, Default)]
pub struct EventsOptions {
    /// Past events from this time on (without it, only events from now on).
    pub since: Option<DateTime<Utc>>,
    /// Stop after this time (without it, follow until the caller stops reading).
    pub until: Option<DateTime<Utc>>,
    /// Docker's `--filter KEY=VALUE` pairs: the same key ORs, different keys AND.
    pub filters: Vec<(String, String)>,
}

/// The filter keys Docker's `events` takes.
const FILTER_KEYS: &[&str] = &[
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "scope",
    "type",
    "volume",
];

/// Parsed filters.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    by_key: BTreeMap<String, Vec<String>>,
}

impl EventFilter {
    /// Checks the keys (and the `type` values) as Docker does: an unknown one is an error.
    pub fn new(pairs: &[(String, String)]) -> Result<EventFilter, EngineError> {
        let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in pairs {
            if !FILTER_KEYS.contains(&k.as_str()) {
                return Err(EngineError::Invalid(format!(
                    "invalid filter '{k}': events take {}",
                    FILTER_KEYS.join(", ")
                )));
            }
            if k == "type" && !EVENT_TYPES.contains(&v.as_str()) {
                return Err(EngineError::Invalid(format!(
                    "invalid filter 'type={v}': the type is one of {}",
                    EVENT_TYPES.join(", ")
                )));
            }
            if k == "scope" && v != "local" && v != "swarm" {
                return Err(EngineError::Invalid(format!(
                    "invalid filter 'scope={v}': the scope is local or swarm"
                )));
            }
            by_key.entry(k.clone()).or_default().push(v.clone());
        }
        Ok(EventFilter { by_key })
    }

    /// Parses `KEY=VALUE` strings (`--filter` arguments).
    pub fn parse_pairs(specs: &[String]) -> Result<Vec<(String, String)>, EngineError> {
        specs
            .iter()
            .map(|s| {
                s.split_once('=')
                    .map(|(k, v)| (k.trim().to_lowercase(), v.to_string()))
                    .ok_or_else(|| {
                        EngineError::Invalid(format!(
                            "bad format of filter '{s}' (expected name=value)"
                        ))
                    })
            })
            .collect()
    }

    fn any(&self, key: &str, mut f: impl FnMut(&str) -> bool) -> bool {
        match self.by_key.get(key) {
            None => true,
            Some(vs) => vs.iter().any(|v| f(v)),
        }
    }

    /// Whether `e` passes every filter.
    pub fn matches(&self, e: &Event) -> bool {
        let attr = |k: &str| e.actor.attributes.get(k).map(String::as_str).unwrap_or("");
        // An ID matches by prefix, a name exactly.
        let object = |kind: &str, v: &str| {
            e.kind == kind && (e.actor.id.starts_with(v) || attr("name") == v)
        };
        self.any("type", |v| e.kind == v)
            && self.any("event", |v| {
                e.action == v || e.action.split_once(':').is_some_and(|(a, _)| a == v)
            })
            && self.any("scope", |v| e.scope == v)
            && self.any("daemon", |v| e.kind == "daemon" && e.actor.id == v)
            && self.any("container", |v| object("container", v))
            && self.any("network", |v| object("network", v))
            && self.any("volume", |v| object("volume", v))
            && self.any("image", |v| {
                let image = match e.kind.as_str() {
                    "container" => attr("image"),
                    "image" => attr("name"),
                    _ => return false,
                };
                let strip = |s: &str| s.strip_suffix(":latest").unwrap_or(s).to_string();
                (e.kind == "image" && e.actor.id.starts_with(v))
                    || strip(image) == strip(v)
                    || image == v
            })
            && self.any("label", |v| match v.split_once('=') {
                Some((k, val)) => e.actor.attributes.get(k).is_some_and(|x| x == val),
                None => e.actor.attributes.contains_key(v),
            })
    }
}

/// The journal of one root.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
    max_bytes: u64,
}

impl Journal {
    pub fn new(root: &Path) -> Journal {
        Journal {
            dir: root.join("events"),
            max_bytes: MAX_JOURNAL_BYTES,
        }
    }

    /// A journal that rotates after `max_bytes` (tests).
    pub fn with_limit(root: &Path, max_bytes: u64) -> Journal {
        Journal {
            dir: root.join("events"),
            max_bytes,
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(JOURNAL)
    }

    /// Appends `e` as one line with one `write(2)`, then rotates if the file grew past
    /// the limit.
    pub fn append(&self, e: &Event) -> Result<(), EngineError> {
        let mut line = serde_json::to_vec(e)
            .map_err(|err| EngineError::Invalid(format!("serialising an event: {err}")))?;
        line.push(b'\n');
        std::fs::create_dir_all(&self.dir)
            .map_err(|err| EngineError::io(format!("creating {}", self.dir.display()), err))?;
        let path = self.path();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|err| EngineError::io(format!("opening {}", path.display()), err))?;
        // One write: O_APPEND makes the seek-to-end and the write one atomic step, so
        // lines of concurrent appenders never interleave.
        let n = f
            .write(&line)
            .map_err(|err| EngineError::io(format!("appending to {}", path.display()), err))?;
        if n != line.len() {
            return Err(EngineError::io(
                format!("appending to {}", path.display()),
                std::io::Error::new(std::io::ErrorKind::WriteZero, "short write (disk full?)"),
            ));
        }
        let size = f.metadata().map(|m| m.len()).unwrap_or(0);
        if size > self.max_bytes {
            self.rotate(&f);
        }
        Ok(())
    }

    /// Renames the current generation away, once: under the rotate lock, and only if the
    /// file at the path is still the one we appended to.
    fn rotate(&self, ours: &File) {
        use fs2::FileExt;
        let lock = match std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("rotate.lock"))
        {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("events journal: rotate lock: {e}");
                return;
            }
        };
        if lock.lock_exclusive().is_err() {
            return;
        }
        let path = self.path();
        let same = match (std::fs::metadata(&path), ours.metadata()) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if same {
            if let Err(e) = std::fs::rename(&path, self.dir.join(OLD_JOURNAL)) {
                tracing::warn!("events journal: rotating {}: {e}", path.display());
            }
        }
        let _ = fs2::FileExt::unlock(&lock);
    }

    /// A reader of the journal: past events from `since`, then new ones as they come.
    pub fn stream(&self, opts: &EventsOptions) -> Result<EventStream, EngineError> {
        let filter = EventFilter::new(&opts.filters)?;
        if let (Some(s), Some(u)) = (opts.since, opts.until) {
            if u < s {
                return Err(EngineError::Invalid(
                    "--until is before --since: no event can match".into(),
                ));
            }
        }
        let mut s = EventStream {
            dir: self.dir.clone(),
            file: None,
            on_old: false,
            partial: Vec::new(),
            pending: VecDeque::new(),
            done: None,
            since: opts.since,
            until: opts.until,
            filter,
            poll: Duration::from_millis(100),
        };
        if opts.since.is_some() {
            // From the start of the oldest generation.
            if let Ok(f) = File::open(self.dir.join(OLD_JOURNAL)) {
                s.file = Some(f);
                s.on_old = true;
            } else {
                s.open_current(false);
            }
        } else {
            s.open_current(true);
            if s.file.is_none() {
                // No journal now (none yet, or just rotated away): what appears is read
                // from the start of both generations, from this moment on.
                s.since = Some(Utc::now());
            }
        }
        Ok(s)
    }
}

/// Events as they are read from the journal; see [`Engine::events`].
///
/// As an iterator it blocks (polling the journal) until the next matching event, and
/// ends only at `until`. [`EventStream::try_next`] does not block, for callers with their
/// own loop (a server that also watches its client's connection).
pub struct EventStream {
    dir: PathBuf,
    file: Option<File>,
    /// Reading `journal.1.jsonl` (then the current generation).
    on_old: bool,
    partial: Vec<u8>,
    pending: VecDeque<Event>,
    /// The last file read to its end and left (never read again).
    done: Option<(u64, u64)>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    filter: EventFilter,
    poll: Duration,
}

fn file_id(f: &File) -> Option<(u64, u64)> {
    f.metadata().ok().map(|m| (m.dev(), m.ino()))
}

impl EventStream {
    fn open_current(&mut self, at_end: bool) {
        self.on_old = false;
        self.partial.clear();
        self.file = File::open(self.dir.join(JOURNAL)).ok();
        if at_end {
            if let Some(f) = &mut self.file {
                let _ = f.seek(SeekFrom::End(0));
            }
        }
    }

    /// Reads what was appended since the last call into `pending`; moves on to the next
    /// generation when this one is finished.
    fn fill(&mut self) -> Result<(), EngineError> {
        loop {
            let Some(f) = &mut self.file else {
                // No journal when we looked: the older generation first (a rotation may
                // have happened since), then the current one, from their starts.
                // (Not a file already read: after a rotation it is the old generation.)
                let old = File::open(self.dir.join(OLD_JOURNAL))
                    .ok()
                    .filter(|f| file_id(f).is_some_and(|id| Some(id) != self.done));
                if let Some(old) = old {
                    self.file = Some(old);
                    self.on_old = true;
                    self.partial.clear();
                } else {
                    self.file = File::open(self.dir.join(JOURNAL)).ok();
                }
                if self.file.is_none() {
                    return Ok(());
                }
                continue;
            };
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)
                .map_err(|e| EngineError::io("reading the events journal", e))?;
            self.partial.extend_from_slice(&buf);
            while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.partial.drain(..=i).collect();
                match serde_json::from_slice::<Event>(&line) {
                    Ok(e) => {
                        let t = e.datetime();
                        if self.since.is_none_or(|s| t >= s)
                            && self.until.is_none_or(|u| t <= u)
                            && self.filter.matches(&e)
                        {
                            self.pending.push_back(e);
                        }
                    }
                    Err(err) => tracing::debug!("events journal: skipping a bad line: {err}"),
                }
            }
            // At the end of this file: switch when a newer generation exists.
            let ours = file_id(f);
            let current = std::fs::metadata(self.dir.join(JOURNAL))
                .ok()
                .map(|m| (m.dev(), m.ino()));
            if self.on_old || (current.is_some() && current != ours) {
                self.done = ours;
                self.open_current(false);
                if self.file.is_none() {
                    return Ok(());
                }
                continue;
            }
            return Ok(());
        }
    }

    /// The next matching event if one is in the journal now; `Ok(None)` when caught up.
    pub fn try_next(&mut self) -> Result<Option<Event>, EngineError> {
        if self.pending.is_empty() {
            self.fill()?;
        }
        Ok(self.pending.pop_front())
    }

    /// True once `until` has passed and every event up to it was returned.
    pub fn finished(&self) -> bool {
        self.pending.is_empty() && self.until.is_some_and(|u| Utc::now() > u)
    }
}

impl Iterator for EventStream {
    type Item = Result<Event, EngineError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            // Past `until`: one last read picks up what was written before it.
            let last = self.until.is_some_and(|u| Utc::now() > u);
            match self.try_next() {
                Ok(Some(e)) => return Some(Ok(e)),
                Ok(None) if last => return None,
                Ok(None) => std::thread::sleep(self.poll),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Docker's attributes of a container event: its labels, `name`, `image`, and `extra`.
pub fn container_attributes(
    rec: &ContainerRecord,
    extra: &[(&str, String)],
) -> BTreeMap<String, String> {
    let mut attrs = rec.config.labels.clone();
    attrs.insert("name".into(), rec.name.clone());
    attrs.insert("image".into(), rec.image.clone());
    for (k, v) in extra {
        attrs.insert((*k).to_string(), v.clone());
    }
    attrs
}

impl Engine {
    /// The journal of this root.
    pub fn journal(&self) -> Journal {
        Journal::new(&self.config.root)
    }

    /// Records an event about `id` (never fails the caller: a journal that cannot be
    /// written is logged).
    pub fn emit(&self, kind: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) {
        let e = Event::new(kind, action, id, attributes);
        if let Err(err) = self.journal().append(&e) {
            tracing::warn!("recording the event {kind} {action} {id}: {err}");
        }
    }

    /// A container event with Docker's attributes (name, image, the labels) and `extra`.
    pub fn emit_container(&self, rec: &ContainerRecord, action: &str, extra: &[(&str, String)]) {
        self.emit(
            "container",
            action,
            &rec.id,
            container_attributes(rec, extra),
        );
    }

    /// An event with just a name attribute (images, networks, volumes) and `extra`.
    pub fn emit_named(
        &self,
        kind: &str,
        action: &str,
        id: &str,
        name: &str,
        extra: &[(&str, String)],
    ) {
        let mut attrs = BTreeMap::new();
        attrs.insert("name".to_string(), name.to_string());
        for (k, v) in extra {
            attrs.insert((*k).to_string(), v.clone());
        }
        self.emit(kind, action, id, attrs);
    }

    /// `berth events`: the events of this root, filtered; see [`EventStream`].
    pub fn events(&self, opts: &EventsOptions) -> Result<EventStream, EngineError> {
        self.journal().stream(opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        Event::new(
            kind,
            action,
            id,
            attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn filter(pairs: &[&str]) -> EventFilter {
        let specs: Vec<String> = pairs.iter().map(|s| s.to_string()).collect();
        EventFilter::new(&EventFilter::parse_pairs(&specs).unwrap()).unwrap()
    }

    #[test]
    fn docker_shape() {
        let e = ev(
            "container",
            "start",
            "abc",
            &[("name", "web"), ("image", "bbox")],
        );
        let v: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(v["Type"], "container");
        assert_eq!(v["Action"], "start");
        assert_eq!(v["Actor"]["ID"], "abc");
        assert_eq!(v["Actor"]["Attributes"]["name"], "web");
        assert_eq!(v["status"], "start");
        assert_eq!(v["from"], "bbox");
        assert_eq!(v["scope"], "local");
        assert_eq!(
            v["time"].as_i64().unwrap(),
            v["timeNano"].as_i64().unwrap() / 1_000_000_000
        );
        let n = ev("network", "create", "n1", &[("name", "net")]);
        let v: serde_json::Value = serde_json::to_value(&n).unwrap();
        assert!(
            v.get("status").is_none(),
            "no legacy fields for networks: {v}"
        );
    }

    #[test]
    fn filters_follow_docker() {
        let start = ev(
            "container",
            "start",
            "abcdef",
            &[("name", "web"), ("image", "bbox:latest"), ("tier", "front")],
        );
        let health = ev(
            "container",
            "health_status: healthy",
            "abcdef",
            &[("name", "web")],
        );
        let net = ev(
            "network",
            "connect",
            "n1",
            &[("name", "mynet"), ("container", "abcdef")],
        );
        assert!(filter(&[]).matches(&start));
        assert!(filter(&["type=container"]).matches(&start));
        assert!(!filter(&["type=container"]).matches(&net));
        assert!(filter(&["type=network", "type=container"]).matches(&net));
        assert!(filter(&["container=web"]).matches(&start));
        assert!(filter(&["container=abc"]).matches(&start));
        assert!(
            !filter(&["container=we"]).matches(&start),
            "names match exactly"
        );
        assert!(!filter(&["container=web"]).matches(&net));
        assert!(filter(&["event=start"]).matches(&start));
        assert!(!filter(&["event=start", "type=network"]).matches(&start));
        assert!(filter(&["event=health_status"]).matches(&health));
        assert!(filter(&["image=bbox"]).matches(&start));
        assert!(!filter(&["image=other"]).matches(&start));
        assert!(filter(&["label=tier"]).matches(&start));
        assert!(filter(&["label=tier=front"]).matches(&start));
        assert!(!filter(&["label=tier=back"]).matches(&start));
        assert!(filter(&["network=mynet"]).matches(&net));
        let bad = EventFilter::new(&[("colour".into(), "red".into())]).unwrap_err();
        assert!(bad.to_string().contains("colour"), "{bad}");
        assert!(EventFilter::new(&[("type".into(), "boat".into())]).is_err());
        assert!(EventFilter::parse_pairs(&["novalue".into()]).is_err());
    }

    #[test]
    fn appends_follow_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::with_limit(dir.path(), 600);
        let before = Utc::now() - chrono::Duration::seconds(1);
        // A follower that starts before anything exists sees events appended later.
        let mut follower = j.stream(&EventsOptions::default()).unwrap();
        assert!(follower.try_next().unwrap().is_none());
        for i in 0..20 {
            j.append(&ev(
                "container",
                "create",
                &format!("c{i}"),
                &[("name", "x")],
            ))
            .unwrap();
        }
        // Rotated: two generations, the current one small again.
        assert!(dir.path().join("events").join(OLD_JOURNAL).exists());
        // (absent right after a rotation)
        let current = std::fs::metadata(j.path()).map(|m| m.len()).unwrap_or(0);
        assert!(current <= 600 + 400, "{current}");
        let mut seen = Vec::new();
        while let Some(e) = follower.try_next().unwrap() {
            seen.push(e.actor.id);
        }
        // The follower saw every event written since it started, across rotations that
        // kept the file it was reading.
        assert!(seen.len() >= 2, "{seen:?}");
        assert_eq!(seen.last().unwrap(), "c19");
        let mut sorted = seen.clone();
        sorted.dedup();
        assert_eq!(sorted, seen, "no event twice");
        // With --since: the kept history, oldest first, ending with the newest.
        let past: Vec<String> = j
            .stream(&EventsOptions {
                since: Some(before),
                until: Some(Utc::now()),
                filters: vec![],
            })
            .unwrap()
            .map(|e| e.unwrap().actor.id)
            .collect();
        assert_eq!(past.last().unwrap(), "c19");
        let nums: Vec<u32> = past.iter().map(|s| s[1..].parse().unwrap()).collect();
        assert!(nums.windows(2).all(|w| w[0] < w[1]), "{nums:?}");
    }

    #[test]
    fn concurrent_appenders_write_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path());
        std::thread::scope(|s| {
            for t in 0..4 {
                let j = &j;
                s.spawn(move || {
                    for i in 0..200 {
                        let long = "v".repeat(300);
                        j.append(&ev(
                            "volume",
                            "create",
                            &format!("t{t}-{i}"),
                            &[("name", &long)],
                        ))
                        .unwrap();
                    }
                });
            }
        });
        let text = std::fs::read_to_string(j.path()).unwrap();
        let events: Vec<Event> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events.len(), 800);
    }

    #[test]
    fn until_ends_the_stream() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path());
        let since = Utc::now() - chrono::Duration::seconds(5);
        j.append(&ev("image", "tag", "sha256:1", &[("name", "a:1")]))
            .unwrap();
        j.append(&ev("image", "delete", "sha256:1", &[("name", "a:1")]))
            .unwrap();
        let got: Vec<String> = j
            .stream(&EventsOptions {
                since: Some(since),
                until: Some(Utc::now()),
                filters: vec![("event".into(), "delete".into())],
            })
            .unwrap()
            .map(|e| e.unwrap().action)
            .collect();
        assert_eq!(got, vec!["delete"]);
        let err = j
            .stream(&EventsOptions {
                since: Some(Utc::now()),
                until: Some(since),
                filters: vec![],
            })
            .err()
            .unwrap();
        assert!(err.to_string().contains("--until"));
    }
}
