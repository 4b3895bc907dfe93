//! The sandbox around real processes (`/bin/sh` and coreutils), without the gateway: each
//! test runs a shell command inside a sandbox and checks what it could and could not do.

#![cfg(target_os = "linux")]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use portcullis_sandbox::{Network, Profile, Sandbox, SandboxTarget};

/// Runs `sh -c script` in a sandbox; returns (exit code, stdout, stderr).
fn run(
    profile: &Profile,
    roots: &[PathBuf],
    cwd: Option<&Path>,
    script: &str,
) -> (i32, String, String) {
    let args = vec!["-c".to_owned(), script.to_owned()];
    let target = SandboxTarget {
        program: Path::new("/bin/sh"),
        args: &args,
        cwd,
        roots,
    };
    let sandbox = Sandbox::new(profile, &target, true).expect("sandbox planned");
    let mut cmd = Command::new("/bin/sh");
    cmd.args(&args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let armed = sandbox.arm(&mut cmd).expect("armed");
    let spawned = cmd.spawn();
    let running = armed.finish(spawned.as_ref().map(|_| ())).expect("started");
    let mut child = spawned.expect("spawned");
    let mut out = String::new();
    let mut err = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read");
    let status = child.wait().expect("wait");
    drop(running);
    (status.code().unwrap_or(-1), out, err)
}

#[test]
fn the_server_sees_its_own_small_world() {
    let (code, out, err) = run(
        &Profile::default(),
        &[],
        None,
        "echo pid=$$; echo uid=$(id -u); hostname; ls /proc | grep -c '^[0-9]'; ls /; pwd",
    );
    assert_eq!(code, 0, "stderr: {err}");
    assert!(out.contains("pid=1\n"), "{out}");
    assert!(!out.contains("uid=0\n"), "root inside the sandbox: {out}");
    assert!(out.contains("sandbox\n"), "{out}");
    assert!(!out.contains("home") && !out.contains("root\n"), "{out}");
    assert!(out.ends_with("/tmp\n"), "{out}");
}

#[test]
fn a_home_directory_secret_is_not_there() {
    let home = tempfile::tempdir().expect("tmp");
    std::fs::create_dir(home.path().join(".ssh")).expect("mkdir");
    let key = home.path().join(".ssh/id_rsa");
    std::fs::write(&key, "PRIVATE KEY").expect("write");
    let (code, out, err) = run(
        &Profile::default(),
        &[],
        None,
        &format!("cat {}", key.display()),
    );
    assert_ne!(code, 0);
    assert!(!out.contains("PRIVATE"), "{out}");
    assert!(err.contains("No such file"), "{err}");
}

#[test]
fn writes_land_only_in_the_write_paths_and_private_tmp() {
    let root = tempfile::tempdir().expect("tmp");
    let outside = tempfile::tempdir().expect("tmp");
    let roots = [root.path().to_path_buf()];
    let profile = Profile {
        read: vec![outside.path().to_path_buf()],
        ..Profile::default()
    };
    let script = format!(
        "echo in > {r}/in.txt && echo tmp > /tmp/t && cat /tmp/t; echo x > {o}/out.txt; echo rc=$?; echo y > /usr/evil; echo rc=$?",
        r = root.path().display(),
        o = outside.path().display()
    );
    let (_, out, err) = run(&profile, &roots, Some(root.path()), &script);
    assert_eq!(
        std::fs::read_to_string(root.path().join("in.txt")).expect("written"),
        "in\n"
    );
    assert!(
        !outside.path().join("out.txt").exists(),
        "wrote into a read-only path"
    );
    assert!(!Path::new("/usr/evil").exists());
    assert_eq!(
        out.matches("rc=1").count() + out.matches("rc=2").count(),
        2,
        "{out} {err}"
    );
    assert!(out.starts_with("tmp\n"), "{out}");
}

#[test]
fn a_listener_on_the_hosts_loopback_is_out_of_reach() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // bash's /dev/tcp is not in sh; use a tiny connect through /proc-less means: python may
    // not exist, so use the shell's own redirection where available.
    let profile = Profile {
        network: Network::None,
        ..Profile::default()
    };
    let script = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected || echo refused");
    let args = vec!["-c".to_owned(), script];
    let target = SandboxTarget {
        program: Path::new("/bin/bash"),
        args: &args,
        cwd: None,
        roots: &[],
    };
    let sandbox = Sandbox::new(&profile, &target, true).expect("sandbox");
    let mut cmd = Command::new("/bin/bash");
    cmd.args(&args)
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let armed = sandbox.arm(&mut cmd).expect("armed");
    let spawned = cmd.spawn();
    let _running = armed.finish(spawned.as_ref().map(|_| ())).expect("started");
    let out = spawned
        .expect("spawned")
        .wait_with_output()
        .expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("refused"), "{stdout}");
    listener.set_nonblocking(true).expect("nonblocking");
    assert!(
        listener.accept().is_err(),
        "the sandbox reached the host's listener"
    );
}

#[test]
fn etc_holds_what_programs_need_and_not_its_secrets() {
    let (_, out, err) = run(
        &Profile::default(),
        &[],
        None,
        "cat /etc/passwd >/dev/null && echo passwd-ok; cat /etc/shadow; echo shadow-rc=$?; ls /etc/ssh; echo ssh-rc=$?",
    );
    assert!(out.contains("passwd-ok"), "{out} {err}");
    assert!(!out.contains("root:"), "shadow read: {out}");
    assert!(
        out.contains("shadow-rc=1") && !out.contains("ssh-rc=0"),
        "{out} {err}"
    );
}
