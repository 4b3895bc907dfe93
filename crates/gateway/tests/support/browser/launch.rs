//! Starting Chromium and making sure it is gone afterwards: its command line, its scratch
//! directory (profile, config, cache, stderr log), its DevTools endpoint, and the processes
//! it leaves behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

use super::cdp::timeout;
use super::{BrowserError, WAIT};

/// How long Chromium may take to start and open its first tab (several browsers may start
/// at once on two cores while the test binaries run in parallel).
pub const STARTUP: Duration = Duration::from_secs(30);

/// How to start the browser: [`Launch::default`] is what most tests want.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Accept any certificate, for an https test server with a self-signed one.
    pub ignore_certificate_errors: bool,
    /// The bound of each operation (see [`WAIT`]).
    pub timeout: Duration,
}

impl Default for Launch {
    fn default() -> Launch {
        Launch {
            ignore_certificate_errors: false,
            timeout: WAIT,
        }
    }
}

/// A running Chromium, killed with everything it started on drop: its renderer, GPU,
/// network and zygote processes are its children in the group it leads (process_group(0) at
/// spawn); its crash handlers (`chrome_crashpad_handler`) leave the group for sessions of
/// their own, and are found by the scratch directory in their command line (their crash
/// database is under `XDG_CONFIG_HOME`, which points there). The scratch directory goes
/// last (fields drop after `drop`).
pub struct Chromium {
    child: Child,
    stderr_log: PathBuf,
    scratch: tempfile::TempDir,
}

impl Drop for Chromium {
    fn drop(&mut self) {
        super::super::kill_group(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in processes_mentioning(self.scratch.path()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Chromium {
    /// Starts headless Chromium with a fresh profile and returns it with the port and path
    /// of its browser-wide DevTools websocket.
    pub async fn start(
        launch: &Launch,
        deadline: Instant,
    ) -> Result<(Chromium, u16, String), BrowserError> {
        use std::os::unix::process::CommandExt;
        let binary = chromium_binary()?;
        let scratch = tempfile::tempdir().map_err(BrowserError::Spawn)?;
        let profile = scratch.path().join("profile");
        let stderr_log = scratch.path().join("chromium.stderr");
        let stderr = std::fs::File::create(&stderr_log).map_err(BrowserError::Spawn)?;
        let mut cmd = Command::new(&binary);
        cmd.args([
            "--headless=new",
            // The tests run as root, where Chromium refuses to start with its sandbox (it
            // needs an unprivileged user for its namespaces). The pages are our own, served
            // on loopback, so the sandbox guards against nothing here.
            "--no-sandbox",
            "--disable-gpu",
            "--remote-debugging-port=0",
            // Nothing resolves but localhost and loopback addresses (the rules apply to
            // address literals too), so no page, update check or prefetch can reach past
            // the machine (and the driver itself only navigates to loopback).
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.*, EXCLUDE [::1]",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--disable-default-apps",
            "--disable-breakpad",
            "--disable-domain-reliability",
            "--no-pings",
            "--no-first-run",
            "--no-default-browser-check",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
        if launch.ignore_certificate_errors {
            cmd.arg("--ignore-certificate-errors");
        }
        // Chromium's own config and cache (the crash database among them) go to the scratch
        // directory too, not to the user's home.
        cmd.env("XDG_CONFIG_HOME", scratch.path().join("config"))
            .env("XDG_CACHE_HOME", scratch.path().join("cache"))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .process_group(0);
        let mut chromium = Chromium {
            child: cmd.spawn().map_err(BrowserError::Spawn)?,
            stderr_log,
            scratch,
        };
        let (port, path) = chromium.devtools_endpoint(&profile, deadline).await?;
        Ok((chromium, port, path))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn scratch(&self) -> &Path {
        self.scratch.path()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// Waits for Chromium to write `DevToolsActivePort` (its port, then the browser
    /// endpoint's path) into the profile: with `--remote-debugging-port=0` it picks a free
    /// port itself.
    async fn devtools_endpoint(
        &mut self,
        profile: &Path,
        deadline: Instant,
    ) -> Result<(u16, String), BrowserError> {
        let file = profile.join("DevToolsActivePort");
        loop {
            if let Ok(text) = std::fs::read_to_string(&file)
                && let Some((port, path)) = text.split_once('\n')
                && let Ok(port) = port.trim().parse::<u16>()
                && !path.trim().is_empty()
            {
                return Ok((port, path.trim().to_owned()));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let stderr = self.stderr();
                let mut tail: Vec<&str> = stderr.lines().rev().take(20).collect();
                tail.reverse();
                return Err(BrowserError::Exited {
                    status: status.to_string(),
                    stderr: tail.join("\n"),
                });
            }
            if Instant::now() >= deadline {
                return Err(timeout("chromium to write DevToolsActivePort"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `PORTCULLIS_CHROMIUM`, else `chromium` on the PATH.
fn chromium_binary() -> Result<PathBuf, BrowserError> {
    if let Some(path) = std::env::var_os("PORTCULLIS_CHROMIUM") {
        return Ok(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromium"))
        .find(|p| p.is_file())
        .ok_or_else(|| BrowserError::NotInstalled("no `chromium` on the PATH".into()))
}

/// The live processes (not this one) whose command line contains `path`.
pub fn processes_mentioning(path: &Path) -> Vec<i32> {
    let needle = path.as_os_str().as_encoded_bytes();
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid > 1 && u32::try_from(pid).is_ok_and(|p| p != me))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmd| cmd.windows(needle.len()).any(|w| w == needle))
        })
        .collect()
}
