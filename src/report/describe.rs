//! Plain-language sentences about findings, shared by the SARIF and GitLab printers, by
//! baselines and by the server's admission denials. They use the finding's `secret` as the
//! report holds it (redacted unless `--show-secrets`), and the history steps as the report
//! holds them (redacted too).

use super::model::{Finding, ImageReport, Location, LocationKind, OtherPlace};
use super::remediation::is_password_hash;
use crate::layer::Status;

/// A path in the image as a container sees it, with one leading `/` (reports written before
/// paths had it are read the same).
pub fn display_path(path: &str) -> String {
    format!("/{}", path.trim_start_matches('/'))
}

/// Where a secret is, in the words every human-facing format uses, layers and history steps
/// counted from 1: `/root/.aws/credentials:3 in layer 1/6` (archive members after ` > `),
/// `history step 8 (build-arg NPM_TOKEN)`, `config Env DB_PASSWORD`.
pub fn place(location: &Location, layers: usize) -> String {
    match location.kind {
        LocationKind::LayerFile => {
            let mut text = display_path(location.path.as_deref().unwrap_or_default());
            for member in &location.archive_path {
                text.push_str(&format!(" > {member}"));
            }
            if let Some(line) = location.line {
                text.push_str(&format!(":{line}"));
            }
            let layer = location.layer_index.unwrap_or_default() + 1;
            format!("{text} in layer {layer}/{layers}")
        }
        LocationKind::History => format!(
            "history step {} ({})",
            location.history_index.unwrap_or_default() + 1,
            location.field_or("created_by")
        ),
        LocationKind::Config => config_words(location),
    }
}

/// An other place of a finding's secret, with its fate when a later layer removed the file:
/// `/home/dev/.ssh/id_ed25519.bak:1 in layer 4/6`, `config Env DB_PASSWORD`.
pub fn other_place(place_of: &OtherPlace, layers: usize) -> String {
    let mut text = place(&place_of.location, layers);
    text.push_str(&fate_words(place_of.status, place_of.removed_in_layer));
    text
}

/// ` (deleted in layer 3, still shipped)` for a file a later layer removed (the layer counted
/// from 1); nothing for one still present.
fn fate_words(status: Status, removed_in_layer: Option<usize>) -> String {
    match (status, removed_in_layer) {
        (Status::Deleted | Status::Overwritten, Some(layer)) => format!(
            " ({} in layer {}, still shipped)",
            status.as_str(),
            layer + 1
        ),
        _ => String::new(),
    }
}

/// Where the finding is, in words: `/root/.aws/credentials line 3 of layer 1/6 (sha256:…,
/// step 2: COPY …)`, `history step 8 (build-arg NPM_TOKEN)`, `config Env DB_PASSWORD`.
pub fn where_found(image: &ImageReport, finding: &Finding) -> String {
    let location = &finding.location;
    match location.kind {
        LocationKind::LayerFile => {
            let mut path = display_path(location.path.as_deref().unwrap_or_default());
            for member in &location.archive_path {
                path.push_str(&format!(" > {member}"));
            }
            let line = location
                .line
                .map(|line| format!(" line {line}"))
                .unwrap_or_default();
            let index = location.layer_index.unwrap_or_default();
            format!("{path}{line} of {}", layer_words(image, index))
        }
        LocationKind::History => {
            let index = location.history_index.unwrap_or_default();
            let step = image
                .layers
                .iter()
                .find(|layer| layer.history_index == Some(index))
                .and_then(|layer| layer.created_by.as_deref())
                .map(|created_by| format!(": {}", one_line(created_by, 100)))
                .unwrap_or_default();
            let field = location.field_or("created_by");
            format!("history step {} ({field}{step})", index + 1)
        }
        LocationKind::Config => config_words(location),
    }
}

/// Where the finding is, in a few words for one-line messages (the server's admission
/// denials, which carry no layer list): `layer 2 (sha256:0123456789ab) root/.aws/credentials
/// (deleted in layer 3, still shipped)`, `history step 8`, `config Env DB_PASSWORD`. Layers
/// and history steps count from 1, as in [`layer_words`], the text report and URIs; archive
/// members follow as in URIs (`app.jar!/config.yaml`).
pub fn short_place(finding: &Finding) -> String {
    let location = &finding.location;
    let mut place = match location.kind {
        LocationKind::History => format!(
            "history step {}",
            location.history_index.unwrap_or_default() + 1
        ),
        LocationKind::Config => config_words(location),
        LocationKind::LayerFile => {
            let mut text = format!("layer {}", location.layer_index.unwrap_or_default() + 1);
            if let Some(digest) = &location.layer_digest {
                text.push_str(&format!(" ({})", short_digest(digest)));
            }
            if let Some(path) = &location.path {
                text.push(' ');
                text.push_str(&display_path(path));
            }
            for member in &location.archive_path {
                text.push_str("!/");
                text.push_str(member.trim_start_matches('/'));
            }
            text
        }
    };
    place.push_str(&fate_words(finding.status, finding.removed_in_layer));
    place
}

/// `config Env DB_PASSWORD`.
fn config_words(location: &Location) -> String {
    format!("config {}", location.field_or("(unknown field)"))
}

/// `layer 1/6 (sha256:0123456789ab, step 2: COPY …)` for the layer at 0-based `index`.
pub fn layer_words(image: &ImageReport, index: usize) -> String {
    let total = image.layers.len();
    let Some(layer) = image.layers.get(index) else {
        return format!("layer {}/{total}", index + 1);
    };
    let mut extra = Vec::new();
    if let Some(digest) = layer.diff_id.as_deref().or(layer.digest.as_deref()) {
        extra.push(short_digest(digest));
    }
    if let Some(created_by) = &layer.created_by {
        let step = layer
            .history_index
            .map(|h| format!("step {}: ", h + 1))
            .unwrap_or_default();
        extra.push(format!("{step}{}", one_line(created_by, 100)));
    }
    if extra.is_empty() {
        format!("layer {}/{total}", index + 1)
    } else {
        format!("layer {}/{total} ({})", index + 1, extra.join(", "))
    }
}

