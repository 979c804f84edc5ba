//! The source's checkpoint, one small JSON file per query (or per stream) in
//! the state directory, replaced atomically (write, fsync, rename, fsync
//! the directory) after the producer is flushed.
//!
//! A recent search's file holds `since_id` (the newest tweet of the last
//! complete pass) and, while a pass is under way, the part of it already
//! published. A restart asks only for what is missing: `since_id` and
//! `until_id` = the oldest tweet published in the unfinished pass. It also
//! holds the broker offsets at the last checkpoint: what was published after
//! them (a crash between the flush and the checkpoint) is read back and not
//! published again.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tweetlambda_kafka::Offsets;

use crate::error::{Error, Result};

/// A pass through the search results that has not reached its last page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pass {
    /// The newest tweet seen in this pass: the next `since_id` once it ends.
    pub newest_id: String,
    /// The oldest tweet published in this pass: a restart continues below it.
    pub oldest_id: String,
}

/// What a source has published, durably.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// What the state is of: `search QUERY` or `stream`, and the tweets topic.
    pub source: String,
    /// The newest tweet of the last complete pass (recent search).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_id: Option<String>,
    /// The pass under way (recent search).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass: Option<Pass>,
    /// Broker offsets after everything published before this checkpoint.
    #[serde(default)]
    pub offsets: Offsets,
    /// The stream's last tweet ids, newest last: a restarted stream that is
    /// sent them again skips them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_ids: Vec<i64>,
}

/// The state file of one source in `dir`: its name is a digest of what the
/// state is of, so that two queries never share a file.
pub fn path_for(dir: &Path, source: &str) -> PathBuf {
    // FNV-1a, 64 bits: stable across releases and platforms.
    let digest = source.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let kind = source.split(' ').next().unwrap_or("source");
    dir.join(format!("{kind}-{digest:016x}.json"))
}

impl State {
    /// Reads the state of `source`, or a fresh one when there is none.
    pub fn load(dir: &Path, source: &str) -> Result<State> {
        let path = path_for(dir, source);
        let fail = |cause: String| Error::State {
            path: path.display().to_string(),
            cause,
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                let state: State = serde_json::from_slice(&bytes)
                    .map_err(|e| fail(format!("unreadable ({e}); move it away to start over")))?;
                if state.source != source {
                    return Err(fail(format!(
                        "belongs to {:?}, not {source:?}; move it away to start over",
                        state.source
                    )));
                }
                Ok(state)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State {
                source: source.to_string(),
                ..State::default()
            }),
            Err(e) => Err(fail(e.to_string())),
        }
    }

    /// Replaces the file with this state, durably.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = path_for(dir, &self.source);
        let fail = |cause: std::io::Error| Error::State {
            path: path.display().to_string(),
            cause: cause.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(fail)?;
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(fail)?;
            f.write_all(&bytes).map_err(fail)?;
            f.sync_all().map_err(fail)?;
        }
        std::fs::rename(&tmp, &path).map_err(fail)?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(fail)?;
        Ok(())
    }
}

/// Holds the state file of one source for one process: a second process
/// for the same query and topic would overwrite the first one's checkpoint
/// and publish the same tweets.
pub struct StateLock {
    _file: std::fs::File,
}

impl StateLock {
    /// Takes the lock, or says who holds it.
    pub fn take(dir: &Path, source: &str) -> Result<StateLock> {
        let path = path_for(dir, source).with_extension("lock");
        let fail = |cause: String| Error::State {
            path: path.display().to_string(),
            cause,
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| fail(e.to_string()))?;
        match file.try_lock() {
            Ok(()) => Ok(StateLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(fail(format!(
                "another process is already running {source}; stop it first"
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(fail(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_survives_a_round_trip_and_names_are_per_source() {
        let dir = std::env::temp_dir().join(format!("tl-x-state-{}", std::process::id()));
        let mut s = State::load(&dir, "search #a tweets").expect("fresh");
        assert_eq!(s.since_id, None);
        s.since_id = Some("12".into());
        s.pass = Some(Pass {
            newest_id: "20".into(),
            oldest_id: "15".into(),
        });
        s.offsets = Offsets::from([("tweets:0".to_string(), 7)]);
        s.save(&dir).expect("save");
        let back = State::load(&dir, "search #a tweets").expect("load");
        assert_eq!(back, s);
        assert_eq!(back.offsets["tweets:0"], 7);
        let held = StateLock::take(&dir, "search #a tweets").expect("lock");
        let e = StateLock::take(&dir, "search #a tweets")
            .err()
            .expect("held");
        assert!(e.to_string().contains("already running"), "{e}");
        assert!(
            StateLock::take(&dir, "search #b tweets").is_ok(),
            "per source"
        );
        drop(held);
        assert!(
            StateLock::take(&dir, "search #a tweets").is_ok(),
            "released"
        );
        assert_ne!(
            path_for(&dir, "search #a tweets"),
            path_for(&dir, "search #b tweets")
        );
        assert!(path_for(&dir, "stream tweets")
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("stream-")));
        std::fs::write(path_for(&dir, "search #c tweets"), "{").expect("write");
        let e = State::load(&dir, "search #c tweets").expect_err("broken file");
        assert!(e.to_string().contains("move it away"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
