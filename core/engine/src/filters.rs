//! Docker's list filters: a map from a key to the values asked for, as the Engine API's
//! `filters={"status":["exited"],"label":["a=b"]}` query parameter and the CLI's repeated
//! `--filter status=exited --filter label=a=b` both say it.
//!
//! Semantics (Docker's): values of one key are alternatives (any may match), different keys
//! must all match; `label` is the exception, every `label` value must match. Each list
//! operation names the keys it knows, and an unknown key is an error naming it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::EngineError;

/// A set of filters: key → values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Filters(BTreeMap<String, Vec<String>>);

impl Filters {
    pub fn new() -> Filters {
        Filters::default()
    }

    /// Adds one value (`--filter key=value`).
    pub fn add(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.entry(key.into()).or_default().push(value.into());
    }

    /// Builder form of [`Filters::add`].
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Filters {
        self.add(key, value);
        self
    }

    /// The CLI form: each argument `key=value` (the value may contain `=`, as in
    /// `label=a=b`).
    pub fn from_cli<S: AsRef<str>>(args: &[S]) -> Result<Filters, EngineError> {
        let mut f = Filters::new();
        for a in args {
            let a = a.as_ref();
            let Some((k, v)) = a.split_once('=') else {
                return Err(EngineError::Invalid(format!(
                    "bad format of filter {a:?}: expected name=value"
                )));
            };
            f.add(k.trim().to_ascii_lowercase(), v);
        }
        Ok(f)
    }

    /// The Engine API form, a JSON object whose values are arrays of strings
    /// (`{"status":["exited"]}`), or the older form of sets (`{"status":{"exited":true}}`)
    /// that clients of API versions before 1.22 still send. An empty string is no filter.
    pub fn from_json(text: &str) -> Result<Filters, EngineError> {
        let mut f = Filters::new();
        if text.trim().is_empty() {
            return Ok(f);
        }
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| EngineError::Invalid(format!("invalid filters {text:?}: {e}")))?;
        let serde_json::Value::Object(map) = v else {
            return Err(EngineError::Invalid(format!(
                "invalid filters {text:?}: expected a JSON object of key: [values]"
            )));
        };
        for (k, vals) in map {
            match vals {
                serde_json::Value::Array(a) => {
                    for x in a {
                        match x {
                            serde_json::Value::String(s) => f.add(k.clone(), s),
                            other => {
                                return Err(EngineError::Invalid(format!(
                                    "invalid filter {k:?}: value {other} is not a string"
                                )))
                            }
                        }
                    }
                }
                serde_json::Value::Object(set) => {
                    for (s, on) in set {
                        if on.as_bool().unwrap_or(false) {
                            f.add(k.clone(), s);
                        }
                    }
                }
                serde_json::Value::String(s) => f.add(k, s),
                other => {
                    return Err(EngineError::Invalid(format!(
                        "invalid filter {k:?}: {other} is not a list of strings"
                    )))
                }
            }
        }
        Ok(f)
    }

    /// Fails with Docker's `invalid filter 'KEY'` for a key the list does not know.
    pub fn validate(&self, known: &[&str]) -> Result<(), EngineError> {
        for k in self.0.keys() {
            if !known.contains(&k.as_str()) {
                return Err(EngineError::Invalid(format!(
                    "invalid filter '{k}' (this list knows: {})",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// The values of `key` (empty when it is not set).
    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or_default()
    }

    /// True when `key` is not set or one of its values satisfies `pred`.
    pub fn any_or_unset(&self, key: &str, pred: impl FnMut(&str) -> bool) -> bool {
        match self.0.get(key) {
            None => true,
            Some(v) => v.iter().map(String::as_str).any(pred),
        }
    }

    /// Like [`Filters::any_or_unset`], for predicates that can reject a value (an unknown
    /// status, a non-numeric exit code).
    pub fn try_any_or_unset(
        &self,
        key: &str,
        mut pred: impl FnMut(&str) -> Result<bool, EngineError>,
    ) -> Result<bool, EngineError> {
        match self.0.get(key) {
            None => Ok(true),
            Some(v) => {
                let mut hit = false;
                for x in v {
                    hit |= pred(x)?;
                }
                Ok(hit)
            }
        }
    }

    /// A boolean filter (`dangling=true`): `None` when unset; `1`/`0` too, as Docker.
    pub fn bool_value(&self, key: &str) -> Result<Option<bool>, EngineError> {
        let Some(v) = self.0.get(key) else {
            return Ok(None);
        };
        let mut out = None;
        for x in v {
            let b = match x.to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(EngineError::Invalid(format!(
                        "invalid filter '{key}={x}': expected true or false"
                    )))
                }
            };
            if out.is_some_and(|o| o != b) {
                return Err(EngineError::Invalid(format!(
                    "invalid filter '{key}': both true and false given"
                )));
            }
            out = Some(b);
        }
        Ok(out)
    }

    /// Every `label` filter (`KEY` or `KEY=VALUE`) matches `labels`.
    pub fn labels_match<'a>(&self, labels: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.get("label").iter().all(|l| match l.split_once('=') {
            Some((k, v)) => labels(k) == Some(v),
            None => labels(l).is_some(),
        })
    }

    /// The filters as the Engine API's JSON query parameter.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".into())
    }
}

