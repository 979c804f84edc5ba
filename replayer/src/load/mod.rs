//! `tweetlambda load`: imports tweet files into the MySQL schema.
//!
//! Formats: Twitter API v1.1 JSONL, API v2 JSON responses (one a line) and
//! the CSV export. Files are streamed line by line; tweets are written in
//! batches, one transaction a batch. Loading is idempotent: a tweet id
//! already in `tweets` is left as it is (the first load wins), so loading a
//! file twice changes nothing. A line that cannot be read is reported with
//! its line number, skipped and counted.

pub mod csv;
pub mod json;
pub mod record;
mod writer;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{Error, Result};
pub use record::Record;
pub use writer::Writer;

/// The format of an input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Decide from the file name: `.csv` is CSV, anything else JSON lines.
    Auto,
    /// JSON lines: API v1.1 tweet objects or API v2 responses.
    Json,
    /// The CSV export.
    Csv,
}

/// What to load, and how.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// MySQL URL, e.g. `mysql://user:password@127.0.0.1:3306/tweets`.
    pub mysql_url: String,
    /// Files to load, in order.
    pub files: Vec<PathBuf>,
    /// Their format.
    pub format: Format,
    /// Tweets per transaction.
    pub batch_size: usize,
    /// Show a progress bar on a terminal.
    pub progress: bool,
}

/// What a load did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LoadSummary {
    /// Lines (JSON) or rows (CSV) read.
    pub lines: u64,
    /// Tweets read from them.
    pub tweets: u64,
    /// Tweets written.
    pub inserted: u64,
    /// Tweets whose id was already in the database (or earlier in the input).
    pub already_present: u64,
    /// `tweet_hashtags` rows written.
    pub hashtag_links: u64,
    /// New hashtags added to `hashtags`.
    pub new_hashtags: u64,
    /// Lines skipped because they could not be read.
    pub skipped: u64,
    /// The first skipped lines, as `file:line: reason`.
    pub skipped_examples: Vec<String>,
}

impl std::fmt::Display for LoadSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "read {} lines, {} tweets: {} inserted, {} already present; {} hashtag links, {} new hashtags; {} lines skipped",
            self.lines, self.tweets, self.inserted, self.already_present, self.hashtag_links, self.new_hashtags, self.skipped
        )?;
        for example in &self.skipped_examples {
            write!(f, "\n  skipped {example}")?;
        }
        Ok(())
    }
}

const MAX_EXAMPLES: usize = 20;

/// The longest JSON line read (an API v2 page of 100 tweets with its
/// includes is about 1 MB); a longer one is skipped, not held in memory.
const MAX_LINE_BYTES: u64 = 64 << 20;

impl LoadSummary {
    fn skip(&mut self, path: &Path, line: u64, reason: &str) {
        self.skipped += 1;
        tracing::warn!(file = %path.display(), line, "skipped: {reason}");
        if self.skipped_examples.len() < MAX_EXAMPLES {
            self.skipped_examples
                .push(format!("{}:{line}: {reason}", path.display()));
        }
    }
}

/// Loads every file into MySQL (creating the schema if needed).
pub async fn run(options: &LoadOptions) -> Result<LoadSummary> {
    let pool = crate::mysql::connect(&options.mysql_url, 2).await?;
    crate::mysql::migrate(&pool).await?;
    let mut writer = Writer::new(&pool).await?;
    let mut summary = LoadSummary::default();
    for path in &options.files {
        let file = File::open(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let bar = progress_bar(options.progress, size, path);
        let reader = BufReader::with_capacity(1 << 20, bar.wrap_read(file));
        let format = match options.format {
            Format::Auto
                if path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("csv")) =>
            {
                Format::Csv
            }
            Format::Auto => Format::Json,
            other => other,
        };
        match format {
            Format::Csv => {
                load_csv(reader, path, options.batch_size, &mut writer, &mut summary).await?
            }
            _ => load_json(reader, path, options.batch_size, &mut writer, &mut summary).await?,
        }
        bar.finish_and_clear();
    }
    writer.finish(&mut summary).await?;
    Ok(summary)
}

fn progress_bar(enabled: bool, size: u64, path: &Path) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(size);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(path.display().to_string());
    bar
}

/// What [`read_line_capped`] read.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// The end of the input.
    End,
    /// A line, into the buffer.
    Read,
    /// A line longer than the cap, of this many bytes: read and dropped.
    TooLong(u64),
}

