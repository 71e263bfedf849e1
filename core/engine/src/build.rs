//! `berth build`: the executor on top of berth-dockerfile's parser and planner.
//!
//! Per stage: the base (`scratch`, an earlier stage, an image); per instruction a cache key
//! chained from the previous one (instruction with expanded arguments, build args, and for
//! COPY/ADD a hash of the copied files' content and metadata). Metadata instructions only
//! change the image config. RUN runs the command with berth-runtime in a snapshot of the
//! current layers (host network, documented); COPY/ADD write into a snapshot. The
//! snapshot's diff becomes a layer blob in the image store and is committed in the storage
//! driver under its chain ID, so the next step (and later `run`s) reuse it unpacked.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    path::{Path, PathBuf},
    time::Instant,
};

use berth_abi::ErrorKind;
use berth_dockerfile::{
    plan_with, Base, BuildPlan, CopySource, DockerIgnore, Dockerfile, Healthcheck, Instruction,
    InstructionKind, PlanOptions, RunScript, ShellOrExec, StageEnv,
};
use berth_image::{
    chain_ids, ConfigExtras, Descriptor, HealthConfig, Image, ImageConfiguration, Reference,
};
use oci_spec::image::{Config, HistoryBuilder};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{container::new_id, copy::SourceRoot, Engine, EngineError};
use rustix::fs::FileType;

/// `berth build` flags.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub context: PathBuf,
    /// `-f`: a path, or the Dockerfile's text for `-f -`.
    pub dockerfile: Option<PathBuf>,
    pub dockerfile_text: Option<String>,
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub no_cache: bool,
    pub quiet: bool,
    /// `--pull`: check the registry for newer base images.
    pub pull: bool,
}

/// Where build progress goes (the CLI prints it).
pub trait BuildOutput {
    fn line(&mut self, text: &str);
}

/// Prints BuildKit-style plain progress to stderr.
pub struct PlainOutput;
impl BuildOutput for PlainOutput {
    fn line(&mut self, text: &str) {
        eprintln!("{text}");
    }
}

/// Discards progress (`-q`).
pub struct QuietOutput;
impl BuildOutput for QuietOutput {
    fn line(&mut self, _: &str) {}
}

/// What the cache remembers for a step: the resulting config and layers.
#[derive(Serialize, Deserialize, Clone)]
struct StepState {
    config: ImageConfiguration,
    layers: Vec<Descriptor>,
    /// HEALTHCHECK, ONBUILD and SHELL, which the OCI config cannot hold.
    #[serde(default)]
    extras: ConfigExtras,
}

/// A `COPY --link` layer as cached: independent of the layers it is stacked on.
#[derive(Serialize, Deserialize)]
struct LinkedLayer {
    layer: Descriptor,
    created_by: String,
    /// When the layer was made: its history entry's time wherever it is stacked.
    #[serde(default)]
    created: Option<String>,
}

/// Puts a linked layer on top of the stage (its blob is uncompressed: diff_id = digest).
fn stack_linked(st: &mut StageState, l: &LinkedLayer, key: &str) {
    let mut diff_ids = st.state.config.rootfs().diff_ids().clone();
    diff_ids.push(l.layer.digest().to_string());
    st.state.config.rootfs_mut().set_diff_ids(diff_ids);
    st.state.layers.push(l.layer.clone());
    push_history_at(
        &mut st.state.config,
        &l.created_by,
        false,
        l.created.clone(),
    );
    st.key = sha(&[&st.key, key]);
}

struct StageState {
    state: StepState,
    env: StageEnv,
    /// Cache key of the state so far.
    key: String,
    /// The runtime config as metadata steps changed it, not yet written back into
    /// `state.config` (which is stale while this is set).
    pending: Option<Config>,
    /// How often the whole config was copied out of the state: once per run of metadata
    /// steps, not once per step (a test holds it to that).
    config_copies: usize,
    /// A CMD was written in this stage (Docker's `cmdSet`): a later ENTRYPOINT keeps it
    /// and resets only a CMD inherited from the base.
    cmd_set: bool,
}

impl StageState {
    /// The runtime config to change in place (taken out of the state once per run of
    /// metadata steps, not cloned per step).
    fn config_mut(&mut self) -> &mut Config {
        if self.pending.is_none() {
            self.config_copies += 1;
        }
        let state = &self.state;
        self.pending
            .get_or_insert_with(|| state.config.config().clone().unwrap_or_default())
    }

    /// Writes the working config back into the state.
    fn flush_config(&mut self) {
        if let Some(c) = self.pending.take() {
            self.state.config.set_config(Some(c));
        }
    }
}

/// BuildKit's `system.DefaultPathEnv` for Linux.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Follows BuildKit's dockerfile2llb ("make sure that PATH is always set"): a stage whose
/// base (an image, or scratch) has no PATH in its Env gets the default one, both in the
/// stage's environment and in the image config it builds.
fn default_path(state: &mut StepState, base_env: &mut Vec<String>) {
    if base_env
        .iter()
        .any(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k) == "PATH")
    {
        return;
    }
    base_env.push(format!("PATH={DEFAULT_PATH}"));
    let mut c = state.config.config().clone().unwrap_or_default();
    c.set_env(Some(base_env.clone()));
    state.config.set_config(Some(c));
}

/// `name i/total` (or `i/total`) of a step inside `[...]`.
fn stage_label(name: Option<&str>, i: usize, total: usize) -> String {
    match name {
        Some(n) => format!("{n} {i}/{total}"),
        None => format!("{i}/{total}"),
    }
}

/// Parses a base image's ONBUILD triggers into instructions positioned at the FROM line.
fn parse_triggers(
    file: &str,
    from_line: usize,
    triggers: &[String],
) -> Result<Vec<Instruction>, EngineError> {
    if triggers.is_empty() {
        return Ok(Vec::new());
    }
    let text = format!("FROM scratch\n{}\n", triggers.join("\n"));
    let what = format!("{file}:{from_line}: ONBUILD trigger of the base image");
    let df = Dockerfile::parse(&what, &text).map_err(|e| EngineError::Invalid(e.to_string()))?;
    if df.stages.len() != 1 {
        return Err(EngineError::Invalid(format!(
            "{what}: a trigger may not be FROM"
        )));
    }
    let mut out = df
        .stages
        .into_iter()
        .next()
        .map(|s| s.instructions)
        .unwrap_or_default();
    for ins in &mut out {
        if matches!(
            ins.kind,
            InstructionKind::Onbuild { .. } | InstructionKind::Maintainer(_)
        ) {
            return Err(EngineError::Invalid(format!(
                "{what}: {} is not allowed as a trigger",
                ins.name()
            )));
        }
        ins.line = from_line;
        ins.end_line = from_line;
    }
    Ok(out)
}

