//! Twitter API JSON: v1.1 tweet objects and v2 responses (`data` +
//! `includes`), one JSON document a line. The APIs HTML-escape `text`
//! (`&amp;`, `&lt;`, `&gt;`): it is stored decoded.

use serde_json::Value;
use tweetlambda_core::{decode_html_entities, extract_hashtags, parse_event_time};

use super::record::{parse_id, Record};

/// Reads one JSONL line: a v1.1 tweet object, a v2 response with `data` as
/// one tweet or a list of tweets, or a bare v2 tweet. Returns the tweets of
/// the line, or why the line cannot be loaded.
pub fn parse_line(line: &str) -> Result<Vec<Record>, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    if !value.is_object() {
        return Err("expected a JSON object".into());
    }
    if let Some(data) = value.get("data") {
        let includes = value.get("includes").unwrap_or(&Value::Null);
        return match data {
            Value::Array(tweets) => tweets.iter().map(|t| parse_v2(t, includes)).collect(),
            Value::Object(_) => parse_v2(data, includes).map(|r| vec![r]),
            _ => Err("`data` is neither a tweet nor a list of tweets".into()),
        };
    }
    if value.get("id_str").is_some() || value.get("user").is_some() {
        return parse_v1(&value).map(|r| vec![r]);
    }
    // A bare v2 tweet (no `data` wrapper).
    parse_v2(&value, &Value::Null).map(|r| vec![r])
}

fn str_field<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn int_field(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

fn created_at(v: &Value) -> Result<(String, chrono::DateTime<chrono::Utc>), String> {
    let text = v
        .get("created_at")
        .and_then(Value::as_str)
        .ok_or("missing `created_at`")?;
    let t = parse_event_time(text).map_err(|e| e.to_string())?;
    Ok((text.to_string(), t))
}

/// The full text of a v1.1 tweet: `extended_tweet.full_text`, `full_text`
/// or `text`, whichever it has.
fn v1_full_text(t: &Value) -> &str {
    str_field(t, &["extended_tweet", "full_text"])
        .or_else(|| str_field(t, &["full_text"]))
        .or_else(|| str_field(t, &["text"]))
        .unwrap_or("")
}

/// Hashtags of a v1.1 tweet from its entities (extended ones first), or from
/// its full text when it has no entities.
fn v1_hashtags(t: &Value) -> Vec<String> {
    let entities = t
        .get("extended_tweet")
        .and_then(|e| e.get("entities"))
        .or_else(|| t.get("entities"));
    match entities
        .and_then(|e| e.get("hashtags"))
        .and_then(Value::as_array)
    {
        Some(tags) => tags
            .iter()
            .filter_map(|h| h.get("text").and_then(Value::as_str))
            .map(str::to_string)
            .collect(),
        None => extract_hashtags(v1_full_text(t))
            .into_iter()
            .map(str::to_string)
            .collect(),
    }
}

/// A v1.1 tweet object. For a retweet the top-level text is cut short
/// (`RT @user: …`), so text and hashtags come from `retweeted_status`.
pub fn parse_v1(t: &Value) -> Result<Record, String> {
    let id = t
        .get("id_str")
        .and_then(parse_id)
        .or_else(|| t.get("id").and_then(parse_id))
        .ok_or("missing or invalid `id_str`/`id`")?;
    let (date_time, event_time) = created_at(t)?;
    let retweeted = t.get("retweeted_status").filter(|v| v.is_object());
    let (text, hashtags) = match retweeted {
        Some(rt) => {
            let author = str_field(rt, &["user", "screen_name"]).unwrap_or("");
            (
                format!("RT @{author}: {}", v1_full_text(rt)),
                v1_hashtags(rt),
            )
        }
        None => (v1_full_text(t).to_string(), v1_hashtags(t)),
    };
    let text = decode_html_entities(&text).into_owned();
    let mut r = Record::new(id, text, date_time, event_time, "v1");
    r.set_hashtags(hashtags);
    r.lang = str_field(t, &["lang"]).map(str::to_string);
    r.user_id = t.get("user").and_then(|u| {
        u.get("id_str")
            .and_then(parse_id)
            .or_else(|| u.get("id").and_then(parse_id))
    });
    r.user_screen_name = str_field(t, &["user", "screen_name"]).map(str::to_string);
    r.retweet_count = int_field(t, "retweet_count");
    r.favorite_count = int_field(t, "favorite_count");
    r.retweet_of_id = retweeted.and_then(|rt| rt.get("id_str").and_then(parse_id));
    r.quote_of_id = t.get("quoted_status_id_str").and_then(parse_id);
    if let Some(c) = t
        .get("coordinates")
        .and_then(|c| c.get("coordinates"))
        .and_then(Value::as_array)
    {
        // GeoJSON order: longitude, latitude.
        r.lon = c.first().and_then(Value::as_f64);
        r.lat = c.get(1).and_then(Value::as_f64);
    }
    r.place_name = str_field(t, &["place", "full_name"]).map(str::to_string);
    r.country_code = str_field(t, &["place", "country_code"]).map(str::to_string);
    Ok(r)
}

fn find_by_id<'a>(includes: &'a Value, list: &str, id: &str) -> Option<&'a Value> {
    includes
        .get(list)?
        .as_array()?
        .iter()
        .find(|x| x.get("id").and_then(Value::as_str) == Some(id))
}

