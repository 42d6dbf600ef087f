//! The families of leaks that whole-file, path and encoding knowledge finds, planted with fresh
//! random values in one image built at test time: files named for the one secret they hold
//! (docker and Kubernetes secrets), credential flags on command lines (scripts, `RUN`, `Cmd`,
//! `Entrypoint`), PHP `define()`s and WordPress keys, Java server user files and `.properties`
//! keys (inside a jar too), and text saved in UTF-16. Each planted secret must be reported once,
//! by its rule, at its place, at its severity; the look-alikes planted beside them (placeholders,
//! low entropy, multi-line and binary files, /etc/passwd, documentation) must not be.

mod support;

use std::io::{Cursor, Write};

use serde_json::Value;
use support::run::scan_json;
use support::secrets;
use support::*;

/// Where a planted secret must be reported.
#[derive(Debug)]
enum Place {
    /// In file `path` of layer `layer`; inside the archive members `archive_path` if any.
    File {
        layer: usize,
        path: &'static str,
        archive_path: Vec<&'static str>,
    },
    /// In `created_by` of history step `index`.
    History { index: usize },
    /// In config field `field` (`Cmd`, `Entrypoint`).
    Config { field: &'static str },
}

/// One planted secret and how it must be reported.
#[derive(Debug)]
struct Expected {
    secret: String,
    rule: &'static str,
    severity: &'static str,
    place: Place,
    /// The line it is on, for files where that is worth checking.
    line: Option<u64>,
}

fn in_file(
    layer: usize,
    path: &'static str,
    rule: &'static str,
    severity: &'static str,
    secret: &str,
) -> Expected {
    Expected {
        secret: secret.to_string(),
        rule,
        severity,
        place: Place::File {
            layer,
            path,
            archive_path: Vec::new(),
        },
        line: None,
    }
}

/// A random value with a digit in it, as credential values have.
fn token(len: usize) -> String {
    format!(
        "{}7{}",
        secrets::base62(len / 2),
        secrets::base62(len - len / 2 - 1)
    )
}

/// A WordPress-style key: 64 characters of WordPress's alphabet (printable ASCII without
/// quotes or backslashes). A key holding a well-formed `${name}` or `{{ .x }}` is taken for a
/// template by the placeholder filter (about one in several thousand): drawn again, so that the
/// test does not fail once in a while for it.
fn wordpress_key() -> String {
    const ALPHABET: &[u8] =
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!@#$%^&*()-_ []{}<>~`+=,.;:/?|";
    loop {
        let key = format!("K{}9", secrets::random_from(ALPHABET, 62));
        if !key.contains("${") && !key.contains("{{") {
            return key;
        }
    }
}

fn jar(members: &[(&str, String)]) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, content) in members {
        writer
            .start_file(*name, SimpleFileOptions::default())
            .unwrap();
        writer.write_all(content.as_bytes()).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// Layer 0: secret files and their look-alikes.
fn secret_files(expected: &mut Vec<Expected>) -> Layer {
    let db_password = secrets::password(20);
    let api_key = token(32);
    let github_token = token(36);
    let jwt_secret = token(40);
    expected.push(in_file(
        0,
        "run/secrets/db_password",
        "generic-secret-file",
        "high",
        &db_password,
    ));
    expected.push(in_file(
        0,
        "etc/secrets/api-key",
        "generic-secret-file",
        "high",
        &api_key,
    ));
    expected.push(in_file(
        0,
        "app/config/github_token",
        "generic-secret-file",
        "high",
        &github_token,
    ));
    expected.push(in_file(
        0,
        "srv/app/jwt.secret",
        "generic-secret-file",
        "high",
        &jwt_secret,
    ));
    let mut binary = secrets::random_bytes(64);
    binary[0] = 0x01;
    let passwd =
        "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n";
    Layer::new(
        "COPY secrets/ / # buildkit",
        vec![
            Entry::dir("run"),
            Entry::dir("run/secrets"),
            Entry::file("run/secrets/db_password", format!("{db_password}\n")),
            Entry::file("run/secrets/admin_password", "changeme\n"),
            Entry::file("run/secrets/tmpl_password", "${DB_PASSWORD}\n"),
            Entry::file("run/secrets/low_token", "aaaa1111aaaa\n"),
            Entry::file(
                "run/secrets/two_lines",
                format!("{}\n{}\n", token(24), token(24)),
            ),
            Entry::file("run/secrets/blob_token", binary),
            Entry::dir("etc"),
            Entry::dir("etc/secrets"),
            Entry::file("etc/secrets/api-key", api_key.clone()),
            Entry::file("etc/passwd", passwd),
            Entry::dir("app"),
            Entry::dir("app/config"),
            Entry::file("app/config/github_token", format!("{github_token}\r\n")),
            Entry::dir("srv"),
            Entry::dir("srv/app"),
            Entry::file("srv/app/jwt.secret", format!("{jwt_secret}\n")),
            Entry::dir("usr"),
            Entry::dir("usr/share"),
            Entry::dir("usr/share/doc"),
            Entry::dir("usr/share/doc/tool"),
            Entry::file("usr/share/doc/tool/token", format!("{}\n", token(24))),
        ],
    )
}

/// Layer 1: PHP, Java servers and properties (in a jar), UTF-16 text and a shell script.
fn config_files(expected: &mut Vec<Expected>) -> Layer {
    let wp_password = secrets::password(18);
    let auth_key = wordpress_key();
    let tomcat = secrets::password(16);
    let jetty = secrets::password(16);
    let (jmx_monitor, jmx_control) = (secrets::password(14), secrets::password(14));
    let aws_secret = token(40);
    let api_key = token(32);
    let utf16_password = secrets::password(20);
    let utf16_token = token(32);
    let (redis, postgres, htpasswd) = (
        secrets::password(16),
        secrets::password(16),
        secrets::password(16),
    );
    expected.push(in_file(
        1,
        "var/www/html/wp-config.php",
        "php-define-password",
        "high",
        &wp_password,
    ));
    expected.push(in_file(
        1,
        "var/www/html/wp-config.php",
        "wordpress-auth-key",
        "high",
        &auth_key,
    ));
    expected.push(in_file(
        1,
        "usr/local/tomcat/conf/tomcat-users.xml",
        "tomcat-users-password",
        "high",
        &tomcat,
    ));
    expected.push(in_file(
        1,
        "var/lib/jetty/etc/realm.properties",
        "jetty-realm-password",
        "high",
        &jetty,
    ));
    expected.push(in_file(
        1,
        "opt/app/jmxremote.password",
        "jmx-remote-password-file",
        "high",
        &jmx_monitor,
    ));
    expected.push(in_file(
        1,
        "opt/app/jmxremote.password",
        "jmx-remote-password-file",
        "high",
        &jmx_control,
    ));
    for secret in [&aws_secret, &api_key] {
        expected.push(Expected {
            place: Place::File {
                layer: 1,
                path: "opt/app/app.jar",
                archive_path: vec!["BOOT-INF/classes/application.properties"],
            },
            ..in_file(1, "", "generic-properties-credential", "medium", secret)
        });
    }
    expected.push(Expected {
        line: Some(2),
        ..in_file(
            1,
            "app/deploy.env",
            "generic-password-env",
            "medium",
            &utf16_password,
        )
    });
    expected.push(Expected {
        line: Some(3),
        ..in_file(
            1,
            "app/settings.yaml",
            "generic-secret-unquoted",
            "medium",
            &utf16_token,
        )
    });
    let script = "usr/local/bin/entrypoint.sh";
    expected.push(in_file(1, script, "redis-cli-password", "high", &redis));
    expected.push(in_file(
        1,
        script,
        "postgres-cli-password",
        "high",
        &postgres,
    ));
    expected.push(in_file(
        1,
        script,
        "htpasswd-cli-password",
        "medium",
        &htpasswd,
    ));

    let wp_config = format!(
        "<?php\ndefine( 'DB_NAME', 'wordpress' );\ndefine( 'DB_USER', 'wp' );\n\
         define( 'DB_PASSWORD', '{wp_password}' );\ndefine( 'AUTH_KEY', '{auth_key}' );\n\
         define( 'NONCE_SALT', 'put your unique phrase here' );\n"
    );
    let tomcat_users = format!(
        "<tomcat-users>\n  <role rolename=\"manager-gui\"/>\n  \
         <!-- <user username=\"admin\" password=\"<must-be-changed>\" roles=\"manager-gui\"/> -->\n  \
         <user username=\"deployer\" password=\"{tomcat}\" roles=\"manager-gui\"/>\n</tomcat-users>\n"
    );
    let realm = format!(
        "# user: password,role\nadmin: {jetty},server-administrator\nguest: MD5:164c88b302622e17050af52c89945d44,user\n"
    );
    let jmx = format!("# monitorRole QED\nmonitorRole {jmx_monitor}\ncontrolRole {jmx_control}\n");
    let properties = format!(
        "server.port=8080\naws.secret.key={aws_secret}\npayment.api.key={api_key}\npayment.api.url=https://pay.corp.internal\n"
    );
    let app_jar = jar(&[
        (
            "META-INF/MANIFEST.MF",
            "Manifest-Version: 1.0\n".to_string(),
        ),
        ("BOOT-INF/classes/application.properties", properties),
    ]);
    let entrypoint = format!(
        "#!/bin/sh\nset -e\nredis-cli -h cache -a {redis} ping\n\
         PGPASSWORD={postgres} psql -h db -U app -c 'select 1'\n\
         htpasswd -cb /etc/nginx/.htpasswd admin {htpasswd}\n\
         exec /usr/local/bin/server --password \"$ADMIN_PASSWORD\" --token-file /run/secrets/token\n"
    );
    Layer::new(
        "COPY conf/ / # buildkit",
        vec![
            Entry::dir("var"),
            Entry::dir("var/www"),
            Entry::dir("var/www/html"),
            Entry::file("var/www/html/wp-config.php", wp_config),
            Entry::dir("usr"),
            Entry::dir("usr/local"),
            Entry::dir("usr/local/tomcat"),
            Entry::dir("usr/local/tomcat/conf"),
            Entry::file("usr/local/tomcat/conf/tomcat-users.xml", tomcat_users),
            Entry::dir("var/lib"),
            Entry::dir("var/lib/jetty"),
            Entry::dir("var/lib/jetty/etc"),
            Entry::file("var/lib/jetty/etc/realm.properties", realm),
            Entry::dir("opt"),
            Entry::dir("opt/app"),
            Entry::file("opt/app/jmxremote.password", jmx),
            Entry::file("opt/app/app.jar", app_jar),
            Entry::dir("app"),
            Entry::file(
                "app/deploy.env",
                utf16(
                    &format!("# deploy\r\nDB_PASSWORD={utf16_password}\r\n"),
                    false,
                    true,
                ),
            ),
            Entry::file(
                "app/settings.yaml",
                utf16(
                    &format!("log_level: info\nauth:\n  api_key: {utf16_token}\n"),
                    true,
                    false,
                ),
            ),
            Entry::dir("usr/local/bin"),
            Entry::file_mode("usr/local/bin/entrypoint.sh", entrypoint, 0o755),
        ],
    )
}

fn families_image() -> (ImageSpec, Vec<Expected>) {
    let mut expected = Vec::new();
    let layers = vec![secret_files(&mut expected), config_files(&mut expected)];
    let run_token = token(32);
    let cmd_password = secrets::password(20);
    let entrypoint_key = token(32);
    let mut spec = ImageSpec {
        layers,
        cmd: vec![
            "--listen".to_string(),
            ":8080".to_string(),
            "--admin-password".to_string(),
            cmd_password.clone(),
        ],
        entrypoint: vec![
            "/usr/local/bin/gateway".to_string(),
            format!("--api-key={entrypoint_key}"),
        ],
        repo_tag: "stowaway.test/families:1".to_string(),
        ..ImageSpec::default()
    };
    spec.layers.push(Layer::new(
        &format!(
            "RUN /bin/sh -c ./register --url https://ci.corp.internal --token={run_token} # buildkit"
        ),
        vec![Entry::dir("etc"), Entry::file("etc/registered", "yes\n")],
    ));
    let run_index = spec.history_index_of_layer(2);
    expected.push(Expected {
        secret: run_token,
        rule: "generic-cli-credential-flag",
        severity: "medium",
        place: Place::History { index: run_index },
        line: None,
    });
    expected.push(Expected {
        secret: cmd_password,
        rule: "generic-cli-credential-flag",
        severity: "medium",
        place: Place::Config { field: "Cmd" },
        line: None,
    });
    expected.push(Expected {
        secret: entrypoint_key,
        rule: "generic-cli-credential-flag",
        severity: "medium",
        place: Place::Config {
            field: "Entrypoint",
        },
        line: None,
    });
    (spec, expected)
}

fn at_place(finding: &Value, place: &Place) -> bool {
    let location = &finding["location"];
    match place {
        Place::File {
            layer,
            path,
            archive_path,
        } => {
            let members: Vec<&str> = location["archive_path"]
                .as_array()
                .map(|members| members.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            location["kind"] == "layer-file"
                && location["layer_index"] == *layer
                && location["path"] == format!("/{path}").as_str()
                && members == *archive_path
        }
        Place::History { index } => {
            location["kind"] == "history" && location["history_index"] == *index
        }
        Place::Config { field } => location["kind"] == "config" && location["field"] == *field,
    }
}

#[test]
fn every_family_is_found_at_its_place_and_severity_and_nothing_else() {
    let (spec, expected) = families_image();
    let dir = tempdir();
    let written = write_image_in(&spec, Format::OciArchive, Compression::Gzip, dir.path());
    let (code, report) = scan_json(&format!("oci-archive:{}", written.path.display()));
    assert_eq!(code, 1);
    let findings = report["images"][0]["findings"]
        .as_array()
        .expect("findings");
    let pretty = || serde_json::to_string_pretty(findings).unwrap();
    let mut explained = vec![false; findings.len()];
    for want in &expected {
        let matching: Vec<usize> = findings
            .iter()
            .enumerate()
            .filter(|(_, f)| f["secret"] == want.secret.as_str() && at_place(f, &want.place))
            .map(|(index, _)| index)
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "{want:?} should be reported once:\n{}",
            pretty()
        );
        let finding = &findings[matching[0]];
        assert_eq!(finding["rule_id"], want.rule, "{want:?}:\n{finding:#}");
        assert_eq!(finding["severity"], want.severity, "{want:?}:\n{finding:#}");
        if let Some(line) = want.line {
            assert_eq!(finding["location"]["line"], line, "{want:?}:\n{finding:#}");
        }
        explained[matching[0]] = true;
    }
    let unexplained: Vec<&Value> = findings
        .iter()
        .zip(&explained)
        .filter(|(_, seen)| !**seen)
        .map(|(finding, _)| finding)
        .collect();
    assert!(
        unexplained.is_empty(),
        "findings on look-alikes:\n{}",
        serde_json::to_string_pretty(&unexplained).unwrap()
    );
    // The UTF-16 files say so.
    for finding in findings {
        let path = finding["location"]["path"].as_str().unwrap_or_default();
        let path = path.trim_start_matches('/');
        let encoding = &finding["details"]["encoding"];
        match path {
            "app/deploy.env" => assert_eq!(encoding, "UTF-16LE"),
            "app/settings.yaml" => assert_eq!(encoding, "UTF-16BE"),
            _ => assert!(encoding.is_null(), "{finding:#}"),
        }
    }
}

/// The generators above must never make a value their rule misses (a placeholder word, too
/// little entropy): every family's planted text, drawn many times, through the detector.
#[test]
fn planted_values_are_always_found_in_their_files() {
    use stowaway::detect::Detector;
    use stowaway::detect::rules::builtin_rules;

    let detector = Detector::new(builtin_rules().unwrap()).unwrap();
    let mut misses = Vec::new();
    for _ in 0..100 {
        let mut expected = Vec::new();
        let layers = [secret_files(&mut expected), config_files(&mut expected)];
        for want in &expected {
            let Place::File {
                layer,
                path,
                archive_path,
            } = &want.place
            else {
                continue;
            };
            if !archive_path.is_empty() {
                continue;
            }
            let content = layers[*layer]
                .entries
                .iter()
                .find_map(|entry| match entry {
                    Entry::File {
                        path: p, content, ..
                    } if p == path => Some(content.clone()),
                    _ => None,
                })
                .expect("planted file");
            let found = detector.scan_file(path, &content).iter().any(|m| {
                m.base.secret == want.secret.as_bytes()
                    && detector.rules()[m.base.rule].id == want.rule
            });
            if !found {
                misses.push(format!("{path}: {} {:?}", want.rule, want.secret));
            }
        }
    }
    assert!(misses.is_empty(), "missed:\n{}", misses.join("\n"));
}
