//! The command line: init, configuration validation, the keyring, and refusing to start when
//! something is wrong (fail closed).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::support::{Backend, Deployment, Server, ServerSecret, TIPBOX, client};

fn tipbox_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(TIPBOX);
    cmd.args(args).current_dir(dir).env_remove("TIPBOX_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn init_writes_a_private_config_and_secret() {
    let dir = tempfile::tempdir().unwrap();
    let out = tipbox_in(dir.path(), &["init"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mode = |p: &str| {
        std::fs::metadata(dir.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("tipbox.toml"), 0o600);
    assert_eq!(mode("data"), 0o700);
    assert_eq!(mode("data/server.secret"), 0o600);
    let config = std::fs::read_to_string(dir.path().join("tipbox.toml")).unwrap();
    assert!(config.contains("# "), "the config is commented");
    let secret = std::fs::read(dir.path().join("data/server.secret")).unwrap();
    // A second init keeps both the config and, above all, the secret.
    let again = tipbox_in(dir.path(), &["init"], &[]);
    assert!(again.status.success());
    assert_eq!(
        std::fs::read(dir.path().join("data/server.secret")).unwrap(),
        secret
    );
    // The database it leads to is created private too.
    assert!(tipbox_in(dir.path(), &["migrate"], &[]).status.success());
    assert_eq!(mode("data/tipbox.db"), 0o600);
}

#[test]
fn configuration_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tipbox.toml");
    let cases = [
        (
            "[public]\nlisten = \"127.0.0.1:8080\"\nlisen = 1\n",
            "lisen",
        ),
        (
            "[limits]\nmax_attachment_bytes = \"lots\"\n",
            "limits.max_attachment_bytes",
        ),
        (
            "[limits]\nmax_message_bytes = 0\n",
            "limits.max_message_bytes",
        ),
        (
            "[limits]\nmax_message_bytes = 2097153\nmax_total_bytes = 9999999\n",
            "limits.max_message_bytes",
        ),
        ("[public]\nlisten = \"not an address\"\n", "public.listen"),
        ("[database]\nurl = \"mysql://x\"\n", "database.url"),
        ("[nonsense]\nx = 1\n", "nonsense"),
    ];
    for (toml, key) in cases {
        std::fs::write(&config, toml).unwrap();
        let out = tipbox_in(
            dir.path(),
            &["--config", config.to_str().unwrap(), "keys", "list"],
            &[],
        );
        assert!(!out.status.success(), "{toml} was accepted");
        assert!(stderr(&out).contains(key), "{toml}: {}", stderr(&out));
    }
    // An environment variable is checked like the file, and named when wrong.
    std::fs::write(&config, "").unwrap();
    let out = tipbox_in(
        dir.path(),
        &["--config", config.to_str().unwrap(), "keys", "list"],
        &[("TIPBOX_LIMITS__MAX_ATTACHMENT_BYTES", "lots")],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("TIPBOX_LIMITS__MAX_ATTACHMENT_BYTES"), "{err}");
    // An explicit config file that does not exist is an error, not silently the defaults.
    let out = tipbox_in(
        dir.path(),
        &["--config", "/nonexistent/tipbox.toml", "keys", "list"],
        &[],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist"));
}

#[tokio::test(flavor = "multi_thread")]
async fn environment_overrides_every_section() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.add_reviewer("alice");
    // Move the data directory and shrink a limit through the environment only.
    let other_data = deployment.path().join("elsewhere");
    let out = deployment
        .command(&["migrate"])
        .env("TIPBOX_STORAGE__DATA_DIR", &other_data)
        .env(
            "TIPBOX_DATABASE__URL",
            format!("sqlite://{}/x.db", other_data.display()),
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(other_data.join("x.db").exists());

    let mut serve = deployment.serve_command();
    serve
        .env("TIPBOX_LIMITS__MAX_MESSAGE_BYTES", "10")
        .env("TIPBOX_PUBLIC__LISTEN", "127.0.0.1:0");
    let server = Server::spawn(&deployment, serve);
    let public = &server.public;
    let response = client()
        .post(format!("{public}/submit"))
        .multipart(reqwest::multipart::Form::new().text("message", "longer than ten bytes"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);
}

#[test]
fn keys_add_accepts_public_keys_and_refuses_private_ones() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    let dir = deployment.path();

    // An age recipient in a keys/ file, labelled by its comment line.
    let identity = age::x25519::Identity::generate();
    let file = dir.join("alice.age");
    std::fs::write(
        &file,
        format!("# Alice Example (reviewer)\n{}\n", identity.to_public()),
    )
    .unwrap();
    let out = deployment.tipbox_ok(&["keys", "add", file.to_str().unwrap()]);
    assert!(out.contains("Alice Example"), "{out}");
    // The same key twice is refused.
    assert!(
        !deployment
            .tipbox(&["keys", "add", file.to_str().unwrap()])
            .status
            .success()
    );

    // SSH keys, ed25519 and RSA.
    for (kind, extra) in [("ed25519", vec![]), ("rsa", vec!["-b", "3072"])] {
        let key = dir.join(format!("id_{kind}"));
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-t", kind, "-N", "", "-C", "bob@example", "-f"])
            .arg(&key)
            .args(&extra);
        assert!(cmd.status().unwrap().success());
        let out = deployment.tipbox_ok(&[
            "keys",
            "add",
            key.with_extension("pub").to_str().unwrap(),
            "--label",
            kind,
        ]);
        assert!(out.contains(&format!("ssh-{kind}")), "{out}");
        // The private half is refused, with an explanation.
        let refused = deployment.tipbox(&["keys", "add", key.to_str().unwrap(), "--label", "x"]);
        assert!(!refused.status.success());
        assert!(
            stderr(&refused).contains("PRIVATE key"),
            "{}",
            stderr(&refused)
        );
    }

    // An age identity file is refused.
    let secret_file = dir.join("secret.txt");
    use age::secrecy::ExposeSecret;
    std::fs::write(
        &secret_file,
        format!("# me\n{}\n", identity.to_string().expose_secret()),
    )
    .unwrap();
    let refused = deployment.tipbox(&["keys", "add", secret_file.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("PRIVATE key"));

    // Garbage, and a key without a label.
    assert!(
        stderr(&deployment.tipbox(&["keys", "add", "hello", "--label", "x"]))
            .contains("not a recipient")
    );
    let unlabelled = deployment.tipbox(&[
        "keys",
        "add",
        &age::x25519::Identity::generate().to_public().to_string(),
    ]);
    assert!(stderr(&unlabelled).contains("--label"));

    let list = deployment.tipbox_ok(&["keys", "list"]);
    assert_eq!(
        list.lines().filter(|l| l.contains("active")).count(),
        3,
        "{list}"
    );
}

/// A plugin recipient whose plugin is not installed: refused at `keys add`, and if one got
/// into the keyring anyway (added on a node that has the plugin), `serve` refuses to start.
#[test]
fn a_missing_age_plugin_is_a_clear_error() {
    use bech32::{Bech32, Hrp};
    let deployment = Deployment::new(Backend::Sqlite, "");
    let recipient =
        bech32::encode::<Bech32>(Hrp::parse("age1tipboxtest").unwrap(), &[3u8; 33]).unwrap();
    let out = deployment.tipbox(&["keys", "add", &recipient, "--label", "yubikey"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("age-plugin-tipboxtest"),
        "{}",
        stderr(&out)
    );

    // Install a stand-in plugin binary only for `keys add`, then start without it.
    let bin = deployment.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let plugin = bin.join("age-plugin-tipboxtest");
    std::fs::write(&plugin, "#!/bin/sh\nexit 1\n").unwrap();
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let added = deployment
        .command(&["keys", "add", &recipient, "--label", "yubikey"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", stderr(&added));
    let serve = deployment.tipbox(&["serve"]);
    assert!(!serve.status.success(), "serve must refuse to start");
    assert!(
        stderr(&serve).contains("age-plugin-tipboxtest"),
        "{}",
        stderr(&serve)
    );
}

/// A node started with a server secret that is not the deployment's refuses to run.
#[test]
fn a_foreign_server_secret_is_refused() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.tipbox_ok(&["init"]);
    deployment.add_reviewer("alice");
    {
        let server = deployment.start();
        drop(server);
    }
    std::fs::remove_file(deployment.data_dir().join("server.secret")).unwrap();
    let out = deployment.tipbox(&["serve"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("server.secret"), "{}", stderr(&out));
    ServerSecret::create(&deployment.data_dir()).unwrap();
    let out = deployment.tipbox(&["serve"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not the one this database was set up with"),
        "{}",
        stderr(&out)
    );
}

/// `analyst onion-key` writes tor's authorized_clients/NAME.auth and prints the analyst's
/// private line; `--revoke` and `analyst disable` (with analyst.onion_service_dir) remove it.
#[tokio::test(flavor = "multi_thread")]
async fn onion_client_keys_for_analysts() {
    let deployment = Deployment::new(Backend::Sqlite, "");
    deployment.tipbox_ok(&["analyst", "add", "ana"]);
    let service = deployment.path().join("tor-analyst");
    std::fs::create_dir(&service).unwrap();
    let dir = service.to_str().unwrap();
    // (Before tor has written the address, onion-key makes the service's key itself:
    // tests/it/integrity_server.rs.)
    let address = "p53lf57qovyuvwsc6xnrppyply3vtqm7l6pcobkmyqsiofyeznfu5uqd";
    std::fs::write(service.join("hostname"), format!("{address}.onion\n")).unwrap();
    let out = deployment.tipbox(&["analyst", "onion-key", "nobody", "--service-dir", dir]);
    assert!(!out.status.success(), "only for existing analysts");

    let printed = deployment.tipbox_ok(&["analyst", "onion-key", "ana", "--service-dir", dir]);
    let line = printed.trim();
    let private = line
        .strip_prefix(&format!("{address}:descriptor:x25519:"))
        .unwrap_or_else(|| panic!("{line}"));
    let auth = std::fs::read_to_string(service.join("authorized_clients/ana.auth")).unwrap();
    let public = auth.trim().strip_prefix("descriptor:x25519:").unwrap();
    let decode = |s: &str| {
        <[u8; 32]>::try_from(
            base32::decode(base32::Alphabet::Rfc4648 { padding: false }, s).unwrap(),
        )
        .unwrap()
    };
    let secret = x25519_dalek::StaticSecret::from(decode(private));
    assert_eq!(
        x25519_dalek::PublicKey::from(&secret).as_bytes(),
        &decode(public),
        "the printed private key belongs to the written public key"
    );
    // Not twice; revoked on request.
    assert!(
        !deployment
            .tipbox(&["analyst", "onion-key", "ana", "--service-dir", dir])
            .status
            .success()
    );
    deployment.tipbox_ok(&[
        "analyst",
        "onion-key",
        "ana",
        "--service-dir",
        dir,
        "--revoke",
        // The last key: removing it opens the service (tests/it/integrity_server.rs).
        "--open-analyst-onion",
    ]);
    assert!(!service.join("authorized_clients/ana.auth").exists());

    // Disabling the analyst revokes a key made again.
    deployment.tipbox_ok(&["analyst", "onion-key", "ana", "--service-dir", dir]);
    let out = deployment
        .command(&["analyst", "disable", "ana", "--open-analyst-onion"])
        .env("TIPBOX_ANALYST__ONION_SERVICE_DIR", &service)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!service.join("authorized_clients/ana.auth").exists());
    // Every step is in the audit trail, in order, and the chain holds.
    let entries = deployment.audit_entries().await;
    let steps: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.subject.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("analyst.add", "ana"),
            ("analyst.onion_key", "ana"),
            ("analyst.onion_key_revoke", "ana"),
            ("analyst.onion_key", "ana"),
            ("analyst.disable", "ana"),
            ("analyst.onion_key_revoke", "ana"),
        ]
    );
    assert!(
        deployment
            .tipbox_ok(&["audit", "verify"])
            .contains("intact: 6 entries")
    );
}
