//! Registries: `pull`, `push`, `login`, `logout`, and the base-image pull of `build`,
//! through berth-distribution with the engine's configuration (`[registry]`).

use std::path::PathBuf;

use berth_distribution::{
    Credentials, Direction, DistributionError, Platform, PullOptions, PullResult, PushOptions,
    PushResult, RegistryOptions, TransferProgress,
};

use crate::{Engine, EngineError};

impl From<DistributionError> for EngineError {
    fn from(e: DistributionError) -> Self {
        match e {
            DistributionError::Store(e) => EngineError::Image(Box::new(e)),
            other => EngineError::Invalid(other.to_string()),
        }
    }
}

/// What a `pull`/`push` caller can choose.
#[derive(Debug, Clone, Default)]
pub struct TransferRequest {
    /// `--insecure-registry` (added to `[registry] insecure`).
    pub insecure: Vec<String>,
    /// `--platform os/arch[/variant]` (pull only).
    pub platform: Option<String>,
    /// `-q`: no progress output.
    pub quiet: bool,
}

impl Engine {
    /// The credentials file: `[registry] auth_file`, `$REGISTRY_AUTH_FILE`, or
    /// `<root>/auth.json`.
    pub fn auth_file(&self) -> PathBuf {
        self.config
            .registry
            .auth_file
            .clone()
            .or_else(|| std::env::var_os("REGISTRY_AUTH_FILE").map(PathBuf::from))
            .unwrap_or_else(|| self.config.root.join("auth.json"))
    }

    /// Registry options from the configuration plus `extra_insecure`.
    pub fn registry_options(&self, extra_insecure: &[String]) -> RegistryOptions {
        let mut insecure = self.config.registry.insecure.clone();
        insecure.extend(extra_insecure.iter().cloned());
        RegistryOptions {
            auth_file: Some(self.auth_file()),
            insecure_registries: insecure,
            ..RegistryOptions::default()
        }
    }

    fn transfer_progress(
        quiet: bool,
        d: Direction,
    ) -> Option<std::sync::Arc<dyn TransferProgress>> {
        (!quiet).then(|| berth_distribution::terminal_transfer_progress(d))
    }

    /// `berth pull`.
    pub fn pull(&self, reference: &str, req: &TransferRequest) -> Result<PullResult, EngineError> {
        let platform = match &req.platform {
            None => None,
            Some(p) => Some(Platform::parse(p).ok_or_else(|| {
                EngineError::Invalid(format!(
                    "--platform {p:?}: expected os/arch[/variant], e.g. linux/amd64"
                ))
            })?),
        };
        let opts = PullOptions {
            registry: self.registry_options(&req.insecure),
            platform,
            progress: Self::transfer_progress(req.quiet, Direction::Pull),
            ..PullOptions::default()
        };
        let store = self.images()?;
        let _lease = store.lease()?;
        let r = berth_distribution::pull(store, reference, &opts)?;
        self.emit_named("image", "pull", &r.image.id, &r.reference.familiar(), &[]);
        Ok(r)
    }

    /// The local image `reference`, pulled first when it is missing (`docker run`'s
    /// default) or when `always` (`--pull`). An image ID is never pulled.
    pub fn resolve_or_pull(
        &self,
        reference: &str,
        always: bool,
        quiet: bool,
    ) -> Result<berth_image::Image, EngineError> {
        let local = self.images()?.resolve(reference);
        let missing = matches!(local, Err(berth_image::ImageError::NotFound { .. }));
        if !(always || missing) || berth_image::Reference::parse(reference).is_err() {
            return Ok(local?);
        }
        if missing && !quiet {
            eprintln!("Unable to find image '{reference}' locally");
        }
        let req = TransferRequest {
            quiet,
            ..TransferRequest::default()
        };
        match self.pull(reference, &req) {
            Ok(r) => Ok(r.image),
            Err(e) if missing => Err(EngineError::NotFound(format!(
                "unable to find image '{reference}' locally, and pulling it failed: {e} \
                 (or `berth load`, `berth import` or `berth build` it)"
            ))),
            Err(e) => Err(e),
        }
    }

    /// `berth push LOCAL [REMOTE]`.
    pub fn push(
        &self,
        local: &str,
        remote: &str,
        req: &TransferRequest,
    ) -> Result<PushResult, EngineError> {
        let opts = PushOptions {
            registry: self.registry_options(&req.insecure),
            progress: Self::transfer_progress(req.quiet, Direction::Push),
            ..PushOptions::default()
        };
        Ok(berth_distribution::push(
            self.images()?,
            local,
            remote,
            &opts,
        )?)
    }

    /// `berth login`: checks the credentials, then stores them; returns the registry.
    pub fn login(
        &self,
        registry: &str,
        user: &str,
        password: &str,
        insecure: &[String],
    ) -> Result<String, EngineError> {
        let opts = self.registry_options(insecure);
        Ok(berth_distribution::login(
            registry,
            &Credentials::new(user, password),
            &self.auth_file(),
            &opts,
        )?)
    }

    /// `berth logout`: whether credentials were stored for `registry`.
    pub fn logout(&self, registry: &str) -> Result<bool, EngineError> {
        Ok(berth_distribution::logout(registry, &self.auth_file())?)
    }
}
