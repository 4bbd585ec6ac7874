//! What a local user who is not root could use to steer a root daemon: a
//! config or rule file others can write, a symlink planted where alerts go.
//! Each is refused at start, naming the file and the fix.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::util::TempDir;

fn check_config(config: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_audetect"))
        .arg("check-config")
        .arg("-c")
        .arg(config)
        .output()
        .expect("run audetect check-config");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn chmod(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn a_config_or_rule_others_can_write_is_refused_naming_it() {
    let dir = TempDir::new("hardening");
    let rules = dir.path().join("rules.d");
    std::fs::create_dir(&rules).unwrap();
    let rule = rules.join("mine.toml");
    std::fs::write(
        &rule,
        "[rule]\nauthor = [\"t\"]\ndescription = \"d\"\nname = \"mine\"\nrisk_score = 21\n\
         rule_id = \"mine\"\nseverity = \"low\"\ntype = \"eql\"\n\
         query = '''\nprocess where event.type == \"start\" and process.name == \"x\"\n'''\n",
    )
    .unwrap();
    let config = dir.path().join("audetect.toml");
    std::fs::write(
        &config,
        format!(
            "[detection]\nrule_paths = [{:?}]\n",
            rules.display().to_string()
        ),
    )
    .unwrap();
    chmod(&config, 0o644);
    chmod(&rules, 0o755);
    chmod(&rule, 0o644);
    let (ok, err) = check_config(&config);
    assert!(ok, "{err}");

    chmod(&config, 0o666);
    let (ok, err) = check_config(&config);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "{} is a file that its group and everyone can write (mode 0666)",
            config.display()
        )) && err.contains("chmod go-w"),
        "{err}"
    );
    chmod(&config, 0o644);

    chmod(&rule, 0o646);
    let (ok, err) = check_config(&config);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "refusing rules: {} is a file that everyone",
            rule.display()
        )),
        "{err}"
    );
    chmod(&rule, 0o644);

    // A directory others can write: they could add a rule to it.
    chmod(&rules, 0o775);
    let (ok, err) = check_config(&config);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "{} is a directory that its group can write",
            rules.display()
        )),
        "{err}"
    );
    chmod(&rules, 0o755);

    // A file owned by another user is refused as well.
    // SAFETY: chown on a path we created; uid 65534 is nobody.
    let c = std::ffi::CString::new(rule.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
    let (ok, err) = check_config(&config);
    assert!(!ok);
    assert!(err.contains("owned by uid 65534, not root"), "{err}");
}

#[test]
fn a_symlink_where_the_alerts_go_is_refused() {
    let dir = TempDir::new("hardening-link");
    let target = dir.path().join("elsewhere");
    std::fs::write(&target, "").unwrap();
    let link = dir.path().join("alerts.jsonl");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let config = audetect::config::parse_str(
        &format!(
            "[output.syslog]\nenabled = false\n[output.jsonl]\nenabled = true\npath = {:?}\n",
            link.display().to_string()
        ),
        "test",
    )
    .expect("config");
    let err = match audetect::output::Outputs::start(None, Some(&config.jsonl), "host") {
        Ok(_) => panic!("alerts opened through a symlink"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&link.display().to_string()), "{err}");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "",
        "nothing written through it"
    );
}
