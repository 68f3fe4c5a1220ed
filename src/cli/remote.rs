//! Commands beside a running server. `hozon serve` holds the data directory (sled allows one
//! process), so it also listens on a Unix socket, `DATA/admin.sock` (mode 0600): a command at
//! the terminal that finds the directory in use sends its arguments there, and the server runs
//! it on its own open store, streaming the output back. Nobody has to stop the service for
//! routine work (ingest of a folder, batches, case import, disposal steps, backups, audit).
//!
//! Trust, both ways, before anything secret moves: the client checks the listener is its own
//! user (or root) and that it answers a nonce under a key derived from the master key; the
//! server checks the client's answer to its challenge, bound to the exact request. Only an
//! allow-listed set of commands runs, only on the server's own data directory and key file;
//! relative paths are made absolute at the terminal. Each request is audited when it starts
//! (`admin.command`, the subcommand and the caller's user, never the arguments), when it ends
//! (`admin.done`, the exit code) or when it is refused (`admin.denied`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use clap::Parser;
use serde::{Deserialize, Serialize};

use super::{Cli, Command};
use crate::web::AppState;

/// The secrets a command may ask for: sent from the caller's environment (never prompted on
/// the server), only to a server that proved it holds the key file.
const SECRETS: [&str; 3] = ["HOZON_PASSWORD", "HOZON_NEW_PASSWORD", "HOZON_TOTP"];
/// Requests being served at once; more are turned away.
const MAX_CONNECTIONS: usize = 4;
/// The longest request line accepted.
const MAX_REQUEST: u64 = 1 << 20;

pub fn socket_path(data: &Path) -> PathBuf {
    data.join("admin.sock")
}

#[derive(Serialize, Deserialize)]
struct Hello {
    nonce: String,
}

#[derive(Serialize, Deserialize)]
struct Challenge {
    challenge: String,
    /// The server's answer to the client's nonce.
    server_proof: String,
}

#[derive(Serialize, Deserialize)]
struct Request {
    argv: Vec<String>,
    user: String,
    secrets: HashMap<String, String>,
    /// The client's answer to the challenge, bound to `argv` and the secrets sent.
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

fn server_message(nonce: &str, challenge: &str) -> String {
    format!("server\0{nonce}\0{challenge}")
}

fn client_message(challenge: &str, req: &Request) -> String {
    let mut names: Vec<&String> = req.secrets.keys().collect();
    names.sort();
    let body =
        serde_json::to_string(&(&req.argv, &req.user, &names, req.secrets.values().map(|v| v.len()).sum::<usize>()))
            .expect("request serialises");
    format!("client\0{challenge}\0{body}")
}

/// The commands a server runs for a terminal. Everything else (init, serve, the hot-folder
/// loop, key rotation, reindex, policy changes read from files, restores and drills that work
/// on another directory, synth, benchmarks) needs the directory to itself or has no reason to
/// go through the server.
fn allowed(cmd: &Command) -> Result<(), &'static str> {
    use super::admin::KeyCommand;
    use super::backup::BackupCommand;
    match cmd {
        Command::Ingest(_)
        | Command::Batch(_)
        | Command::Case(_)
        | Command::Search(_)
        | Command::Export(_)
        | Command::Draft(_)
        | Command::Doctor
        | Command::Audit(_)
        | Command::User(_)
        | Command::Gc
        | Command::Dispose(_)
        | Command::Hold(_)
        | Command::Certificate(_)
        | Command::DocBox(_)
        | Command::Key(KeyCommand::Escrow { .. })
        | Command::Backup(BackupCommand::Create { .. } | BackupCommand::List { .. } | BackupCommand::Prune { .. }) => {
            Ok(())
        }
        Command::Backup(BackupCommand::Restore { .. } | BackupCommand::Verify { .. }) => Err(
            "復元と復元訓練は別のディレクトリで行うため、サーバーを経由せずに実行してください（--data に新しいディレクトリ）",
        ),
        Command::Policy(_) | Command::Reindex | Command::Key(KeyCommand::Rotate) => {
            Err("この操作はデータディレクトリを占有します。hozon serve を止めてから実行してください")
        }
        Command::Init(_)
        | Command::Synth(_)
        | Command::Form(_)
        | Command::Watch(_)
        | Command::Serve(_)
        | Command::Eval(_)
        | Command::Bench(_) => Err("このコマンドは稼働中のサーバー経由では実行できません"),
    }
}

