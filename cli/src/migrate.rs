//! `tweetlambda migrate`: the schema of `sql/` in a database (idempotent).

use std::process::ExitCode;

use crate::common::MysqlArgs;

pub async fn run(a: MysqlArgs) -> anyhow::Result<ExitCode> {
    let pool = tweetlambda_replayer::mysql::connect(&a.mysql_url, 1).await?;
    tweetlambda_replayer::mysql::migrate(&pool).await?;
    println!("migrate: schema is up to date");
    Ok(ExitCode::SUCCESS)
}
