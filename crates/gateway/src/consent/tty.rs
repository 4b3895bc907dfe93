//! The terminal channel: under `portcullis stdio`, when the gateway has a controlling
//! terminal (a host run from a shell), the person at it is asked on `/dev/tty` — never on
//! stdin or stdout, which carry MCP.
//!
//! The terminal is read only while a question is open, without blocking a thread (it is
//! opened non-blocking and polled every [`POLL`]), so a question that times out leaves
//! nothing behind that would steal the host's keystrokes later. What was typed before the
//! question appeared is discarded, so a stray Enter cannot answer it. Questions are asked
//! one at a time; each waits its turn within its own deadline. What is shown went through
//! [`super::render`]: arguments cannot send escape sequences to the terminal.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use super::elicit;
use super::request::{ConsentAnswer, Scope};
use crate::config::{ConsentSettings, RememberChoice};

/// Longest answer line read; the rest of a longer line is ignored.
const MAX_LINE: usize = 64;
/// How often an open question looks for typed input.
const POLL: Duration = Duration::from_millis(50);
/// Unrecognized answers before the question counts as denied.
const MAX_TRIES: usize = 3;

/// Why the terminal gave no decision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TtyError {
    #[error("no interactive terminal (/dev/tty cannot be opened)")]
    NoTerminal,
    #[error("no answer on the terminal in time")]
    TimedOut,
    #[error("the terminal failed: {0}")]
    Failed(String),
}

/// The terminal, one question at a time.
#[derive(Default)]
pub struct Terminal {
    turn: tokio::sync::Mutex<()>,
}

/// Whether the process has a controlling terminal to ask on.
pub fn available() -> bool {
    open().is_ok()
}

fn open() -> Result<File, TtyError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY | nix::libc::O_CLOEXEC)
        .open("/dev/tty")
        .map_err(|_| TtyError::NoTerminal)?;
    if !file.is_terminal() {
        return Err(TtyError::NoTerminal);
    }
    Ok(file)
}

/// The choices offered, as the keys a person types.
fn keys(settings: &ConsentSettings) -> Vec<(&'static str, RememberChoice, Scope, String)> {
    let ttl = elicit::say(settings.always_ttl);
    let mut out = vec![(
        "y",
        RememberChoice::Once,
        Scope::Arguments,
        "approve once".to_owned(),
    )];
    if settings.allows(RememberChoice::Session) {
        out.push((
            "s",
            RememberChoice::Session,
            Scope::Arguments,
            "approve for this session".to_owned(),
        ));
    }
    if settings.allows(RememberChoice::Always) {
        out.push((
            "a",
            RememberChoice::Always,
            Scope::Arguments,
            format!("approve for {ttl}"),
        ));
    }
    if settings.for_tool {
        if settings.allows(RememberChoice::Session) {
            out.push((
                "st",
                RememberChoice::Session,
                Scope::Tool,
                "approve this tool, any arguments, for this session".to_owned(),
            ));
        }
        if settings.allows(RememberChoice::Always) {
            out.push((
                "at",
                RememberChoice::Always,
                Scope::Tool,
                format!("approve this tool, any arguments, for {ttl}"),
            ));
        }
    }
    out
}

/// What a typed line means: `None` when it is not an answer (ask again).
fn parse(line: &str, settings: &ConsentSettings) -> Option<ConsentAnswer> {
    let typed = line.trim().to_ascii_lowercase();
    if matches!(typed.as_str(), "" | "n" | "no") {
        return Some(ConsentAnswer::Deny {
            reason: "denied on the terminal".to_owned(),
        });
    }
    let typed = if typed == "yes" {
        "y".to_owned()
    } else {
        typed
    };
    keys(settings)
        .into_iter()
        .find(|(k, ..)| *k == typed)
        .map(|(_, choice, scope, _)| ConsentAnswer::Approve {
            remember: elicit::remember(choice, settings),
            scope,
        })
}