/// Docker's `config.Healthcheck` for a HEALTHCHECK instruction.
fn health_config(h: &Healthcheck) -> HealthConfig {
    let ns = |d: &Option<std::time::Duration>| {
        d.map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    };
    match h {
        Healthcheck::None => HealthConfig {
            test: h.test_vec(),
            ..Default::default()
        },
        Healthcheck::Cmd {
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
            ..
        } => HealthConfig {
            test: h.test_vec(),
            interval: ns(interval),
            timeout: ns(timeout),
            start_period: ns(start_period),
            start_interval: ns(start_interval),
            retries: *retries,
        },
    }
}

/// The context's `.dockerignore` (read below the context root); none means nothing excluded.
fn load_ignore(context: &SourceRoot) -> Result<DockerIgnore, EngineError> {
    match context
        .read(".dockerignore")
        .map_err(EngineError::Invalid)?
    {
        Some(text) => DockerIgnore::parse(".dockerignore", &String::from_utf8_lossy(&text))
            .map_err(|e| EngineError::Invalid(e.to_string())),
        None => Ok(DockerIgnore::default()),
    }
}

fn bad(file: &str, line: usize, msg: impl std::fmt::Display) -> EngineError {
    EngineError::Invalid(format!("{file}:{line}: {msg}"))
}

fn sha(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())
}

fn source_date_epoch() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH").ok()?.parse().ok()
}

fn timestamp() -> String {
    match source_date_epoch() {
        Some(s) => chrono::DateTime::from_timestamp(s, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        None => chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
    }
}

/// Removes a snapshot (and its mount) when dropped, unless committed. Its entries under
/// `run/build` are owned through a lock (`crate::debris`), so the debris of a killed build
/// is reclaimed by the next command; the lock is released after everything is removed.
struct Snapshot<'a> {
    engine: &'a Engine,
    key: String,
    mount: PathBuf,
    mounted: bool,
    keep: bool,
    _owner: crate::debris::Owner,
}

impl<'a> Snapshot<'a> {
    fn new(
        engine: &'a Engine,
        parent: Option<&str>,
        read_only: bool,
    ) -> Result<Snapshot<'a>, EngineError> {
        let key = format!("{}{}", crate::debris::BUILD_PREFIX, &new_id()[..20]);
        let owner = engine.claim_build_key(&key)?;
        let mount = engine.build_run_dir().join(&key);
        std::fs::create_dir_all(&mount)
            .map_err(|e| EngineError::io(format!("creating {}", mount.display()), e))?;
        let storage = engine.plugins.storage()?;
        if let Err(e) = storage.prepare(&key, parent, read_only) {
            let _ = std::fs::remove_dir(&mount);
            return Err(EngineError::plugin("preparing a build snapshot", e));
        }
        let mut s = Snapshot {
            engine,
            key,
            mount,
            mounted: false,
            keep: false,
            _owner: owner,
        };
        storage
            .mount(&s.key, &s.mount.display().to_string())
            .map_err(|e| EngineError::plugin("mounting a build snapshot", e))?;
        s.mounted = true;
        crate::debris::test_pause("build-snapshot-mounted");
        Ok(s)
    }

    fn unmount(&mut self) -> Result<(), EngineError> {
        if self.mounted {
            self.engine
                .plugins
                .storage()?
                .unmount(&self.key, &self.mount.display().to_string())
                .map_err(|e| EngineError::plugin("unmounting a build snapshot", e))?;
            self.mounted = false;
        }
        Ok(())
    }
}

impl Drop for Snapshot<'_> {
    fn drop(&mut self) {
        let _ = self.unmount();
        if !self.keep {
            if let Ok(s) = self.engine.plugins.storage() {
                let _ = s.remove(&self.key);
            }
        }
        let _ = std::fs::remove_dir(&self.mount);
    }
}

impl Engine {
    /// Runs a build; returns the image id.
    pub fn build(
        &self,
        o: &BuildOptions,
        out: &mut dyn BuildOutput,
    ) -> Result<String, EngineError> {
        let id = self.build_image(o, out)?;
        let name = o.tags.first().cloned().unwrap_or_default();
        self.emit_named("image", "build", &id, &name, &[]);
        for t in &o.tags {
            self.emit_named("image", "tag", &id, t, &[]);
        }
        Ok(id)
    }

