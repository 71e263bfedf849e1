//! Image commands: `images`, `import`, `load`, `save`, `tag`, `rmi`, `history`,
//! `image inspect|ls|rm|prune`.

use std::{collections::HashSet, io::Write, path::PathBuf};

use anyhow::{bail, Context};
use berth_engine::{
    image_api::{reference_matches, ListImagesOptions},
    Engine, Filters,
};
use berth_image::Reference;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::{format::Format, table::Table, GlobalOpts};

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  berth images\n  berth images -q\n  berth images --format json"
)]
pub struct ImagesArgs {
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Show all images (berth has no intermediate images; same as default)
    #[arg(short, long)]
    pub all: bool,
    /// Output: table, json (one object per line), or a Go template ('{{.Repository}}:{{.Tag}}')
    #[arg(long)]
    pub format: Option<String>,
    /// Filter (KEY=VALUE): dangling, reference, before, since, label
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only images of this repository[:tag]
    pub repository: Option<String>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  berth import rootfs.tar myimage:1.0\n  cat rootfs.tar.gz | berth import - myimage\n  berth import -c 'CMD [\"/bin/sh\"]' -c 'ENV A=1' rootfs.tar myimage"
)]
pub struct ImportArgs {
    /// Rootfs tarball (tar, tar.gz, tar.zst) or - for standard input
    pub file: String,
    /// Name for the image: NAME[:TAG]
    pub reference: Option<String>,
    /// Dockerfile instruction to apply (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL)
    #[arg(short = 'c', long = "change")]
    pub changes: Vec<String>,
    /// Set a commit message (ignored; kept for Docker compatibility)
    #[arg(short, long)]
    pub message: Option<String>,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  berth load -i busybox.tar\n  berth load < image.oci.tar.gz")]
pub struct LoadArgs {
    /// Archive to read (docker-archive or OCI archive, gzip or not) [default: stdin]
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
#[command(after_help = "Example:\n  berth save -o site.tar static-site:latest")]
pub struct SaveArgs {
    /// Write to a file instead of stdout
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Images to save
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
#[command(after_help = "Example:\n  berth tag static-site:latest static-site:v1")]
pub struct TagArgs {
    pub source: String,
    pub target: String,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  berth rmi static-site:v1\n  berth rmi -f 3f2a9c1d2b7e")]
pub struct RmiArgs {
    /// Remove even if containers use it
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
#[command(after_help = "Example:\n  berth history static-site")]
pub struct HistoryArgs {
    pub image: String,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format: table or json
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format the output with a Go template (e.g. '{{json .Config.Env}}')
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  berth image prune\n  berth image prune -a")]
pub struct PruneArgs {
    /// Remove all images not used by a container, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt (berth never prompts; accepted for compatibility)
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Subcommand, Debug)]
pub enum ImageCmd {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Show images as JSON
    Inspect(InspectArgs),
    /// Remove images
    Rm(RmiArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Create a tag TARGET that refers to SOURCE
    Tag(TagArgs),
    /// Import a rootfs tarball as an image
    Import(ImportArgs),
    /// Load images from an archive
    Load(LoadArgs),
    /// Save images to an archive
    Save(SaveArgs),
}

/// `4.26MB`, `143kB`, like Docker (decimal units, three significant digits).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let mut s = format!("{v:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[u])
}

fn ago(created: Option<String>) -> String {
    created
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(&c).ok())
        .map(|t| {
            let d = chrono::Utc::now().signed_duration_since(t.with_timezone(&chrono::Utc));
            format!("{} ago", berth_engine::container::human_duration(d))
        })
        .unwrap_or_else(|| "N/A".into())
}

/// Docker's field names of `images --format` and their column headers.
const IMAGE_FIELDS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
    ("Containers", "CONTAINERS"),
];

pub fn images(g: &GlobalOpts, a: ImagesArgs) -> anyhow::Result<u8> {
    let engine = g.engine()?;
    let format = Format::parse(a.format.as_deref())?;
    let mut filters = Filters::from_cli(&a.filter)?;
    if let Some(r) = &a.repository {
        Reference::parse(r)?;
        filters.add("reference", r.clone());
    }
    let list = engine.list_images(&ListImagesOptions {
        all: a.all,
        filters: filters.clone(),
    })?;
    let mut t = if a.digests {
        Table::new(&["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"])
    } else {
        Table::new(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"])
    };
    let mut seen = HashSet::new();
    let mut items = Vec::new();
    let now = chrono::Utc::now();
    let refs = filters.get("reference");
    for img in &list {
        let id = if a.no_trunc {
            img.id.clone()
        } else {
            img.id
                .strip_prefix("sha256:")
                .unwrap_or(&img.id)
                .chars()
                .take(12)
                .collect()
        };
        // One row per tag (only the tags a reference filter asked for), `<none>` when
        // there is none.
        let mut rows: Vec<(String, String)> = img
            .repo_tags
            .iter()
            .filter(|t| refs.is_empty() || refs.iter().any(|r| reference_matches(r, t)))
            .map(|t| match t.rfind(':') {
                Some(i) if !t[i..].contains('/') => (t[..i].to_string(), t[i + 1..].to_string()),
                _ => (t.clone(), "<none>".to_string()),
            })
            .collect();
        if img.repo_tags.is_empty() {
            rows.push(("<none>".into(), "<none>".into()));
        }
        let digest = img
            .repo_digests
            .first()
            .and_then(|d| d.split_once('@'))
            .map(|(_, d)| d.to_string())
            .unwrap_or_else(|| "<none>".into());
        let created = chrono::DateTime::from_timestamp(img.created, 0)
            .map(|t| {
                format!(
                    "{} ago",
                    berth_engine::container::human_duration(now.signed_duration_since(t))
                )
            })
            .unwrap_or_else(|| "N/A".into());
        let size = human_size(img.size.max(0) as u64);
        for (repo, tag) in rows {
            if a.quiet {
                if seen.insert(id.clone()) {
                    println!("{id}");
                }
                continue;
            }
            if !format.is_table() {
                items.push(json!({
                    "Repository": repo, "Tag": tag, "ID": id, "Digest": digest,
                    "CreatedAt": crate::cmd::container::docker_time(img.created),
                    "CreatedSince": created, "Size": size, "VirtualSize": size,
                    "SharedSize": "N/A", "UniqueSize": "N/A",
                    "Containers": img.containers.to_string(),
                }));
                continue;
            }
            let mut row = vec![repo, tag];
            if a.digests {
                row.push(digest.clone());
            }
            row.extend([id.clone(), created.clone(), size.clone()]);
            t.row(row);
        }
    }
    if a.quiet {
        return Ok(0);
    }
    if format.is_table() {
        t.print();
    } else {
        format.print(&items, IMAGE_FIELDS)?;
    }
    Ok(0)
}

fn progress(engine: &Engine) {
    let _ = engine.progress.set(berth_image::terminal_progress());
}

pub fn import(g: &GlobalOpts, a: ImportArgs) -> anyhow::Result<u8> {
    let engine = g.engine()?;
    progress(&engine);
    let reference = a.reference.as_deref().map(Reference::parse).transpose()?;
    let img = if a.file == "-" {
        let stdin = std::io::stdin();
        let mut lock = stdin.lock();
        engine
            .images()?
            .import(&mut lock, reference.as_ref(), &a.changes)?
    } else {
        let mut f = std::fs::File::open(&a.file).with_context(|| format!("opening {}", a.file))?;
        engine
            .images()?
            .import(&mut f, reference.as_ref(), &a.changes)?
    };
    let name = reference.map(|r| r.familiar()).unwrap_or_default();
    engine.emit_named("image", "import", &img.id, &name, &[]);
    println!("{}", img.id);
    Ok(0)
}

pub fn load(g: &GlobalOpts, a: LoadArgs) -> anyhow::Result<u8> {
    let engine = g.engine()?;
    if !a.quiet {
        progress(&engine);
    }
    // The store reads archives by path (it needs to seek); spool stdin to a temp file.
    let (path, _spool) = match &a.input {
        Some(p) => (p.clone(), None),
        None => {
            let dir = engine.config.run_dir();
            std::fs::create_dir_all(&dir)?;
            let mut tmp = tempfile_in(&dir)?;
            std::io::copy(&mut std::io::stdin().lock(), &mut tmp.1)
                .context("reading the archive from standard input")?;
            (tmp.0.clone(), Some(TempPath(tmp.0)))
        }
    };
    let loaded = engine.images()?.load(&path)?;
    for img in &loaded {
        let name = img.tags.first().map(|t| t.familiar()).unwrap_or_default();
        engine.emit_named("image", "load", &img.id, &name, &[]);
    }
    if !a.quiet {
        for img in loaded {
            if img.tags.is_empty() {
                println!("Loaded image ID: {}", img.id);
            }
            for t in &img.tags {
                println!("Loaded image: {}", t.familiar());
            }
        }
    }
    Ok(0)
}

struct TempPath(PathBuf);
impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tempfile_in(dir: &std::path::Path) -> anyhow::Result<(PathBuf, std::fs::File)> {
    let p = dir.join(format!("load-{}-{}.tmp", std::process::id(), rand_suffix()));
    let f = std::fs::File::create(&p).with_context(|| format!("creating {}", p.display()))?;
    Ok((p, f))
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

pub fn save(g: &GlobalOpts, a: SaveArgs) -> anyhow::Result<u8> {
    let engine = g.engine()?;
    let refs: Vec<&str> = a.images.iter().map(String::as_str).collect();
    match &a.output {
        Some(p) => {
            progress(&engine);
            // Write next to the target and rename, so a failed save leaves no half archive.
            let tmp = p.with_extension("berth-partial");
            let result = (|| -> anyhow::Result<()> {
                let mut f = std::io::BufWriter::new(
                    std::fs::File::create(&tmp)
                        .with_context(|| format!("creating {}", tmp.display()))?,
                );
                engine.images()?.save(&refs, &mut f)?;
                f.flush()?;
                Ok(())
            })();
            if let Err(e) = result {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            std::fs::rename(&tmp, p).with_context(|| format!("renaming to {}", p.display()))?;
        }
        None => {
            use std::io::IsTerminal;
            if std::io::stdout().is_terminal() {
                bail!("refusing to write an archive to a terminal: use -o FILE or redirect stdout");
            }
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            engine.images()?.save(&refs, &mut out)?;
            out.flush()?;
        }
    }
    Ok(0)
}

pub fn tag(g: &GlobalOpts, a: TagArgs) -> anyhow::Result<u8> {
    let engine = g.engine()?;
    let target = Reference::parse(&a.target)?;
    engine.images()?.tag(&a.source, &target)?;
    let id = engine
        .images()?
        .resolve(&a.source)
        .map(|i| i.id)
        .unwrap_or_default();
    engine.emit_named("image", "tag", &id, &target.familiar(), &[]);
    Ok(0)
}

pub fn rmi(g: &GlobalOpts, a: RmiArgs) -> anyhow::Result<u8> {
    let engine = g.engine()?;
    let mut failed = false;
    for i in &a.images {
        match engine.remove_image(i, a.force) {
            Ok(items) => {
                for it in items {
                    if let Some(u) = it.untagged {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = it.deleted {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

pub fn history(g: &GlobalOpts, a: HistoryArgs) -> anyhow::Result<u8> {
    let engine = g.engine()?;
    let img = engine.images()?.resolve(&a.image)?;
    let mut hist = img.history();
    hist.reverse();
    if a.format == "json" {
        for h in &hist {
            println!(
                "{}",
                json!({"CreatedAt": h.created(), "CreatedBy": h.created_by(), "Comment": h.comment(),
                       "EmptyLayer": h.empty_layer().unwrap_or(false)})
            );
        }
        return Ok(0);
    }
    // Sizes of non-empty layers, top first.
    let mut sizes: Vec<u64> = img.manifest.layers().iter().map(|l| l.size()).collect();
    sizes.reverse();
    let mut sizes = sizes.into_iter();
    let mut t = Table::new(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]);
    for (i, h) in hist.iter().enumerate() {
        let size = if h.empty_layer().unwrap_or(false) {
            0
        } else {
            sizes.next().unwrap_or(0)
        };
        let by = h.created_by().clone().unwrap_or_default();
        let by = if a.no_trunc || by.chars().count() <= 45 {
            by
        } else {
            format!("{}…", by.chars().take(44).collect::<String>())
        };
        let id = if i == 0 {
            img.short_id().to_string()
        } else {
            "<missing>".into()
        };
        if a.quiet {
            println!("{id}");
            continue;
        }
        t.row(vec![
            id,
            ago(h.created().clone()),
            by,
            human_size(size),
            h.comment().clone().unwrap_or_default(),
        ]);
    }
    if !a.quiet {
        t.print();
    }
    Ok(0)
}

pub fn inspect(g: &GlobalOpts, a: InspectArgs) -> anyhow::Result<u8> {
    crate::cmd::container::inspect(
        g,
        crate::cmd::container::InspectArgs {
            format: a.format,
            kind: Some("image".into()),
            size: false,
            names: a.images,
        },
    )
}

pub fn prune(g: &GlobalOpts, a: PruneArgs) -> anyhow::Result<u8> {
    let engine = g.engine()?;
    let r = engine.prune_images(a.all)?;
    let deleted = r.images_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Images:");
        for it in deleted {
            if let Some(u) = it.untagged {
                println!("untagged: {u}");
            }
            if let Some(d) = it.deleted {
                println!("deleted: {d}");
            }
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(r.space_reclaimed.unwrap_or(0).max(0) as u64)
    );
    Ok(0)
}

pub fn image(g: &GlobalOpts, c: ImageCmd) -> anyhow::Result<u8> {
    match c {
        ImageCmd::Ls(a) => images(g, a),
        ImageCmd::Inspect(a) => inspect(g, a),
        ImageCmd::Rm(a) => rmi(g, a),
        ImageCmd::Prune(a) => prune(g, a),
        ImageCmd::History(a) => history(g, a),
        ImageCmd::Tag(a) => tag(g, a),
        ImageCmd::Import(a) => import(g, a),
        ImageCmd::Load(a) => load(g, a),
        ImageCmd::Save(a) => save(g, a),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_like_docker() {
        assert_eq!(super::human_size(512), "512B");
        assert_eq!(super::human_size(143_360), "143kB");
        assert_eq!(super::human_size(4_260_000), "4.26MB");
        assert_eq!(super::human_size(12_500_000), "12.5MB");
        assert_eq!(super::human_size(2_000_000_000), "2GB");
    }
}