/// Reads one line into `buf`, holding at most `cap` bytes of it.
fn read_line_capped<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    cap: u64,
) -> std::io::Result<Line> {
    let n = reader.by_ref().take(cap + 1).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(Line::End);
    }
    if buf.len() as u64 <= cap || buf.ends_with(b"\n") {
        return Ok(Line::Read);
    }
    let mut bytes = n as u64;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        let (used, end) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        reader.consume(used);
        bytes += used as u64;
        if end {
            break;
        }
    }
    buf.clear();
    Ok(Line::TooLong(bytes))
}

async fn load_json<R: BufRead>(
    mut reader: R,
    path: &Path,
    batch_size: usize,
    writer: &mut Writer,
    summary: &mut LoadSummary,
) -> Result<()> {
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let io = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        match read_line_capped(&mut reader, &mut buf, MAX_LINE_BYTES).map_err(io)? {
            Line::End => break,
            Line::Read => line_no += 1,
            Line::TooLong(bytes) => {
                line_no += 1;
                summary.lines += 1;
                summary.skip(
                    path,
                    line_no,
                    &format!(
                        "line of {bytes} bytes is longer than the limit ({MAX_LINE_BYTES} bytes)"
                    ),
                );
                continue;
            }
        }
        let Ok(line) = std::str::from_utf8(&buf) else {
            summary.lines += 1;
            summary.skip(path, line_no, "not valid UTF-8");
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        summary.lines += 1;
        match json::parse_line(line) {
            Ok(records) => {
                // A line (an API v2 page) is loaded whole or skipped whole.
                match records.iter().try_for_each(Record::check_columns) {
                    Ok(()) => {
                        for r in records {
                            summary.tweets += 1;
                            writer.push(r);
                        }
                    }
                    Err(reason) => summary.skip(path, line_no, &reason),
                }
            }
            Err(reason) => summary.skip(path, line_no, &reason),
        }
        if writer.pending() >= batch_size {
            writer.flush(summary).await?;
        }
    }
    Ok(())
}

async fn load_csv<R: Read>(
    reader: R,
    path: &Path,
    batch_size: usize,
    writer: &mut Writer,
    summary: &mut LoadSummary,
) -> Result<()> {
    let mut csv = ::csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(reader);
    let header = csv.headers().map_err(|e| {
        Error::Config(format!(
            "{}: cannot read the CSV header: {e}",
            path.display()
        ))
    })?;
    let cols = csv::Columns::from_header(header)
        .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
    let mut row = ::csv::StringRecord::new();
    loop {
        let line = csv.position().line();
        match csv.read_record(&mut row) {
            Ok(false) => break,
            Ok(true) => {
                summary.lines += 1;
                match csv::parse_row(&row, &cols).and_then(|r| r.check_columns().map(|()| r)) {
                    Ok(r) => {
                        summary.tweets += 1;
                        writer.push(r);
                    }
                    Err(reason) => {
                        summary.skip(path, row.position().map_or(line, |p| p.line()), &reason)
                    }
                }
            }
            Err(e) => {
                summary.lines += 1;
                let at = e.position().map_or(line, |p| p.line());
                summary.skip(path, at, &format!("unreadable CSV row: {e}"));
                if matches!(e.kind(), ::csv::ErrorKind::Io(_)) {
                    return Err(Error::Io {
                        path: path.display().to_string(),
                        source: std::io::Error::other(e.to_string()),
                    });
                }
            }
        }
        if writer.pending() >= batch_size {
            writer.flush(summary).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_over_the_cap_is_dropped_and_the_next_one_read() {
        let mut input = std::io::Cursor::new(b"short\n0123456789abcdef\nnext\nlast".to_vec());
        let mut buf = Vec::new();
        assert_eq!(
            read_line_capped(&mut input, &mut buf, 10).expect("read"),
            Line::Read
        );
        assert_eq!(buf, b"short\n");
        buf.clear();
        assert_eq!(
            read_line_capped(&mut input, &mut buf, 10).expect("read"),
            Line::TooLong(17)
        );
        assert!(buf.is_empty());
        assert_eq!(
            read_line_capped(&mut input, &mut buf, 10).expect("read"),
            Line::Read
        );
        assert_eq!(buf, b"next\n");
        buf.clear();
        assert_eq!(
            read_line_capped(&mut input, &mut buf, 10).expect("read"),
            Line::Read
        );
        assert_eq!(buf, b"last");
        buf.clear();
        assert_eq!(
            read_line_capped(&mut input, &mut buf, 10).expect("read"),
            Line::End
        );
    }
}