    fn build_image(
        &self,
        o: &BuildOptions,
        out: &mut dyn BuildOutput,
    ) -> Result<String, EngineError> {
        let t_all = Instant::now();
        let context = o
            .context
            .canonicalize()
            .map_err(|e| EngineError::io(format!("build context {}", o.context.display()), e))?;
        if !context.is_dir() {
            return Err(EngineError::Invalid(format!(
                "build context {} is not a directory",
                context.display()
            )));
        }
        // Everything read from the context goes through this root: its symlinks resolve
        // inside it, never on the host.
        let sources = SourceRoot::open(&context, "build context").map_err(EngineError::Invalid)?;
        let (file_name, text) = match (&o.dockerfile_text, &o.dockerfile) {
            (Some(t), _) => ("Dockerfile".to_string(), t.clone()),
            (None, None) => (
                "Dockerfile".to_string(),
                sources
                    .read("Dockerfile")
                    .map_err(EngineError::Invalid)?
                    .ok_or_else(|| {
                        EngineError::Invalid(format!(
                            "no Dockerfile in the build context {} (name another one with -f)",
                            context.display()
                        ))
                    })
                    .and_then(|b| {
                        String::from_utf8(b).map_err(|_| {
                            EngineError::Invalid(format!(
                                "{}: the Dockerfile is not UTF-8 text",
                                context.join("Dockerfile").display()
                            ))
                        })
                    })?,
            ),
            (None, Some(p)) => {
                let path = if p.is_absolute() {
                    p.clone()
                } else {
                    std::env::current_dir()
                        .map(|d| d.join(p))
                        .unwrap_or_else(|_| p.clone())
                };
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| EngineError::io(format!("reading {}", path.display()), e))?;
                (
                    path.file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    text,
                )
            }
        };
        let tags: Vec<Reference> = o
            .tags
            .iter()
            .map(|t| Reference::parse(t))
            .collect::<Result<_, _>>()?;
        let df = Dockerfile::parse(&file_name, &text)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        let plan = plan_with(
            &df,
            &PlanOptions {
                target: o.target.clone(),
                build_args: o.build_args.clone(),
                platform: None,
            },
        )
        .map_err(|e| EngineError::Invalid(e.to_string()))?;
        for w in &plan.warnings {
            out.line(&format!("WARNING: {w:?}"));
        }
        if !plan.unused_build_args.is_empty() {
            out.line(&format!(
                "WARNING: build arguments not consumed by the Dockerfile: {}",
                plan.unused_build_args.join(", ")
            ));
        }
        let ignore = load_ignore(&sources)?;
        let _lease = self.images()?.lease()?;
        // Leftovers of killed builds go first; then unpacked layers stay while this build
        // may still need them (its intermediate layers belong to no image yet).
        self.reclaim_debris();
        if let Ok(st) = self.plugins.storage() {
            if let Err(e) = st.cleanup() {
                tracing::warn!("cleaning the storage driver's temporary files: {e}");
            }
        }
        let _gc = self.gc_shared()?;
        let mut stages: BTreeMap<usize, StageState> = BTreeMap::new();
        let mut step_no = 0usize;
        for stage in &plan.stages {
            let st = self.build_stage(
                &plan,
                stage,
                &stages,
                &sources,
                &ignore,
                o,
                out,
                &mut step_no,
            )?;
            stages.insert(stage.index, st);
        }
        let target = plan
            .target()
            .and_then(|t| stages.get(&t.index))
            .ok_or_else(|| EngineError::Invalid("the Dockerfile has no stage to build".into()))?;
        let mut config = target.state.config.clone();
        if !o.labels.is_empty() {
            let mut c = config.config().clone().unwrap_or_default();
            let mut labels = c.labels().clone().unwrap_or_default();
            labels.extend(o.labels.clone());
            c.set_labels(Some(labels));
            config.set_config(Some(c));
        }
        date_history(&mut config);
        step_no += 1;
        out.line(&format!("#{step_no} exporting to image"));
        let image = self.images()?.create_image_with_extras(
            config,
            &target.state.extras,
            target.state.layers.clone(),
            &tags,
        )?;
        out.line(&format!("#{step_no} writing image {}", image.id));
        for t in &tags {
            out.line(&format!("#{step_no} naming to {}", t.familiar()));
        }
        out.line(&format!(
            "#{step_no} DONE (build total {:.2}s)",
            t_all.elapsed().as_secs_f64()
        ));
        Ok(image.id)
    }

    #[allow(clippy::too_many_arguments)]
    fn build_stage(
        &self,
        plan: &BuildPlan,
        stage: &berth_dockerfile::PlannedStage,
        done: &BTreeMap<usize, StageState>,
        context: &SourceRoot,
        ignore: &DockerIgnore,
        o: &BuildOptions,
        out: &mut dyn BuildOutput,
        step_no: &mut usize,
    ) -> Result<StageState, EngineError> {
        let file = plan.file.clone();
        // ONBUILD triggers of an image base run first, as if written right after FROM.
        let mut triggers: Vec<String> = Vec::new();
        // The FROM line is printed before the base's ONBUILD triggers are known.
        let from_label = stage_label(stage.name.as_deref(), 1, stage.instructions.len() + 1);
        *step_no += 1;
        let t = Instant::now();
        let (mut state, key, mut base_env, base_workdir) = match &stage.base {
            Base::Scratch => {
                out.line(&format!("#{step_no} [{}] FROM scratch", from_label));
                let mut cfg = ImageConfiguration::default();
                // Dated at export, from its layers.
                cfg.set_created(None);
                cfg.rootfs_mut().set_diff_ids(Vec::new());
                cfg.set_history(Vec::new());
                (
                    StepState {
                        config: cfg,
                        layers: Vec::new(),
                        extras: ConfigExtras::default(),
                    },
                    sha(&["scratch"]),
                    Vec::new(),
                    None,
                )
            }
            Base::Stage(i) => {
                let s = done
                    .get(i)
                    .ok_or_else(|| bad(&file, stage.line, format!("stage {i} was not built")))?;
                out.line(&format!("#{step_no} [{}] FROM stage {i}", from_label));
                let c = s.state.config.config().clone().unwrap_or_default();
                (
                    s.state.clone(),
                    s.key.clone(),
                    c.env().clone().unwrap_or_default(),
                    c.working_dir().clone(),
                )
            }
            Base::Image(r) => {
                out.line(&format!("#{step_no} [{}] FROM {r}", from_label));
                let img = self
                    .resolve_or_pull(r, o.pull, o.quiet)
                    .map_err(|e| bad(&file, stage.line, format!("FROM {r}: {e}")))?;
                let c = img.config.config().clone().unwrap_or_default();
                let mut extras = self.images()?.config_extras(&img)?;
                // Triggers fire in this build and are not inherited further (as Docker).
                triggers = std::mem::take(&mut extras.on_build);
                (
                    StepState {
                        config: img.config.clone(),
                        layers: img.manifest.layers().clone(),
                        extras,
                    },
                    sha(&["image", &img.id]),
                    c.env().clone().unwrap_or_default(),
                    c.working_dir().clone(),
                )
            }
        };
        out.line(&format!(
            "#{step_no} DONE {:.1}s",
            t.elapsed().as_secs_f64()
        ));
        default_path(&mut state, &mut base_env);
        // A SHELL of the base (image or stage) stays the shell of this stage, as in Docker.
        let base_shell = state.extras.shell.clone();
        let env = plan
            .stage_env(stage)
            .with_base(&base_env, base_workdir.as_deref(), base_shell);
        let mut st = StageState {
            state,
            env,
            key,
            pending: None,
            config_copies: 0,
            cmd_set: false,
        };
        let mut instructions = parse_triggers(&file, stage.line, &triggers)?;
        if !instructions.is_empty() {
            out.line(&format!(
                "#{step_no} executing {} build trigger(s) of the base image",
                instructions.len()
            ));
        }
        instructions.extend(stage.instructions.iter().cloned());
        let total = instructions.len() + 1;
        for (i, ins) in instructions.iter().enumerate() {
            *step_no += 1;
            let t = Instant::now();
            out.line(&format!(
                "#{step_no} [{}] {}",
                stage_label(stage.name.as_deref(), i + 2, total),
                shown_command(ins.original.trim())
            ));
            let kind = st
                .env
                .apply(ins)
                .map_err(|e| EngineError::Invalid(e.to_string()))?;
            let args_key: String = st
                .env
                .args()
                .iter()
                .map(|(k, v)| format!("{k}={}", v.clone().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join("\n");
            let from_base = match &kind {
                InstructionKind::Copy(c) | InstructionKind::Add(c) => match &c.from {
                    Some(f) => Some(
                        plan.resolve_from(stage.index, f, ins.line, "COPY --from")
                            .map_err(|e| EngineError::Invalid(e.to_string()))?,
                    ),
                    None => None,
                },
                _ => None,
            };
            let cached = self.step(
                &mut st,
                ins.line,
                &kind,
                &file,
                &args_key,
                done,
                context,
                ignore,
                o,
                out,
                *step_no,
                from_base.as_ref(),
                &ins.original,
            )?;
            out.line(&format!(
                "#{step_no} {} {:.1}s",
                if cached { "CACHED" } else { "DONE" },
                t.elapsed().as_secs_f64()
            ));
        }
        st.flush_config();
        Ok(st)
    }

    /// One instruction. Returns whether it was a cache hit.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        st: &mut StageState,
        line: usize,
        kind: &InstructionKind,
        file: &str,
        args_key: &str,
        done: &BTreeMap<usize, StageState>,
        context: &SourceRoot,
        ignore: &DockerIgnore,
        o: &BuildOptions,
        out: &mut dyn BuildOutput,
        step_no: usize,
        from_base: Option<&Base>,
        original: &str,
    ) -> Result<bool, EngineError> {
        let desc = format!("{kind:?}");
        let original = original.trim().to_string();
        // Metadata steps edit the stage's working copy of the config in place (cloning it
        // per step made a Dockerfile of N LABELs O(N²)); steps that read or store the
        // whole state get it written back first.
        if matches!(
            kind,
            InstructionKind::Run(_) | InstructionKind::Copy(_) | InstructionKind::Add(_)
        ) {
            st.flush_config();
        }
        if let InstructionKind::StopSignal(sig) = kind {
            // Refused here, with its line, rather than at every `stop` of the image.
            crate::parse::parse_signal_number("STOPSIGNAL", sig).map_err(|e| bad(file, line, e))?;
        }
        if apply_metadata(st, kind, &desc, &original, args_key) {
            return Ok(false);
        }
        match kind {
            InstructionKind::Run(r) => {
                let argv = match r.script() {
                    RunScript::Exec(v) => v,
                    RunScript::Shell(s) => st.env.shell_command(&s),
                    RunScript::File { content, .. } => st.env.shell_command(&content),
                };
                let key = sha(&[&st.key, "RUN", &argv.join("\u{1}"), args_key]);
                if self.cache_hit(st, &key, o)? {
                    return Ok(true);
                }
                let by = format!("RUN {}", argv.join(" "));
                let run_env = st_env_pairs(&st.env);
                let workdir = st.env.workdir().to_string();
                let user = st
                    .state
                    .config
                    .config()
                    .as_ref()
                    .and_then(|c| c.user().clone())
                    .unwrap_or_default();
                self.layer_step(st, &by, |root| {
                    self.run_in(root, run_env, &user, &argv, &workdir, out, step_no)
                })
                .map_err(|e| match e {
                    EngineError::Invalid(m) if m.starts_with("process") => bad(file, line, m),
                    other => other,
                })?;
                st.key = key.clone();
                self.cache_put(&key, &st.state)?;
            }
            InstructionKind::Copy(c) | InstructionKind::Add(c) => {
                let is_add = matches!(kind, InstructionKind::Add(_));
                // Where sources come from: an earlier stage, or an image.
                let from_stage: Option<&StageState> = match from_base {
                    Some(Base::Stage(i)) => Some(done.get(i).ok_or_else(|| {
                        bad(
                            file,
                            line,
                            format!("COPY --from: stage {i} was not built before this one"),
                        )
                    })?),
                    _ => None,
                };
                let from_image: Option<Image> = match (from_base, from_stage) {
                    (Some(Base::Image(f)), None) => Some(self.images()?.resolve(f).map_err(|e| {
                        bad(file, line, format!("COPY --from={f}: not a stage of this Dockerfile nor a local image ({e})"))
                    })?),
                    _ => None,
                };
                let content_key = match (from_stage, &from_image) {
                    (Some(s), _) => sha(&["stage", &s.key]),
                    (None, Some(img)) => sha(&["image", &img.id]),
                    (None, None) => {
                        hash_sources(context, ignore, &c.sources).map_err(|e| bad(file, line, e))?
                    }
                };
                let workdir = st.env.workdir().to_string();
                let by = format!("{} {}", if is_add { "ADD" } else { "COPY" }, desc_short(c));
                // --link: the layer holds only the copied files and does not depend on the
                // layers below, so its cache key leaves the parent out and a hit is
                // stacked onto whatever the stage has become (BuildKit's rebase).
                let link_owner = if c.link {
                    Some(
                        self.link_owner(st, c.chown.as_deref())
                            .map_err(|e| bad(file, line, e))?,
                    )
                } else {
                    None
                };
                let key = match &link_owner {
                    // Build args that matter are already expanded into `desc`.
                    Some(owner) => sha(&[
                        "link",
                        &desc,
                        &content_key,
                        &workdir,
                        owner.as_deref().unwrap_or(""),
                    ]),
                    None => sha(&[&st.key, &desc, &content_key, args_key]),
                };
                if link_owner.is_some() {
                    if self.linked_cache_hit(st, &key, o)? {
                        return Ok(true);
                    }
                } else if self.cache_hit(st, &key, o)? {
                    return Ok(true);
                }
                // The source root: context dir, or a read-only view of a stage/image.
                let view_parent: Option<String> = match (from_stage, &from_image) {
                    (Some(s), _) => {
                        self.ensure_state_layers(&s.state)?;
                        state_chain(&s.state)
                    }
                    (None, Some(img)) => self.ensure_layers(img)?,
                    (None, None) => None,
                };
                let view = if c.from.is_some() {
                    Some(Snapshot::new(self, view_parent.as_deref(), true)?)
                } else {
                    None
                };
                let view_root = match &view {
                    Some(v) => Some(
                        SourceRoot::open(
                            &v.mount,
                            &format!("files of --from={}", c.from.as_deref().unwrap_or_default()),
                        )
                        .map_err(|e| bad(file, line, e))?,
                    ),
                    None => None,
                };
                let src_root = view_root.as_ref().unwrap_or(context);
                let chown = match &link_owner {
                    // Names were resolved against the stage's own /etc/passwd.
                    Some(owner) => owner.clone(),
                    None => c.chown.clone(),
                };
                let chmod = c.chmod.clone();
                let dest = c.dest.clone();
                let sources = c.sources.clone();
                let use_ignore = c.from.is_none();
                let parents = c.parents;
                let copy = |root: &Path| {
                    let spec = crate::copy::CopySpec {
                        sources: &sources,
                        dest: &dest,
                        workdir: &workdir,
                        chown: chown.as_deref(),
                        chmod: chmod.as_deref(),
                        is_add,
                        parents,
                    };
                    crate::copy::copy_into(
                        src_root,
                        if use_ignore { Some(ignore) } else { None },
                        root,
                        &spec,
                    )
                    .map_err(|e| bad(file, line, e))
                };
                if link_owner.is_some() {
                    let layer = self.linked_layer(&by, copy)?;
                    drop(view_root);
                    drop(view);
                    self.cache_put(&key, &layer)?;
                    stack_linked(st, &layer, &key);
                } else {
                    self.layer_step(st, &by, copy)?;
                    drop(view_root);
                    drop(view);
                    st.key = key.clone();
                    self.cache_put(&key, &st.state)?;
                }
            }
            _ => {} // FROM, and what apply_metadata handled
        }
        Ok(false)
    }

    /// A cached value whose layer blobs are all still in the store (rmi may have
    /// collected some); `None` with `--no-cache`, on a miss, or for an unreadable entry.
    fn cache_lookup<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        o: &BuildOptions,
        layers: impl Fn(&T) -> Vec<&Descriptor>,
    ) -> Result<Option<T>, EngineError> {
        if o.no_cache {
            return Ok(None);
        }
        let Some(json) = self.db()?.cache_get(key)? else {
            return Ok(None);
        };
        let Ok(value) = serde_json::from_str::<T>(&json) else {
            return Ok(None);
        };
        for l in layers(&value) {
            if !self.images()?.blob_path(l.digest().as_ref())?.exists() {
                return Ok(None);
            }
        }
        Ok(Some(value))
    }

    fn cache_put(&self, key: &str, value: &impl Serialize) -> Result<(), EngineError> {
        let json = serde_json::to_string(value)
            .map_err(|e| EngineError::Invalid(format!("build cache: {e}")))?;
        self.db()?
            .cache_put(key, &json, &chrono::Utc::now().to_rfc3339())
    }

    /// A cached step: the stage becomes its result.
    fn cache_hit(
        &self,
        st: &mut StageState,
        key: &str,
        o: &BuildOptions,
    ) -> Result<bool, EngineError> {
        let Some(state) = self.cache_lookup(key, o, |s: &StepState| s.layers.iter().collect())?
        else {
            return Ok(false);
        };
        st.state = state;
        st.key = key.to_string();
        Ok(true)
    }

    /// Makes sure the state's layers are unpacked in the storage driver.
    fn ensure_state_layers(&self, state: &StepState) -> Result<Option<String>, EngineError> {
        if state.layers.is_empty() {
            return Ok(None);
        }
        let manifest = oci_spec::image::ImageManifestBuilder::default()
            .schema_version(2u32)
            .config(state.layers[0].clone())
            .layers(state.layers.clone())
            .build()
            .map_err(|e| EngineError::Invalid(format!("build state: {e}")))?;
        let img = Image {
            id: "build-state".into(),
            manifest_digest: String::new(),
            manifest,
            config: state.config.clone(),
            tags: Vec::new(),
            size: 0,
        };
        self.ensure_layers(&img)
    }

    /// Runs `f` on a writable snapshot of the current state, then turns the snapshot's
    /// changes into a new layer of the state.
    fn layer_step(
        &self,
        st: &mut StageState,
        created_by: &str,
        f: impl FnOnce(&Path) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        let parent = self.ensure_state_layers(&st.state)?;
        let mut snap = Snapshot::new(self, parent.as_deref(), false)?;
        f(&snap.mount)?;
        snap.unmount()?;
        let desc = self.snapshot_layer(&snap)?;
        let diff_id = desc.digest().to_string();
        let mut diff_ids = st.state.config.rootfs().diff_ids().clone();
        diff_ids.push(diff_id);
        let chain = chain_ids(&diff_ids).last().cloned().unwrap_or_default();
        match self.plugins.storage()?.commit(&snap.key, &chain) {
            Ok(_) => snap.keep = true,
            Err(e) if e.kind == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(EngineError::plugin("committing a build layer", e)),
        }
        drop(snap);
        st.state.config.rootfs_mut().set_diff_ids(diff_ids);
        st.state.layers.push(desc);
        push_history(&mut st.state.config, created_by, false);
        Ok(())
    }

    /// The changes of an (unmounted) snapshot as an uncompressed layer blob in the store.
    fn snapshot_layer(&self, snap: &Snapshot<'_>) -> Result<Descriptor, EngineError> {
        let storage = self.plugins.storage()?;
        // The diff goes to a temp file, then into the store as an uncompressed layer.
        let tmp = self.build_run_dir().join(format!("{}.tar", snap.key));
        let result = (|| -> Result<Descriptor, EngineError> {
            let mut f = std::fs::File::create(&tmp)
                .map_err(|e| EngineError::io(format!("creating {}", tmp.display()), e))?;
            storage
                .diff(&snap.key, &mut f, source_date_epoch())
                .map_err(|e| EngineError::plugin("computing the layer diff", e))?;
            f.flush()
                .map_err(|e| EngineError::io("writing the layer diff", e))?;
            let mut f = std::fs::File::open(&tmp)
                .map_err(|e| EngineError::io("reading the layer diff", e))?;
            Ok(self
                .images()?
                .write_blob(&mut f, "application/vnd.oci.image.layer.v1.tar")?)
        })();
        let _ = std::fs::remove_file(&tmp);
        result
    }

    /// `COPY --link`: runs `f` on an empty snapshot and returns its files as a layer of
    /// their own. The snapshot is not committed: the layer is unpacked on top of the
    /// stage's layers when a later step needs them.
    fn linked_layer(
        &self,
        created_by: &str,
        f: impl FnOnce(&Path) -> Result<(), EngineError>,
    ) -> Result<LinkedLayer, EngineError> {
        let mut snap = Snapshot::new(self, None, false)?;
        f(&snap.mount)?;
        snap.unmount()?;
        Ok(LinkedLayer {
            layer: self.snapshot_layer(&snap)?,
            created_by: created_by.to_string(),
            created: Some(timestamp()),
        })
    }

    /// `--chown` of a `COPY --link` as numbers: user and group names are looked up in the
    /// stage's current root (read-only view), since the linked layer starts empty.
    fn link_owner(&self, st: &StageState, chown: Option<&str>) -> Result<Option<String>, String> {
        let Some(spec) = chown else {
            return Ok(None);
        };
        let numeric = spec
            .split(':')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if numeric {
            return Ok(Some(spec.to_string()));
        }
        let view = (|| {
            let parent = self.ensure_state_layers(&st.state)?;
            Snapshot::new(self, parent.as_deref(), true)
        })()
        .map_err(|e| format!("--chown={spec}: {e}"))?;
        let (uid, gid, _, _) = berth_runtime::resolve_user(&view.mount, spec)
            .map_err(|e| format!("--chown={spec}: {e}"))?;
        Ok(Some(format!("{uid}:{gid}")))
    }

    /// A cached `COPY --link` layer: stacked onto the stage as it is now.
    fn linked_cache_hit(
        &self,
        st: &mut StageState,
        key: &str,
        o: &BuildOptions,
    ) -> Result<bool, EngineError> {
        let Some(layer) = self.cache_lookup(key, o, |l: &LinkedLayer| vec![&l.layer])? else {
            return Ok(false);
        };
        stack_linked(st, &layer, key);
        Ok(true)
    }

    /// Runs a RUN command in `root` (host network; output streamed with the step number).
    #[allow(clippy::too_many_arguments)]
    fn run_in(
        &self,
        root: &Path,
        env: Vec<String>,
        user: &str,
        argv: &[String],
        workdir: &str,
        out: &mut dyn BuildOutput,
        step_no: usize,
    ) -> Result<(), EngineError> {
        let mut etc = Vec::new();
        for f in ["resolv.conf", "hosts"] {
            let host = PathBuf::from("/etc").join(f);
            if host.exists() {
                etc.push((host, format!("/etc/{f}")));
            }
        }
        // The step's cgroup is named after its snapshot (`run/build/<key>`): the leftovers of
        // a killed build — a RUN process still running, its group — go with the snapshot
        // when `reclaim_debris` takes the key over.
        let id = root
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.starts_with(crate::debris::BUILD_PREFIX))
            .map_or_else(|| format!("build-{}", &new_id()[..12]), str::to_string);
        let spec = berth_runtime::ContainerSpec {
            id,
            rootfs: root.to_path_buf(),
            hostname: "berth-build".into(),
            process: berth_runtime::ProcessSpec {
                args: argv.to_vec(),
                env,
                cwd: workdir.to_string(),
                user: user.to_string(),
                tty: false,
            },
            mounts: Vec::new(),
            etc_files: etc,
            network: berth_runtime::NetworkMode::Host,
            readonly_rootfs: false,
            privileged: false,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            no_new_privileges: true,
            init: false,
            masked_paths: None,
            readonly_paths: None,
            // RUN steps get what a default `berth run` gets.
            seccomp: Some(berth_seccomp::Profile::default_profile()),
            devices: Vec::new(),
            device_rules: Vec::new(),
        };
        // RUN steps get the device access list of a default container (image layers can
        // ship device nodes): a group of their own, removed when the step ends.
        let group = crate::devices::RunGroup::new(&self.plugins, &spec.id)?;
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| EngineError::io("creating a pipe", e.into()))?;
        let w2 = w
            .try_clone()
            .map_err(|e| EngineError::io("duplicating a pipe", e))?;
        let created = berth_runtime::create(
            &spec,
            berth_runtime::Stdio::Fds {
                stdin: None,
                stdout: w,
                stderr: w2,
            },
        )
        .map_err(|e| EngineError::Invalid(format!("starting the RUN command: {e}")))?;
        if let Err(e) = group.add(created.pid()) {
            created.abort();
            return Err(e);
        }
        let started = match created.start() {
            Ok(s) => s,
            Err(berth_runtime::RuntimeError::NotExecutable {
                errno: nix::errno::Errno::E2BIG,
                ..
            }) => {
                return Err(EngineError::Invalid(format!(
                    "process \"{}\" could not start: {}",
                    shown_command(&argv.join(" ")),
                    too_long(argv, &spec.process.env)
                )))
            }
            Err(e) => {
                return Err(EngineError::Invalid(format!(
                    "process \"{}\" did not complete successfully: {e}",
                    shown_command(&argv.join(" "))
                )))
            }
        };
        let t0 = Instant::now();
        let mut reader = std::fs::File::from(r);
        let mut buf = [0u8; 8192];
        let mut pending = Vec::new();
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            pending.extend_from_slice(&buf[..n]);
            while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=pos).collect();
                out.line(&format!(
                    "#{step_no} {:.3} {}",
                    t0.elapsed().as_secs_f64(),
                    String::from_utf8_lossy(&line[..line.len() - 1])
                ));
            }
        }
        if !pending.is_empty() {
            out.line(&format!(
                "#{step_no} {:.3} {}",
                t0.elapsed().as_secs_f64(),
                String::from_utf8_lossy(&pending)
            ));
        }
        let code = started
            .wait()
            .map_err(|e| EngineError::Invalid(format!("waiting for the RUN command: {e}")))?
            .code();
        if code != 0 {
            return Err(EngineError::Invalid(format!(
                "process \"{}\" did not complete successfully: exit code: {code}",
                shown_command(&argv.join(" "))
            )));
        }
        Ok(())
    }
}

