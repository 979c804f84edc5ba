//! Reading tweets from MySQL for a replay.
//!
//! Replay order is (event time, tweet id). The event time of a tweet lives
//! in `tweet_meta.event_time_ms`, indexed with the tweet id; for tweets that
//! came from a dump and have no `tweet_meta` row yet, [`index_event_times`]
//! parses `tweets.date_time` once with the shared parser and writes it. Rows
//! are then read in keyset pages (`WHERE (time, id) > last ORDER BY time, id
//! LIMIT n`) so that memory stays bounded, a lost connection resumes exactly
//! where it stopped, and MySQL never sorts the table.

use std::time::Duration;

use futures::TryStreamExt;
use sqlx::mysql::{MySqlPool, MySqlRow};
use sqlx::{MySql, QueryBuilder, Row};
use tweetlambda_core::{distinct_hashtags, parse_event_time, Geo, TweetEvent, User};

use super::checkpoint::Position;
use crate::error::{Error, Result};
use crate::mysql::text_column;

/// Parses `tweets.date_time` of every tweet that has no event time yet (or
/// whose `date_time` changed since) into `tweet_meta`. Returns how many rows
/// were indexed and how many of them could not be parsed.
pub async fn index_event_times(pool: &MySqlPool) -> Result<(u64, u64)> {
    let mut reader = pool.acquire().await.map_err(Error::mysql("connect"))?;
    let mut rows = sqlx::query(
        "SELECT t.tweet_id, t.date_time FROM tweets t LEFT JOIN tweet_meta m ON m.tweet_id = t.tweet_id \
         WHERE m.tweet_id IS NULL OR (m.source = 'seed' AND NOT (m.date_time_parsed <=> t.date_time))",
    )
    .fetch(&mut *reader);
    let mut batch: Vec<(i64, Option<String>, std::result::Result<i64, String>)> = Vec::new();
    let (mut indexed, mut failed) = (0u64, 0u64);
    while let Some(row) = rows
        .try_next()
        .await
        .map_err(Error::mysql("read tweets to index"))?
    {
        let id: i64 = row.try_get(0).map_err(Error::mysql("read tweet_id"))?;
        let text = text_column(&row, 1)?;
        let parsed = match text.as_deref() {
            Some(s) => parse_event_time(s)
                .map(|t| t.timestamp_millis())
                .map_err(|e| e.to_string()),
            None => Err("date_time is NULL".to_string()),
        };
        failed += u64::from(parsed.is_err());
        batch.push((id, text, parsed));
        if batch.len() >= 5000 {
            indexed += write_index(pool, &mut batch).await?;
        }
    }
    indexed += write_index(pool, &mut batch).await?;
    Ok((indexed, failed))
}

type IndexRow = (i64, Option<String>, std::result::Result<i64, String>);

async fn write_index(pool: &MySqlPool, batch: &mut Vec<IndexRow>) -> Result<u64> {
    if batch.is_empty() {
        return Ok(0);
    }
    let mut q = QueryBuilder::<MySql>::new(
        "INSERT INTO tweet_meta (tweet_id, event_time_ms, time_error, date_time_parsed, source) ",
    );
    q.push_values(batch.iter(), |mut b, (id, text, parsed)| {
        b.push_bind(*id)
            .push_bind(parsed.as_ref().ok().copied())
            .push_bind(
                parsed
                    .as_ref()
                    .err()
                    .map(|e| e.chars().take(255).collect::<String>()),
            )
            .push_bind(text.as_deref())
            .push_bind("seed");
    });
    q.push(
        " ON DUPLICATE KEY UPDATE event_time_ms = VALUES(event_time_ms), time_error = VALUES(time_error), \
         date_time_parsed = VALUES(date_time_parsed)",
    );
    q.build()
        .execute(pool)
        .await
        .map_err(Error::mysql("write event times to tweet_meta"))?;
    let n = batch.len() as u64;
    batch.clear();
    Ok(n)
}

/// A tweet read for replay: its position and either the message or why it
/// cannot be replayed.
#[derive(Debug)]
pub struct SourceRow {
    /// (event time ms, tweet id).
    pub position: Position,
    /// The tweet, or the reason it goes to the dead-letter topic.
    pub tweet: std::result::Result<TweetEvent, String>,
}

const SELECT_TWEETS: &str = "SELECT m.event_time_ms, t.tweet_id, t.tweet, t.language, m.user_id, m.user_screen_name, \
     m.retweet_count, m.favorite_count, m.retweet_of_id, m.quote_of_id, m.lat, m.lon, m.place_name, m.country_code, \
     (SELECT JSON_ARRAYAGG(h.hashtag) FROM tweet_hashtags th JOIN hashtags h ON h.hashtag_id = th.hashtag_id \
      WHERE th.tweet_id = t.tweet_id) AS tags \
     FROM tweet_meta m JOIN tweets t ON t.tweet_id = m.tweet_id ";

