//! What the offline surface accepted without judging (the projection's `unjudged`, made by
//! checks/surface/unjudged.nix): definitions of options the surface does not declare, and the
//! ones among them that could change the posture ("effects that could not be judged"). They do
//! not change an exit status; `check` and `eval` list them (docs/harness.md).

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unjudged {
    /// Definitions accepted without an option to judge them by.
    pub count: usize,
    pub definitions: Vec<Definition>,
    pub effects: Vec<Effect>,
}

/// One definition, at the path where it left declared territory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definition {
    /// `services.nginx.*` (a set of options) or `time.timeZone` (one).
    pub option: String,
    pub file: String,
    /// The options it defines (at most 20 listed; `leafCount` says how many).
    #[serde(default)]
    pub leaves: Vec<String>,
    #[serde(default, rename = "leafCount")]
    pub leaf_count: usize,
}

/// A definition that could change the posture where the surface cannot see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effect {
    pub option: String,
    pub effect: String,
    pub file: String,
}

impl Unjudged {
    /// From a projection (absent on projections made before the field existed: nothing).
    pub fn from_projection(p: &Value) -> Unjudged {
        p.get("unjudged")
            .and_then(|u| serde_json::from_value(u.clone()).ok())
            .unwrap_or_default()
    }

    /// `services.caddy.*, time.timeZone, …`: each option once, in order, at most `n`.
    pub fn summary(&self, n: usize) -> String {
        let mut seen: Vec<&str> = vec![];
        for d in &self.definitions {
            if !seen.contains(&d.option.as_str()) {
                seen.push(&d.option);
            }
        }
        let more = seen.len() > n;
        let mut s = seen.into_iter().take(n).collect::<Vec<_>>().join(", ");
        if more {
            s.push_str(", …");
        }
        s
    }
}
