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
    /// Queries computed at once, at most; others wait (default: the cores).
    #[arg(long)]
    max_queries: Option<usize>,
    /// A query not answered within this (waiting included) gets a 503.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    query_timeout: Duration,
    /// Leave the view topic as it is: publish no tombstones for the keys of
    /// buckets before the loaded version's B (by default they are ended, so
    /// that a compacted view keeps only the buckets since B).
    #[arg(long)]
    no_tombstones: bool,
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
        max_queries: a.max_queries.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        }),
        query_timeout: a.query_timeout,
        tombstones: !a.no_tombstones,
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

/// What the query kinds print: the table shape, not the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Hashtags,
    Tweets,
    Series,
}

fn print_answer(what: &QueryKind, answer: &Value) {
    let table = match what {
        QueryKind::TopHashtags { .. } => Table::Hashtags,
        QueryKind::TopTweets { .. } => Table::Tweets,
        QueryKind::Series { .. } => Table::Series,
    };
    print!("{}", render_answer(table, answer));
}

/// `text` padded with spaces to `width` terminal columns (wide characters
/// such as CJK take two), on the `left` or the right.
fn pad(text: &str, width: usize, left: bool) -> String {
    let fill = " ".repeat(width.saturating_sub(unicode_width::UnicodeWidthStr::width(text)));
    if left {
        format!("{text}{fill}")
    } else {
        format!("{fill}{text}")
    }
}

/// Rows of cells as aligned lines: the columns in `right` are aligned on
/// the right (numbers), the others on the left; the last column is not
/// padded.
fn aligned(rows: &[Vec<String>], right: &[usize]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|t| unicode_width::UnicodeWidthStr::width(t.as_str()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, t)| {
                if c + 1 == row.len() && !right.contains(&c) {
                    t.clone()
                } else {
                    pad(t, widths[c], !right.contains(&c))
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn render_answer(table: Table, answer: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let mut out = format!(
        "{} – {}   boundary {}   batch buckets {}, realtime buckets {}\n",
        s(&answer["from"]),
        s(&answer["to"]),
        answer["boundary"].as_str().unwrap_or("none"),
        answer["sources"]["batch_buckets"],
        answer["sources"]["realtime_buckets"],
    );
    let empty = Vec::new();
    let items = answer["items"].as_array().unwrap_or(&empty);
    let mut rows: Vec<Vec<String>> = Vec::new();
    match table {
        Table::Hashtags => {
            rows.push(vec!["rank".into(), "hashtag".into(), "count".into()]);
            for (i, item) in items.iter().enumerate() {
                rows.push(vec![
                    (i + 1).to_string(),
                    format!("#{}", s(&item["hashtag"])),
                    item["count"].to_string(),
                ]);
            }
            out.push_str(&aligned(&rows, &[0, 2]));
        }
        Table::Tweets => {
            rows.push(vec![
                "rank".into(),
                "score".into(),
                "tweet id".into(),
                "text".into(),
            ]);
            for (i, item) in items.iter().enumerate() {
                let text: String = s(&item["text"])
                    .replace(['\n', '\r', '\t'], " ")
                    .chars()
                    .take(80)
                    .collect();
                rows.push(vec![
                    (i + 1).to_string(),
                    item["score"].to_string(),
                    s(&item["tweet_id"]),
                    text,
                ]);
            }
            out.push_str(&aligned(&rows, &[0, 1]));
        }
        Table::Series => {
            let buckets = answer["buckets"].as_array().unwrap_or(&empty);
            let series = answer["series"].as_array().unwrap_or(&empty);
            let mut header = vec!["bucket".to_string()];
            header.extend(series.iter().map(|l| s(&l["hashtag"])));
            rows.push(header);
            for (k, b) in buckets.iter().enumerate() {
                let mut row = vec![s(b)];
                row.extend(series.iter().map(|l| l["counts"][k].to_string()));
                rows.push(row);
            }
            let numbers: Vec<usize> = (1..=series.len()).collect();
            out.push_str(&aligned(&rows, &numbers));
        }
    }
    if answer["partial"].as_bool() == Some(true) {
        out.push_str("partial answer:\n");
    }
    for w in answer["warnings"].as_array().unwrap_or(&empty) {
        out.push_str(&format!("warning: {}\n", s(w)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn width(line: &str) -> usize {
        unicode_width::UnicodeWidthStr::width(line)
    }

    #[test]
    fn numbers_sit_under_their_header_whatever_the_characters() {
        let answer = json!({"from": "a", "to": "b", "sources": {}, "items": [
            {"hashtag": "日本語タグ", "count": 7},
            {"hashtag": "ascii", "count": 12345},
        ]});
        let text = render_answer(Table::Hashtags, &answer);
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(lines.len(), 3, "{text}");
        // Every line ends at the same terminal column: the right edge of
        // `count`, over the right edge of each number.
        assert!(lines[0].ends_with("count"), "{text}");
        assert_eq!(width(lines[1]), width(lines[0]), "{text}");
        assert_eq!(width(lines[2]), width(lines[0]), "{text}");
    }

    #[test]
    fn series_counts_sit_under_their_hashtag() {
        let answer = json!({"from": "a", "to": "b", "sources": {},
            "buckets": ["2021-08-29T23:51:00Z", "2021-08-29T23:52:00Z"],
            "series": [{"hashtag": "longhashtagname", "counts": [1, 22]}, {"hashtag": "x", "counts": [333, 4]}]});
        let text = render_answer(Table::Series, &answer);
        let lines: Vec<&str> = text.lines().skip(1).collect();
        // The last digit of each count under the last letter of its hashtag.
        let end_of = |name: &str| lines[0].find(name).expect("header") + name.len();
        for (line, counts) in lines[1..].iter().zip([("1", "333"), ("22", "4")]) {
            assert_eq!(width(line), width(lines[0]), "{text}");
            assert!(
                line[..end_of("longhashtagname")].ends_with(counts.0),
                "{text}"
            );
            assert!(line[..end_of("  x")].ends_with(counts.1), "{text}");
        }
    }
}