/// A step that only changes the image config (or the cache key): applied to the stage's
/// working config. False for the steps that make layers (and FROM).
fn apply_metadata(
    st: &mut StageState,
    kind: &InstructionKind,
    desc: &str,
    original: &str,
    args_key: &str,
) -> bool {
    let meta = |st: &mut StageState| {
        push_history(&mut st.state.config, original, true);
        st.key = sha(&[&st.key, desc, args_key]);
    };
    match kind {
        InstructionKind::Env(_) => {
            let env = st.env.image_env();
            st.config_mut().set_env(Some(env));
            meta(st);
        }
        InstructionKind::Workdir(_) => {
            let w = st.env.workdir().to_string();
            st.config_mut().set_working_dir(Some(w));
            meta(st);
        }
        InstructionKind::User(u) => {
            st.config_mut().set_user(Some(u.clone()));
            meta(st);
        }
        InstructionKind::Cmd(c) => {
            let v = command_vec(&st.env, c);
            st.config_mut().set_cmd(Some(v));
            st.cmd_set = true;
            meta(st);
        }
        InstructionKind::Entrypoint(c) => {
            let v = command_vec(&st.env, c);
            let keep_cmd = st.cmd_set;
            let cfg = st.config_mut();
            cfg.set_entrypoint(Some(v));
            // Docker: setting ENTRYPOINT resets a CMD inherited from the base, not one
            // written earlier in this stage.
            if !keep_cmd {
                cfg.set_cmd(None);
            }
            meta(st);
        }
        InstructionKind::Expose(ports) => {
            let cfg = st.config_mut();
            let mut e = cfg.exposed_ports().clone().unwrap_or_default();
            for p in ports {
                let p = if p.contains('/') {
                    p.clone()
                } else {
                    format!("{p}/tcp")
                };
                if !e.contains(&p) {
                    e.push(p);
                }
            }
            cfg.set_exposed_ports(Some(e));
            meta(st);
        }
        InstructionKind::Volume(v) => {
            let cfg = st.config_mut();
            let mut vs = cfg.volumes().clone().unwrap_or_default();
            for p in v {
                if !vs.contains(p) {
                    vs.push(p.clone());
                }
            }
            cfg.set_volumes(Some(vs));
            meta(st);
        }
        InstructionKind::Label(kvs) => {
            let l = st
                .config_mut()
                .labels_mut()
                .get_or_insert_with(Default::default);
            for kv in kvs {
                l.insert(kv.key.clone(), kv.value.clone());
            }
            meta(st);
        }
        InstructionKind::Maintainer(m) => {
            let l = st
                .config_mut()
                .labels_mut()
                .get_or_insert_with(Default::default);
            l.insert("maintainer".into(), m.clone());
            meta(st);
        }
        InstructionKind::StopSignal(s) => {
            st.config_mut().set_stop_signal(Some(s.clone()));
            meta(st);
        }
        InstructionKind::Arg(_) => {
            st.key = sha(&[&st.key, desc, args_key]);
        }
        InstructionKind::Shell(s) => {
            // Kept in the image (Docker's `config.Shell`) for the images built on it.
            st.state.extras.shell = Some(s.clone());
            meta(st);
        }
        InstructionKind::Healthcheck(h) => {
            st.state.extras.healthcheck = Some(health_config(h));
            meta(st);
        }
        InstructionKind::Onbuild { expression, .. } => {
            st.state.extras.on_build.push(expression.clone());
            meta(st);
        }
        _ => return false,
    }
    true
}