impl Terminal {
    /// Asks the question `text` on the terminal; the answer, or why there is none by
    /// `deadline`.
    pub async fn ask(
        &self,
        text: &str,
        settings: &ConsentSettings,
        deadline: Instant,
    ) -> Result<ConsentAnswer, TtyError> {
        let deadline = tokio::time::Instant::from_std(deadline);
        let _turn = tokio::time::timeout_at(deadline, self.turn.lock())
            .await
            .map_err(|_| TtyError::TimedOut)?;
        let tty = open()?;
        discard_pending(&tty);
        let options: Vec<String> = keys(settings)
            .iter()
            .map(|(k, _, _, what)| format!("  [{k}] {what}"))
            .collect();
        // A terminal in raw mode (an interactive host's) does not turn \n into \r\n.
        let question = format!(
            "\n{text}\n\n{}\n  [n] deny (default)\nYour answer: ",
            options.join("\n")
        )
        .replace('\n', "\r\n");
        write_all(&tty, question.as_bytes()).await?;
        for _ in 0..MAX_TRIES {
            let line = match tokio::time::timeout_at(deadline, read_line(&tty)).await {
                Ok(line) => line?,
                Err(_) => {
                    let _ =
                        write_all(&tty, b"\r\nNo answer in time: the call is refused.\r\n").await;
                    return Err(TtyError::TimedOut);
                }
            };
            if let Some(answer) = parse(&line, settings) {
                let said: &[u8] = match &answer {
                    ConsentAnswer::Approve { .. } => b"Approved.\r\n",
                    ConsentAnswer::Deny { .. } => b"Denied.\r\n",
                };
                let _ = write_all(&tty, said).await;
                return Ok(answer);
            }
            write_all(&tty, b"Please type one of the letters in brackets: ").await?;
        }
        Ok(ConsentAnswer::Deny {
            reason: "no recognizable answer on the terminal".to_owned(),
        })
    }
}

/// Drops whatever was typed before the question (a non-blocking read until nothing is left).
fn discard_pending(mut tty: &File) {
    let mut buf = [0u8; 256];
    for _ in 0..64 {
        match tty.read(&mut buf) {
            Ok(n) if n > 0 => continue,
            _ => break,
        }
    }
}

async fn write_all(mut tty: &File, mut bytes: &[u8]) -> Result<(), TtyError> {
    while !bytes.is_empty() {
        match tty.write(bytes) {
            Ok(0) => return Err(TtyError::Failed("the terminal closed".into())),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => tokio::time::sleep(POLL).await,
            Err(e) => return Err(TtyError::Failed(e.to_string())),
        }
    }
    Ok(())
}

/// One line (up to a newline or carriage return), at most [`MAX_LINE`] bytes kept.
async fn read_line(mut tty: &File) -> Result<String, TtyError> {
    let mut line = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        match tty.read(&mut buf) {
            Ok(0) => return Err(TtyError::Failed("the terminal closed".into())),
            Ok(n) => {
                for &b in &buf[..n] {
                    if b == b'\n' || b == b'\r' {
                        return Ok(String::from_utf8_lossy(&line).into_owned());
                    }
                    if line.len() < MAX_LINE {
                        line.push(b);
                    }
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => tokio::time::sleep(POLL).await,
            Err(e) => return Err(TtyError::Failed(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::request::Remember;

    #[test]
    fn typed_answers_map_to_what_the_config_offers() {
        let s = ConsentSettings {
            remember: vec![RememberChoice::Once, RememberChoice::Session],
            for_tool: true,
            ..ConsentSettings::default()
        };
        assert_eq!(
            parse("y\n", &s),
            Some(ConsentAnswer::Approve {
                remember: Remember::Once,
                scope: Scope::Arguments
            })
        );
        assert_eq!(
            parse(" ST ", &s),
            Some(ConsentAnswer::Approve {
                remember: Remember::Session,
                scope: Scope::Tool
            })
        );
        assert!(matches!(parse("", &s), Some(ConsentAnswer::Deny { .. })));
        assert!(matches!(parse("no", &s), Some(ConsentAnswer::Deny { .. })));
        // Not offered, or not a choice: asked again.
        assert_eq!(parse("a", &s), None);
        assert_eq!(parse("at", &s), None);
        assert_eq!(parse("maybe", &s), None);
    }
}
