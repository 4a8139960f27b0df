//! The `headroom` binary: `run` (the daemon), `check` (one poll, for cron and DBAs),
//! `plan` (the statements that widen what runs out), `lint` (the CI gate on ID column types
//! and strict mode), `infer` (the undeclared references guessed, for review) and `bump`
//! (raise a development fleet's counters above a bound).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use headroom::cluster::Member;
use headroom::config;
use headroom::startup::App;
use headroom::telemetry::{self, LogFormat};
use headroom::web::StartError;

/// Watches ID columns and ticket servers before they run out of numbers.
#[derive(Parser)]
#[command(name = "headroom", version, about)]
struct Cli {
    /// Log lines as text or JSON (stderr; filter with RUST_LOG).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: poll every interval, serve /metrics and the API.
    Run {
        /// TOML configuration; HEADROOM__SECTION__KEY variables override it.
        #[arg(long, default_value = "config/headroom.toml")]
        config: PathBuf,
        /// Web configuration file (exporter-toolkit format: TLS, basic auth); replaces
        /// `server.web_config_file`.
        #[arg(long = "web.config.file", value_name = "FILE")]
        web_config_file: Option<PathBuf>,
        /// Own only this member's share of the shards: member I of N, counted from 0
        /// (rendezvous hashing of the shard names); replaces `[cluster]`.
        #[arg(long, value_name = "I/N")]
        member: Option<Member>,
        /// Enable `POST /-/reload` (SIGHUP reloads the configuration in any case).
        #[arg(long = "web.enable-lifecycle")]
        enable_lifecycle: bool,
    },
    /// Poll once and print the columns at warning or worse. Exit 0 all ok, 1 warning,
    /// 2 critical, exhausted, or a server unreachable (and 2 for a bad configuration).
    Check {
        #[arg(long, default_value = "config/headroom.toml")]
        config: PathBuf,
        /// Show every column, not only those at warning or worse.
        #[arg(long)]
        all: bool,
        /// Print the /api/columns JSON document instead of a table.
        #[arg(long)]
        json: bool,
        /// Check only this member's share of the shards (as `run --member`).
        #[arg(long, value_name = "I/N")]
        member: Option<Member>,
    },
    /// Poll once and print, for every column at warning or worse or narrower than what
    /// feeds it, the statements that widen it and every column that must widen with it.
    /// Exit 0 printed (also when nothing needs widening), 2 a bad configuration, a server
    /// unreachable, or `--format sql` refused (statements on several shards and no
    /// `--shard`; names with control characters bound for a terminal).
    Plan {
        #[arg(long, default_value = "config/headroom.toml")]
        config: PathBuf,
        /// `text` for people, `json` for tools, `sql` for the mariadb client (the
        /// statements of one shard, names exact: redirect it to a file).
        #[arg(long, value_enum, default_value = "text")]
        format: PlanFormat,
        /// Only columns whose `schema.table.column` matches this glob.
        #[arg(long, value_name = "GLOB")]
        column: Option<String>,
        /// With `--format sql`: the shard whose statements to write (needed when the plan
        /// has statements on more than one).
        #[arg(long, value_name = "NAME")]
        shard: Option<String>,
    },
    /// Poll every configured shard once (whatever `[cluster]` says) and list each ID column
    /// narrower than what feeds it, each auto-increment column of a type not in
    /// `[lint] allowed_auto_increment`, each signed ID column and each shard without strict
    /// mode. Exit 0 clean (or every finding allowed by `[lint] allow`), 1 at least one
    /// finding, 2 a bad configuration or a server unreachable.
    Lint {
        #[arg(long, default_value = "config/headroom.toml")]
        config: PathBuf,
        /// `text` for people, `json` for tools, `junit` for CI test reports.
        #[arg(long, value_enum, default_value = "text")]
        format: LintFormat,
    },
    /// Read every configured shard's catalog once (whatever `[cluster]` says) and print the
    /// references the inference guesses, each with its evidence and the candidates passed
    /// over, the ambiguous columns with their candidates, and the `[[inference.rules]]` that
    /// would pin each ambiguous one, ready to paste. Exit 0, 2 a bad configuration or a
    /// shard that cannot be read.
    Infer {
        #[arg(long, default_value = "config/headroom.toml")]
        config: PathBuf,
        /// `text` for people, `json` for tools.
        #[arg(long, value_enum, default_value = "text")]
        format: InferFormat,
    },
    /// Raise every ticket server and AUTO_INCREMENT counter of a development configuration
    /// above a bound, so that too narrow columns fail in development. Dry run unless
    /// --apply. Exit 0 done, 2 refused (a shard or source not `environment = "dev"`), a bad
    /// configuration or a server unreachable.
    Bump {
        /// The development configuration (TOML); required: bump never falls back to the
        /// daemon's file.
        #[arg(long)]
        config: PathBuf,
        /// Raise every counter above this value.
        #[arg(long, default_value_t = headroom::bump::DEFAULT_ABOVE)]
        above: u64,
        /// Make the changes; without it, only print what would be done.
        #[arg(long)]
        apply: bool,
    },
}

/// How `plan` prints.
#[derive(Clone, Copy, clap::ValueEnum)]
enum PlanFormat {
    Text,
    Json,
    Sql,
}

/// How `infer` prints.
#[derive(Clone, Copy, clap::ValueEnum)]
enum InferFormat {
    Text,
    Json,
}