fn command_vec(env: &StageEnv, c: &ShellOrExec) -> Vec<String> {
    match c {
        ShellOrExec::Exec(v) => v.clone(),
        ShellOrExec::Shell(s) => env.shell_command(s),
    }
}

/// A command or instruction as progress lines and errors show it: a long one (a 10 MB
/// RUN line) is cut to its start and its size.
fn shown_command(s: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.into();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len()).into()
}

/// Why `execve` said E2BIG, with the sizes that count.
fn too_long(argv: &[String], env: &[String]) -> String {
    // The kernel's limit for one argument or environment string (MAX_ARG_STRLEN).
    const MAX_ARG_STRLEN: usize = 32 * 4096;
    let total: usize = argv.iter().chain(env).map(|a| a.len() + 1).sum();
    let longest = argv
        .iter()
        .chain(env)
        .map(|a| a.len() + 1)
        .max()
        .unwrap_or(0);
    let all = match nix::unistd::sysconf(nix::unistd::SysconfVar::ARG_MAX) {
        Ok(Some(n)) => format!("{n} bytes"),
        _ => "a quarter of the stack size limit".to_string(),
    };
    format!(
        "command line too long: {total} bytes of arguments and environment, the longest \
         string {longest} bytes; the kernel's limit is {MAX_ARG_STRLEN} bytes for one string \
         and {all} in all (put a long script in a file, COPY it and RUN the file)"
    )
}

