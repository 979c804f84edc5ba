//! `tweetlambda x`: live tweets from the X API v2 (recent search, the
//! filtered stream and its rules) into the same topics as the replay.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use tweetlambda_x::retry::Policy;
use tweetlambda_x::search::SearchOptions;
use tweetlambda_x::stream::StreamOptions;
use tweetlambda_x::{Api, SinkOptions, Token};

use crate::common::{
    metrics_address, parse_positive_duration, print_line, shutdown_signal, KafkaArgs, TopicArgs,
};

#[derive(Args, Debug)]
pub struct XArgs {
    #[command(subcommand)]
    command: XCommand,
}

#[derive(Subcommand, Debug)]
enum XCommand {
    /// Recent search (the last 7 days) into Kafka: every page, then new
    /// tweets every --interval.
    Search(SearchArgs),
    /// The filtered stream into Kafka (the tweets matching the stream's rules).
    Stream(StreamArgs),
    /// List, add or delete the filtered stream's rules.
    Rules(RulesArgs),
}

/// How to reach the API. The bearer token comes from the environment
/// variable TWEETLAMBDA_X_BEARER_TOKEN or from --bearer-token-file; it is
/// never printed.
#[derive(Args, Debug)]
struct ApiArgs {
    /// The API's base URL.
    #[arg(
        long,
        global = true,
        env = "TWEETLAMBDA_X_API_BASE",
        default_value = "https://api.x.com"
    )]
    api_base: String,
    /// A file holding the bearer token (instead of TWEETLAMBDA_X_BEARER_TOKEN).
    #[arg(long, global = true)]
    bearer_token_file: Option<PathBuf>,
}

impl ApiArgs {
    fn api(&self) -> anyhow::Result<Api> {
        let token = Token::read(self.bearer_token_file.as_deref())?;
        Ok(Api::new(&self.api_base, token)?)
    }
}

/// Where the tweets go, and the checkpoint.
#[derive(Args, Debug)]
struct SinkArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    topics: TopicArgs,
    /// Also store every tweet in this MySQL database (the schema of `sql/`),
    /// so that it can be replayed later.
    #[arg(long, env = "TWEETLAMBDA_X_MYSQL_URL", hide_env_values = true)]
    mysql_url: Option<String>,
    /// Where the checkpoint is kept [default: $XDG_STATE_HOME/tweetlambda/x,
    /// else ~/.local/state/tweetlambda/x].
    #[arg(long, env = "TWEETLAMBDA_X_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Serve Prometheus metrics here (`none` for no endpoint).
    #[arg(long, default_value = "127.0.0.1:9466")]
    metrics_listen: String,
}

impl SinkArgs {
    fn options(&self, kafka_from_file: &[(String, String)]) -> SinkOptions {
        SinkOptions {
            kafka: self.kafka.options(kafka_from_file),
            topics: self.topics.topics(),
            partitions: self.topics.partitions.max(1),
            mysql_url: self.mysql_url.clone(),
        }
    }

    fn state_dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.state_dir {
            return Ok(dir.clone());
        }
        let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".local/state"))
                .context("neither --state-dir, XDG_STATE_HOME nor HOME is set")?,
        };
        Ok(base.join("tweetlambda/x"))
    }

    fn metrics(&self) -> anyhow::Result<Option<SocketAddr>> {
        metrics_address(&self.metrics_listen)
    }
}

#[derive(Args, Debug)]
struct SearchArgs {
    /// The query, in X's search syntax, e.g. `#rustlang -is:retweet`.
    #[arg(long)]
    query: String,
    /// Fetch what there is now (every page), then exit.
    #[arg(long)]
    once: bool,
    /// Time between searches for new tweets.
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration)]
    interval: Duration,
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    sink: SinkArgs,
}

#[derive(Args, Debug)]
struct StreamArgs {
    /// Stop after this many tweets.
    #[arg(long)]
    max_tweets: Option<u64>,
    /// Open the connection again when nothing, not even a keep-alive,
    /// arrived for this long.
    #[arg(long, default_value = "30s", value_parser = parse_positive_duration)]
    stall_timeout: Duration,
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    sink: SinkArgs,
}