/// How `lint` prints.
#[derive(Clone, Copy, clap::ValueEnum)]
enum LintFormat {
    Text,
    Json,
    Junit,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("headroom: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Run {
                config,
                web_config_file,
                member,
                enable_lifecycle,
            } => {
                let overrides = config::Overrides {
                    member,
                    web_config_file,
                };
                run(config, overrides, enable_lifecycle).await
            }
            Command::Check {
                config,
                all,
                json,
                member,
            } => {
                let overrides = config::Overrides {
                    member,
                    web_config_file: None,
                };
                check(config, &overrides, all, json).await
            }
            Command::Plan {
                config,
                format,
                column,
                shard,
            } => plan(config, format, column, shard).await,
            Command::Lint { config, format } => lint(config, format).await,
            Command::Infer { config, format } => infer(config, format).await,
            Command::Bump {
                config,
                above,
                apply,
            } => bump(config, above, apply).await,
        }
    })
}

fn load(
    path: &std::path::Path,
    overrides: &config::Overrides,
) -> Result<config::Settings, ExitCode> {
    let settings = config::load_with(path, overrides).map_err(|e| {
        eprintln!("headroom: {e}");
        ExitCode::from(2)
    })?;
    for warning in &settings.warnings {
        tracing::warn!(key = %warning.key, "Configuration: {}", warning.message);
    }
    Ok(settings)
}

async fn run(path: PathBuf, overrides: config::Overrides, lifecycle: bool) -> ExitCode {
    let settings = match load(&path, &overrides) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Some(member) = settings.cluster {
        tracing::info!(
            %member,
            shards = settings.shards.len(),
            configured = settings.configured_shards.len(),
            "Cluster member: polling this member's shards"
        );
    }
    let app = match App::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("headroom: {e:#}");
            // A bad web configuration file, an address that cannot be bound, a state file
            // it cannot read, a notifier it cannot prepare: fixed by changing the
            // configuration or the machine, like a bad config file (2); anything else is 1.
            let refused = e
                .chain()
                .any(|c| c.is::<StartError>() || c.is::<headroom::pager::StartError>());
            return ExitCode::from(if refused { 2 } else { 1 });
        }
    };
    let source = headroom::reload::Source { path, overrides };
    let app = app.reloadable(source, lifecycle);
    let token = CancellationToken::new();
    headroom::shutdown::cancel_on_signal(token.clone());
    if let Some(handle) = app.reload_handle() {
        headroom::shutdown::reload_on_hangup(handle, token.clone());
    }
    match app.run(token).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "Stopped on error");
            ExitCode::from(1)
        }
    }
}

async fn check(path: PathBuf, overrides: &config::Overrides, all: bool, json: bool) -> ExitCode {
    let settings = match load(&path, overrides) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match headroom::check::run(settings, all, json).await {
        Ok(outcome) => {
            print!("{}", outcome.output);
            ExitCode::from(outcome.exit_code)
        }
        Err(e) => {
            eprintln!("headroom: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn plan(
    path: PathBuf,
    format: PlanFormat,
    column: Option<String>,
    shard: Option<String>,
) -> ExitCode {
    let format = match format {
        PlanFormat::Text => headroom::plan::command::Format::Text,
        PlanFormat::Json => headroom::plan::command::Format::Json,
        PlanFormat::Sql => headroom::plan::command::Format::Sql,
    };
    if shard.is_some() && format != headroom::plan::command::Format::Sql {
        eprintln!("headroom: --shard applies to --format sql only");
        return ExitCode::from(2);
    }
    let settings = match load(&path, &config::Overrides::default()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let globs = match column
        .map(|c| headroom::policy::ColumnGlobs::new(&[c], &[]))
        .transpose()
    {
        Ok(globs) => globs,
        Err(e) => {
            eprintln!("headroom: --column: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome =
        headroom::plan::command::run(settings, format, globs.as_ref(), shard.as_deref()).await;
    if let Ok(o) = &outcome
        && o.raw_controls
        && std::io::stdout().is_terminal()
    {
        // Names written exactly could repaint or drive the terminal: the file is for the
        // mariadb client, not for a screen.
        eprintln!(
            "headroom: the SQL holds names with control characters, written exactly; it is \
             not printed to a terminal: redirect it to a file (headroom plan --format sql > \
             plan.sql)"
        );
        return ExitCode::from(2);
    }
    finish(outcome.map(|o| (o.output, o.errors, o.exit_code)))
}

/// Prints what a command wrote (stdout) and why it could not do more (stderr), and ends
/// with its exit code; 2 when it could not run at all.
fn finish(outcome: anyhow::Result<(String, String, u8)>) -> ExitCode {
    match outcome {
        Ok((output, errors, exit_code)) => {
            print!("{output}");
            eprint!("{errors}");
            ExitCode::from(exit_code)
        }
        Err(e) => {
            eprintln!("headroom: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn lint(path: PathBuf, format: LintFormat) -> ExitCode {
    let settings = match load(&path, &config::Overrides::default()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let format = match format {
        LintFormat::Text => headroom::lint::Format::Text,
        LintFormat::Json => headroom::lint::Format::Json,
        LintFormat::Junit => headroom::lint::Format::Junit,
    };
    let outcome = headroom::lint::run(settings, format).await;
    finish(outcome.map(|o| (o.output, o.errors, o.exit_code)))
}

async fn infer(path: PathBuf, format: InferFormat) -> ExitCode {
    let settings = match load(&path, &config::Overrides::default()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let format = match format {
        InferFormat::Text => headroom::infer::Format::Text,
        InferFormat::Json => headroom::infer::Format::Json,
    };
    let outcome = headroom::infer::run(settings, format).await;
    finish(Ok((outcome.output, outcome.errors, outcome.exit_code)))
}

async fn bump(path: PathBuf, above: u64, apply: bool) -> ExitCode {
    let settings = match load(&path, &config::Overrides::default()) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let outcome = headroom::bump::run(&settings, above, apply).await;
    print!("{}", outcome.output);
    eprint!("{}", outcome.errors);
    ExitCode::from(outcome.exit_code)
}
