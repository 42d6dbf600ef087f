//! Kubernetes validating admission (AdmissionReview `admission.k8s.io/v1`): reading the
//! request, collecting the images of a workload, and writing the response. The decision
//! itself (lookups, scans, policy) is in [`super::decide`].

use serde::Deserialize;
use serde_json::{Value, json};

use crate::detect::Severity;
use crate::report::Report;
use crate::report::describe::{short_digest, short_place};
use crate::report::model::SkipKind;
use crate::report::skips;

/// The API version this webhook speaks.
pub const API_VERSION: &str = "admission.k8s.io/v1";

/// One admission request, reduced to what the decision needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionRequest {
    pub uid: String,
    pub namespace: String,
    /// The object's kind (`Pod`, `Deployment`, …).
    pub kind: String,
    pub operation: String,
    /// Every image the object would run, in order, without duplicates.
    pub images: Vec<String>,
    /// False for kinds that run no containers (nothing to check).
    pub supported_kind: bool,
}

/// A request that cannot be answered normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewError {
    /// The uid, when the request had one.
    pub uid: Option<String>,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review {
    api_version: Option<String>,
    kind: Option<String>,
    request: Option<Value>,
}

/// Reads an AdmissionReview. Errors name what is wrong.
pub fn parse_review(body: &[u8]) -> Result<AdmissionRequest, ReviewError> {
    let error = |uid: Option<String>, message: String| ReviewError { uid, message };
    let review: Review = serde_json::from_slice(body)
        .map_err(|err| error(None, format!("the body is not an AdmissionReview: {err}")))?;
    let request = match review.request {
        Some(Value::Object(request)) => request,
        Some(_) => return Err(error(None, "request is not an object".into())),
        None => return Err(error(None, "the AdmissionReview has no request".into())),
    };
    let uid = request
        .get("uid")
        .and_then(Value::as_str)
        .filter(|uid| !uid.is_empty())
        .map(str::to_string);
    if review.kind.as_deref() != Some("AdmissionReview") {
        return Err(error(
            uid,
            format!(
                "kind is {:?}, expected \"AdmissionReview\"",
                review.kind.unwrap_or_default()
            ),
        ));
    }
    if review.api_version.as_deref() != Some(API_VERSION) {
        return Err(error(
            uid,
            format!(
                "apiVersion is {:?}; this webhook speaks {API_VERSION} (set admissionReviewVersions: [\"v1\"])",
                review.api_version.unwrap_or_default()
            ),
        ));
    }
    let Some(uid) = uid else {
        return Err(error(None, "request.uid is missing".into()));
    };
    let kind = request
        .get("kind")
        .and_then(|k| k.get("kind"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let namespace = request
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let operation = request
        .get("operation")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let object = request.get("object").filter(|o| !o.is_null());
    let (images, supported_kind) = match object {
        // DELETE and CONNECT carry no object: nothing will run.
        None => (Vec::new(), true),
        Some(object) => match images_of(&kind, object) {
            Ok(Some(images)) => (images, true),
            Ok(None) => (Vec::new(), false),
            Err(message) => return Err(error(Some(uid), message)),
        },
    };
    Ok(AdmissionRequest {
        uid,
        namespace,
        kind,
        operation,
        images,
        supported_kind,
    })
}

/// The pod spec of a workload object: `Ok(None)` for kinds that hold none.
fn pod_spec<'a>(kind: &str, object: &'a Value) -> Result<Option<&'a Value>, String> {
    let path: &[&str] = match kind {
        "Pod" => &["spec"],
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => &["spec", "template", "spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        "PodTemplate" => &["template", "spec"],
        _ => return Ok(None),
    };
    let mut node = object;
    for key in path {
        node = node.get(key).ok_or_else(|| {
            format!(
                "{kind} object has no {} (expected a pod spec there)",
                path.join(".")
            )
        })?;
    }
    if !node.is_object() {
        return Err(format!("{kind} {} is not an object", path.join(".")));
    }
    Ok(Some(node))
}

/// The images a workload object runs: containers, initContainers and ephemeralContainers of
/// its pod spec, in that order, each once. `Ok(None)` for kinds that run no containers.
pub fn images_of(kind: &str, object: &Value) -> Result<Option<Vec<String>>, String> {
    let Some(spec) = pod_spec(kind, object)? else {
        return Ok(None);
    };
    let mut images: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        let Some(containers) = spec.get(list).filter(|v| !v.is_null()) else {
            continue;
        };
        let containers = containers
            .as_array()
            .ok_or_else(|| format!("{list} is not a list"))?;
        for container in containers {
            let image = container
                .get("image")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|image| !image.is_empty());
            if let Some(image) = image
                && seen.insert(image)
            {
                images.push(image.to_string());
            }
        }
    }
    Ok(Some(images))
}

