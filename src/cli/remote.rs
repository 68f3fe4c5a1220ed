//! Commands beside a running server. `hozon serve` holds the data directory (sled allows one
//! process), so it also listens on a Unix socket, `DATA/admin.sock` (mode 0600): a command at
//! the terminal that finds the directory in use sends its arguments there, and the server runs
//! it on its own open store, streaming the output back. Nobody has to stop the service for
//! routine work (ingest of a folder, batches, case import, disposal steps, backups, audit).
//!
//! Who may: the socket is the server user's alone, and the caller must also prove it holds the
//! master key file, as every command at the terminal does (it answers a fresh challenge with a
//! keyed hash under a key derived from the master key). Each command run this way is audited
//! (`admin.command`, the subcommand only, never its arguments).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use serde::{Deserialize, Serialize};

use super::Cli;
use crate::web::AppState;

/// The secrets a command may ask for: sent from the caller's environment (never prompted on
/// the server).
const SECRETS: [&str; 3] = ["HOZON_PASSWORD", "HOZON_NEW_PASSWORD", "HOZON_TOTP"];

pub fn socket_path(data: &Path) -> PathBuf {
    data.join("admin.sock")
}

#[derive(Serialize, Deserialize)]
struct Challenge {
    challenge: String,
}

#[derive(Serialize, Deserialize)]
struct Request {
    argv: Vec<String>,
    secrets: HashMap<String, String>,
    proof: String,
}

/// One message from the server: a line of output (`o` stdout, `e` stderr) or the exit code.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Reply {
    O(String),
    E(String),
    Exit(u8),
}

/// Commands a server runs for a terminal. The rest either need the directory to themselves
/// (init, key rotation), are servers or loops themselves, or do not touch this directory.
fn allowed(argv: &[String]) -> Result<(), String> {
    let cmd = argv.iter().skip(1).find(|a| !a.starts_with('-') && !is_flag_value(argv, a)).map(String::as_str);
    match cmd {
        Some("serve" | "init" | "watch" | "synth" | "bench" | "eval") => {
            Err(format!("`{}` は稼働中のサーバー経由では実行できません", cmd.unwrap_or_default()))
        }
        None => Err("コマンドがありません".into()),
        Some(_) => Ok(()),
    }
}

/// Whether `a` is the value of a global flag (`--data X`, `--key-file X`, `--resources X`).
fn is_flag_value(argv: &[String], a: &String) -> bool {
    argv.windows(2).any(|w| std::ptr::eq(&w[1], a) && matches!(w[0].as_str(), "--data" | "--key-file" | "--resources"))
}

/// The subcommand path for the audit log (`dispose submit`), without arguments.
fn command_path(cli_argv: &[String]) -> String {
    let mut out = Vec::new();
    let mut c = <Cli as clap::CommandFactory>::command();
    for a in cli_argv.iter().skip(1).filter(|a| !a.starts_with('-')) {
        match c.find_subcommand(a) {
            Some(s) => {
                out.push(a.clone());
                c = s.clone();
            }
            None => continue,
        }
    }
    out.join(" ")
}

/// Starts the socket listener on its own thread (the server's hozon does the work).
pub fn listen(state: Arc<AppState>, data: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let path = socket_path(data);
    // A socket left by a server that was killed: we hold the directory's lock, so it is stale.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let st = state.clone();
            std::thread::spawn(move || {
                if let Err(e) = handle(&st, conn) {
                    eprintln!("hozon: admin socket: {e}");
                }
            });
        }
    });
    Ok(())
}

fn send(w: &mut UnixStream, r: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(r).expect("reply serialises");
    line.push(b'\n');
    w.write_all(&line)
}

fn handle(state: &Arc<AppState>, mut conn: UnixStream) -> anyhow::Result<()> {
    let challenge = hex::encode(crate::crypto::Key::generate().expose());
    let mut line = serde_json::to_vec(&Challenge { challenge: challenge.clone() })?;
    line.push(b'\n');
    conn.write_all(&line)?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut req = String::new();
    reader.read_line(&mut req)?;
    let req: Request = serde_json::from_str(&req)?;
    let h = &state.hozon;
    if !h.admin_proof_ok(&challenge, &req.proof) {
        h.audit_event(&crate::auth::Actor::job("admin-socket"), "admin.denied", "wrong key file")?;
        send(
            &mut conn,
            &Reply::E("鍵ファイルが一致しません（このサーバーのデータディレクトリの鍵ではありません）".into()),
        )?;
        send(&mut conn, &Reply::Exit(2))?;
        return Ok(());
    }
    if let Err(why) = allowed(&req.argv) {
        send(&mut conn, &Reply::E(why))?;
        send(&mut conn, &Reply::Exit(2))?;
        return Ok(());
    }
    let cli = match Cli::try_parse_from(&req.argv) {
        Ok(c) => c,
        Err(e) => {
            send(&mut conn, &Reply::E(e.to_string()))?;
            send(&mut conn, &Reply::Exit(2))?;
            return Ok(());
        }
    };
    h.audit_event(&super::operator(), "admin.command", &command_path(&req.argv))?;
    let out = conn.try_clone()?;
    let out = std::sync::Mutex::new(out);
    let sink: super::out::Sink = Box::new(move |err, text| {
        let mut w = out.lock().expect("socket");
        let _ = send(&mut w, &if err { Reply::E(text) } else { Reply::O(text) });
    });
    let served = state.clone();
    let code = super::out::redirected(sink, req.secrets, || super::with_served(served, || super::dispatch(&cli)));
    let code = match code {
        Ok(c) => {
            if c == ExitCode::SUCCESS {
                0
            } else {
                1
            }
        }
        Err(e) => {
            send(&mut conn, &Reply::E(format!("error: {}", super::chain(&e))))?;
            1
        }
    };
    send(&mut conn, &Reply::Exit(code))?;
    Ok(())
}

/// At the terminal: runs this process's command on the server holding `data`, if one is
/// listening; `None` when there is no server to ask.
pub fn forward(data: &Path, key_file: &Path) -> Option<anyhow::Result<ExitCode>> {
    let path = socket_path(data);
    let conn = UnixStream::connect(&path).ok()?;
    Some(run_remote(conn, key_file))
}

fn run_remote(mut conn: UnixStream, key_file: &Path) -> anyhow::Result<ExitCode> {
    eprintln!("（稼働中のサーバーが使用中のため、サーバーに依頼して実行します）");
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let Challenge { challenge } = serde_json::from_str(&line)?;
    let proof = crate::store::admin_proof(key_file, &challenge)?;
    let argv: Vec<String> = std::env::args().collect();
    if let Err(why) = allowed(&argv) {
        anyhow::bail!("{why}（データディレクトリは稼働中のサーバーが使用しています）");
    }
    let secrets = SECRETS.iter().filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v))).collect();
    let mut req = serde_json::to_vec(&Request { argv, secrets, proof })?;
    req.push(b'\n');
    conn.write_all(&req)?;
    for line in reader.lines() {
        match serde_json::from_str::<Reply>(&line?)? {
            Reply::O(t) => println!("{t}"),
            Reply::E(t) => eprintln!("{t}"),
            Reply::Exit(c) => return Ok(ExitCode::from(c)),
        }
    }
    anyhow::bail!("サーバーとの接続が途中で切れました（サーバーのログを確認してください）")
}