fn st_env_pairs(env: &StageEnv) -> Vec<String> {
    env.run_env()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

fn state_chain(state: &StepState) -> Option<String> {
    chain_ids(state.config.rootfs().diff_ids()).last().cloned()
}

/// A history entry. A layer's is dated now (and keeps that date in the cache); a
/// metadata step's is left undated (unless SOURCE_DATE_EPOCH is set) and dated at export
/// by [`date_history`], so that a rebuild from the cache gives the same config bytes.
fn push_history(config: &mut ImageConfiguration, created_by: &str, empty: bool) {
    let created = if empty && source_date_epoch().is_none() {
        None
    } else {
        Some(timestamp())
    };
    push_history_at(config, created_by, empty, created);
}

fn push_history_at(
    config: &mut ImageConfiguration,
    created_by: &str,
    empty: bool,
    created: Option<String>,
) {
    let mut b = HistoryBuilder::default()
        .created_by(created_by.to_string())
        .comment("berth build".to_string());
    if let Some(c) = created {
        b = b.created(c);
    }
    if empty {
        b = b.empty_layer(true);
    }
    if let Ok(h) = b.build() {
        config.history_mut().push(h);
    }
}

/// Dates the undated (metadata) history entries and the image as BuildKit's image
/// exporter does: each undated entry takes the date of the last layer before it, or for
/// those before the first new layer, the date of that layer (not of the base image's
/// layers); the image is dated like its last history entry. Everything comes from the
/// layers' dates, so a fully cached rebuild gives the same config and image ID. With
/// SOURCE_DATE_EPOCH the image is dated by it; with no dated entry at all (scratch and
/// metadata only) it has no date, as in BuildKit.
fn date_history(config: &mut ImageConfiguration) {
    let history = config.history_mut();
    // The first date after an undated entry, else the last date.
    let mut fill: Option<String> = None;
    let mut undated = false;
    for h in history.iter() {
        match h.created() {
            Some(c) => {
                fill = Some(c.clone());
                if undated {
                    break;
                }
            }
            None => undated = true,
        }
    }
    let mut undated = false;
    for h in history.iter_mut() {
        match h.created() {
            Some(c) => {
                if undated {
                    fill = Some(c.clone());
                }
            }
            None => {
                undated = true;
                h.set_created(fill.clone());
            }
        }
    }
    let created = if source_date_epoch().is_some() {
        Some(timestamp())
    } else {
        history.iter().rev().find_map(|h| h.created().clone())
    };
    config.set_created(created);
}

fn desc_short(c: &berth_dockerfile::Copy) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(f) = &c.from {
        parts.push(format!("--from={f}"));
    }
    for s in &c.sources {
        match s {
            CopySource::Path(p) => parts.push(p.clone()),
            CopySource::Heredoc(h) => parts.push(format!("<<{}", h.name)),
        }
    }
    parts.push(c.dest.clone());
    parts.join(" ")
}