/// An AdmissionReview response.
pub fn response(
    uid: &str,
    allowed: bool,
    denial: Option<(u16, &str)>,
    warnings: &[String],
) -> Value {
    let mut response = json!({ "uid": uid, "allowed": allowed });
    if let Some((code, message)) = denial {
        response["status"] = json!({ "code": code, "message": message });
    }
    if !warnings.is_empty() {
        response["warnings"] = json!(warnings);
    }
    json!({ "apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response })
}

/// The answer to a request that could not be read: a denial with status code 400.
pub fn error_response(error: &ReviewError) -> Value {
    response(
        error.uid.as_deref().unwrap_or_default(),
        false,
        Some((
            400,
            &format!("stowaway: bad admission request: {}", error.message),
        )),
        &[],
    )
}

/// The findings of a stored report that an admission needs, and what its scan left out.
#[derive(Debug, Clone, Default)]
pub struct ReportSummary {
    pub findings: Vec<FindingLine>,
    /// Layers, files and archive members not scanned (a limit reached, an encrypted or
    /// damaged member): 0 for a complete scan.
    pub not_scanned: usize,
    /// The first thing not scanned, worded as the reports word it (names redacted).
    pub first_not_scanned: Option<String>,
}

/// One finding, redacted: rule, severity and where.
#[derive(Debug, Clone)]
pub struct FindingLine {
    pub rule_id: String,
    pub severity: Severity,
    /// `layer 2 (sha256:1234abcd…) /root/.aws/credentials (deleted in layer 3, still shipped)`
    /// (see [`short_place`]; layers and history steps counted from 1, as in every format),
    /// then how many other places hold the same secret.
    pub place: String,
}

impl ReportSummary {
    /// The findings of every image of `report`, worst first, so a truncated list keeps what
    /// matters.
    pub fn of(report: &Report) -> ReportSummary {
        let mut findings: Vec<FindingLine> = report
            .images
            .iter()
            .flat_map(|image| &image.findings)
            .map(|finding| FindingLine {
                rule_id: finding.rule_id.clone(),
                severity: finding.severity,
                place: match finding.also_found_in.len() {
                    0 => short_place(finding),
                    1 => format!("{} and 1 other place", short_place(finding)),
                    n => format!("{} and {n} other places", short_place(finding)),
                },
            })
            .collect();
        findings.sort_by_key(|finding| std::cmp::Reverse(finding.severity));
        let first_not_scanned = report
            .images
            .iter()
            .flat_map(skips::image_messages)
            .find(|(kind, _)| *kind == SkipKind::NotScanned)
            .map(|(_, text)| text);
        ReportSummary {
            findings,
            not_scanned: report.stats.items_skipped + report.stats.layers_skipped,
            first_not_scanned,
        }
    }
}

/// Reads the findings of a stored report (the JSON report format).
pub fn summarize(report_json: &[u8]) -> Result<ReportSummary, serde_json::Error> {
    let report: Report = serde_json::from_slice(report_json)?;
    Ok(ReportSummary::of(&report))
}

/// Findings listed per image in a denial message; the rest are counted.
pub const MAX_LINES_PER_IMAGE: usize = 10;

/// The denial text for one image's findings at or above `threshold`; `None` when there are
/// none.
pub fn denial_text(
    image: &str,
    digest: &str,
    summary: &ReportSummary,
    threshold: Severity,
) -> Option<String> {
    let failing: Vec<&FindingLine> = summary
        .findings
        .iter()
        .filter(|f| f.severity >= threshold)
        .collect();
    if failing.is_empty() {
        return None;
    }
    let mut text = format!(
        "image {image} ({}) has {} secret finding{} at or above {threshold}:",
        short_digest(digest),
        failing.len(),
        if failing.len() == 1 { "" } else { "s" }
    );
    for finding in failing.iter().take(MAX_LINES_PER_IMAGE) {
        text.push_str(&format!(
            "\n- {} ({}) in {}",
            finding.rule_id, finding.severity, finding.place
        ));
    }
    if failing.len() > MAX_LINES_PER_IMAGE {
        text.push_str(&format!(
            "\n- … and {} more (GET /reports/{digest})",
            failing.len() - MAX_LINES_PER_IMAGE
        ));
    }
    Some(text)
}

/// What an image's scan left out, for a denial or a warning under `on_incomplete`; `None` when
/// the scan was complete.
pub fn incomplete_text(image: &str, digest: &str, summary: &ReportSummary) -> Option<String> {
    if summary.not_scanned == 0 {
        return None;
    }
    let mut text = format!(
        "image {image} ({}) was not scanned completely: {} not scanned",
        short_digest(digest),
        skips::plural(summary.not_scanned, "item", "items")
    );
    if let Some(first) = &summary.first_not_scanned {
        let first = first.strip_prefix("not scanned: ").unwrap_or(first);
        text.push_str(&format!(" (first: {first})"));
    }
    text.push_str(&format!("; GET /reports/{digest} lists them"));
    Some(text)
}

/// Kubernetes shows warnings as single lines; keep each short.
pub fn warning(text: &str) -> String {
    const LIMIT: usize = 240;
    let line = text.replace('\n', " ");
    if line.chars().count() <= LIMIT {
        line
    } else {
        let mut cut: String = line.chars().take(LIMIT - 1).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::Status;
    use crate::report::field::ConfigField;
    use crate::report::model::{Location, LocationKind};
    use crate::report::sample;

    fn review(kind: &str, object: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u-1",
                "kind": {"group": "", "version": "v1", "kind": kind},
                "namespace": "team",
                "operation": "CREATE",
                "object": object
            }
        }))
        .unwrap()
    }

    fn pod_spec() -> Value {
        json!({
            "containers": [{"name": "a", "image": "app:1"}, {"name": "b", "image": "sidecar:2"}],
            "initContainers": [{"name": "i", "image": "init:1"}, {"name": "again", "image": "app:1"}],
            "ephemeralContainers": [{"name": "debug", "image": "busybox"}]
        })
    }

    #[test]
    fn collects_images_of_every_workload_kind() {
        let want = vec!["app:1", "sidecar:2", "init:1", "busybox"];
        let template = json!({"template": {"spec": pod_spec()}});
        for (kind, object) in [
            ("Pod", json!({"spec": pod_spec()})),
            ("Deployment", json!({"spec": template})),
            ("StatefulSet", json!({"spec": template})),
            ("DaemonSet", json!({"spec": template})),
            ("ReplicaSet", json!({"spec": template})),
            ("Job", json!({"spec": template})),
            (
                "CronJob",
                json!({"spec": {"jobTemplate": {"spec": template}}}),
            ),
        ] {
            let request = parse_review(&review(kind, object)).unwrap();
            assert_eq!(request.images, want, "{kind}");
            assert!(request.supported_kind);
            assert_eq!(request.uid, "u-1");
            assert_eq!(request.namespace, "team");
        }
    }

    #[test]
    fn other_kinds_and_deletes_hold_no_images() {
        let request = parse_review(&review("ConfigMap", json!({"data": {}}))).unwrap();
        assert!(request.images.is_empty());
        assert!(!request.supported_kind);
        let request = parse_review(&review("Pod", Value::Null)).unwrap();
        assert!(request.images.is_empty());
        assert!(request.supported_kind);
    }

    #[test]
    fn malformed_reviews_are_errors_that_keep_the_uid_when_known() {
        let err = parse_review(b"{not json").unwrap_err();
        assert_eq!(err.uid, None);
        let err = parse_review(
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{"uid":"x"}}"#,
        )
        .unwrap_err();
        assert_eq!(err.uid.as_deref(), Some("x"));
        assert!(err.message.contains("AdmissionReview"), "{}", err.message);
        let err = parse_review(
            br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}"#,
        )
        .unwrap_err();
        assert!(err.message.contains("v1beta1"));
        let err = parse_review(
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"kind":{"kind":"Pod"}}}"#,
        )
        .unwrap_err();
        assert!(err.message.contains("uid"));
        let err = parse_review(&review("Deployment", json!({"spec": {}}))).unwrap_err();
        assert!(
            err.message.contains("spec.template.spec"),
            "{}",
            err.message
        );
        let err = parse_review(&review("Pod", json!({"spec": {"containers": 3}}))).unwrap_err();
        assert!(err.message.contains("containers"));
        let body = error_response(&err);
        assert_eq!(body["response"]["uid"], "u-1");
        assert_eq!(body["response"]["allowed"], false);
        assert_eq!(body["response"]["status"]["code"], 400);
    }

    #[test]
    fn summarizes_reports_and_writes_denials() {
        // A stored report is a whole JSON report, as the CLI and the server write it.
        let findings = vec![
            sample::finding(
                "generic-password",
                Severity::Medium,
                "fedcba9876543210fedcba9876543210",
                Location {
                    kind: LocationKind::Config,
                    field: Some(ConfigField::env("DB_PASSWORD")),
                    ..Location::default()
                },
                Status::Present,
                None,
            ),
            sample::finding(
                "aws-access-key-id",
                Severity::Critical,
                "0123456789abcdef0123456789abcdef",
                Location {
                    kind: LocationKind::LayerFile,
                    layer_index: Some(1),
                    layer_digest: Some("sha256:0123456789abcdef0123".into()),
                    path: Some("/root/.aws/credentials".into()),
                    ..Location::default()
                },
                Status::Deleted,
                Some(2),
            ),
        ];
        let report = Report::new(vec![sample::image("app:1", findings)], 0);
        let summary = summarize(&serde_json::to_vec(&report).unwrap()).unwrap();
        assert_eq!(summary.findings[0].rule_id, "aws-access-key-id");
        let text = denial_text(
            "app:1",
            "sha256:feedface0000111122223333",
            &summary,
            Severity::High,
        )
        .unwrap();
        assert!(text.contains("image app:1 (sha256:feedface0000)"), "{text}");
        assert!(text.contains("aws-access-key-id (critical) in layer 2 (sha256:0123456789ab) /root/.aws/credentials (deleted in layer 3, still shipped)"), "{text}");
        assert!(!text.contains("generic-password"));
        let text = denial_text("app:1", "sha256:ff", &summary, Severity::Low).unwrap();
        assert!(text.contains("generic-password (medium) in config Env DB_PASSWORD"));
        assert!(
            denial_text(
                "app:1",
                "sha256:ff",
                &ReportSummary::default(),
                Severity::Info
            )
            .is_none()
        );
    }

    #[test]
    fn responses_have_the_v1_shape() {
        let allowed = response("u", true, None, &["careful".into()]);
        assert_eq!(allowed["apiVersion"], API_VERSION);
        assert_eq!(allowed["kind"], "AdmissionReview");
        assert_eq!(allowed["response"]["allowed"], true);
        assert_eq!(allowed["response"]["warnings"][0], "careful");
        assert!(allowed["response"].get("status").is_none());
        let denied = response("u", false, Some((403, "no")), &[]);
        assert_eq!(denied["response"]["status"]["message"], "no");
        assert!(warning(&"x".repeat(500)).chars().count() <= 240);
    }
}
