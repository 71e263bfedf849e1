//! Build planning: which stages a target needs, in which order, on which base.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::env::{StageEnv, PROXY_ARGS};
use crate::instruction::*;
use crate::parser::{suggest, Dockerfile, Warning};
use crate::Error;

/// What a stage starts from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base {
    /// `FROM scratch`: an empty file system.
    Scratch,
    /// An earlier stage (by index).
    Stage(usize),
    /// An image reference (as written after expansion, e.g. `node:20`).
    Image(String),
}

/// A stage selected for the build.
#[derive(Clone, Debug)]
pub struct PlannedStage {
    /// Index in the Dockerfile.
    pub index: usize,
    /// `AS` name.
    pub name: Option<String>,
    /// 1-based line of the FROM.
    pub line: usize,
    /// The base after expansion with the global ARGs.
    pub base: Base,
    /// `--platform` after expansion.
    pub platform: Option<String>,
    /// The instructions after FROM, unexpanded; run them through [`StageEnv::apply`].
    pub instructions: Vec<Instruction>,
    /// Stages this one needs (base, `COPY --from`, `RUN --mount=from=`), ascending.
    pub depends_on: Vec<usize>,
}

impl PlannedStage {
    /// The name, or the index as a string.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.index.to_string())
    }
}

/// Options of [`plan_with`].
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// `--target`: a stage name; the last stage when `None`.
    pub target: Option<String>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// Target platform `os/arch[/variant]`; the host's when `None`.
    pub platform: Option<String>,
}

/// The result of planning.
#[derive(Clone, Debug)]
pub struct BuildPlan {
    /// File name for messages.
    pub file: String,
    /// Escape character of the Dockerfile.
    pub escape: char,
    /// Needed stages in dependency order; the target is last.
    pub stages: Vec<PlannedStage>,
    /// Resolved global ARGs (plus the automatic platform args).
    pub global_args: BTreeMap<String, Option<String>>,
    /// `--build-arg`s that no ARG of the build declares (Docker warns about these).
    pub unused_build_args: Vec<String>,
    /// Non-fatal findings of the parser and the planner.
    pub warnings: Vec<Warning>,
    build_args: Arc<BTreeMap<String, String>>,
    globals: Arc<BTreeMap<String, Option<String>>>,
    stage_names: Vec<Option<String>>,
}

impl BuildPlan {
    /// The target stage.
    pub fn target(&self) -> Option<&PlannedStage> {
        self.stages.last()
    }

    /// A planned stage by Dockerfile index.
    pub fn stage(&self, index: usize) -> Option<&PlannedStage> {
        self.stages.iter().find(|s| s.index == index)
    }

    /// A fresh environment for executing `stage`; seed it with the base's
    /// config through [`StageEnv::with_base`].
    pub fn stage_env(&self, stage: &PlannedStage) -> StageEnv {
        let _ = stage;
        StageEnv::new(
            &self.file,
            self.escape,
            self.build_args.clone(),
            self.globals.clone(),
        )
    }

    /// Resolves an expanded `COPY --from` / `--mount from=` value used in
    /// stage `current` at `line`: an earlier stage, or an image reference.
    pub fn resolve_from(
        &self,
        current: usize,
        value: &str,
        line: usize,
        what: &str,
    ) -> Result<Base, Error> {
        resolve_ref(
            &self.file,
            &self.stage_names,
            current,
            value,
            line,
            what,
            &mut Vec::new(),
        )
    }
}

/// Plans the build of `target` (the last stage when `None`) with `build_args`
/// for the host platform.
pub fn plan(
    df: &Dockerfile,
    target: Option<&str>,
    build_args: &BTreeMap<String, String>,
) -> Result<BuildPlan, Error> {
    plan_with(
        df,
        &PlanOptions {
            target: target.map(str::to_string),
            build_args: build_args.clone(),
            platform: None,
        },
    )
}

fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "arm" => "arm/v7",
        other => other,
    };
    format!("linux/{arch}")
}

fn platform_args(platform: &str) -> Vec<(String, String)> {
    let host = host_platform();
    let mut out = Vec::new();
    for (prefix, p) in [("BUILD", host.as_str()), ("TARGET", platform)] {
        let mut parts = p.splitn(3, '/');
        let os = parts.next().unwrap_or("linux");
        let arch = parts.next().unwrap_or("");
        let variant = parts.next().unwrap_or("");
        out.push((format!("{prefix}PLATFORM"), p.to_string()));
        out.push((format!("{prefix}OS"), os.to_string()));
        out.push((format!("{prefix}ARCH"), arch.to_string()));
        out.push((format!("{prefix}VARIANT"), variant.to_string()));
    }
    out
}

