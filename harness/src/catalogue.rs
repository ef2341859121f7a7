//! The knob catalogue (`lib.catalogue`, docs/harness.md "Catalogue"): every enumerable
//! `paranoid.*` option, how it takes part in the matrix, and the constraints the modules must
//! refuse with a named guard rail.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::nix::{self, Flake};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Turns an area on; `off` is its off value.
    Switch,
    /// A posture choice inside an area that a profile sets.
    Knob,
    /// Tunes an area.
    Parameter,
    /// `paranoid.enable` / `paranoid.profile`.
    Meta,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Knob {
    pub name: String,
    #[serde(default)]
    pub path: Vec<String>,
    #[serde(rename = "type")]
    pub ty: String,
    pub values: Vec<Value>,
    #[serde(default)]
    pub default: Value,
    pub kind: Kind,
    pub area: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off: Option<Value>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Value>,
    #[serde(default)]
    pub description: String,
    #[serde(default, rename = "typeDescription")]
    pub type_description: String,
    /// Whether the exhaustive plan enumerates it (a switch of its own can opt out).
    #[serde(default = "enumerated", skip_serializing_if = "is_enumerated")]
    pub exhaustive: bool,
}

fn enumerated() -> bool {
    true
}

fn is_enumerated(e: &bool) -> bool {
    *e
}