/// The full text of a v2 tweet: `note_tweet.text` (long tweets) or `text`.
fn v2_full_text(t: &Value) -> &str {
    str_field(t, &["note_tweet", "text"])
        .or_else(|| str_field(t, &["text"]))
        .unwrap_or("")
}

fn v2_hashtags(t: &Value) -> Vec<String> {
    let entities = t
        .get("note_tweet")
        .and_then(|n| n.get("entities"))
        .or_else(|| t.get("entities"));
    match entities
        .and_then(|e| e.get("hashtags"))
        .and_then(Value::as_array)
    {
        Some(tags) => tags
            .iter()
            .filter_map(|h| h.get("tag").and_then(Value::as_str))
            .map(str::to_string)
            .collect(),
        None => extract_hashtags(v2_full_text(t))
            .into_iter()
            .map(str::to_string)
            .collect(),
    }
}

/// A v2 tweet, with `includes` (users, referenced tweets, places) of the
/// response it came in. A retweet takes its text and hashtags from the
/// retweeted tweet when the response includes it.
pub fn parse_v2(t: &Value, includes: &Value) -> Result<Record, String> {
    let id = t
        .get("id")
        .and_then(parse_id)
        .ok_or("missing or invalid `id`")?;
    let (date_time, event_time) = created_at(t)?;
    let referenced = |kind: &str| {
        t.get("referenced_tweets")
            .and_then(Value::as_array)
            .and_then(|refs| {
                refs.iter()
                    .find(|r| r.get("type").and_then(Value::as_str) == Some(kind))
            })
            .and_then(|r| r.get("id").and_then(Value::as_str))
    };
    let retweet_of = referenced("retweeted");
    let author_of = |tweet: &Value| {
        tweet
            .get("author_id")
            .and_then(Value::as_str)
            .and_then(|a| find_by_id(includes, "users", a))
            .and_then(|u| u.get("username").and_then(Value::as_str))
    };
    let original = retweet_of.and_then(|rid| find_by_id(includes, "tweets", rid));
    let (text, hashtags) = match original {
        Some(o) => (
            format!("RT @{}: {}", author_of(o).unwrap_or(""), v2_full_text(o)),
            v2_hashtags(o),
        ),
        None => (v2_full_text(t).to_string(), v2_hashtags(t)),
    };
    let text = decode_html_entities(&text).into_owned();
    let mut r = Record::new(id, text, date_time, event_time, "v2");
    r.set_hashtags(hashtags);
    r.lang = str_field(t, &["lang"]).map(str::to_string);
    r.user_id = t.get("author_id").and_then(parse_id);
    r.user_screen_name = author_of(t).map(str::to_string);
    let metrics = t.get("public_metrics");
    r.retweet_count = metrics.and_then(|m| int_field(m, "retweet_count"));
    r.favorite_count = metrics.and_then(|m| int_field(m, "like_count"));
    r.retweet_of_id = retweet_of.and_then(|s| s.parse().ok());
    r.quote_of_id = referenced("quoted").and_then(|s| s.parse().ok());
    if let Some(c) = t
        .get("geo")
        .and_then(|g| g.get("coordinates"))
        .and_then(|c| c.get("coordinates"))
        .and_then(Value::as_array)
    {
        r.lon = c.first().and_then(Value::as_f64);
        r.lat = c.get(1).and_then(Value::as_f64);
    }
    if let Some(place) =
        str_field(t, &["geo", "place_id"]).and_then(|p| find_by_id(includes, "places", p))
    {
        r.place_name = str_field(place, &["full_name"]).map(str::to_string);
        r.country_code = str_field(place, &["country_code"]).map(str::to_string);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_retweet_takes_text_and_hashtags_from_the_original() {
        let line = r##"{"id_str":"2","created_at":"Sun Aug 29 23:55:00 +0000 2021","text":"RT @a: cut short #On…","lang":"en",
            "user":{"id_str":"9","screen_name":"b"},"retweet_count":4,"favorite_count":0,
            "entities":{"hashtags":[{"text":"On"}]},
            "retweeted_status":{"id_str":"1","user":{"screen_name":"a"},"text":"cut short #One…","truncated":true,
              "extended_tweet":{"full_text":"cut short #One #Two","entities":{"hashtags":[{"text":"One"},{"text":"two"}]}}}}"##;
        let r = parse_line(line).expect("parses").remove(0);
        assert_eq!(r.tweet_id, 2);
        assert_eq!(r.text, "RT @a: cut short #One #Two");
        assert_eq!(
            r.hashtags,
            vec![("one".to_string(), 1), ("two".to_string(), 1)]
        );
        assert_eq!(r.retweet_of_id, Some(1));
        assert_eq!(r.user_screen_name.as_deref(), Some("b"));
        assert_eq!(r.event_time.to_rfc3339(), "2021-08-29T23:55:00+00:00");
    }

    #[test]
    fn v2_page_with_includes() {
        let line = r##"{"data":[
            {"id":"10","created_at":"2021-08-29T23:51:27.000Z","text":"RT @x: hi #A…","author_id":"7",
             "referenced_tweets":[{"type":"retweeted","id":"11"}],"public_metrics":{"retweet_count":3,"like_count":0}},
            {"id":"12","created_at":"2021-08-29T23:52:00.000Z","text":"hello #B #b","lang":"en",
             "entities":{"hashtags":[{"tag":"B"},{"tag":"b"}]},"public_metrics":{"retweet_count":1,"like_count":2},
             "geo":{"coordinates":{"type":"Point","coordinates":[-74.0,40.7]},"place_id":"p"}}],
          "includes":{"users":[{"id":"7","username":"me"},{"id":"8","username":"x"}],
                      "tweets":[{"id":"11","author_id":"8","text":"hi #A #C","entities":{"hashtags":[{"tag":"A"},{"tag":"C"}]}}],
                      "places":[{"id":"p","full_name":"New York, NY","country_code":"US"}]}}"##;
        let rs = parse_line(line).expect("parses");
        assert_eq!(rs.len(), 2);
        let escaped =
            r#"{"id":"1","created_at":"2021-08-29T23:51:27.000Z","text":"Q&amp;A &lt;3"}"#;
        assert_eq!(parse_line(escaped).expect("parses")[0].text, "Q&A <3");
        assert_eq!(rs[0].text, "RT @x: hi #A #C");
        assert_eq!(rs[0].hashtags.len(), 2);
        assert_eq!(rs[0].user_screen_name.as_deref(), Some("me"));
        assert_eq!(rs[0].retweet_of_id, Some(11));
        assert_eq!(rs[1].hashtags, vec![("b".to_string(), 2)]);
        assert_eq!(rs[1].favorite_count, Some(2));
        assert_eq!((rs[1].lat, rs[1].lon), (Some(40.7), Some(-74.0)));
        assert_eq!(rs[1].place_name.as_deref(), Some("New York, NY"));
    }

    #[test]
    fn bad_lines_say_why() {
        assert!(parse_line("{not json")
            .expect_err("rejected")
            .contains("invalid JSON"));
        assert!(parse_line("[1]").expect_err("rejected").contains("object"));
        assert!(parse_line(r#"{"id_str":"1","user":{}}"#)
            .expect_err("rejected")
            .contains("created_at"));
        assert!(
            parse_line(r#"{"id_str":"1","user":{},"created_at":"soon"}"#)
                .expect_err("rejected")
                .contains("unrecognised")
        );
    }
}
