//! `tweetlambda kibana import`: the dashboard into Kibana.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct KibanaArgs {
    #[command(subcommand)]
    command: KibanaCommand,
}

#[derive(Subcommand, Debug)]
enum KibanaCommand {
    /// Load the data view and the dashboard (kibana/tweetlambda.ndjson),
    /// replacing objects of the same ids.
    Import(ImportArgs),
}

#[derive(Args, Debug)]
struct ImportArgs {
    /// Kibana, `http://[USER:PASSWORD@]HOST:PORT`.
    #[arg(
        long,
        env = "TWEETLAMBDA_KIBANA_URL",
        hide_env_values = true,
        default_value = "http://127.0.0.1:5601"
    )]
    kibana_url: String,
    /// Saved objects to import instead of the ones built in.
    #[arg(long)]
    file: Option<PathBuf>,
}

pub async fn run(a: KibanaArgs) -> anyhow::Result<ExitCode> {
    let KibanaCommand::Import(a) = a.command;
    let ndjson = match &a.file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => tweetlambda_indexer::kibana::SAVED_OBJECTS.to_string(),
    };
    let mut url = url::Url::parse(&a.kibana_url)
        .with_context(|| format!("--kibana-url {:?} is not a URL", a.kibana_url))?;
    let user = url.username().to_string();
    let password = url.password().unwrap_or_default().to_string();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let auth = (!user.is_empty()).then_some((user.as_str(), password.as_str()));
    let report = tweetlambda_indexer::kibana::import(url.as_str(), &ndjson, auth).await?;
    println!("kibana: {} saved objects imported", report.success_count);
    for e in &report.errors {
        println!("kibana: not imported: {e}");
    }
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