/// Content hash of COPY sources in the context (paths, modes, link targets, contents).
fn hash_sources(
    context: &SourceRoot,
    ignore: &DockerIgnore,
    sources: &[CopySource],
) -> Result<String, String> {
    let mut h = Sha256::new();
    for s in sources {
        match s {
            CopySource::Heredoc(d) => {
                h.update(b"heredoc\0");
                h.update(d.content.as_bytes());
            }
            CopySource::Path(p) => {
                for src in crate::copy::expand_sources(context, p, Some(ignore))? {
                    crate::copy::walk(&src, Some(ignore), &mut |rel, e| {
                        h.update(rel.as_bytes());
                        h.update(e.mode().to_le_bytes());
                        match e.kind() {
                            FileType::Symlink => {
                                h.update(e.read_link()?.as_os_str().as_encoded_bytes());
                            }
                            FileType::RegularFile => {
                                let mut f = e.open()?;
                                std::io::copy(&mut f, &mut h).map_err(|x| format!("{rel}: {x}"))?;
                            }
                            _ => {}
                        }
                        Ok(())
                    })?;
                }
            }
        }
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The instructions of the first stage of `text` and a stage state on a base image
    /// whose config is `base`.
    fn stage_of(
        text: &str,
        mut base: ImageConfiguration,
    ) -> (Vec<berth_dockerfile::Instruction>, StageState) {
        let df = Dockerfile::parse("Dockerfile", text).unwrap();
        let plan = plan_with(&df, &PlanOptions::default()).unwrap();
        let stage = &plan.stages[0];
        base.set_history(Vec::new());
        let c = base.config().clone().unwrap_or_default();
        let env = plan.stage_env(stage).with_base(
            &c.env().clone().unwrap_or_default(),
            c.working_dir().as_deref(),
            None,
        );
        let st = StageState {
            state: StepState {
                config: base,
                layers: Vec::new(),
                extras: ConfigExtras::default(),
            },
            env,
            key: sha(&["scratch"]),
            pending: None,
            config_copies: 0,
            cmd_set: false,
        };
        (stage.instructions.clone(), st)
    }

    /// Runs the metadata steps of `text` on `base`; returns the resulting runtime config.
    fn metadata_result(text: &str, base: ImageConfiguration) -> Config {
        let (instructions, mut st) = stage_of(text, base);
        for ins in &instructions {
            let kind = st.env.apply(ins).unwrap();
            assert!(apply_metadata(&mut st, &kind, "d", &ins.original, ""));
        }
        st.flush_config();
        st.state.config.config().clone().unwrap_or_default()
    }

    /// A base without PATH (scratch here) gets BuildKit's default, which ENV can extend.
    #[test]
    fn a_base_without_path_gets_the_default_one() {
        let mut state = StepState {
            config: ImageConfiguration::default(),
            layers: Vec::new(),
            extras: ConfigExtras::default(),
        };
        let mut env = Vec::new();
        default_path(&mut state, &mut env);
        let want = format!("PATH={DEFAULT_PATH}");
        assert_eq!(env, vec![want.clone()]);
        let mut base = state.config.clone();
        assert_eq!(
            base.config().as_ref().unwrap().env().as_deref(),
            Some(&[want][..])
        );
        let c = metadata_result("FROM scratch\nENV PATH=/opt/bin:$PATH\n", base.clone());
        assert_eq!(
            c.env().as_deref(),
            Some(&[format!("PATH=/opt/bin:{DEFAULT_PATH}")][..])
        );
        // A PATH of the base stays as it is.
        let mut c = Config::default();
        c.set_env(Some(vec!["A=1".into(), "PATH=/x".into()]));
        base.set_config(Some(c));
        let mut state = StepState {
            config: base,
            layers: Vec::new(),
            extras: ConfigExtras::default(),
        };
        let mut env = vec!["A=1".to_string(), "PATH=/x".to_string()];
        default_path(&mut state, &mut env);
        assert_eq!(env.len(), 2);
        assert_eq!(
            state
                .config
                .config()
                .as_ref()
                .unwrap()
                .env()
                .as_ref()
                .unwrap()[1],
            "PATH=/x"
        );
    }

    /// Docker's `cmdSet`: ENTRYPOINT resets the base's CMD but keeps one written before it
    /// in the same stage.
    #[test]
    fn entrypoint_keeps_a_cmd_of_the_same_stage() {
        let c = metadata_result(
            "FROM scratch\nCMD [\"a\"]\nENTRYPOINT [\"b\"]\n",
            ImageConfiguration::default(),
        );
        assert_eq!(c.cmd().as_deref(), Some(&["a".to_string()][..]));
        assert_eq!(c.entrypoint().as_deref(), Some(&["b".to_string()][..]));
        let mut base = ImageConfiguration::default();
        let mut bc = Config::default();
        bc.set_cmd(Some(vec!["base".into()]));
        base.set_config(Some(bc));
        let c = metadata_result("FROM base\nENTRYPOINT [\"b\"]\n", base.clone());
        assert_eq!(c.cmd(), &None);
        let c = metadata_result("FROM base\nENTRYPOINT [\"b\"]\nCMD [\"c\"]\n", base);
        assert_eq!(c.cmd().as_deref(), Some(&["c".to_string()][..]));
    }

    /// N metadata steps copy the config once, not N times (each copy holds every label
    /// so far: per-step copies made 20k LABELs take a minute).
    #[test]
    fn metadata_steps_do_not_copy_the_config_per_step() {
        let n = 2000;
        let mut text = String::from("FROM scratch\n");
        for i in 0..n {
            text.push_str(&format!("LABEL l{i}=v{i}\n"));
        }
        text.push_str("ENV A=1\nEXPOSE 80\nUSER 1\nMAINTAINER me\n");
        let (instructions, mut st) = stage_of(&text, ImageConfiguration::default());
        for ins in &instructions {
            let kind = st.env.apply(ins).unwrap();
            assert!(apply_metadata(&mut st, &kind, "d", &ins.original, ""));
        }
        assert_eq!(st.config_copies, 1);
        st.flush_config();
        let c = st.state.config.config().clone().unwrap();
        assert_eq!(c.labels().as_ref().unwrap().len(), n + 1);
        assert_eq!(c.user().as_deref(), Some("1"));
        assert_eq!(st.state.config.history().len(), n + 4);
        // After a write-back (as before a RUN or COPY), the next run copies once more.
        let kind = st.env.apply(&instructions[0]).unwrap();
        apply_metadata(&mut st, &kind, "d", "LABEL again", "");
        assert_eq!(st.config_copies, 2);
    }

    #[test]
    fn long_commands_are_shown_cut_with_their_size() {
        assert_eq!(shown_command("RUN echo hi"), "RUN echo hi");
        let long = format!("RUN echo {}", "é".repeat(5_000_000));
        let shown = shown_command(&long);
        assert!(shown.len() < 300, "{}", shown.len());
        assert!(shown.starts_with("RUN echo é") && shown.ends_with("(10000009 bytes)"));
        let argv = vec!["/bin/sh".to_string(), "-c".to_string(), "x".repeat(200_000)];
        let m = too_long(&argv, &["PATH=/bin".to_string()]);
        assert!(
            m.starts_with("command line too long: 200022 bytes")
                && m.contains("the longest string 200001 bytes")
                && m.contains("131072 bytes for one string"),
            "{m}"
        );
    }
}
