//! The optional configuration file.
//!
//! Settings come, in order of precedence, from command-line flags,
//! environment variables (`TWEETLAMBDA_*`), a TOML file named by `--config`
//! or `TWEETLAMBDA_CONFIG`, and built-in defaults. The file is read before
//! the command line is parsed and fills in the environment variables that are
//! not set, so that every setting has a single definition (its flag).
//!
//! ```toml
//! mysql_url = "mysql://tweetlambda:secret@127.0.0.1:3306/tweets"
//! brokers = "127.0.0.1:9092"
//!
//! [kafka]            # passed to librdkafka as is
//! "security.protocol" = "SASL_SSL"
//! "sasl.mechanism" = "SCRAM-SHA-512"
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

/// The file's top-level keys and the environment variable each fills,
/// derived from the command-line definition: every flag that reads an
/// environment variable has a key, its long name with `_` for `-`
/// (`--mysql-url` → `mysql_url`). Where two commands have a flag of the
/// same name for different variables (`speed --group`, `index --group`),
/// the first met keeps the plain key and the other is qualified by its
/// command (`index_group`). `--config` itself has none.
pub fn file_keys(cli: &clap::Command) -> Vec<(String, String)> {
    fn walk(cmd: &clap::Command, keys: &mut Vec<(String, String)>) {
        for arg in cmd.get_arguments() {
            let (Some(long), Some(var)) = (arg.get_long(), arg.get_env()) else {
                continue;
            };
            let var = var.to_string_lossy().into_owned();
            if var == "TWEETLAMBDA_CONFIG" {
                continue;
            }
            let mut key = long.replace('-', "_");
            if keys.iter().any(|(k, v)| *k == key && *v != var) {
                key = format!("{}_{key}", cmd.get_name().replace('-', "_"));
            }
            if !keys.iter().any(|(k, _)| *k == key) {
                keys.push((key, var));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, keys);
        }
    }
    let mut keys = Vec::new();
    walk(cli, &mut keys);
    keys.sort();
    keys
}

/// Finds `--config FILE` (or `--config=FILE`) in the arguments, else
/// `TWEETLAMBDA_CONFIG`.
pub fn config_path(args: &[String]) -> Option<PathBuf> {
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os("TWEETLAMBDA_CONFIG").map(PathBuf::from)
}

/// Settings read from the file: environment variables to set (those not set
/// already) and librdkafka properties.
#[derive(Debug, Default, PartialEq)]
pub struct FileSettings {
    /// (variable, value) pairs.
    pub env: Vec<(String, String)>,
    /// `[kafka]` table.
    pub kafka: Vec<(String, String)>,
}

/// Reads the configuration file.
pub fn read(path: &Path, keys: &[(String, String)]) -> anyhow::Result<FileSettings> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    parse(&text, keys).with_context(|| format!("in the configuration file {}", path.display()))
}

fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse(text: &str, keys: &[(String, String)]) -> anyhow::Result<FileSettings> {
    let table: toml::Table = text.parse()?;
    let mut settings = FileSettings::default();
    for (key, value) in &table {
        if key == "kafka" {
            let Some(kafka) = value.as_table() else {
                bail!("`kafka` must be a table of librdkafka properties")
            };
            for (k, v) in kafka {
                let v = scalar(v).with_context(|| {
                    format!("kafka property {k:?} must be a string, number or boolean")
                })?;
                settings.kafka.push((k.clone(), v));
            }
            continue;
        }
        let Some((_, var)) = keys.iter().find(|(k, _)| k == key) else {
            let known: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
            bail!(
                "unknown key {key:?} (known: {}, and the [kafka] table)",
                known.join(", ")
            );
        };
        let v = scalar(value).with_context(|| format!("{key:?} must be a string or number"))?;
        settings.env.push((var.to_string(), v));
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<(String, String)> {
        [
            ("brokers", "TWEETLAMBDA_BROKERS"),
            ("partitions", "TWEETLAMBDA_PARTITIONS"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec()
    }

    #[test]
    fn file_fills_environment_and_kafka_properties() {
        let s = parse(
            "brokers = \"h:1\"\npartitions = 6\n[kafka]\n\"security.protocol\" = \"SASL_SSL\"\n",
            &keys(),
        )
        .expect("parses");
        assert_eq!(
            s.env,
            vec![
                ("TWEETLAMBDA_BROKERS".to_string(), "h:1".to_string()),
                ("TWEETLAMBDA_PARTITIONS".to_string(), "6".to_string())
            ]
        );
        assert_eq!(
            s.kafka,
            vec![("security.protocol".to_string(), "SASL_SSL".to_string())]
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = parse("bokers = \"x\"", &keys()).expect_err("rejects");
        assert!(e.to_string().contains("bokers"));
    }

    #[test]
    fn config_flag_is_found_in_both_forms() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            config_path(&args(&["tl", "--config", "a.toml", "replay"])),
            Some(PathBuf::from("a.toml"))
        );
        assert_eq!(
            config_path(&args(&["tl", "replay", "--config=b.toml"])),
            Some(PathBuf::from("b.toml"))
        );
    }
}
