//! The command line.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::replay::{self, ReplayOptions};
use crate::runtime::PluginRuntime;

/// trailwatch: CloudTrail log files through a sandboxed plugin into your pipeline.
#[derive(Debug, Parser)]
#[command(name = "trailwatch", version, about)]
pub struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "TRAILWATCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory holding plugin `.wasm` files [default: $TRAILWATCH_PLUGIN_DIR, else the
    /// config's [plugin] dir, else ~/.local/share/trailwatch/plugins, /usr/local/lib/trailwatch/plugins
    /// and /usr/lib/trailwatch/plugins]. The plugin built into the binary is used when none there
    /// is newer.
    #[arg(long, global = true)]
    pub plugin_dir: Option<PathBuf>,
    /// Never use the plugin built into the binary, only those in the plugin directories.
    #[arg(long, global = true)]
    pub no_builtin_plugin: bool,
    /// Directory for compiled plugins [default: $XDG_CACHE_HOME/trailwatch or ~/.cache/trailwatch].
    #[arg(long, global = true)]
    pub cache_dir: Option<PathBuf>,
    /// Compile the plugin at every start instead of caching it.
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Cap on the plugin's memory per file, in MiB [default: 512].
    #[arg(long, global = true)]
    pub plugin_memory_mib: Option<u64>,
    /// Time the plugin may spend on one file, in seconds [default: 120].
    #[arg(long, global = true)]
    pub plugin_time_limit_secs: Option<u64>,
    /// Log format on stderr: `text` for people, `json` (one object per line) for machines.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields.message` (a stable
    /// text per event) and the event's fields.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read local CloudTrail files (.json.gz or .json) or directory trees; NDJSON to stdout.
    Replay {
        /// Files or directories (e.g. an `aws s3 sync` copy of a trail bucket).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Write the events to this file instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Files read at once [default: the number of cores].
        #[arg(long, short)]
        jobs: Option<usize>,
        /// Never show a progress bar.
        #[arg(long)]
        no_progress: bool,
        /// Also write the summary as JSON to this file.
        #[arg(long)]
        summary_json: Option<PathBuf>,
        /// Look each event's source address up in this ASN database (.mmdb) [default: the
        /// config's [enrich] asn_database].
        #[arg(long)]
        asn_database: Option<PathBuf>,
        /// Look each event's source address up in this country database (.mmdb) [default: the
        /// config's [enrich] country_database].
        #[arg(long)]
        country_database: Option<PathBuf>,
        /// Keep the identities' baselines in this directory across replays (learn on last
        /// month's logs, score today's) [default: learned for this replay only].
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Do not score events against their identities' pattern of life [default: the
        /// config's [scoring] enabled].
        #[arg(long)]
        no_scoring: bool,
        /// Also write the report (an HTML page: where activity came from, identities, top
        /// anomalies, incidents) of what was scored to this file.
        #[arg(long, value_name = "FILE.html")]
        report: Option<PathBuf>,
    },
    /// Write the report of what a state directory's scores gathered: one HTML page that opens
    /// without a network (a world map of where activity came from with the anomalous sources
    /// marked, each identity's activity per day, the top anomalies with their reasons, each
    /// incident as a chain of events on a timeline with its ATT&CK tactics).
    Report {
        /// The state directory of a `replay --state-dir` or of `run` [default: the config's
        /// [state] dir].
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// The HTML file to write.
        #[arg(long, value_name = "FILE.html")]
        out: PathBuf,
    },
    /// Follow the trail bucket (see the config file's [source]) and write every event.
    Run {
        /// One poll cycle, then exit (for cron); exit 1 when it failed.
        #[arg(long)]
        once: bool,
    },
    /// Show which plugin would be used, and why others would not.
    Plugin,
    /// Print the least-privilege IAM policy (JSON) this configuration needs, ready for
    /// `aws iam put-user-policy --policy-document file://…`.
    Policy {
        /// The mode the module runs in.
        #[arg(long, value_enum, default_value_t = crate::config::Mode::Default)]
        mode: crate::config::Mode,
        /// The trail's bucket.
        #[arg(long)]
        bucket: String,
        /// The key prefix before `AWSLogs/`, when the trail has one.
        #[arg(long)]
        prefix: Option<String>,
        /// The trail (name or ARN): CloudTrail actions are scoped to it [default: any trail].
        #[arg(long)]
        trail: Option<String>,
        /// The KMS key the log files are encrypted with (adds `kms:Decrypt` on it).
        #[arg(long)]
        kms_key: Option<String>,
        /// Allow `check --fix` to change the trail (StartLogging, UpdateTrail, PutEventSelectors).
        #[arg(long)]
        auto_configure: bool,
        /// Processed log files are not deleted (`[delete] enabled = false`): no `s3:DeleteObject`.
        #[arg(long)]
        no_delete: bool,
        /// The region, for the partition of the ARNs [default: the config's, else us-east-1].
        #[arg(long)]
        region: Option<String>,
        /// Read through this SQS queue (`[source] type = "sqs"`): the queue's actions instead of
        /// listing the bucket [default: the config's queue_url when its type is sqs].
        #[arg(long)]
        queue_url: Option<String>,
        /// Digests are not validated (`[integrity] enabled = false`): no
        /// `cloudtrail:ListPublicKeys` [default: the config's].
        #[arg(long)]
        no_integrity: bool,
    },
    /// Create what the module needs, where missing: the bucket, the bucket policy CloudTrail
    /// delivers with, a trail (all regions, global service events, log file validation),
    /// logging on; print the IAM policy for the module's user. Running it again changes nothing.
    Setup {
        /// The bucket the trail delivers to (created when missing).
        #[arg(long)]
        bucket: String,
        /// The trail's name.
        #[arg(long, default_value = "trailwatch")]
        trail: String,
        /// A key prefix before `AWSLogs/`.
        #[arg(long)]
        prefix: Option<String>,
        /// The region of the trail and the bucket [default: the config's, else $AWS_REGION, else us-east-1].
        #[arg(long)]
        region: Option<String>,
        /// Also write a working configuration to this file (never over a different one).
        #[arg(long)]
        write_config: Option<PathBuf>,
        /// Make an organization trail (run from the management account): the bucket policy
        /// also lets CloudTrail write under `AWSLogs/<this id>/`.
        #[arg(long, value_name = "o-…")]
        organization_id: Option<String>,
    },
    /// Validate the log files of a time range against CloudTrail's digest files (signature,
    /// chain, hashes, files no digest lists), as `aws cloudtrail validate-logs` does. Exit 0
    /// when intact, 1 when something could not be checked, 2 when anything is missing,
    /// changed, extra or forged (or verify could not run).
    Verify {
        /// From when (RFC 3339, as 2024-03-01T00:00:00Z). Default: a day before --end.
        #[arg(long, value_parser = parse_time)]
        start: Option<i64>,
        /// Until when (RFC 3339). Default: now.
        #[arg(long, value_parser = parse_time)]
        end: Option<i64>,
        /// Only this account (repeat for more).
        #[arg(long = "account", value_name = "ACCOUNT")]
        accounts: Vec<String>,
        /// Only this region (repeat for more).
        #[arg(long = "region", value_name = "REGION")]
        regions: Vec<String>,
        /// `table` for people, `json` for one finding document per line.
        #[arg(long, value_enum, default_value_t = crate::trail::Format::Table)]
        format: crate::trail::Format,
    },
    /// Check the trail's configuration once and print the findings. Exit 0 when clean (or
    /// information only), 1 with warnings, 2 with errors or when the check could not run.
    Check {
        /// `table` for people, `json` for one finding document per line.
        #[arg(long, value_enum, default_value_t = crate::trail::Format::Table)]
        format: crate::trail::Format,
        /// Apply the fixes the findings offer (never in restricted mode), print each change
        /// before and after, and check again.
        #[arg(long)]
        fix: bool,
    },
}

