//! `tweetlambda load`: tweet files (API v1.1 JSONL, API v2 JSON, CSV export) into MySQL.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tweetlambda_replayer::load;

use crate::common::{is_terminal, MysqlArgs};

#[derive(Args, Debug)]
pub struct LoadArgs {
    #[command(flatten)]
    mysql: MysqlArgs,
    /// Files to load.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Input format: `auto` (by extension: `.csv` is CSV, else JSON lines), `json` or `csv`.
    #[arg(long, default_value = "auto", value_parser = ["auto", "json", "csv"])]
    format: String,
    /// Tweets per transaction.
    #[arg(long, default_value_t = 2000)]
    batch_size: usize,
}

pub async fn run(a: LoadArgs) -> anyhow::Result<ExitCode> {
    let options = load::LoadOptions {
        mysql_url: a.mysql.mysql_url,
        files: a.files,
        format: match a.format.as_str() {
            "json" => load::Format::Json,
            "csv" => load::Format::Csv,
            _ => load::Format::Auto,
        },
        batch_size: a.batch_size.max(1),
        progress: is_terminal(),
    };
    let summary = load::run(&options).await.context("load failed")?;
    println!("load: {summary}");
    Ok(ExitCode::SUCCESS)
}
