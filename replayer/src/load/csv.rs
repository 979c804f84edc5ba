//! The CSV export (`gop_debate_2015.csv`): columns `tweet_id`,
//! `tweet_created`, `name`, `text`, `retweet_count`, `tweet_coord`, …
//! Hashtags are extracted from the text, since the export has no entities.

use std::collections::HashMap;

use tweetlambda_core::{extract_hashtags, parse_event_time};

use super::record::Record;

/// Column positions found in the header.
#[derive(Debug, Clone)]
pub struct Columns {
    id: usize,
    created: usize,
    text: usize,
    name: Option<usize>,
    retweets: Option<usize>,
    coord: Option<usize>,
    location: Option<usize>,
}

impl Columns {
    /// Finds the columns by name; `tweet_id`, `tweet_created` and `text` are
    /// required (also accepted: `id_str`, `created_at`).
    pub fn from_header(header: &csv::StringRecord) -> Result<Columns, String> {
        let index: HashMap<&str, usize> = header
            .iter()
            .enumerate()
            .map(|(i, h)| (h.trim(), i))
            .collect();
        let find = |names: &[&str]| names.iter().find_map(|n| index.get(n).copied());
        Ok(Columns {
            id: find(&["tweet_id", "id_str"]).ok_or("CSV header has no `tweet_id` column")?,
            created: find(&["tweet_created", "created_at"])
                .ok_or("CSV header has no `tweet_created` column")?,
            text: find(&["text", "tweet"]).ok_or("CSV header has no `text` column")?,
            name: find(&["name", "screen_name"]),
            retweets: find(&["retweet_count"]),
            coord: find(&["tweet_coord"]),
            location: find(&["tweet_location"]),
        })
    }
}

/// Parses one CSV row.
pub fn parse_row(row: &csv::StringRecord, cols: &Columns) -> Result<Record, String> {
    let field = |i: usize| row.get(i).map(str::trim).unwrap_or("");
    let optional = |i: Option<usize>| i.map(field).filter(|s| !s.is_empty());
    let id: i64 = field(cols.id)
        .parse()
        .map_err(|_| format!("invalid tweet_id {:?}", field(cols.id)))?;
    let date_time = field(cols.created).to_string();
    let event_time = parse_event_time(&date_time).map_err(|e| e.to_string())?;
    let text = field(cols.text).to_string();
    let mut r = Record::new(id, text, date_time, event_time, "csv");
    r.set_hashtags(extract_hashtags(&r.text.clone()));
    r.user_screen_name = optional(cols.name).map(str::to_string);
    r.retweet_count = optional(cols.retweets).and_then(|s| s.parse().ok());
    r.place_name = optional(cols.location).map(str::to_string);
    if let Some(coord) = optional(cols.coord) {
        // Written as "[lat, lon]".
        let nums: Vec<f64> = coord
            .trim_matches(['[', ']'])
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        if let [lat, lon] = nums[..] {
            r.lat = Some(lat);
            r.lon = Some(lon);
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gop_debate_row() {
        let mut reader = csv::Reader::from_reader(
            "id,name,text,tweet_coord,tweet_created,tweet_id,retweet_count\n\
             1,I_Am_Kenzi,\"RT @N: How? #GOPDebate #gopdebate\",\"[40.7, -74.0]\",2015-08-07 09:54:46 -0700,629697200650592256,5\n\
             2,x,bad,,yesterday,1,0\n"
                .as_bytes(),
        );
        let cols = Columns::from_header(reader.headers().expect("header")).expect("columns");
        let rows: Vec<_> = reader.records().map(|r| r.expect("row")).collect();
        let r = parse_row(&rows[0], &cols).expect("parses");
        assert_eq!(r.tweet_id, 629697200650592256);
        assert_eq!(r.hashtags, vec![("gopdebate".to_string(), 2)]);
        assert_eq!(r.event_time.to_rfc3339(), "2015-08-07T16:54:46+00:00");
        assert_eq!(
            (r.lat, r.lon, r.retweet_count),
            (Some(40.7), Some(-74.0), Some(5))
        );
        assert!(parse_row(&rows[1], &cols)
            .expect_err("rejected")
            .contains("yesterday"));
    }
}
