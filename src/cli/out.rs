//! Where a command's output goes: the terminal, or, for a command a running server executes
//! on behalf of `hozon` at a terminal (see `remote`), that terminal's socket. Commands print
//! through `outln!`/`errln!`, never `println!`, so the same code serves both.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::BufRead;

/// Receives a remote command's output lines (`true`: what would go to stderr).
pub type Sink = Box<dyn FnMut(bool, String)>;

thread_local! {
    /// Set while the server runs a command for a remote terminal: gets (is stderr, line).
    static SINK: RefCell<Option<Sink>> = const { RefCell::new(None) };
    /// The secrets the remote terminal sent (`HOZON_PASSWORD`, …), in place of the environment.
    static SECRETS: RefCell<Option<HashMap<String, String>>> = const { RefCell::new(None) };
}

/// Writes a line to the remote terminal if there is one, else to stdout (`err`: stderr).
pub fn line(err: bool, text: std::fmt::Arguments<'_>) {
    let sent = SINK.with(|s| match s.borrow_mut().as_mut() {
        Some(w) => {
            w(err, text.to_string());
            true
        }
        None => false,
    });
    if !sent {
        if err {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }
}

/// Runs `f` with output going to `sink` and secrets taken from `secrets` (a remote command).
pub fn redirected<R>(sink: Sink, secrets: HashMap<String, String>, f: impl FnOnce() -> R) -> R {
    SINK.with(|s| *s.borrow_mut() = Some(sink));
    SECRETS.with(|s| *s.borrow_mut() = Some(secrets));
    let r = f();
    SINK.with(|s| *s.borrow_mut() = None);
    SECRETS.with(|s| *s.borrow_mut() = None);
    r
}

/// Whether this command runs for a remote terminal (no stdin to read from).
pub fn is_remote() -> bool {
    SECRETS.with(|s| s.borrow().is_some())
}

/// A secret from the environment, or from what the remote terminal sent.
pub fn secret(var: &str) -> Option<String> {
    match SECRETS.with(|s| s.borrow().as_ref().map(|m| m.get(var).cloned())) {
        Some(sent) => sent,
        None => std::env::var(var).ok(),
    }
}

/// A line from standard input (or the environment variable, for scripts), after a prompt.
pub fn secret_line(env: &str, prompt: &str) -> anyhow::Result<String> {
    if let Some(v) = secret(env) {
        return Ok(v);
    }
    if is_remote() {
        anyhow::bail!("稼働中のサーバー経由では入力を求められません。環境変数 {env} を設定して実行してください");
    }
    eprint!("{prompt}");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end().to_owned())
}

/// `println!` for commands.
macro_rules! outln {
    ($($arg:tt)*) => { $crate::cli::out::line(false, format_args!($($arg)*)) };
}

/// `eprintln!` for commands.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::cli::out::line(true, format_args!($($arg)*)) };
}