/// What the status means for the reader, loudly when a deleted file still ships; empty for
/// files that are simply present.
pub fn status_words(finding: &Finding) -> String {
    let added = finding.location.layer_index.unwrap_or_default() + 1;
    match (finding.status, finding.removed_in_layer) {
        (Status::Deleted, removed) => format!(
            "DELETED{} BUT STILL SHIPPED: the file is gone from the container's filesystem, yet \
             layer {added} still contains it and anyone who pulls the image can extract it.",
            removed
                .map(|layer| format!(" in layer {}", layer + 1))
                .unwrap_or_default()
        ),
        (Status::Overwritten, removed) => format!(
            "OVERWRITTEN{} BUT STILL SHIPPED: a later file replaced it, yet layer {added} still \
             contains the original and anyone who pulls the image can extract it.",
            removed
                .map(|layer| format!(" in layer {}", layer + 1))
                .unwrap_or_default()
        ),
        (Status::Present, _) => String::new(),
    }
}

/// A one-paragraph account of a finding: what, where, in which image, its status and what to do.
pub fn sentence(image: &ImageReport, finding: &Finding) -> String {
    let secret = finding.secret.lines().next().unwrap_or_default().trim();
    let mut text = format!(
        "{} ({secret}) in {} of image {}.",
        finding.rule_name,
        where_found(image, finding),
        image.reference
    );
    let status = status_words(finding);
    if !status.is_empty() {
        text.push(' ');
        text.push_str(&status);
    }
    if !finding.also_found_in.is_empty() {
        let others: Vec<String> = finding
            .also_found_in
            .iter()
            .map(|p| other_place(p, image.layers.len()))
            .collect();
        text.push_str(&format!(
            " The same secret is also in: {}.",
            others.join("; ")
        ));
    }
    match finding.location.kind {
        LocationKind::History => {
            text.push_str(" The build history ships with the image and anyone can read it.")
        }
        LocationKind::Config => {
            text.push_str(" The image config ships with the image and anyone can read it.")
        }
        LocationKind::LayerFile => {}
    }
    if is_password_hash(
        finding
            .details
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    ) {
        text.push_str(
            " A password hash can be cracked offline: change that password and keep the hash \
             out of the image.",
        );
    } else {
        text.push_str(&format!(
            " Rotate it; at run time it belongs in a Docker secret or a Kubernetes Secret ({}).",
            finding.remediation.kubernetes_secret_type
        ));
    }
    text
}

/// `sha256:0123456789ab` (algorithm and 12 hex digits): enough to recognise a digest in a
/// message that also names the image.
pub fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, _)) => format!("{algorithm}:{}", short_hex(digest)),
        None => short_hex(digest).to_string(),
    }
}

/// `0123456789ab`: the first 12 hex digits of a digest, without its algorithm, for the text
/// report's columns (as `docker images` shows image IDs).
pub fn short_hex(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, hex)| hex);
    // By characters, so that a malformed digest cannot split one.
    hex.char_indices()
        .nth(12)
        .map_or(hex, |(end, _)| &hex[..end])
}

/// Whitespace collapsed, cut at `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::field::ConfigField;
    use crate::report::sample::{file_location, finding, leaky_report};

    #[test]
    fn digests_shorten_to_twelve_hex_digits() {
        let digest = "sha256:0123456789abcdef0123";
        assert_eq!(short_digest(digest), "sha256:0123456789ab");
        assert_eq!(short_hex(digest), "0123456789ab");
        assert_eq!(short_digest("sha256:ff"), "sha256:ff");
        assert_eq!(short_digest("0123456789abcdef"), "0123456789ab");
        assert_eq!(short_hex("sha256:0123456789ab\u{e9}cd"), "0123456789ab");
    }

    #[test]
    fn short_places_count_layers_from_one_and_say_what_still_ships() {
        let report = leaky_report();
        let findings = &report.images[0].findings;
        let digest = short_digest(findings[0].location.layer_digest.as_deref().unwrap());
        assert_eq!(
            short_place(&findings[0]),
            format!(
                "layer 1 ({digest}) /root/.aws/credentials (deleted in layer 2, still shipped)"
            )
        );
        assert_eq!(short_place(&findings[1]), "history step 1");
        assert_eq!(short_place(&findings[2]), "config Env DB_PASSWORD");

        let mut nested = file_location(2, "app/app.jar", 1);
        nested.archive_path = vec!["BOOT-INF/lib/x.jar".into(), "/conf.yaml".into()];
        nested.layer_digest = None;
        let overwritten = finding(
            "r",
            crate::detect::Severity::High,
            "00",
            nested,
            Status::Overwritten,
            Some(4),
        );
        assert_eq!(
            short_place(&overwritten),
            "layer 3 /app/app.jar!/BOOT-INF/lib/x.jar!/conf.yaml (overwritten in layer 5, still shipped)"
        );
    }

    #[test]
    fn where_found_names_history_fields_and_config_fields() {
        let report = leaky_report();
        let image = &report.images[0];
        assert!(
            where_found(image, &image.findings[1]).starts_with("history step 1 (build-arg AWS_KEY")
        );
        let mut config = image.findings[2].clone();
        assert_eq!(where_found(image, &config), "config Env DB_PASSWORD");
        config.location.field = Some(ConfigField::Author);
        assert_eq!(where_found(image, &config), "config author");
    }
}
