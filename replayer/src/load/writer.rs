//! Writes [`Record`]s to MySQL in batches, idempotently.

use std::collections::{HashMap, HashSet};

use sqlx::mysql::{MySqlConnection, MySqlPool};
use sqlx::pool::PoolConnection;
use sqlx::{MySql, QueryBuilder, Row};

use super::{LoadSummary, Record};
use crate::error::{Error, Result};

/// Name of the MySQL user lock that keeps two loads from allocating the same
/// hashtag ids.
const LOCK_NAME: &str = "tweetlambda.load";

/// Batches records and writes them; one transaction a batch.
pub struct Writer {
    conn: PoolConnection<MySql>,
    pending: Vec<Record>,
    /// Normalised hashtag → hashtag_id, for every hashtag in the table.
    vocabulary: HashMap<String, i64>,
    next_hashtag_id: i64,
}

impl Writer {
    /// Takes the load lock and reads the hashtag vocabulary.
    pub async fn new(pool: &MySqlPool) -> Result<Writer> {
        let mut conn = pool.acquire().await.map_err(Error::mysql("connect"))?;
        let locked: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, 10)")
            .bind(LOCK_NAME)
            .fetch_one(&mut *conn)
            .await
            .map_err(Error::mysql("take the load lock"))?;
        if locked != Some(1) {
            return Err(Error::Config(
                "another `tweetlambda load` or `generate` is writing to this database; wait for it to finish".into(),
            ));
        }
        let mut vocabulary = HashMap::new();
        let mut next_hashtag_id = 0;
        let rows = sqlx::query("SELECT hashtag_id, hashtag FROM hashtags ORDER BY hashtag_id")
            .fetch_all(&mut *conn)
            .await
            .map_err(Error::mysql("read hashtags"))?;
        for row in rows {
            let id: i64 = row.try_get(0).map_err(Error::mysql("read hashtags"))?;
            let tag = crate::mysql::text_column(&row, 1)?;
            next_hashtag_id = next_hashtag_id.max(id + 1);
            if let Some(n) = tag.as_deref().and_then(tweetlambda_core::normalize_hashtag) {
                vocabulary.entry(n).or_insert(id);
            }
        }
        Ok(Writer {
            conn,
            pending: Vec::new(),
            vocabulary,
            next_hashtag_id,
        })
    }

    /// Queues a record.
    pub fn push(&mut self, record: Record) {
        self.pending.push(record);
    }

    /// Records queued and not yet written.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Writes the queued records in one transaction.
    pub async fn flush(&mut self, summary: &mut LoadSummary) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        let mut tx = sqlx::Connection::begin(&mut *self.conn)
            .await
            .map_err(Error::mysql("begin"))?;
        let fresh = new_records(&mut tx, batch, summary).await?;
        if !fresh.is_empty() {
            insert_hashtags(
                &mut tx,
                &mut self.vocabulary,
                &mut self.next_hashtag_id,
                &fresh,
                summary,
            )
            .await?;
            insert_tweets(&mut tx, &fresh).await?;
            insert_meta(&mut tx, &fresh).await?;
            summary.hashtag_links += insert_links(&mut tx, &self.vocabulary, &fresh).await?;
            summary.inserted += fresh.len() as u64;
        }
        tx.commit().await.map_err(Error::mysql("commit"))?;
        Ok(())
    }

    /// Writes what is left and releases the lock.
    pub async fn finish(mut self, summary: &mut LoadSummary) -> Result<()> {
        self.flush(summary).await?;
        sqlx::query("DO RELEASE_LOCK(?)")
            .bind(LOCK_NAME)
            .execute(&mut *self.conn)
            .await
            .map_err(Error::mysql("release the load lock"))?;
        Ok(())
    }
}

/// Drops records whose id is already in `tweets` or earlier in the batch.
async fn new_records(
    conn: &mut MySqlConnection,
    batch: Vec<Record>,
    summary: &mut LoadSummary,
) -> Result<Vec<Record>> {
    let mut q = QueryBuilder::<MySql>::new("SELECT tweet_id FROM tweets WHERE tweet_id IN (");
    let mut ids = q.separated(", ");
    for r in &batch {
        ids.push_bind(r.tweet_id);
    }
    q.push(")");
    let mut seen: HashSet<i64> = q
        .build_query_scalar::<i64>()
        .fetch_all(&mut *conn)
        .await
        .map_err(Error::mysql("look up existing tweets"))?
        .into_iter()
        .collect();
    let before = batch.len();
    let fresh: Vec<Record> = batch
        .into_iter()
        .filter(|r| seen.insert(r.tweet_id))
        .collect();
    summary.already_present += (before - fresh.len()) as u64;
    Ok(fresh)
}