/// An RFC 3339 time (`2024-03-01T00:00:00Z`, fractions and offsets allowed) as ms since the
/// Unix epoch.
fn parse_time(text: &str) -> Result<i64, String> {
    humantime::parse_rfc3339_weak(text.trim().trim_end_matches('Z'))
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
        .ok_or_else(|| format!("{text:?} is not a time like 2024-03-01T00:00:00Z"))
}

/// Runs the command line; the exit code is 0 on success, 1 when some input failed, 2 when
/// trailwatch could not start (bad flags, config or plugin).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRAILWATCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colours only for a person at a terminal, not for journald or a file.
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(false).with_current_span(false).init(),
    }
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("trailwatch: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    // The report reads the state store only: no plugin needed.
    if let Command::Report { state_dir, out } = &cli.command {
        let dir = state_dir.clone().unwrap_or_else(|| config.state.dir.clone());
        let (identities, incidents) = crate::report::write_from_state_dir(&dir, out)?;
        eprintln!(
            "wrote {} ({identities} identities, {incidents} incidents)",
            out.display()
        );
        if identities == 0 {
            eprintln!(
                "nothing scored is recorded in {} yet: the report is empty",
                dir.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if cli.no_builtin_plugin {
        config.plugin.builtin = false;
    }
    if let Some(dir) = cli.cache_dir {
        config.plugin.cache_dir = Some(dir);
    }
    if cli.no_cache {
        config.plugin.cache_dir = None;
    }
    if let Some(m) = cli.plugin_memory_mib {
        config.plugin.memory_limit_mib = m;
    }
    if let Some(t) = cli.plugin_time_limit_secs {
        config.plugin.time_limit_secs = t;
    }
    config.plugin.validate()?;
    let search = config.plugin.search(cli.plugin_dir.as_deref())?;
    let cache = config.plugin.compile_cache();
    let (runtime, rejected) = PluginRuntime::from_search(&search, &cache, config.plugin.limits())?;
    crate::runtime::watch::log_rejected(&rejected);
    {
        let p = runtime.plugin();
        tracing::info!(
            plugin = %format!("{} {} sha256:{}", p.name, p.version, p.sha256),
            path = %p.path.display(),
            trusted = %crate::runtime::watch::trust_label(&search, p),
            "plugin loaded"
        );
    }
    match cli.command {
        Command::Report { .. } => unreachable!("handled before the plugin is loaded"),
        Command::Run { once } => crate::run::run(
            config,
            search,
            runtime,
            crate::run::RunOptions {
                once,
                json_logs: cli.log_format == LogFormat::Json,
                config_path: cli.config.clone(),
            },
        ),
        Command::Policy {
            mode,
            bucket,
            prefix,
            trail,
            kms_key,
            auto_configure,
            no_delete,
            region,
            queue_url,
            no_integrity,
        } => {
            let queue_url = queue_url.or_else(|| {
                (config.source.kind == crate::config::SourceKind::Sqs)
                    .then(|| config.source.queue_url.clone())
                    .flatten()
            });
            let region = region
                .or_else(|| queue_url.as_deref().and_then(crate::aws::sqs::queue_region))
                .or_else(|| config.aws.region.clone())
                .unwrap_or_else(|| "us-east-1".into());
            let options = crate::policy::PolicyOptions {
                queue: match &queue_url {
                    Some(u) => Some(crate::aws::sqs::queue_arn(u, &region).ok_or_else(|| {
                        anyhow::anyhow!("--queue-url {u}: expected https://sqs.<region>.amazonaws.com/<account>/<name>")
                    })?),
                    None => None,
                },
                mode,
                bucket,
                prefix,
                trail,
                kms_key,
                auto_configure,
                delete: !no_delete,
                region,
                integrity: !no_integrity && config.integrity.enabled != Some(false),
            };
            print!("{}", crate::policy::render(&crate::policy::policy(&options)));
            Ok(ExitCode::SUCCESS)
        }
        Command::Setup {
            bucket,
            trail,
            prefix,
            region,
            write_config,
            organization_id,
        } => {
            let options = crate::setup::SetupOptions {
                bucket,
                trail,
                prefix,
                write_config,
                organization_id,
            };
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async {
                let client = crate::run::client(&config, region.as_deref())?;
                crate::setup::setup(&config, &client, &options).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            start,
            end,
            accounts,
            regions,
            format,
        } => {
            let end_ms = end.unwrap_or_else(|| crate::clock::Clock::now_ms(&crate::clock::SystemClock));
            let start_ms = start.unwrap_or(end_ms - 86_400_000);
            if start_ms >= end_ms {
                anyhow::bail!("--start must be before --end");
            }
            let options = crate::integrity::verify::VerifyOptions {
                start_ms,
                end_ms,
                accounts,
                regions,
                format,
            };
            let code = crate::integrity::verify::run_verify(&config, &runtime, &options)?;
            Ok(ExitCode::from(code))
        }
        Command::Check { format, fix } => {
            let code = crate::trail::run_check(&config, &runtime, format, fix)?;
            Ok(ExitCode::from(code))
        }
        Command::Plugin => {
            let p = runtime.plugin();
            let from = if p.builtin {
                "built into this binary (no newer plugin in the plugin directories)".to_owned()
            } else {
                format!("from {}", p.path.display())
            };
            println!(
                "using {} {} (contract {}) {from} sha256:{}",
                p.name, p.version, p.contract_version, p.sha256
            );
            for m in &p.missing {
                println!("the plugin does not export {}: {}", m.interface, m.effect);
            }
            match (&search.trust, &p.trusted) {
                (_, Some(why)) => println!("trusted: {why}"),
                (Some(_), None) => println!("trusted: built into this binary (the trust policy covers plugin files)"),
                (None, None) => println!("trust policy: none ([plugin] require_signature is off)"),
            }
            println!("plugin directories: {}", search.describe());
            for r in &rejected {
                println!("not using {}: {}", r.path.display(), r.reason);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            paths,
            output,
            jobs,
            no_progress,
            summary_json,
            asn_database,
            country_database,
            state_dir,
            no_scoring,
            report,
        } => {
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
            let networks = crate::networks::Networks::open(
                asn_database.as_deref().or(config.enrich.asn_database.as_deref()),
                country_database
                    .as_deref()
                    .or(config.enrich.country_database.as_deref()),
            )?
            .map(std::sync::Arc::new);
            let options = ReplayOptions {
                paths,
                jobs,
                progress: !no_progress,
                networks,
                scoring: if no_scoring { None } else { config.scoring.settings() },
                state_dir,
                report,
            };
            let sink: Box<dyn crate::sink::Sink> = match output {
                Some(path) => Box::new(
                    crate::sink::file::FileSink::create("file#0".into(), path.clone())
                        .map_err(|e| anyhow::anyhow!("cannot create the output file {}: {e}", path.display()))?,
                ),
                None => Box::new(crate::sink::stdout::StdoutSink::new("stdout#0".into())),
            };
            let summary = replay::run(std::sync::Arc::new(runtime), &options, sink)?;
            let mut err = std::io::stderr().lock();
            // The summary is a report to a person; failing to print it must not change the result.
            err.write_all(summary.render().as_bytes()).ok();
            if let Some(path) = summary_json {
                let text = serde_json::to_vec_pretty(&summary)?;
                std::fs::write(&path, text)
                    .map_err(|e| anyhow::anyhow!("cannot write the summary to {}: {e}", path.display()))?;
            }
            // Events that went out without scores are output incomplete, as a failed file is.
            Ok(if summary.failures().next().is_some() || summary.unscored_batches > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}
