//! `tweetlambda`: the one command of the pipeline. Parses arguments, sets up
//! logging and configuration, and calls the command asked for.
//!
//! # Layout
//!
//! One module per command, its arguments beside the code that maps them to
//! the library's configuration: [`load`], [`replay`], [`generate`],
//! [`migrate`], [`peek`], [`speed`], [`finals`], [`archive`] (with `compact`), [`batch`],
//! [`serve`] (with `query`), [`index`], [`kibana`], [`x`]. [`common`] holds the arguments and parsers
//! several commands share; [`config`] the optional configuration file, whose
//! keys are derived from the flags below.

mod archive;
mod batch;
mod common;
mod config;
mod finals;
mod generate;
mod index;
mod kibana;
mod load;
mod migrate;
mod peek;
mod replay;
mod serve;
mod speed;
mod x;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// Lambda-architecture analytics of tweet streams.
#[derive(Parser, Debug)]
#[command(name = "tweetlambda", version, about)]
struct Cli {
    /// TOML configuration file (see README, "Configuration").
    #[arg(long, global = true, env = "TWEETLAMBDA_CONFIG")]
    config: Option<PathBuf>,
    /// Log filter, e.g. `info`, `debug`, `tweetlambda_replayer=debug`.
    #[arg(long, global = true, env = "TWEETLAMBDA_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Import tweet files (API v1.1 JSONL, API v2 JSON, CSV export) into MySQL.
    Load(load::LoadArgs),
    /// Stream tweets from MySQL into Kafka in event-time order.
    Replay(replay::ReplayArgs),
    /// Write synthetic tweets into MySQL (for benchmarks).
    Generate(generate::GenerateArgs),
    /// Create the schema of `sql/` in a database (idempotent).
    Migrate(common::MysqlArgs),
    /// Count the messages of topics and show the first ones.
    Peek(peek::PeekArgs),
    /// Run the speed layer: rolling top hashtags and top tweets.
    Speed(speed::SpeedArgs),
    /// Print the final top-N of each window instance published by the speed layer.
    Finals(finals::FinalsArgs),
    /// Copy the tweets topic into the master dataset (Parquet by event date).
    Archive(archive::ArchiveArgs),
    /// Merge the master dataset's small files (the archive does it as it runs).
    Compact(archive::CompactArgs),
    /// Recompute the batch views from the master dataset and publish them (for cron).
    Batch(batch::BatchArgs),
    /// Serve merged top-N over HTTP (JSON API, dashboard, metrics).
    Serve(serve::ServeArgs),
    /// Ask a running server for top hashtags, top tweets or a series.
    Query(serve::QueryArgs),
    /// Index the tweets topic into Elasticsearch (for Kibana).
    Index(index::IndexArgs),
    /// Kibana: import the tweetlambda dashboard.
    Kibana(kibana::KibanaArgs),
    /// Live tweets from the X API v2 (recent search, filtered stream) into Kafka.
    X(x::XArgs),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let mut kafka_from_file = Vec::new();
    if let Some(path) = config::config_path(&args) {
        match config::read(&path, &config::file_keys(&Cli::command())) {
            Ok(settings) => {
                for (var, value) in settings.env {
                    if std::env::var_os(&var).is_none() {
                        // Single-threaded here: no runtime has started yet.
                        std::env::set_var(var, value);
                    }
                }
                kafka_from_file = settings.kafka;
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        }
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: logs piped to a file stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, kafka_from_file)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, each cause once: a layer whose
/// message already ends with its cause (`MySQL insert tweets: {source}`),
/// as many do, is not followed by that cause again.
fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    let mut previous = String::new();
    for cause in e.chain() {
        let message = cause.to_string();
        if previous.ends_with(&message) {
            previous = message;
            continue;
        }
        previous.clone_from(&message);
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&message);
    }
    text
}