/// The subcommand path for the audit log (`dispose submit`), without arguments.
fn command_path(argv: &[String]) -> String {
    let mut out = Vec::new();
    let mut c = <Cli as clap::CommandFactory>::command();
    for a in argv.iter().skip(1).filter(|a| !a.starts_with('-')) {
        if let Some(s) = c.find_subcommand(a) {
            out.push(a.clone());
            c = s.clone();
        }
    }
    out.join(" ")
}

fn same_file(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_owned());
    canon(a) == canon(b)
}

/// Starts the socket listener on its own thread (the server's hozon does the work).
pub fn listen(state: Arc<AppState>, data: &Path) -> anyhow::Result<()> {
    let path = socket_path(data);
    // A socket left by a server that was killed: we hold the directory's lock, so it is stale.
    let _ = std::fs::remove_file(&path);
    // Created 0600 from the start (no moment in which the umask's mode applies).
    // SAFETY: umask only changes this process's file-creation mask, restored right after.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(&path);
    unsafe { libc::umask(old) };
    let listener = bound?;
    // Polled, so the thread ends (and lets the store close) when the server stops.
    listener.set_nonblocking(true)?;
    let busy = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new().name("admin-socket".into()).spawn(move || {
        loop {
            let mut conn = match listener.accept() {
                Ok((c, _)) if c.set_nonblocking(false).is_ok() => c,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if state.stop.wait(Duration::from_millis(100)) {
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    eprintln!("hozon: admin socket: {e}");
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
            };
            if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                busy.fetch_sub(1, Ordering::SeqCst);
                let _ = send(
                    &mut conn,
                    &Reply::E("サーバーは他のコマンドを実行中です。少し待ってからやり直してください".into()),
                );
                let _ = send(&mut conn, &Reply::Exit(75));
                continue;
            }
            let (st, b) = (state.clone(), busy.clone());
            let spawned = std::thread::Builder::new().name("admin-command".into()).spawn(move || {
                if let Err(e) = handle(&st, conn) {
                    eprintln!("hozon: admin socket: {e}");
                }
                b.fetch_sub(1, Ordering::SeqCst);
            });
            if let Err(e) = spawned {
                busy.fetch_sub(1, Ordering::SeqCst);
                eprintln!("hozon: admin socket: cannot start a thread: {e}");
            }
        }
    })?;
    Ok(())
}

fn send(w: &mut UnixStream, r: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(r).expect("reply serialises");
    line.push(b'\n');
    w.write_all(&line)
}

fn read_json<T: for<'de> Deserialize<'de>>(reader: &mut impl BufRead) -> anyhow::Result<T> {
    let mut line = String::new();
    reader.take(MAX_REQUEST).read_line(&mut line)?;
    Ok(serde_json::from_str(&line)?)
}

