//! Real queries from Elastic's detection-rules (rules/linux/*.toml), each
//! named by its rule, must compile against a schema listing their fields.

use std::sync::Arc;

use super::{list, s, schema, Ev};
use crate::{Matcher, Query, Schema, Value};

/// Compiles `q`, growing a schema with every field and category the query
/// names until it compiles; fails on any other error.
fn compile_permissive(name: &str, q: &str) -> (Query, Schema) {
    let mut sch = schema(&[], &[]);
    for _ in 0..200 {
        match Query::compile(q, &sch) {
            Ok(query) => return (query, sch),
            Err(e) => {
                let m = &e.message;
                if let Some(rest) = m.strip_prefix("unknown field ") {
                    let field = rest.split(';').next().unwrap_or_default().to_string();
                    sch.fields.push(field);
                } else if let Some(rest) = m.strip_prefix("unknown event category \"") {
                    let cat = rest.split('"').next().unwrap_or_default().to_string();
                    sch.categories.push(cat);
                } else {
                    panic!("{name}: {e}");
                }
            }
        }
    }
    panic!("{name}: too many unknown names");
}

/// Potential Successful SSH Brute Force Attack (8cb84371-d053-4f4f-bce0-c74990e28f28).
const SSH_BRUTEFORCE_SUCCESS: &str = r#"
sequence by host.id, source.ip, user.name with maxspan=15s
  [authentication where host.os.type == "linux" and event.action  in ("ssh_login", "user_login") and
   event.outcome == "failure" and source.ip != null and source.ip != "0.0.0.0" and source.ip != "::" ] with runs=25
  [authentication where host.os.type == "linux" and event.action  in ("ssh_login", "user_login") and
   event.outcome == "success" and source.ip != null and source.ip != "0.0.0.0" and source.ip != "::" ]
"#;

/// Potential External Linux SSH Brute Force Detected (fa210b61-b627-4e5e-86f4-17e8270656ab).
const SSH_BRUTEFORCE_EXTERNAL: &str = r#"
sequence by host.id, source.ip, user.name with maxspan=30s
  [ authentication where host.os.type == "linux" and 
   event.action in ("ssh_login", "user_login") and event.outcome == "failure" and
   not cidrmatch(source.ip, "10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
       "192.0.0.0/29", "192.0.0.8/32", "192.0.0.9/32", "192.0.0.10/32", "192.0.0.170/32", "192.0.0.171/32",
       "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24", "192.168.0.0/16", "192.88.99.0/24", "224.0.0.0/4",
       "100.64.0.0/10", "192.175.48.0/24","198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", 
       "::1", "FE80::/10", "FF00::/8") ] with runs = 60
"#;

