//! `tweetlambda serve` and `tweetlambda query`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::common::{parse_duration, parse_positive_ms, shutdown_signal, KafkaArgs};

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    /// The batch views directory (written by `tweetlambda batch`).
    #[arg(long, env = "TWEETLAMBDA_VIEWS")]
    views: PathBuf,
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, env = "TWEETLAMBDA_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The speed layer's realtime view topic.
    #[arg(long, default_value = "speed.view")]
    view_topic: String,
    /// Require `Authorization: Bearer TOKEN` on /api/* and /metrics.
    #[arg(long, env = "TWEETLAMBDA_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// How often the manifest is checked for a new batch version.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    reload_interval: Duration,
    /// Bucket size of the realtime view (the speed layer's).
    #[arg(long, default_value = "1m", value_parser = parse_positive_ms)]
    bucket: i64,
}

pub async fn serve(a: ServeArgs, kafka_from_file: &[(String, String)]) -> anyhow::Result<ExitCode> {
    let config = tweetlambda_serving::ServeConfig {
        kafka: a.kafka.options(kafka_from_file),
        view_topic: a.view_topic,
        views: a.views,
        listen: a.listen,
        token: a.token.filter(|t| !t.is_empty()),
        reload_interval: a.reload_interval,
        bucket_ms: a.bucket,
    };
    tweetlambda_serving::run(config, shutdown_signal())
        .await
        .context("serve failed")?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct QueryArgs {
    #[command(subcommand)]
    what: QueryKind,
    /// The server to ask.
    #[arg(
        long,
        global = true,
        env = "TWEETLAMBDA_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// Bearer token, if the server requires one.
    #[arg(long, global = true, env = "TWEETLAMBDA_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print the server's JSON answer as is.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Args, Debug)]
struct RangeArgs {
    /// The range ending at the newest event: `15m`, `1h`, `7d`.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    last: Option<String>,
    /// Start of the range (RFC 3339).
    #[arg(long, requires = "to")]
    from: Option<String>,
    /// End of the range, exclusive.
    #[arg(long, requires = "from")]
    to: Option<String>,
}

#[derive(Subcommand, Debug)]
enum QueryKind {
    /// The top hashtags of a range.
    TopHashtags {
        #[command(flatten)]
        range: RangeArgs,
        /// How many.
        #[arg(short, default_value_t = 10)]
        n: usize,
    },
    /// The top tweets of a range.
    TopTweets {
        #[command(flatten)]
        range: RangeArgs,
        /// How many.
        #[arg(short, default_value_t = 10)]
        n: usize,
    },
    /// Counts per point of time of some hashtags (and of all mentions).
    Series {
        #[command(flatten)]
        range: RangeArgs,
        /// Hashtags, comma-separated.
        #[arg(long, default_value = "")]
        tags: String,
        /// Width of a point (`1m`, `1h`); chosen by the server if absent.
        #[arg(long)]
        step: Option<String>,
    },
}

fn range_params(r: &RangeArgs) -> Vec<(&'static str, String)> {
    let mut p = Vec::new();
    match (&r.last, &r.from, &r.to) {
        (Some(last), _, _) => p.push(("last", last.clone())),
        (None, Some(from), Some(to)) => {
            p.push(("from", from.clone()));
            p.push(("to", to.clone()));
        }
        _ => p.push(("last", "1h".to_string())),
    }
    p
}

pub async fn query(a: QueryArgs) -> anyhow::Result<ExitCode> {
    let (path, params) = match &a.what {
        QueryKind::TopHashtags { range, n } => {
            let mut p = range_params(range);
            p.push(("n", n.to_string()));
            ("/api/top/hashtags", p)
        }
        QueryKind::TopTweets { range, n } => {
            let mut p = range_params(range);
            p.push(("n", n.to_string()));
            ("/api/top/tweets", p)
        }
        QueryKind::Series { range, tags, step } => {
            let mut p = range_params(range);
            if !tags.is_empty() {
                p.push(("tags", tags.clone()));
            }
            if let Some(step) = step {
                p.push(("step", step.clone()));
            }
            ("/api/series/hashtags", p)
        }
    };
    let url = format!("{}{path}", a.server.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut request = client.get(&url).query(&params);
    if let Some(token) = &a.token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach the server at {}", a.server))?;
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        bail!("the server answered {status}: {body}");
    }
    let answer: Value = serde_json::from_str(&body).context("the server's answer is not JSON")?;
    if a.json {
        println!("{body}");
        return Ok(ExitCode::SUCCESS);
    }
    print_answer(&a.what, &answer);
    Ok(ExitCode::SUCCESS)
}

fn print_answer(what: &QueryKind, answer: &Value) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    println!(
        "{} – {}   boundary {}   batch buckets {}, realtime buckets {}",
        s(&answer["from"]),
        s(&answer["to"]),
        answer["boundary"].as_str().unwrap_or("none"),
        answer["sources"]["batch_buckets"],
        answer["sources"]["realtime_buckets"],
    );
    let empty = Vec::new();
    let items = answer["items"].as_array().unwrap_or(&empty);
    match what {
        QueryKind::TopHashtags { .. } => {
            println!("{:>4}  {:<30} {:>10}", "rank", "hashtag", "count");
            for (i, item) in items.iter().enumerate() {
                println!(
                    "{:>4}  #{:<29} {:>10}",
                    i + 1,
                    s(&item["hashtag"]),
                    item["count"]
                );
            }
        }
        QueryKind::TopTweets { .. } => {
            println!("{:>4}  {:>8}  {:<20}  text", "rank", "score", "tweet id");
            for (i, item) in items.iter().enumerate() {
                let text: String = s(&item["text"])
                    .replace('\n', " ")
                    .chars()
                    .take(80)
                    .collect();
                println!(
                    "{:>4}  {:>8}  {:<20}  {text}",
                    i + 1,
                    item["score"],
                    s(&item["tweet_id"])
                );
            }
        }
        QueryKind::Series { .. } => {
            let buckets = answer["buckets"].as_array().unwrap_or(&empty);
            let series = answer["series"].as_array().unwrap_or(&empty);
            let names: Vec<String> = series.iter().map(|l| s(&l["hashtag"])).collect();
            println!("{:<22} {}", "bucket", names.join("  "));
            for (k, b) in buckets.iter().enumerate() {
                let counts: Vec<String> =
                    series.iter().map(|l| l["counts"][k].to_string()).collect();
                println!("{:<22} {}", s(b), counts.join("  "));
            }
        }
    }
    if answer["partial"].as_bool() == Some(true) {
        println!("partial answer:");
    }
    for w in answer["warnings"].as_array().unwrap_or(&empty) {
        println!("warning: {}", s(w));
    }
}