/// [`plan`] with all options.
pub fn plan_with(df: &Dockerfile, opts: &PlanOptions) -> Result<BuildPlan, Error> {
    let file = df.file.clone();
    let escape = df.directives.escape;
    let build_args = Arc::new(opts.build_args.clone());
    let platform = opts.platform.clone().unwrap_or_else(host_platform);

    // Global scope: automatic platform args, then the ARGs before the first FROM.
    let auto: BTreeMap<String, Option<String>> = platform_args(&platform)
        .into_iter()
        .map(|(k, v)| (k, Some(v)))
        .collect();
    let mut genv = StageEnv::new(&file, escape, build_args.clone(), Arc::new(auto.clone()));
    let auto_decl = Instruction {
        line: 0,
        end_line: 0,
        original: String::new(),
        kind: InstructionKind::Arg(
            auto.keys()
                .map(|k| ArgDecl {
                    name: k.clone(),
                    default: None,
                })
                .collect(),
        ),
    };
    genv.apply(&auto_decl)?;
    for ins in &df.global_args {
        genv.apply(ins)?;
    }
    let globals: BTreeMap<String, Option<String>> = genv.args().iter().cloned().collect();
    let globals = Arc::new(globals);
    let stage_names: Vec<Option<String>> = df.stages.iter().map(|s| s.name.clone()).collect();

    // Target.
    let target = match &opts.target {
        None => df.stages.len() - 1,
        Some(t) => {
            let lower = t.to_ascii_lowercase();
            match stage_names
                .iter()
                .position(|n| n.as_deref() == Some(lower.as_str()))
            {
                Some(i) => i,
                None => {
                    let names: Vec<String> =
                        df.stages.iter().filter_map(|s| s.name.clone()).collect();
                    let hint = suggest(&lower, names.iter().map(String::as_str))
                        .map(|s| format!(" (did you mean {s}?)"))
                        .unwrap_or_default();
                    let list = if names.is_empty() {
                        "the Dockerfile has no named stages".to_string()
                    } else {
                        format!("named stages: {}", names.join(", "))
                    };
                    return Err(Error::File {
                        file,
                        message: format!("target stage \"{t}\" could not be found{hint}; {list}"),
                    });
                }
            }
        }
    };

    // Resolve stages reachable from the target.
    let mut warnings = df.warnings.clone();
    let mut planned: BTreeMap<usize, PlannedStage> = BTreeMap::new();
    let mut todo = vec![target];
    while let Some(si) = todo.pop() {
        if planned.contains_key(&si) {
            continue;
        }
        let stage = &df.stages[si];
        let line = stage.from.line;
        let gx = |w: &str| {
            genv.expand(w).map_err(|e| Error::At {
                file: file.clone(),
                line,
                message: format!("FROM: {e}"),
            })
        };
        let image = gx(stage.base())?;
        let platform = stage.platform().map(gx).transpose()?;
        let mut deps = BTreeSet::new();
        let base = if image.is_empty() {
            return Err(Error::At {
                file: file.clone(),
                line,
                message: format!("FROM: base name ({}) should not be blank", stage.base()),
            });
        } else if image == "scratch" {
            Base::Scratch
        } else {
            let lower = image.to_ascii_lowercase();
            match stage_names.iter().position(|n| n.as_deref() == Some(lower.as_str())) {
                Some(j) if j < si => Base::Stage(j),
                Some(j) if j == si => {
                    return Err(Error::At {
                        file: file.clone(),
                        line,
                        message: format!(
                            "FROM {image}: circular reference: stage \"{lower}\" cannot use itself as its base (rename the stage to use the image {image})"
                        ),
                    })
                }
                Some(j) => {
                    return Err(Error::At {
                        file: file.clone(),
                        line,
                        message: format!(
                            "FROM {image}: stage \"{lower}\" is defined later (line {}); a stage can only build on earlier stages",
                            df.stages[j].from.line
                        ),
                    })
                }
                None => {
                    check_image_ref(&image).map_err(|m| Error::At {
                        file: file.clone(),
                        line,
                        message: format!("FROM: invalid image reference \"{image}\": {m}"),
                    })?;
                    Base::Image(image)
                }
            }
        };
        if let Base::Stage(j) = base {
            deps.insert(j);
        }
        // Walk the body with a simulated environment to resolve --from values.
        let mut env = StageEnv::new(&file, escape, build_args.clone(), globals.clone());
        for ins in &stage.instructions {
            let mut refs: Vec<(String, &str)> = Vec::new();
            match &ins.kind {
                InstructionKind::Arg(_) | InstructionKind::Env(_) => {
                    env.apply(ins)?;
                }
                InstructionKind::Copy(c) => {
                    if let Some(f) = &c.from {
                        refs.push((f.clone(), "COPY --from"));
                    }
                }
                InstructionKind::Run(r) => {
                    for m in &r.mounts {
                        if let Some(f) = &m.from {
                            refs.push((f.clone(), "RUN --mount from"));
                        }
                    }
                }
                _ => {}
            }
            for (raw, what) in refs {
                let value = env.expand(&raw).map_err(|e| Error::At {
                    file: file.clone(),
                    line: ins.line,
                    message: format!("{what}={raw}: {e}"),
                })?;
                if let Base::Stage(j) = resolve_ref(
                    &file,
                    &stage_names,
                    si,
                    &value,
                    ins.line,
                    what,
                    &mut warnings,
                )? {
                    deps.insert(j);
                }
            }
        }
        todo.extend(deps.iter().copied());
        planned.insert(
            si,
            PlannedStage {
                index: si,
                name: stage.name.clone(),
                line,
                base,
                platform,
                instructions: stage.instructions.clone(),
                depends_on: deps.into_iter().collect(),
            },
        );
    }

    // Unused build args.
    let mut declared: BTreeSet<&str> = globals.keys().map(String::as_str).collect();
    declared.extend(PROXY_ARGS.iter().copied());
    for s in planned.values() {
        for ins in &s.instructions {
            if let InstructionKind::Arg(d) = &ins.kind {
                declared.extend(d.iter().map(|d| d.name.as_str()));
            }
        }
    }
    let unused_build_args = opts
        .build_args
        .keys()
        .filter(|k| !declared.contains(k.as_str()))
        .cloned()
        .collect();

    Ok(BuildPlan {
        file,
        escape,
        // Every dependency has a smaller index, so ascending order is a valid build order.
        stages: planned.into_values().collect(),
        global_args: (*globals).clone(),
        unused_build_args,
        warnings,
        build_args,
        globals,
        stage_names,
    })
}

