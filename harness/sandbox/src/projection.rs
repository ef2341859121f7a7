//! Typed reads of the projection (schema 1, docs/harness.md): knobs, upstream options,
//! renderings, mounts. A missing or mistyped value reads as None; checks say what they lacked.

use serde_json::Value;

/// One evaluated permutation, as the sandbox receives it.
#[derive(Clone, Debug)]
pub struct Permutation {
    pub id: String,
    /// Where it came from: "host bastion", "module ./x.nix", "matrix row r12 {ssh.enable=true,...}".
    pub source: String,
    pub projection: Value,
}

impl Permutation {
    pub fn knob(&self, name: &str) -> Option<&Value> {
        self.projection.get("knobs")?.get(name)
    }
    pub fn knob_bool(&self, name: &str) -> bool {
        self.knob(name).and_then(Value::as_bool).unwrap_or(false)
    }
    pub fn knob_str(&self, name: &str) -> Option<&str> {
        self.knob(name).and_then(Value::as_str)
    }
    pub fn option(&self, path: &str) -> Option<&Value> {
        self.projection.get("options")?.get(path)
    }
    /// A part of the effective posture (`effective.<name>`, lib/posture): what the model says
    /// each daemon will do; null parts read as None.
    pub fn effective(&self, name: &str) -> Option<&Value> {
        self.projection
            .get("effective")?
            .get(name)
            .filter(|v| !v.is_null())
    }
    pub fn rendered(&self, name: &str) -> Option<&str> {
        self.projection.get("rendered")?.get(name)?.as_str()
    }
    pub fn units(&self) -> Vec<(String, String)> {
        self.projection
            .get("rendered")
            .and_then(|r| r.get("units"))
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }
    pub fn mounts(&self) -> Vec<Mount> {
        self.projection
            .get("mounts")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Mount::from_json).collect())
            .unwrap_or_default()
    }
    pub fn persisted_files(&self) -> Vec<(String, String)> {
        self.projection
            .get("persistedFiles")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|f| {
                        Some((
                            f.get("filePath")?.as_str()?.to_string(),
                            f.get("persistentStoragePath")?.as_str()?.to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    pub fn assertions(&self) -> Vec<String> {
        strings(self.projection.get("assertions"))
    }
    /// The services given a paranoid sandbox preset: (unit name, preset).
    pub fn sandbox_presets(&self) -> Vec<(String, String)> {
        let Some(knobs) = self.projection.get("knobs").and_then(Value::as_object) else {
            return vec![];
        };
        knobs
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("services.")?.strip_suffix(".sandbox")?;
                Some((format!("{name}.service"), v.as_str()?.to_string()))
            })
            .collect()
    }
}

/// A list of strings from a JSON array (anything else reads as empty).
pub fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A u16 list (ports) from a JSON array.
pub fn ports(v: Option<&Value>) -> Vec<u16> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_u64().and_then(|p| u16::try_from(p).ok()))
                .collect()
        })
        .unwrap_or_default()
}

/// One entry of `mounts`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mount {
    pub mount_point: String,
    pub device: Option<String>,
    pub fs_type: String,
    pub options: Vec<String>,
    pub needed_for_boot: bool,
    /// fileSystems | special | systemd.mounts | initrd
    pub origin: String,
}

impl Mount {
    fn from_json(v: &Value) -> Option<Mount> {
        Some(Mount {
            mount_point: v.get("mountPoint")?.as_str()?.to_string(),
            device: v.get("device").and_then(Value::as_str).map(str::to_string),
            fs_type: v
                .get("fsType")
                .and_then(Value::as_str)
                .unwrap_or("auto")
                .to_string(),
            options: strings(v.get("options")),
            needed_for_boot: v
                .get("neededForBoot")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            origin: v
                .get("origin")
                .and_then(Value::as_str)
                .unwrap_or("fileSystems")
                .to_string(),
        })
    }
}

/// A path from the projection that is safe to place under a prefix: absolute, no `..`, no NUL.
/// The checks run as root and write below their scratch directories; a path that could climb
/// out of them is refused.
pub fn safe_abs_path(p: &str) -> Result<&str, String> {
    if !p.starts_with('/') || p.contains('\0') || p.split('/').any(|c| c == "..") {
        return Err(format!(
            "refusing path {p:?} from the projection: it must be absolute and free of `..`"
        ));
    }
    Ok(p)
}

/// A unit file name that is safe to write into a directory: no path separators, not hidden.
pub fn safe_unit_name(n: &str) -> Result<&str, String> {
    if n.is_empty() || n.contains('/') || n.contains('\0') || n.starts_with('.') {
        return Err(format!("refusing unit name {n:?} from the projection"));
    }
    Ok(n)
}
