use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Concurrent users (login, search, record view) against a local server
    Serve {
        #[arg(long, default_value_t = 50)]
        users: usize,
        /// Seconds of load after everyone has logged in
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Synthetic submissions (4 pages each) to serve
        #[arg(long, default_value_t = 3)]
        submissions: usize,
    },
    /// Plan, approve and execute a disposal run of N due records, with its certificate
    Dispose {
        #[arg(long, default_value_t = 100_000)]
        records: usize,
    },
}

pub fn run(c: &BenchCommand) -> anyhow::Result<ExitCode> {
    match c {
        BenchCommand::Serve { users, seconds, submissions } => {
            let opts = crate::bench::serve::Options { users: *users, seconds: *seconds, submissions: *submissions };
            let f = crate::bench::serve::run(&opts, std::io::stderr().is_terminal())?;
            println!("hozon bench serve — {} users, {} s of load on 127.0.0.1", f.users, f.seconds);
            println!("  requests           {:>10}", f.requests);
            println!("  errors             {:>10}", f.errors);
            println!("  requests/s         {:>10.1}", f.requests_per_s);
            println!("  latency p50        {:>10.2} ms", f.p50_ms);
            println!("  latency p95        {:>10.2} ms", f.p95_ms);
            println!("  latency p99        {:>10.2} ms", f.p99_ms);
            println!("  login step p99     {:>10.2} ms  (argon2id, first login with password change)", f.login_p99_ms);
            println!("  audited            {:>10}  (audit entries of kind http)", f.audited);
            println!("  peak RSS           {:>10.1} MiB", f.peak_rss_mb);
            println!("{}", serde_json::to_string(&f)?);
            Ok(if f.errors == 0 && f.audited == f.requests { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        BenchCommand::Dispose { records } => {
            let f = crate::bench::dispose::run(*records, std::io::stderr().is_terminal())?;
            println!("hozon bench dispose — {} due records", f.records);
            println!("  setup (not timed)  {:>10.1} s", f.setup_seconds);
            println!("  plan+submit+approve{:>10.2} s", f.plan_seconds);
            println!("  execute+certificate{:>10.2} s", f.execute_seconds);
            println!("  total              {:>10.2} s", f.seconds);
            println!("  records/s          {:>10.0}", f.records_per_s);
            println!("  certificate        {} ({} bytes)", f.certificate, f.certificate_bytes);
            println!("  peak RSS           {:>10.1} MiB", f.peak_rss_mb);
            println!("{}", serde_json::to_string(&f)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
