//! MySQL connection and the schema in `sql/`.

use std::time::Duration;

use sqlx::mysql::MySqlRow;
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{Executor, Row};

use crate::error::{redact_url, Error, Result};

/// The migrations of `sql/`, in order. Each is idempotent (`IF NOT EXISTS`),
/// so applying them to a database that has some or all of them is harmless,
/// and a database loaded from the seed dump keeps its tables as they are.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "001_seed_schema",
        include_str!("../../sql/001_seed_schema.sql"),
    ),
    (
        "002_tweet_meta",
        include_str!("../../sql/002_tweet_meta.sql"),
    ),
    (
        "003_replay_checkpoints",
        include_str!("../../sql/003_replay_checkpoints.sql"),
    ),
];

/// Connects to MySQL, failing fast with a clear error when it is unreachable.
pub async fn connect(url: &str, max_connections: u32) -> Result<MySqlPool> {
    let options: MySqlConnectOptions = url.parse().map_err(|source| Error::MysqlConnect {
        url: redact_url(url),
        source,
    })?;
    MySqlPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.charset("utf8mb4"))
        .await
        .map_err(|source| Error::MysqlConnect {
            url: redact_url(url),
            source,
        })
}

/// Reads a text column whatever MySQL calls its type: columns with a `_bin`
/// collation (as in the seed dump) come back as VARBINARY/BLOB.
pub fn text_column(row: &MySqlRow, index: usize) -> Result<Option<String>> {
    let bytes: Option<Vec<u8>> = row
        .try_get(index)
        .map_err(Error::mysql(format!("read text column {index}")))?;
    Ok(bytes.map(|b| match String::from_utf8(b) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }))
}

/// Applies every migration of `sql/` (idempotent).
pub async fn migrate(pool: &MySqlPool) -> Result<()> {
    for (name, sql) in MIGRATIONS {
        for statement in split_statements(sql) {
            pool.execute(statement.as_str())
                .await
                .map_err(Error::mysql(format!("migration {name}")))?;
        }
    }
    Ok(())
}

/// Splits a migration file into statements: `;` at the end of a line ends a
/// statement, and `--` comment lines are dropped.
fn split_statements(sql: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || trimmed.is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            statements.push(std::mem::take(&mut current));
        }
    }
    if !current.trim().is_empty() {
        statements.push(current);
    }
    statements
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_migration_splits_into_create_statements() {
        for (name, sql) in super::MIGRATIONS {
            let statements = super::split_statements(sql);
            assert!(!statements.is_empty(), "{name}");
            for s in statements {
                assert!(
                    s.trim_start().starts_with("CREATE TABLE IF NOT EXISTS"),
                    "{name}: {s}"
                );
            }
        }
    }
}
