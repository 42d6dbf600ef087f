//! `--images-from FILE|-`: the images an inventory lists, each once, with the workloads that
//! use it. An inventory is a list of references (one a line, `#` comments), or Kubernetes
//! JSON: `kubectl get pods -A -o json`, any `List` of workloads, or one workload. Pods,
//! Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs and
//! CronJobs are read: their containers, init containers and ephemeral containers.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::report::model::Workload;

/// The largest inventory read: `kubectl get pods -A -o json` of a large cluster is tens of
/// megabytes.
const MAX_INVENTORY_BYTES: u64 = 256 << 20;

/// How deep Lists may nest (a List of Lists is legal, and rare).
const MAX_LIST_DEPTH: usize = 8;

/// One distinct image of the inventory and who uses it (nobody, in a plain list).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// The image reference as the inventory writes it.
    pub reference: String,
    /// The containers that run it, in the inventory's order.
    pub used_by: Vec<Workload>,
}

/// Reads the inventory at `path` (`-`: standard input).
pub fn read(path: &Path) -> Result<Vec<Listed>> {
    let shown = if path == Path::new("-") {
        "standard input".to_string()
    } else {
        path.display().to_string()
    };
    let mut bytes = Vec::new();
    let reader: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("--images-from {shown}"))?)
    };
    reader
        .take(MAX_INVENTORY_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("--images-from {shown}"))?;
    if bytes.len() as u64 > MAX_INVENTORY_BYTES {
        bail!(
            "--images-from {shown}: larger than {} MiB",
            MAX_INVENTORY_BYTES >> 20
        );
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("--images-from {shown}: not UTF-8 text"))?;
    parse(&text).with_context(|| format!("--images-from {shown}"))
}

/// Parses an inventory: JSON when it starts with `{` or `[`, else one reference a line.
pub fn parse(text: &str) -> Result<Vec<Listed>> {
    let trimmed = text.trim_start();
    let mut found = Found::default();
    if trimmed.starts_with(['{', '[']) {
        let value: Value = serde_json::from_str(trimmed).map_err(|err| {
            anyhow::anyhow!(
                "not valid JSON (line {}, column {})",
                err.line(),
                err.column()
            )
        })?;
        found.walk(&value, 0)?;
        if found.images.is_empty() {
            bail!("the Kubernetes JSON names no container image");
        }
    } else {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default().trim();
            if !line.is_empty() {
                found.add(line, None);
            }
        }
        if found.images.is_empty() {
            bail!("lists no image");
        }
    }
    Ok(found.images)
}

#[derive(Default)]
struct Found {
    images: Vec<Listed>,
}

impl Found {
    fn add(&mut self, reference: &str, user: Option<Workload>) {
        let at = match self.images.iter().position(|i| i.reference == reference) {
            Some(at) => at,
            None => {
                self.images.push(Listed {
                    reference: reference.to_string(),
                    used_by: Vec::new(),
                });
                self.images.len() - 1
            }
        };
        if let Some(user) = user
            && !self.images[at].used_by.contains(&user)
        {
            self.images[at].used_by.push(user);
        }
    }

    /// A List (or a JSON array) is walked item by item; anything else is one object.
    fn walk(&mut self, value: &Value, depth: usize) -> Result<()> {
        if depth > MAX_LIST_DEPTH {
            bail!("Lists nested deeper than {MAX_LIST_DEPTH} levels");
        }
        match value {
            Value::Array(items) => {
                for item in items {
                    self.walk(item, depth + 1)?;
                }
            }
            Value::Object(object) => {
                if let Some(items) = object.get("items").and_then(Value::as_array) {
                    for item in items {
                        self.walk(item, depth + 1)?;
                    }
                } else {
                    self.workload(value);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The containers of one workload; objects of other kinds are passed over.
    fn workload(&mut self, object: &Value) {
        let kind = object["kind"].as_str().unwrap_or("Pod");
        let spec = &object["spec"];
        let pod_spec = match kind {
            "Pod" => spec,
            "CronJob" => &spec["jobTemplate"]["spec"]["template"]["spec"],
            "Deployment"
            | "StatefulSet"
            | "DaemonSet"
            | "ReplicaSet"
            | "Job"
            | "ReplicationController"
            | "PodTemplate" => &spec["template"]["spec"],
            _ => return,
        };
        let metadata = &object["metadata"];
        let name = metadata["name"].as_str().unwrap_or("(unnamed)");
        let namespace = metadata["namespace"].as_str().map(str::to_string);
        for list in ["initContainers", "containers", "ephemeralContainers"] {
            for container in pod_spec[list].as_array().into_iter().flatten() {
                let Some(image) = container["image"].as_str().filter(|i| !i.trim().is_empty())
                else {
                    continue;
                };
                let user = Workload {
                    namespace: namespace.clone(),
                    kind: kind.to_string(),
                    name: name.to_string(),
                    container: container["name"].as_str().unwrap_or_default().to_string(),
                };
                self.add(image.trim(), Some(user));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_list_with_comments_and_repeats() {
        let listed = parse("# images\napp:1\n\n  db:2 # primary\napp:1\n").unwrap();
        let refs: Vec<&str> = listed.iter().map(|l| l.reference.as_str()).collect();
        assert_eq!(refs, ["app:1", "db:2"]);
        assert!(listed[0].used_by.is_empty());
        assert!(parse("# nothing\n\n").is_err());
    }

    #[test]
    fn workloads_of_every_kind_in_a_list() {
        let json = r#"{"apiVersion":"v1","kind":"List","items":[
          {"kind":"Pod","metadata":{"name":"web-1","namespace":"shop"},
           "spec":{"initContainers":[{"name":"init","image":"busybox:1"}],
                   "containers":[{"name":"web","image":"web:2"}],
                   "ephemeralContainers":[{"name":"debug","image":"busybox:1"}]}},
          {"kind":"Deployment","metadata":{"name":"api","namespace":"shop"},
           "spec":{"template":{"spec":{"containers":[{"name":"api","image":"web:2"}]}}}},
          {"kind":"CronJob","metadata":{"name":"nightly","namespace":"ops"},
           "spec":{"jobTemplate":{"spec":{"template":{"spec":{"containers":[{"name":"job","image":"tool:3"}]}}}}}},
          {"kind":"Service","metadata":{"name":"web"},"spec":{"ports":[]}}
        ]}"#;
        let listed = parse(json).unwrap();
        let refs: Vec<&str> = listed.iter().map(|l| l.reference.as_str()).collect();
        assert_eq!(refs, ["busybox:1", "web:2", "tool:3"]);
        let busybox: Vec<String> = listed[0]
            .used_by
            .iter()
            .map(|w| {
                format!(
                    "{}/{}/{}/{}",
                    w.namespace.as_deref().unwrap_or("-"),
                    w.kind,
                    w.name,
                    w.container
                )
            })
            .collect();
        assert_eq!(busybox, ["shop/Pod/web-1/init", "shop/Pod/web-1/debug"]);
        assert_eq!(listed[1].used_by.len(), 2);
        assert_eq!(listed[2].used_by[0].kind, "CronJob");
        assert!(parse(r#"{"kind":"List","items":[]}"#).is_err());
        assert!(
            parse("{not json")
                .unwrap_err()
                .to_string()
                .contains("not valid JSON")
        );
    }
}