#[derive(Args, Debug)]
struct RulesArgs {
    #[command(subcommand)]
    command: RulesCommand,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Subcommand, Debug)]
enum RulesCommand {
    /// Print the rules: id, value, tag.
    List,
    /// Add a rule, e.g. `#rustlang lang:en`.
    Add {
        /// The rule, in X's filter syntax.
        value: String,
        /// A tag, echoed in each matching tweet's `matching_rules`.
        #[arg(long)]
        tag: Option<String>,
    },
    /// Delete rules by id.
    Delete {
        /// Rule ids, as `rules list` prints them.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

pub async fn run(a: XArgs, kafka_from_file: &[(String, String)]) -> anyhow::Result<ExitCode> {
    match a.command {
        XCommand::Search(a) => search(a, kafka_from_file).await,
        XCommand::Stream(a) => stream(a, kafka_from_file).await,
        XCommand::Rules(a) => rules(a).await,
    }
}

async fn search(a: SearchArgs, kafka_from_file: &[(String, String)]) -> anyhow::Result<ExitCode> {
    if a.query.trim().is_empty() {
        anyhow::bail!("--query is empty");
    }
    let api = a.api.api()?;
    if let Some(addr) = a.sink.metrics()? {
        tweetlambda_x::serve_metrics(addr)?;
    }
    let options = SearchOptions {
        query: a.query.clone(),
        once: a.once,
        interval: a.interval,
        state_dir: a.sink.state_dir()?,
        policy: Policy::default(),
        sink: a.sink.options(kafka_from_file),
    };
    let summary = tweetlambda_x::search::run(&api, &options, shutdown_signal())
        .await
        .context("x search failed")?;
    Ok(finished("x search", &summary))
}

async fn stream(a: StreamArgs, kafka_from_file: &[(String, String)]) -> anyhow::Result<ExitCode> {
    let api = a.api.api()?;
    if let Some(addr) = a.sink.metrics()? {
        tweetlambda_x::serve_metrics(addr)?;
    }
    let options = StreamOptions {
        max_tweets: a.max_tweets,
        stall_timeout: a.stall_timeout,
        checkpoint_interval: Duration::from_secs(1),
        state_dir: a.sink.state_dir()?,
        policy: Policy::default(),
        sink: a.sink.options(kafka_from_file),
    };
    let summary = tweetlambda_x::stream::run(&api, &options, shutdown_signal())
        .await
        .context("x stream failed")?;
    Ok(finished("x stream", &summary))
}

/// Prints the summary; 130 when stopped by a signal, as the replay does.
fn finished(command: &str, summary: &tweetlambda_x::Summary) -> ExitCode {
    println!("{command}: {summary}");
    if summary.interrupted {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    }
}

async fn rules(a: RulesArgs) -> anyhow::Result<ExitCode> {
    let api = a.api.api()?;
    let answer = match &a.command {
        RulesCommand::List => api.rules().await?,
        RulesCommand::Add { value, tag } => {
            let mut rule = json!({ "value": value });
            if let Some(tag) = tag {
                rule["tag"] = json!(tag);
            }
            api.change_rules(&json!({ "add": [rule] })).await?
        }
        RulesCommand::Delete { ids } => {
            api.change_rules(&json!({ "delete": { "ids": ids } }))
                .await?
        }
    };
    for rule in answer
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let field = |k: &str| rule.get(k).and_then(Value::as_str).unwrap_or("");
        if !print_line(format_args!(
            "{}\t{}\t{}",
            field("id"),
            field("value"),
            field("tag")
        )) {
            break;
        }
    }
    if let Some(summary) = answer.get("meta").and_then(|m| m.get("summary")) {
        eprintln!("x rules: {summary}");
    }
    let errors = tweetlambda_x::convert::errors(&answer);
    for e in &errors {
        eprintln!("x rules: refused: {e}");
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