fn handle(state: &Arc<AppState>, mut conn: UnixStream) -> anyhow::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    conn.set_write_timeout(Some(Duration::from_secs(300)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let h = &state.hozon;
    let job = crate::auth::Actor::job("admin-socket");
    let hello: Hello = read_json(&mut reader)?;
    let challenge = hex::encode(crate::crypto::Key::generate().expose());
    let server_proof = h.admin_answer(&server_message(&hello.nonce, &challenge));
    let mut line = serde_json::to_vec(&Challenge { challenge: challenge.clone(), server_proof })?;
    line.push(b'\n');
    conn.write_all(&line)?;
    let req: Request = read_json(&mut reader)?;
    let refuse = |conn: &mut UnixStream, why: &str, code: u8| -> anyhow::Result<()> {
        h.audit_event(&job, "admin.denied", &format!("{} by {}: {why}", command_path(&req.argv), req.user), "refused")?;
        send(conn, &Reply::E(why.to_owned()))?;
        send(conn, &Reply::Exit(code))?;
        Ok(())
    };
    if !h.admin_proof_ok(&client_message(&challenge, &req), &req.proof) {
        return refuse(&mut conn, "鍵ファイルが一致しません（このサーバーのデータディレクトリの鍵ではありません）", 2);
    }
    let cli = match Cli::try_parse_from(&req.argv) {
        Ok(c) => c,
        Err(e) => return refuse(&mut conn, &e.to_string(), 2),
    };
    let (data, key_file) = h.paths();
    if !same_file(&cli.data, data) || !same_file(&cli.key_file(), key_file) || cli.resources.is_some() {
        return refuse(&mut conn, "このサーバーのデータディレクトリと鍵ファイル以外は指定できません", 2);
    }
    if let Err(why) = allowed(&cli.command) {
        return refuse(&mut conn, why, 2);
    }
    let what = format!("{} by {}", command_path(&req.argv), req.user);
    h.audit_event(&super::operator(), "admin.command", &what, "started")?;
    let out = std::sync::Mutex::new(conn.try_clone()?);
    let sink: super::out::Sink = Box::new(move |err, text| {
        let mut w = out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = send(&mut w, &if err { Reply::E(text) } else { Reply::O(text) });
    });
    let served = state.clone();
    // A bug tripped by one command fails that command, not the server.
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        super::out::redirected(sink, req.secrets.clone(), || super::with_served(served, || super::dispatch(&cli)))
    }));
    let code = match ran {
        Ok(Ok(c)) if c == ExitCode::SUCCESS => 0,
        Ok(Ok(_)) => 1,
        Ok(Err(e)) => {
            send(&mut conn, &Reply::E(format!("hozon: エラー (error): {}", super::chain(&e))))?;
            1
        }
        Err(_) => {
            send(
                &mut conn,
                &Reply::E("hozon: 内部エラーでコマンドが中断しました（サーバーのログを確認してください）".into()),
            )?;
            70
        }
    };
    h.audit_event(&super::operator(), "admin.done", &what, &format!("exit {code}"))?;
    send(&mut conn, &Reply::Exit(code))?;
    Ok(())
}

/// At the terminal: runs this process's command on the server holding `data`, if one is
/// listening; `None` when there is no server to ask.
pub fn forward(data: &Path, key_file: &Path) -> Option<anyhow::Result<ExitCode>> {
    let conn = UnixStream::connect(socket_path(data)).ok()?;
    Some(run_remote(conn, data, key_file))
}

/// The uid of the process at the other end of `conn`.
fn peer_uid(conn: &UnixStream) -> Option<u32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, which we own.
    let rc = unsafe {
        libc::getsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(cred.uid)
}

/// This process's arguments with relative paths made absolute (the server's working directory
/// is not the terminal's): arguments naming an existing file or folder, and the values of
/// options that name one to be written.
/// The data directory and key file are passed explicitly (the server's environment is not the
/// terminal's), replacing any the terminal gave.
fn absolute_argv(data: &Path, key_file: &Path) -> anyhow::Result<Vec<String>> {
    let cwd = std::env::current_dir()?;
    let mut args: Vec<String> = Vec::new();
    let mut skip = false;
    for a in std::env::args_os() {
        let a = a.into_string().map_err(|a| anyhow::anyhow!("引数 {a:?} は UTF-8 ではありません"))?;
        if std::mem::take(&mut skip) {
            continue;
        }
        if a == "--data" || a == "--key-file" {
            skip = true;
            continue;
        }
        if a.starts_with("--data=") || a.starts_with("--key-file=") {
            continue;
        }
        args.push(a);
    }
    let abs = |p: &Path| cwd.join(p).display().to_string();
    args.splice(1..1, ["--data".to_owned(), abs(data), "--key-file".to_owned(), abs(key_file)]);
    Ok(absolute_paths(&args, &cwd))
}