impl Knob {
    /// The value that turns a switch on: `true`, or the strongest (last listed) non-off value.
    pub fn on_value(&self) -> Option<Value> {
        let off = self.off.as_ref()?;
        self.values.iter().rev().find(|v| *v != off).cloned()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Constraint {
    pub id: String,
    /// The guard rail that must refuse it, when several constraints share one (default: `id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<String>,
    #[serde(default)]
    pub description: String,
    /// Conjunctions of knob values; a row matching any must be refused with `[paranoid:<id>]`.
    #[serde(default)]
    pub when: Vec<BTreeMap<String, Value>>,
    #[serde(default)]
    pub set: BTreeMap<String, Value>,
    /// Only whether the constraint adds a module matters here (Nix adds it by id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<Value>,
    #[serde(default, rename = "withoutImpermanence")]
    pub without_impermanence: bool,
    #[serde(default, rename = "alsoFails")]
    pub also_fails: Vec<String>,
}

impl Constraint {
    /// The marker every message of this guard rail starts with.
    pub fn marker(&self) -> String {
        format!("[paranoid:{}]", self.guard.as_deref().unwrap_or(&self.id))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalogue {
    pub knobs: Vec<Knob>,
    pub constraints: Vec<Constraint>,
    #[serde(default)]
    pub profiles: BTreeMap<String, BTreeMap<String, Value>>,
    #[serde(default, rename = "presetPriority")]
    pub preset_priority: Value,
    #[serde(default, rename = "defaultProfile")]
    pub default_profile: String,
    #[serde(default, rename = "neverImplied")]
    pub never_implied: Vec<String>,
}

impl Catalogue {
    /// Reads `lib.catalogue` from the flake.
    pub fn load(flake: &Flake, timeout: Duration) -> Result<Catalogue> {
        let v = nix::eval_attr(flake, "lib.catalogue", timeout)?;
        Catalogue::from_json(v)
    }

    pub fn from_json(v: Value) -> Result<Catalogue> {
        serde_json::from_value(v).map_err(|e| Error::NixEval {
            context: "lib.catalogue".into(),
            message: format!("the catalogue does not have the documented shape: {e}"),
        })
    }

    pub fn knob(&self, name: &str) -> Option<&Knob> {
        self.knobs.iter().find(|k| k.name == name)
    }

    pub fn constraint(&self, id: &str) -> Option<&Constraint> {
        self.constraints.iter().find(|c| c.id == id)
    }

    pub fn switches(&self) -> impl Iterator<Item = &Knob> {
        self.knobs.iter().filter(|k| k.kind == Kind::Switch)
    }

    /// Areas that have at least one switch.
    pub fn areas(&self) -> Vec<String> {
        let mut a: Vec<String> = self.switches().map(|k| k.area.clone()).collect();
        a.sort();
        a.dedup();
        a
    }

    /// Whether `area` is on under `knobs`: any of its switches differs from its off value.
    pub fn area_on(&self, area: &str, knobs: &BTreeMap<String, Value>) -> bool {
        self.switches()
            .filter(|k| k.area == area)
            .any(|k| match (knobs.get(&k.name), &k.off) {
                (Some(v), Some(off)) => v != off,
                _ => false,
            })
    }

    /// Parses `knob=value` as given to `--set`: the value is JSON if it parses (true, 3,
    /// "x"), else a plain string; it must be one of the knob's values.
    pub fn parse_setting(&self, s: &str) -> Result<(String, Value)> {
        let (name, raw) = s.split_once('=').ok_or_else(|| {
            Error::Usage(format!(
                "--set {s}: expected knob=value, e.g. --set ssh.enable=true"
            ))
        })?;
        let knob = self.knob(name).ok_or_else(|| {
            Error::Usage(format!(
                "--set {s}: unknown knob `{name}`. Valid knobs: {}",
                self.knobs
                    .iter()
                    .map(|k| k.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let value =
            serde_json::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        if !knob.values.contains(&value) {
            return Err(Error::Usage(format!(
                "--set {s}: `{name}` takes one of {}",
                knob.values
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        Ok((name.to_string(), value))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub fn small() -> Catalogue {
        Catalogue::from_json(json!({
            "knobs": [
                {"name": "enable", "type": "bool", "values": [false, true], "default": false, "kind": "meta", "area": "enable"},
                {"name": "ssh.enable", "type": "bool", "values": [false, true], "default": false, "kind": "switch", "area": "ssh", "off": false},
                {"name": "ssh.allowSFTP", "type": "bool", "values": [false, true], "default": true, "kind": "knob", "area": "ssh"},
                {"name": "sudo.mode", "type": "enum", "values": ["upstream", "wheel-only", "removed"], "default": "upstream", "kind": "switch", "area": "sudo", "off": "upstream"},
                {"name": "ssh.crypto", "type": "enum", "values": ["modern", "fips", "upstream"], "default": "modern", "kind": "parameter", "area": "ssh"}
            ],
            "constraints": [
                {"id": "c1", "set": {"sudo.mode": "removed"}, "when": [{"sudo.mode": "removed", "ssh.enable": false}]}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn settings_are_checked_against_the_catalogue() {
        let c = small();
        assert_eq!(
            c.parse_setting("ssh.enable=true").unwrap(),
            ("ssh.enable".into(), json!(true))
        );
        assert_eq!(
            c.parse_setting("sudo.mode=removed").unwrap(),
            ("sudo.mode".into(), json!("removed"))
        );
        let e = c.parse_setting("ssh.enabel=true").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().contains("unknown knob `ssh.enabel`")
                && e.to_string().contains("ssh.allowSFTP"),
            "{e}"
        );
        assert!(c
            .parse_setting("sudo.mode=sometimes")
            .unwrap_err()
            .to_string()
            .contains("takes one of"));
        assert!(c.parse_setting("ssh.enable").is_err());
    }

    #[test]
    fn areas_are_on_when_a_switch_is_off_its_off_value() {
        let c = small();
        let mut k = BTreeMap::new();
        k.insert("sudo.mode".to_string(), json!("upstream"));
        assert!(!c.area_on("sudo", &k));
        k.insert("sudo.mode".to_string(), json!("removed"));
        assert!(c.area_on("sudo", &k));
        assert_eq!(
            c.knob("sudo.mode").unwrap().on_value(),
            Some(json!("removed"))
        );
        assert_eq!(c.knob("ssh.enable").unwrap().on_value(), Some(json!(true)));
    }
}
