//! Parse, dispatch, print the error chain once, choose the exit code.

fn main() -> std::process::ExitCode {
    match hozon::cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hozon: エラー (error): {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