async fn insert_hashtags(
    conn: &mut MySqlConnection,
    vocabulary: &mut HashMap<String, i64>,
    next_hashtag_id: &mut i64,
    records: &[Record],
    summary: &mut LoadSummary,
) -> Result<()> {
    let mut new_tags: Vec<(i64, &str)> = Vec::new();
    for r in records {
        for (tag, _) in &r.hashtags {
            if !vocabulary.contains_key(tag) {
                let id = *next_hashtag_id;
                *next_hashtag_id += 1;
                vocabulary.insert(tag.clone(), id);
                new_tags.push((id, tag));
            }
        }
    }
    for chunk in new_tags.chunks(5000) {
        let mut q = QueryBuilder::<MySql>::new("INSERT INTO hashtags (hashtag_id, hashtag) ");
        q.push_values(chunk, |mut b, (id, tag)| {
            b.push_bind(*id).push_bind(*tag);
        });
        q.build()
            .execute(&mut *conn)
            .await
            .map_err(Error::mysql("insert hashtags"))?;
    }
    summary.new_hashtags += new_tags.len() as u64;
    Ok(())
}

async fn insert_links(
    conn: &mut MySqlConnection,
    vocabulary: &HashMap<String, i64>,
    records: &[Record],
) -> Result<u64> {
    let links: Vec<(i64, i64, i64)> = records
        .iter()
        .flat_map(|r| {
            r.hashtags
                .iter()
                .filter_map(|(tag, count)| vocabulary.get(tag).map(|id| (r.tweet_id, *id, *count)))
        })
        .collect();
    for chunk in links.chunks(5000) {
        let mut q = QueryBuilder::<MySql>::new(
            "INSERT INTO tweet_hashtags (tweet_id, hashtag_id, `count`) ",
        );
        q.push_values(chunk, |mut b, (t, h, c)| {
            b.push_bind(*t).push_bind(*h).push_bind(*c);
        });
        q.build()
            .execute(&mut *conn)
            .await
            .map_err(Error::mysql("insert tweet_hashtags"))?;
    }
    Ok(links.len() as u64)
}

/// Rows per INSERT statement: MySQL allows at most 65,535 placeholders.
const ROWS_PER_INSERT: usize = 2000;

async fn insert_tweets(conn: &mut MySqlConnection, records: &[Record]) -> Result<()> {
    for chunk in records.chunks(ROWS_PER_INSERT) {
        insert_tweets_chunk(conn, chunk).await?;
    }
    Ok(())
}

async fn insert_meta(conn: &mut MySqlConnection, records: &[Record]) -> Result<()> {
    for chunk in records.chunks(ROWS_PER_INSERT) {
        insert_meta_chunk(conn, chunk).await?;
    }
    Ok(())
}

async fn insert_tweets_chunk(conn: &mut MySqlConnection, records: &[Record]) -> Result<()> {
    let mut q =
        QueryBuilder::<MySql>::new("INSERT INTO tweets (tweet_id, tweet, date_time, language) ");
    q.push_values(records, |mut b, r| {
        b.push_bind(r.tweet_id)
            .push_bind(&r.text)
            .push_bind(truncate(&r.date_time, 40))
            .push_bind(r.lang.as_deref().map(|l| truncate(l, 10)));
    });
    q.build()
        .execute(&mut *conn)
        .await
        .map_err(Error::mysql("insert tweets"))?;
    Ok(())
}

async fn insert_meta_chunk(conn: &mut MySqlConnection, records: &[Record]) -> Result<()> {
    let mut q = QueryBuilder::<MySql>::new(
        "INSERT INTO tweet_meta (tweet_id, event_time_ms, date_time_parsed, source, user_id, user_screen_name, \
         retweet_count, favorite_count, retweet_of_id, quote_of_id, lat, lon, place_name, country_code) ",
    );
    q.push_values(records, |mut b, r| {
        b.push_bind(r.tweet_id)
            .push_bind(r.event_time.timestamp_millis())
            .push_bind(truncate(&r.date_time, 40))
            .push_bind(r.source)
            .push_bind(r.user_id)
            .push_bind(r.user_screen_name.as_deref().map(|s| truncate(s, 100)))
            .push_bind(r.retweet_count)
            .push_bind(r.favorite_count)
            .push_bind(r.retweet_of_id)
            .push_bind(r.quote_of_id)
            .push_bind(r.lat)
            .push_bind(r.lon)
            .push_bind(r.place_name.as_deref().map(|s| truncate(s, 255)))
            .push_bind(r.country_code.as_deref().map(|s| truncate(s, 8)));
    });
    q.push(" ON DUPLICATE KEY UPDATE tweet_id = tweet_id");
    q.build()
        .execute(&mut *conn)
        .await
        .map_err(Error::mysql("insert tweet_meta"))?;
    Ok(())
}

/// Cuts text to at most `max` characters (the column's width).
fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