/// `id` filter: the value is a prefix of the ID (with or without `sha256:`).
pub(crate) fn id_matches(id: &str, want: &str) -> bool {
    let bare = |s: &str| s.strip_prefix("sha256:").unwrap_or(s).to_string();
    !want.is_empty() && bare(id).starts_with(&bare(want))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_and_api_forms_agree() {
        let cli = Filters::from_cli(&["status=exited", "label=a=b", "status=created"]).unwrap();
        let api = Filters::from_json(r#"{"status":["exited","created"],"label":["a=b"]}"#).unwrap();
        assert_eq!(cli, api);
        let old = Filters::from_json(r#"{"status":{"exited":true,"created":true}}"#).unwrap();
        assert_eq!(old.get("status").len(), 2);
        assert!(Filters::from_json("").unwrap().is_empty());
        assert_eq!(
            cli.to_json(),
            r#"{"label":["a=b"],"status":["exited","created"]}"#
        );
    }

    #[test]
    fn bad_forms_and_unknown_keys_are_errors_naming_them() {
        let e = Filters::from_cli(&["status"]).unwrap_err().to_string();
        assert!(e.contains("\"status\"") && e.contains("name=value"), "{e}");
        let e = Filters::from_json(r#"{"a":[1]}"#).unwrap_err().to_string();
        assert!(e.contains("\"a\""), "{e}");
        assert!(Filters::from_json("[1]").is_err());
        let f = Filters::new().with("colour", "red");
        let e = f.validate(&["name", "id"]).unwrap_err().to_string();
        assert!(e.starts_with("invalid filter 'colour'"), "{e}");
        assert!(Filters::new().with("name", "x").validate(&["name"]).is_ok());
    }

    #[test]
    fn values_of_one_key_are_alternatives_labels_all_must_match() {
        let f = Filters::new().with("name", "a").with("name", "b");
        assert!(f.any_or_unset("name", |v| v == "b"));
        assert!(!f.any_or_unset("name", |v| v == "c"));
        assert!(f.any_or_unset("id", |_| false), "an unset key matches");
        let f = Filters::new().with("label", "a").with("label", "b=2");
        let labels = [("a", "1"), ("b", "2")];
        let get = |k: &str| labels.iter().find(|(x, _)| *x == k).map(|(_, v)| *v);
        assert!(f.labels_match(get));
        let f = f.with("label", "c");
        assert!(!f.labels_match(get));
    }

    #[test]
    fn booleans() {
        assert_eq!(Filters::new().bool_value("dangling").unwrap(), None);
        let f = Filters::new().with("dangling", "true");
        assert_eq!(f.bool_value("dangling").unwrap(), Some(true));
        let f = Filters::new().with("dangling", "0");
        assert_eq!(f.bool_value("dangling").unwrap(), Some(false));
        let f = Filters::new().with("dangling", "maybe");
        assert!(f.bool_value("dangling").is_err());
    }

    #[test]
    fn id_prefixes() {
        assert!(id_matches("sha256:abcdef", "abc"));
        assert!(id_matches("abcdef", "sha256:abc"));
        assert!(!id_matches("abcdef", "bcd"));
        assert!(!id_matches("abcdef", ""));
    }
}