fn check_image_ref(image: &str) -> Result<(), String> {
    if image.chars().any(|c| c.is_ascii_uppercase()) {
        let name = image.split(['@']).next().unwrap_or(image);
        let repo = match name.rfind(':') {
            Some(i) if !name[i..].contains('/') => &name[..i],
            _ => name,
        };
        let path = match repo.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => rest,
            _ => repo,
        };
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err("repository name must be lowercase".into());
        }
    }
    berth_reference::parse(image)
        .map(|_| ())
        .map_err(str::to_string)
}

fn resolve_ref(
    file: &str,
    names: &[Option<String>],
    current: usize,
    value: &str,
    line: usize,
    what: &str,
    warnings: &mut Vec<Warning>,
) -> Result<Base, Error> {
    let at = |message: String| Error::At {
        file: file.to_string(),
        line,
        message,
    };
    if let Ok(n) = value.parse::<usize>() {
        return if n < current {
            Ok(Base::Stage(n))
        } else if n == current {
            Err(at(format!(
                "{what}={value}: circular reference: a stage cannot use itself"
            )))
        } else if n < names.len() {
            Err(at(format!(
                "{what}={value}: stage {n} is defined later; a stage can only use earlier stages"
            )))
        } else {
            Err(at(format!(
                "{what}={value}: there is no stage {n} (the Dockerfile has {} stages)",
                names.len()
            )))
        };
    }
    let lower = value.to_ascii_lowercase();
    match names.iter().position(|n| n.as_deref() == Some(lower.as_str())) {
        Some(j) if j < current => Ok(Base::Stage(j)),
        Some(j) if j == current => Err(at(format!(
            "{what}={value}: circular reference: stage \"{lower}\" cannot use itself"
        ))),
        Some(_) => Err(at(format!(
            "{what}={value}: stage \"{lower}\" is defined later; a stage can only use earlier stages"
        ))),
        None => {
            let earlier = names[..current.min(names.len())].iter().flatten().map(String::as_str);
            let hint = suggest(&lower, earlier);
            if value.is_empty() {
                return Err(at(format!("{what}: empty value")));
            }
            if let Err(m) = check_image_ref(value) {
                let h = hint.map(|s| format!(" (did you mean {s}?)")).unwrap_or_default();
                return Err(at(format!(
                    "{what}={value}: \"{value}\" is neither a build stage nor a valid image reference ({m}){h}"
                )));
            }
            if let Some(s) = hint {
                warnings.push(Warning {
                    line,
                    message: format!(
                        "{what}={value}: no stage has this name, so it is used as an image (did you mean stage {s}?)"
                    ),
                });
            }
            Ok(Base::Image(value.to_string()))
        }
    }
}