async fn run(command: Command, kafka_from_file: Vec<(String, String)>) -> anyhow::Result<ExitCode> {
    let file = &kafka_from_file;
    match command {
        Command::Load(a) => load::run(a).await,
        Command::Replay(a) => replay::run(a, file).await,
        Command::Generate(a) => generate::run(a).await,
        Command::Migrate(a) => migrate::run(a).await,
        Command::Peek(a) => peek::run(a, file).await,
        Command::Speed(a) => speed::run(a, file).await,
        Command::Finals(a) => finals::run(a, file).await,
        Command::Archive(a) => archive::run(a, file).await,
        Command::Compact(a) => archive::compact(a).await,
        Command::Batch(a) => batch::run(a).await,
        Command::Serve(a) => serve::serve(a, file).await,
        Command::Query(a) => serve::query(a).await,
        Command::Index(a) => index::run(a, file).await,
        Command::Kibana(a) => kibana::run(a).await,
        Command::X(a) => x::run(a, file).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error chain as sqlx and thiserror build it: each layer's message
    /// quotes its source, which is also its `source()`.
    #[derive(Debug)]
    struct Layer(String, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match &self.1 {
                Some(inner) => write!(f, "{}: {inner}", self.0),
                None => write!(f, "{}", self.0),
            }
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn each_cause_of_an_error_is_printed_once() {
        let database = Layer("1406 (22001): Data too long for column 'text'".into(), None);
        let driver = Layer(
            "error returned from database".into(),
            Some(Box::new(database)),
        );
        let ours = Layer("MySQL insert tweets".into(), Some(Box::new(driver)));
        let e = anyhow::Error::new(ours).context("load failed");
        let text = describe(&e);
        assert_eq!(
            text,
            "load failed: MySQL insert tweets: error returned from database: 1406 (22001): Data too long for column 'text'"
        );
        assert_eq!(
            format!("{e:#}").matches("1406").count(),
            3,
            "what anyhow alone prints"
        );
        // A cause that its layer does not quote is still printed.
        let e = anyhow::Error::new(std::io::Error::other("disk full"))
            .context("cannot write the checkpoint");
        assert_eq!(describe(&e), "cannot write the checkpoint: disk full");
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// `--help` shows an environment variable's value unless told not to:
    /// every variable that can hold a secret (a URL with a password, a
    /// token) is hidden.
    #[test]
    fn help_never_prints_a_secret_from_the_environment() {
        fn walk(cmd: &clap::Command, checked: &mut usize) {
            for arg in cmd.get_arguments() {
                let Some(var) = arg.get_env() else { continue };
                let var = var.to_string_lossy();
                if ["URL", "TOKEN", "PASSWORD", "SECRET"]
                    .iter()
                    .any(|s| var.contains(s))
                {
                    *checked += 1;
                    assert!(
                        arg.is_hide_env_values_set(),
                        "{var} would print its value in --help"
                    );
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, checked);
            }
        }
        let mut checked = 0;
        walk(&Cli::command(), &mut checked);
        assert!(checked >= 4, "only {checked} secret variables found");
    }

    /// Every flag with an environment variable has a configuration-file key.
    #[test]
    fn every_environment_variable_has_a_file_key() {
        let keys = config::file_keys(&Cli::command());
        let key = |k: &str| {
            keys.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(key("mysql_url"), Some("TWEETLAMBDA_MYSQL_URL"));
        assert_eq!(key("views"), Some("TWEETLAMBDA_VIEWS"));
        assert_eq!(key("master"), Some("TWEETLAMBDA_MASTER"));
        assert_eq!(key("token"), Some("TWEETLAMBDA_TOKEN"));
        assert_eq!(key("group"), Some("TWEETLAMBDA_SPEED_GROUP"));
        assert_eq!(key("index_group"), Some("TWEETLAMBDA_INDEX_GROUP"));
        assert_eq!(key("config"), None, "the file does not name itself");
        fn walk(cmd: &clap::Command, keys: &[(String, String)]) {
            for arg in cmd.get_arguments() {
                if let Some(var) = arg.get_env() {
                    let var = var.to_string_lossy();
                    assert!(
                        var == "TWEETLAMBDA_CONFIG" || keys.iter().any(|(_, v)| *v == var),
                        "{var} has no file key"
                    );
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, keys);
            }
        }
        walk(&Cli::command(), &keys);
    }
}
