//! Docker's extensions to the image configuration that the OCI schema (and so
//! `oci_spec::image::Config`) has no field for: `Healthcheck`, `OnBuild` and `Shell`.
//!
//! They live in the same `config` object of the config blob, as Docker writes them, so
//! images stay readable by Docker, podman and skopeo. The store writes them with
//! [`ImageStore::create_image_with_extras`](crate::ImageStore::create_image_with_extras)
//! and reads them back from the raw blob with
//! [`ImageStore::config_extras`](crate::ImageStore::config_extras).

use serde::{Deserialize, Serialize};

/// `config.Healthcheck` (durations in nanoseconds, as Docker stores them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", arg...]` or `["CMD-SHELL", command]`.
    #[serde(rename = "Test", default)]
    pub test: Vec<String>,
    /// Time between checks.
    #[serde(rename = "Interval", default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    /// Time before a check is considered hung.
    #[serde(rename = "Timeout", default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Grace period after start during which failures do not count.
    #[serde(
        rename = "StartPeriod",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub start_period: Option<i64>,
    /// Time between checks during the start period.
    #[serde(
        rename = "StartInterval",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub start_interval: Option<i64>,
    /// Consecutive failures before the container is unhealthy.
    #[serde(rename = "Retries", default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
}

/// The Docker-only parts of an image configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigExtras {
    /// `HEALTHCHECK`.
    #[serde(
        rename = "Healthcheck",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub healthcheck: Option<HealthConfig>,
    /// `ONBUILD` triggers, each an instruction line (`RUN make`), run when the image is
    /// used as a base and not inherited further.
    #[serde(
        rename = "OnBuild",
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_empty"
    )]
    pub on_build: Vec<String>,
    /// `SHELL`: the command line shell-form RUN, CMD and ENTRYPOINT go through, inherited
    /// by images built on this one.
    #[serde(rename = "Shell", default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

impl ConfigExtras {
    /// True when there is nothing to store.
    pub fn is_empty(&self) -> bool {
        self.healthcheck.is_none() && self.on_build.is_empty() && self.shell.is_none()
    }
}

/// Docker writes `"OnBuild": null`.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// Only the part of a config blob the extras live in; everything else is ignored.
#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    config: Option<ConfigExtras>,
}

/// Reads the extras out of a raw config blob.
pub(crate) fn parse(bytes: &[u8]) -> serde_json::Result<ConfigExtras> {
    Ok(serde_json::from_slice::<Wire>(bytes)?
        .config
        .unwrap_or_default())
}

/// Serialises `config` with `extras` merged into its `config` object. The bytes are
/// canonical (object keys sorted, as through `serde_json::Value`): the same configuration
/// always gives the same digest, although `Labels` is a `HashMap` whose iteration order
/// differs from process to process.
pub(crate) fn serialize(
    config: &oci_spec::image::ImageConfiguration,
    extras: &ConfigExtras,
) -> serde_json::Result<Vec<u8>> {
    let mut v = serde_json::to_value(config)?;
    if extras.is_empty() {
        return serde_json::to_vec(&v);
    }
    let extra = serde_json::to_value(extras)?;
    if let (Some(root), serde_json::Value::Object(extra)) = (v.as_object_mut(), extra) {
        let c = root
            .entry("config")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if let Some(c) = c.as_object_mut() {
            c.extend(extra);
        }
    }
    serde_json::to_vec(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_style_and_null_onbuild() {
        let raw = br#"{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"],
            "Healthcheck":{"Test":["CMD-SHELL","true"],"Interval":30000000000,"Retries":3},
            "OnBuild":null,"Shell":["/bin/bash","-eu","-c"]},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let e = parse(raw).unwrap();
        assert_eq!(
            e.healthcheck.as_ref().unwrap().test,
            vec!["CMD-SHELL", "true"]
        );
        assert_eq!(e.healthcheck.unwrap().interval, Some(30_000_000_000));
        assert!(e.on_build.is_empty());
        assert_eq!(
            e.shell.as_deref(),
            Some(&["/bin/bash".to_string(), "-eu".into(), "-c".into()][..])
        );
        assert_eq!(
            parse(br#"{"os":"linux"}"#).unwrap(),
            ConfigExtras::default()
        );
    }

    /// Labels (a `HashMap`) inserted in any order give the same bytes, so a rebuild from
    /// the cache in another process gets the same image ID.
    #[test]
    fn bytes_do_not_depend_on_label_order() {
        let mut a = oci_spec::image::Config::default();
        let mut b = oci_spec::image::Config::default();
        let keys: Vec<String> = (0..32).map(|i| format!("l{i}")).collect();
        let mut la = std::collections::HashMap::new();
        let mut lb = std::collections::HashMap::with_capacity(1000);
        for k in &keys {
            la.insert(k.clone(), "v".to_string());
        }
        for k in keys.iter().rev() {
            lb.insert(k.clone(), "v".to_string());
        }
        a.set_labels(Some(la));
        b.set_labels(Some(lb));
        let mut ca = oci_spec::image::ImageConfiguration::default();
        let mut cb = ca.clone();
        ca.set_config(Some(a));
        cb.set_config(Some(b));
        for extras in [
            ConfigExtras::default(),
            ConfigExtras {
                on_build: vec!["RUN x".into()],
                ..Default::default()
            },
        ] {
            assert_eq!(
                serialize(&ca, &extras).unwrap(),
                serialize(&cb, &extras).unwrap()
            );
        }
    }

    #[test]
    fn round_trip_and_plain_bytes_without_extras() {
        let cfg: oci_spec::image::ImageConfiguration = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},
                "rootfs":{"type":"layers","diff_ids":[]},"history":[]}"#,
        )
        .unwrap();
        let plain = serialize(&cfg, &ConfigExtras::default()).unwrap();
        let back: oci_spec::image::ImageConfiguration = serde_json::from_slice(&plain).unwrap();
        assert_eq!(back.config(), cfg.config());
        assert_eq!(parse(&plain).unwrap(), ConfigExtras::default());
        let extras = ConfigExtras {
            healthcheck: Some(HealthConfig {
                test: vec!["NONE".into()],
                ..Default::default()
            }),
            on_build: vec!["RUN echo hi".into()],
            shell: Some(vec!["/bin/bash".into(), "-c".into()]),
        };
        let bytes = serialize(&cfg, &extras).unwrap();
        assert_eq!(parse(&bytes).unwrap(), extras);
        // The OCI view still parses and keeps its fields.
        let back: oci_spec::image::ImageConfiguration = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back.config(), cfg.config());
    }
}
