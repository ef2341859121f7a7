//! Reading a store derivation (`.drv`, ATerm) for what the runner needs: its environment, and
//! from it `requiredSystemFeatures`. The ATerm format is stable across Nix versions, unlike
//! the JSON of `nix show-derivation` / `nix derivation show`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{Result, VmError};

#[derive(Debug, PartialEq)]
enum Term {
    Str(String),
    List(Vec<Term>),
    Tuple(Vec<Term>),
    Ctor(String, Vec<Term>),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        format!("{what} at byte {}", self.i)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> std::result::Result<(), String> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", c as char)))
        }
    }

    fn items(&mut self, close: u8) -> std::result::Result<Vec<Term>, String> {
        let mut items = Vec::new();
        if self.peek() == Some(close) {
            self.i += 1;
            return Ok(items);
        }
        loop {
            items.push(self.term()?);
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(c) if c == close => {
                    self.i += 1;
                    return Ok(items);
                }
                _ => return Err(self.err("expected ',' or a closing bracket")),
            }
        }
    }

    fn term(&mut self) -> std::result::Result<Term, String> {
        match self.peek() {
            Some(b'"') => self.string().map(Term::Str),
            Some(b'[') => {
                self.i += 1;
                self.items(b']').map(Term::List)
            }
            Some(b'(') => {
                self.i += 1;
                self.items(b')').map(Term::Tuple)
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.i;
                while self.peek().is_some_and(|c| c.is_ascii_alphanumeric()) {
                    self.i += 1;
                }
                let name = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                self.expect(b'(')?;
                Ok(Term::Ctor(name, self.items(b')')?))
            }
            _ => Err(self.err("unexpected input")),
        }
    }

    fn string(&mut self) -> std::result::Result<String, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    let c = self
                        .s
                        .get(self.i + 1)
                        .copied()
                        .ok_or_else(|| self.err("dangling escape"))?;
                    out.push(match c {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        other => other,
                    });
                    self.i += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }
}

/// The environment of a derivation, from the text of its `.drv` file.
pub fn env_of(aterm: &str) -> std::result::Result<BTreeMap<String, String>, String> {
    let mut p = Parser {
        s: aterm.trim_end().as_bytes(),
        i: 0,
    };
    let term = p.term()?;
    let args = match term {
        Term::Ctor(name, args) if name.starts_with("Derive") || name == "DrvWithVersion" => args,
        Term::Ctor(name, _) => return Err(format!("not a derivation: {name}(...)")),
        _ => return Err("not a derivation".into()),
    };
    let env = match args.last() {
        Some(Term::List(pairs)) => pairs,
        _ => return Err("derivation without an environment".into()),
    };
    let mut map = BTreeMap::new();
    for pair in env {
        if let Term::Tuple(kv) = pair {
            if let [Term::Str(k), Term::Str(v)] = kv.as_slice() {
                map.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(map)
}

/// `requiredSystemFeatures` from a derivation's environment, structured attributes included.
pub fn required_features(env: &BTreeMap<String, String>) -> Vec<String> {
    if let Some(json) = env.get("__json") {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(json) {
            if let Some(list) = value
                .get("requiredSystemFeatures")
                .and_then(|v| v.as_array())
            {
                return list
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect();
            }
        }
    }
    env.get("requiredSystemFeatures")
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Reads a `.drv` from the store and returns its required system features.
pub fn features_of(drv_path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(drv_path).map_err(|e| {
        VmError::Other(format!(
            "cannot read the derivation {}: {e}",
            drv_path.display()
        ))
    })?;
    let env = env_of(&text).map_err(|e| {
        VmError::Other(format!(
            "cannot parse the derivation {}: {e}",
            drv_path.display()
        ))
    })?;
    Ok(required_features(&env))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRV: &str = r#"Derive([("out","/nix/store/aaaa-vm-test-run-x","","")],[("/nix/store/bbbb-driver.drv",["out"])],["/nix/store/cccc-src"],"x86_64-linux","/nix/store/dddd-bash/bin/bash",["-e","/nix/store/eeee-default-builder.sh"],[("buildCommand","mkdir -p $out\n\"quoted\" \\ back"),("name","vm-test-run-x"),("requiredSystemFeatures","nixos-test kvm"),("system","x86_64-linux")])"#;

    #[test]
    fn reads_the_environment_with_escapes() {
        let env = env_of(DRV).unwrap();
        assert_eq!(env["name"], "vm-test-run-x");
        assert_eq!(env["buildCommand"], "mkdir -p $out\n\"quoted\" \\ back");
        assert_eq!(required_features(&env), vec!["nixos-test", "kvm"]);
    }

    #[test]
    fn structured_attributes_carry_features_in_json() {
        let mut env = BTreeMap::new();
        env.insert(
            "__json".to_string(),
            r#"{"requiredSystemFeatures":["kvm"]}"#.to_string(),
        );
        assert_eq!(required_features(&env), vec!["kvm"]);
    }

    #[test]
    fn no_features_means_none_required() {
        let env = env_of(r#"Derive([],[],[],"x86_64-linux","/bin/sh",[],[("name","x")])"#).unwrap();
        assert!(required_features(&env).is_empty());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(env_of("Derive([(\"out\"").is_err());
        assert!(env_of("hello").is_err());
        assert!(env_of("").is_err());
    }
}