/// `args` with the relative paths among them made absolute against `cwd` (see
/// [`absolute_argv`]).
fn absolute_paths(args: &[String], cwd: &Path) -> Vec<String> {
    const PATH_OPTIONS: [&str; 5] = ["--csv", "--out", "--lists", "--checkpoints", "--hot-folder"];
    // `--to`/`--from` are a place only for backups and key escrow (elsewhere they are dates).
    const BACKUP_PATH_OPTIONS: [&str; 2] = ["--to", "--from"];
    let backup = args.iter().any(|a| a == "backup" || a == "escrow");
    let mut out = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        let option = if i > 0 { args[i - 1].as_str() } else { "" };
        let names_path = PATH_OPTIONS.contains(&option) || (backup && BACKUP_PATH_OPTIONS.contains(&option));
        let after_path_option = names_path && !a.starts_with("s3://");
        let p = Path::new(a);
        // `--out=FILE` as well as `--out FILE`.
        let joined = a.split_once('=').filter(|(o, v)| {
            (PATH_OPTIONS.contains(o) || (backup && BACKUP_PATH_OPTIONS.contains(o)))
                && Path::new(v).is_relative()
                && !v.starts_with("s3://")
        });
        if let Some((o, v)) = joined {
            out.push(format!("{o}={}", cwd.join(v).display()));
        } else if i > 0 && !a.starts_with('-') && p.is_relative() && (after_path_option || p.exists()) {
            out.push(cwd.join(p).display().to_string());
        } else {
            out.push(a.clone());
        }
    }
    out
}

fn run_remote(mut conn: UnixStream, data: &Path, key_file: &Path) -> anyhow::Result<ExitCode> {
    use std::os::unix::fs::MetadataExt;
    // The listener must be this user's (or root's) server, on a socket nobody else could have
    // put there.
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    let sock = std::fs::symlink_metadata(socket_path(data))?;
    let peer = peer_uid(&conn);
    if peer.is_none_or(|u| u != me && u != 0) || (sock.uid() != me && sock.uid() != 0) || sock.mode() & 0o022 != 0 {
        anyhow::bail!("{} は信頼できません（別の利用者のサーバーか、権限が緩いソケット）", socket_path(data).display());
    }
    eprintln!("（稼働中のサーバーが使用中のため、サーバーに依頼して実行します）");
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let nonce = hex::encode(crate::crypto::Key::generate().expose());
    let mut line = serde_json::to_vec(&Hello { nonce: nonce.clone() })?;
    line.push(b'\n');
    conn.write_all(&line)?;
    let c: Challenge = read_json(&mut reader)?;
    if crate::store::admin_answer(key_file, &server_message(&nonce, &c.challenge))? != c.server_proof {
        anyhow::bail!("{} のサーバーはこの鍵ファイルの持ち主ではありません", socket_path(data).display());
    }
    conn.set_read_timeout(None)?;
    let secrets = SECRETS.iter().filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v))).collect();
    let user = std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| format!("uid {me}"));
    let mut req = Request { argv: absolute_argv(data, key_file)?, user, secrets, proof: String::new() };
    req.proof = crate::store::admin_answer(key_file, &client_message(&c.challenge, &req))?;
    let mut line = serde_json::to_vec(&req)?;
    line.push(b'\n');
    conn.write_all(&line)?;
    for line in reader.lines() {
        match serde_json::from_str::<Reply>(&line?)? {
            Reply::O(t) => println!("{t}"),
            Reply::E(t) => eprintln!("{t}"),
            Reply::Exit(c) => return Ok(ExitCode::from(c)),
        }
    }
    anyhow::bail!("サーバーとの接続が途中で切れました（サーバーのログを確認してください）")
}

#[cfg(test)]
mod path_tests {
    use super::*;

    #[test]
    fn dates_stay_dates_and_paths_become_absolute() {
        let args = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let cwd = Path::new("/home/clerk");
        let out = absolute_paths(&args(&["hozon", "batch", "list", "--from", "2026-11-01", "--csv", "l.csv"]), cwd);
        assert_eq!(out[4], "2026-11-01");
        assert_eq!(out[6], "/home/clerk/l.csv");
        let out = absolute_paths(&args(&["hozon", "backup", "create", "--to", "offsite"]), cwd);
        assert_eq!(out[4], "/home/clerk/offsite");
        let out = absolute_paths(&args(&["hozon", "backup", "create", "--to", "s3://b/p"]), cwd);
        assert_eq!(out[4], "s3://b/p");
        let out = absolute_paths(&args(&["hozon", "key", "escrow", "--to", "escrow"]), cwd);
        assert_eq!(out[4], "/home/clerk/escrow");
        let out = absolute_paths(&args(&["hozon", "export", "lists", "EX1", "--out=l.zip"]), cwd);
        assert_eq!(out[4], "--out=/home/clerk/l.zip");
    }
}