/// Potential Reverse Shell via UDP (a5eb21b7-13cc-4b94-9fe2-29bb2914e037).
const REVERSE_SHELL_UDP: &str = r#"
sample by host.id, process.pid, process.parent.pid
  [process where host.os.type == "linux" and event.type == "start" and event.action == "executed" and process.name : (
    "bash", "dash", "sh", "tcsh", "csh", "zsh", "ksh", "fish", "perl", "python*", "nc", "ncat", "netcat", "php*",
    "ruby", "openssl", "awk", "telnet", "lua*", "socat"
    ) and
    not process.args in ("/var/www/MISP/app/Console/cake", "/var/www/MISP/app", "/usr/local/bin/wp")]
  [process where host.os.type == "linux" and auditd.data.syscall == "socket" and process.name : (
    "bash", "dash", "sh", "tcsh", "csh", "zsh", "ksh", "fish", "perl", "python*", "nc", "ncat", "netcat", "php*",
    "ruby", "openssl", "awk", "telnet", "lua*", "socat"
    ) and auditd.data.a1 == "2"]
  [network where host.os.type == "linux" and event.type == "start" and event.action == "connected-to" and
   process.name : (
    "bash", "dash", "sh", "tcsh", "csh", "zsh", "ksh", "fish", "perl", "python*", "nc", "ncat", "netcat", "php*",
    "ruby", "openssl", "awk", "telnet", "lua*", "socat"
    ) and network.direction == "egress" and destination.ip != null and
   not cidrmatch(destination.ip, "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "::1")]
"#;

/// Suspicious APT Package Manager Execution.
const APT_SHELL: &str = r#"
sequence by host.id with maxspan=5s
  [process where host.os.type == "linux" and event.type == "start" and event.action in ("exec", "start", "ProcessRollup2") and
   process.parent.name == "apt" and process.args == "-c" and process.name in (
     "bash", "dash", "sh", "tcsh", "csh", "zsh", "ksh", "fish"
   ) and not process.executable == "/usr/lib/venv-salt-minion/bin/python.original"
  ] by process.entity_id
  [process where host.os.type == "linux" and event.type == "start" and event.action in ("exec", "start", "ProcessRollup2") and process.name like (
     "bash", "dash", "sh", "tcsh", "csh", "zsh", "ksh", "fish", "python*", "php*",
     "perl", "ruby", "lua*", "openssl", "nc", "netcat", "ncat", "telnet", "awk"
   ) and not (
     ?process.parent.executable like (
       "/run/k3s/containerd*", "/tmp/newroot/*", "/usr/share/debconf/frontend", "/var/tmp/buildah*", "./merged/*",
       "./*/vz/root/*", "/usr/bin/adequate" 
      ) or
     process.executable like ("/usr/lib/venv-salt-minion/bin/python.original", "./merged/var/lib/containers/*") or
     process.command_line in (
       "python3 /usr/sbin/omv-mkaptidx", "python3 /usr/local/bin/abr-upgrade --upgrade",
       "sh -c apt-get indextargets -o Dir::State::lists=/var/lib/apt/lists/ --format='$(FILENAME)' 'Created-By: Packages'",
       "/usr/bin/perl /usr/sbin/dpkg-preconfigure --apt", "/bin/sh -e /usr/lib/update-notifier/update-motd-updates-available",
       "/usr/bin/python3 /usr/lib/cnf-update-db", "/usr/bin/python3 /usr/bin/apt-listchanges --apt",
       "/usr/bin/perl -w /usr/sbin/dpkg-preconfigure --apt", "/bin/sh /usr/lib/needrestart/apt-pinvoke",
       "/bin/sh /usr/bin/kali-check-apt-sources", "/bin/sh /usr/lib/needrestart/apt-pinvoke -m u",
       "/usr/bin/perl /usr/sbin/needrestart",  "/usr/bin/perl -w /usr/bin/apt-show-versions -i",
       "/usr/bin/perl -w /usr/bin/apt-show-versions -i", "/usr/bin/perl -w /bin/apt-show-versions -i",
       "/usr/bin/perl /bin/adequate --help",  "/usr/bin/perl /usr/sbin/needrestart -m u", 
       "/usr/bin/perl -w /usr/share/debconf/frontend /usr/sbin/needrestart",
       "/usr/bin/python3 /sbin/katello-tracer-upload",
       "/usr/bin/python3 /usr/bin/package-profile-upload"
     ) or
     ?process.parent.command_line like ("sh -c if [ -x*", "sh -c -- if [ -x*") or
     process.args in ("/usr/sbin/needrestart", "/usr/lib/needrestart/apt-pinvoke", "/usr/share/proxmox-ve/pve-apt-hook", "/usr/bin/dpkg-source") or
     ?process.parent.args == "/usr/share/debconf/frontend"
    )
  ] by process.parent.entity_id
"#;

/// Creation of Hidden Files and Directories via CommandLine (Linux, version 8).
const HIDDEN_FILES: &str = r#"
process where event.type in ("start", "process_started") and
  process.working_directory in ("/tmp", "/var/tmp", "/dev/shm") and
  process.args regex~ """\.[a-z0-9_\-][a-z0-9_\-\.]{1,254}""" and
  not process.name in ("ls", "find")
"#;

/// Tool Enumeration Detected via Defend for Containers.
const TOOL_ENUMERATION: &str = r#"
process where host.os.type == "linux" and event.type == "start" and event.action == "exec" and (
  process.name == "which" or
  (
    /* Account for tools that execute utilities as a subprocess, in this case the target utility name will appear as a process arg */
    process.name in ("bash", "dash", "sh", "tcsh", "csh", "zsh", "ksh", "fish", "busybox") and
    process.args in ("which", "/bin/which", "/usr/bin/which", "/usr/local/bin/which") and
    /* default exclusion list to not FP on default multi-process commands */
    not process.args in (
      "man", "/bin/man", "/usr/bin/man", "/usr/local/bin/man",
      "chmod", "/bin/chmod", "/usr/bin/chmod", "/usr/local/bin/chmod",
      "chown", "/bin/chown", "/usr/bin/chown", "/usr/local/bin/chown"
    )
  )
) and
process.args in (

  /* TCP IP */
  "curl", "wget", "socat", "nc", "netcat", "ncat", "busybox", "python3", "python", "perl", "node", "openssl", "ruby", "lua",

  /* networking */
  "getent", "dig", "nslookup", "host", "ip", "tcpdump", "tshark",

  /* container management */
  "kubectl", "docker", "kubelet", "kube-proxy", "containerd", "systemd", "crictl",

  /* compilation */
  "gcc", "g++", "clang", "clang++", "cc", "c++", "c99", "c89", "cc1*", "musl-gcc", "musl-clang", "tcc", "zig", "ccache", "distcc", "make",

  /* scanning */
  "nmap", "zenmap", "nuclei", "netdiscover", "legion", "masscan", "zmap", "zgrab", "ngrep", "telnet", "mitmproxy", "zmap",
  "masscan", "zgrab"
) and
process.interactive == true and container.id like "*"
"#;

/// Web Server Child Shell Spawn Detected via Defend for Containers.
const WEB_SERVER_SHELL: &str = r#"
process where host.os.type == "linux" and event.type == "start" and event.action == "exec" and (
  process.parent.name in (
      "apache", "nginx", "apache2", "httpd", "lighttpd", "caddy", "mongrel_rails", "gunicorn",
      "uwsgi", "openresty", "cherokee", "h2o", "resin", "puma", "unicorn", "traefik", "tornado", "hypercorn",
      "daphne", "twistd", "yaws", "webfsd", "httpd.worker", "flask", "rails", "mongrel", "php-cgi",
      "php-fcgi", "php-cgi.cagefs", "catalina.sh", "hiawatha", "lswsctrl"
  ) or
  process.parent.name like "php-fpm*" or
  user.name in ("apache", "www-data", "httpd", "nginx", "lighttpd", "tomcat", "tomcat8", "tomcat9") or
  user.id in ("33", "498", "48") or
  (process.parent.name == "java" and process.parent.working_directory like "/u0?/*") or
  process.parent.working_directory like "/var/www/*"
) and (
  (process.name in ("bash", "dash", "sh", "tcsh", "csh", "zsh", "ksh", "fish", "busybox")) or
  (process.args in (
    "bash", "/bin/bash", "/usr/bin/bash", "/usr/local/bin/bash",
    "dash", "/bin/dash", "/usr/bin/dash", "/usr/local/bin/dash",
    "sh", "/bin/sh", "/usr/bin/sh", "/usr/local/bin/sh",
    "tcsh", "/bin/tcsh", "/usr/bin/tcsh", "/usr/local/bin/tcsh",
    "csh", "/bin/csh", "/usr/bin/csh", "/usr/local/bin/csh",
    "zsh", "/bin/zsh", "/usr/bin/zsh", "/usr/local/bin/zsh",
    "ksh", "/bin/ksh", "/usr/bin/ksh", "/usr/local/bin/ksh",
    "fish", "/bin/fish", "/usr/bin/fish", "/usr/local/bin/fish",
    "busybox", "/bin/busybox", "/usr/bin/busybox", "/usr/local/bin/busybox"
  ))
) and process.args == "-c" and container.id like "?*"
"#;

/// Cloud Credential Search Detected via Defend for Containers.
const CLOUD_CREDENTIAL_SEARCH: &str = r#"
process where host.os.type == "linux" and event.type == "start" and event.action == "exec" and (
  process.name in ("grep", "egrep", "fgrep", "find", "locate", "mlocate", "cat", "sed", "awk") or
  (
    /* Account for tools that execute utilities as a subprocess, in this case the target utility name will appear as a process arg */
    process.name in ("bash", "dash", "sh", "tcsh", "csh", "zsh", "ksh", "fish", "busybox") and
    process.args in (
      "grep", "/bin/grep", "/usr/bin/grep", "/usr/local/bin/grep",
      "egrep", "/bin/egrep", "/usr/bin/egrep", "/usr/local/bin/egrep",
      "fgrep", "/bin/fgrep", "/usr/bin/fgrep", "/usr/local/bin/fgrep",
      "find", "/bin/find", "/usr/bin/find", "/usr/local/bin/find",
      "locate", "/bin/locate", "/usr/bin/locate", "/usr/local/bin/locate",
      "mlocate", "/bin/mlocate", "/usr/bin/mlocate", "/usr/local/bin/mlocate",
      "cat", "/bin/cat", "/usr/bin/cat", "/usr/local/bin/cat",
      "sed", "/bin/sed", "/usr/bin/sed", "/usr/local/bin/sed",
      "awk", "/bin/awk", "/usr/bin/awk", "/usr/local/bin/awk"
    ) and 
    /* default exclusion list to not FP on default multi-process commands */
    not process.args in (
      "which", "/bin/which", "/usr/bin/which", "/usr/local/bin/which",
      "man", "/bin/man", "/usr/bin/man", "/usr/local/bin/man",
      "chmod", "/bin/chmod", "/usr/bin/chmod", "/usr/local/bin/chmod",
      "chown", "/bin/chown", "/usr/bin/chown", "/usr/local/bin/chown"
    )
  )
)
and
process.args like~ (
  /* AWS Credentials */
  "*aws_access_key_id*", "*aws_secret_access_key*", "*aws_session_token*", "*accesskeyid*", "*secretaccesskey*",
  "*access_key*", "*.aws/credentials*",

  /* Azure Credentials */
  "*AZURE_CLIENT_ID*", "*AZURE_TENANT_ID*", "*AZURE_CLIENT_SECRET*", "*AZURE_FEDERATED_TOKEN_FILE*",
  "*IDENTITY_ENDPOINT*", "*IDENTITY_HEADER*", "*MSI_ENDPOINT*", "*MSI_SECRET*",
  "*/.azure/*", "*/var/run/secrets/azure/*",

  /* GCP Credentials */
  "*/.config/gcloud/*", "*application_default_credentials.json*",
  "*type: service_account*", "*client_email*", "*private_key_id*", "*private_key*",
  "*/var/run/secrets/google/*", "*GOOGLE_APPLICATION_CREDENTIALS*"
) and process.interactive == true and container.id like "*"
"#;

const RULES: &[(&str, &str)] = &[
    (
        "Potential Successful SSH Brute Force Attack",
        SSH_BRUTEFORCE_SUCCESS,
    ),
    (
        "Potential External Linux SSH Brute Force Detected",
        SSH_BRUTEFORCE_EXTERNAL,
    ),
    ("Potential Reverse Shell via UDP", REVERSE_SHELL_UDP),
    ("Suspicious APT Package Manager Execution", APT_SHELL),
    (
        "Creation of Hidden Files and Directories via CommandLine",
        HIDDEN_FILES,
    ),
    (
        "Tool Enumeration Detected via Defend for Containers",
        TOOL_ENUMERATION,
    ),
    (
        "Web Server Child Shell Spawn Detected via Defend for Containers",
        WEB_SERVER_SHELL,
    ),
    (
        "Cloud Credential Search Detected via Defend for Containers",
        CLOUD_CREDENTIAL_SEARCH,
    ),
];

#[test]
fn elastic_linux_rules_compile() {
    for (name, q) in RULES {
        let (query, sch) = compile_permissive(name, q);
        assert!(!query.fields().is_empty(), "{name}");
        // Every field the schema had to list is one the query reads.
        for f in &sch.fields {
            assert!(query.fields().contains(f), "{name}: {f}");
        }
    }
}

#[test]
fn rule_shapes() {
    let (q, _) = compile_permissive("ssh success", SSH_BRUTEFORCE_SUCCESS);
    assert_eq!((q.stage_count(), q.maxspan_ms()), (26, Some(15_000)));
    let (q, _) = compile_permissive("ssh external", SSH_BRUTEFORCE_EXTERNAL);
    assert_eq!((q.stage_count(), q.maxspan_ms()), (60, Some(30_000)));
    let (q, _) = compile_permissive("udp", REVERSE_SHELL_UDP);
    assert!(q.is_sample());
    assert_eq!(
        q.join_fields(),
        vec!["host.id", "process.pid", "process.parent.pid"]
    );
    // The optional parent fields are not supplied, so not read.
    let (q, _) = compile_permissive("apt", APT_SHELL);
    assert!(!q.fields().iter().any(|f| f == "process.parent.executable"));
}

fn proc_ev(ms: u64, fields: &[(&str, Value<'static>)]) -> Ev {
    let mut all = vec![("event.category", list(&["process"]))];
    all.extend(fields.iter().cloned());
    super::ev(ms, &all)
}

#[test]
fn hidden_files_rule_verdicts() {
    let (q, _) = compile_permissive("hidden", HIDDEN_FILES);
    let mut m = Matcher::new(Arc::new(q));
    let base = |args: &[&str], name: &str| {
        proc_ev(
            1,
            &[
                ("event.type", list(&["start"])),
                ("process.working_directory", s("/tmp")),
                ("process.args", list(args)),
                ("process.name", s(name)),
            ],
        )
    };
    assert_eq!(m.on_event(&base(&["touch", ".Hidden"], "touch")).len(), 1);
    assert!(m.on_event(&base(&["touch", ".h"], "touch")).is_empty());
    assert!(m.on_event(&base(&["ls", ".hidden"], "ls")).is_empty());
    assert!(m
        .on_event(&base(&["touch", "x.hidden"], "touch"))
        .is_empty());
}

#[test]
fn ssh_bruteforce_rule_verdicts() {
    let (q, _) = compile_permissive("ssh success", SSH_BRUTEFORCE_SUCCESS);
    let mut m = Matcher::new(Arc::new(q));
    let auth = |ms: u64, outcome: &str, ip: &str| {
        super::ev(
            ms,
            &[
                ("event.category", list(&["authentication"])),
                ("host.os.type", s("linux")),
                ("host.id", s("h")),
                ("user.name", s("root")),
                ("event.action", s("ssh_login")),
                ("event.outcome", s(outcome)),
                ("source.ip", s(ip)),
            ],
        )
    };
    for i in 0..25 {
        assert!(m
            .on_event(&auth(i * 100, "failure", "203.0.113.9"))
            .is_empty());
    }
    let found = m.on_event(&auth(2_600, "success", "203.0.113.9"));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].len(), 26);
    // From 0.0.0.0 nothing counts.
    let (q, _) = compile_permissive("ssh success", SSH_BRUTEFORCE_SUCCESS);
    let mut m = Matcher::new(Arc::new(q));
    for i in 0..26 {
        let outcome = if i == 25 { "success" } else { "failure" };
        assert!(m.on_event(&auth(i * 100, outcome, "0.0.0.0")).is_empty());
    }
}