/// Reads the next page of tweets after `after`, before `to_ms`.
pub async fn read_page(
    pool: &MySqlPool,
    after: Position,
    to_ms: i64,
    limit: u32,
) -> Result<Vec<SourceRow>> {
    let rows = sqlx::query(&format!(
        "{SELECT_TWEETS} WHERE (m.event_time_ms > ? OR (m.event_time_ms = ? AND m.tweet_id > ?)) \
         AND m.event_time_ms < ? ORDER BY m.event_time_ms, m.tweet_id LIMIT ?"
    ))
    .bind(after.0)
    .bind(after.0)
    .bind(after.1)
    .bind(to_ms)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(Error::mysql("read tweets"))?;
    rows.iter().map(decode).collect()
}

/// Like [`read_page`], retrying with backoff when MySQL goes away mid-run.
pub async fn read_page_retrying(
    pool: &MySqlPool,
    after: Position,
    to_ms: i64,
    limit: u32,
) -> Result<Vec<SourceRow>> {
    let mut delay = Duration::from_millis(250);
    let mut attempt = 0;
    loop {
        match read_page(pool, after, to_ms, limit).await {
            Ok(rows) => return Ok(rows),
            Err(e) if attempt < 10 => {
                attempt += 1;
                tracing::warn!("{e}; retrying in {delay:?} (attempt {attempt} of 10)");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Tweets whose event time could not be parsed, after tweet id `after`.
pub async fn read_unparseable(
    pool: &MySqlPool,
    after: i64,
    limit: u32,
) -> Result<Vec<(i64, Option<String>, Option<String>, String)>> {
    let rows = sqlx::query(
        "SELECT t.tweet_id, t.date_time, t.tweet, m.time_error FROM tweet_meta m JOIN tweets t ON t.tweet_id = m.tweet_id \
         WHERE m.event_time_ms IS NULL AND m.tweet_id > ? ORDER BY m.tweet_id LIMIT ?",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
    .map_err(Error::mysql("read unparseable tweets"))?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get(0).map_err(Error::mysql("read tweet_id"))?,
                text_column(row, 1)?,
                text_column(row, 2)?,
                text_column(row, 3)?.unwrap_or_else(|| "unparseable date_time".into()),
            ))
        })
        .collect()
}

fn decode(row: &MySqlRow) -> Result<SourceRow> {
    let get_i64 =
        |i: usize| -> Result<Option<i64>> { row.try_get(i).map_err(Error::mysql("decode a row")) };
    let get_f64 =
        |i: usize| -> Result<Option<f64>> { row.try_get(i).map_err(Error::mysql("decode a row")) };
    let time_ms = get_i64(0)?.unwrap_or_default();
    let id = get_i64(1)?.unwrap_or_default();
    let position = (time_ms, id);
    let Some(created_at) = tweetlambda_core::time::from_millis(time_ms) else {
        return Ok(SourceRow {
            position,
            tweet: Err(format!("event time {time_ms} ms is out of range")),
        });
    };
    let tags: Vec<String> = match text_column(row, 14)? {
        None => Vec::new(),
        Some(json) => match serde_json::from_str::<Vec<Option<String>>>(&json) {
            Ok(tags) => tags.into_iter().flatten().collect(),
            Err(e) => {
                return Ok(SourceRow {
                    position,
                    tweet: Err(format!("unreadable hashtags {json:?}: {e}")),
                })
            }
        },
    };
    let user_id = get_i64(4)?;
    let screen_name = text_column(row, 5)?;
    let (lat, lon) = (get_f64(10)?, get_f64(11)?);
    let tweet = TweetEvent {
        id: id.to_string(),
        created_at,
        text: text_column(row, 2)?.unwrap_or_default(),
        lang: text_column(row, 3)?,
        hashtags: distinct_hashtags(tags),
        user: (user_id.is_some() || screen_name.is_some()).then(|| User {
            id: user_id.map(|u| u.to_string()),
            screen_name,
        }),
        retweet_count: get_i64(6)?,
        favorite_count: get_i64(7)?,
        retweet_of: get_i64(8)?.map(|i| i.to_string()),
        quote_of: get_i64(9)?.map(|i| i.to_string()),
        geo: lat.zip(lon).map(|(lat, lon)| Geo { lat, lon }),
        place: text_column(row, 12)?,
        country_code: text_column(row, 13)?,
    };
    Ok(SourceRow {
        position,
        tweet: Ok(tweet),
    })
}
