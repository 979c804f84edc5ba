//! The Kibana saved objects of `kibana/tweetlambda.ndjson` (a data view on
//! the tweets index and a dashboard), and their import through Kibana's
//! saved-objects API.

use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, Result};

/// The saved objects, as shipped in the repository.
pub const SAVED_OBJECTS: &str = include_str!("../../kibana/tweetlambda.ndjson");

/// What Kibana said of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Objects imported.
    pub success_count: u64,
    /// One line per object Kibana refused: type, id and why.
    pub errors: Vec<String>,
}

/// Reads Kibana's answer to `_import`.
pub fn read_report(answer: &Value) -> ImportReport {
    let errors = answer["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    let kind = e["type"].as_str().unwrap_or("?");
                    let id = e["id"].as_str().unwrap_or("?");
                    let why = e["error"]["type"].as_str().unwrap_or("error");
                    let detail = match &e["error"]["references"] {
                        Value::Array(refs) if !refs.is_empty() => format!(
                            " (missing: {})",
                            refs.iter()
                                .map(|r| format!(
                                    "{} {}",
                                    r["type"].as_str().unwrap_or("?"),
                                    r["id"].as_str().unwrap_or("?")
                                ))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        _ => String::new(),
                    };
                    format!("{kind} {id}: {why}{detail}")
                })
                .collect()
        })
        .unwrap_or_default();
    ImportReport {
        success_count: answer["successCount"].as_u64().unwrap_or(0),
        errors,
    }
}

/// Imports `ndjson` into the Kibana at `kibana_url`
/// (`POST /api/saved_objects/_import?overwrite=true`, the file as the
/// multipart field `file`, the `kbn-xsrf` header Kibana requires), with
/// optional basic authentication.
pub async fn import(
    kibana_url: &str,
    ndjson: &str,
    auth: Option<(&str, &str)>,
) -> Result<ImportReport> {
    let base = kibana_url.trim_end_matches('/');
    let url = format!("{base}/api/saved_objects/_import?overwrite=true");
    let part = reqwest::multipart::Part::bytes(ndjson.as_bytes().to_vec())
        .file_name("tweetlambda.ndjson")
        .mime_str("application/ndjson")
        .map_err(|e| Error::Kibana(e.to_string()))?;
    let form = reqwest::multipart::Form::new().part("file", part);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .no_proxy()
        .build()
        .map_err(|e| Error::Kibana(format!("HTTP client: {e}")))?;
    let mut request = client
        .post(&url)
        .header("kbn-xsrf", "tweetlambda")
        .multipart(form);
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    let response = request
        .send()
        .await
        .map_err(|e| Error::Kibana(format!("cannot reach Kibana at {base}: {e}")))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        let short: String = text.chars().take(500).collect();
        return Err(Error::Kibana(format!(
            "Kibana refused the import: {status} {short}"
        )));
    }
    let answer: Value = serde_json::from_str(&text)
        .map_err(|e| Error::Kibana(format!("unreadable answer from Kibana ({e})")))?;
    Ok(read_report(&answer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::{BTreeSet, HashSet};

    fn objects() -> Vec<Value> {
        SAVED_OBJECTS
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("each line is a JSON object"))
            .collect()
    }

    /// Calls `f` with every key and value of every object inside `v`. The
    /// saved objects keep their state as JSON text inside JSON: such text
    /// is parsed and visited too.
    fn visit(v: &Value, f: &mut dyn FnMut(&str, &Value)) {
        match v {
            Value::Object(map) => {
                for (k, x) in map {
                    f(k, x);
                    visit(x, f);
                }
            }
            Value::Array(items) => items.iter().for_each(|x| visit(x, f)),
            Value::String(s) if s.starts_with('{') || s.starts_with('[') => {
                if let Ok(inner) = serde_json::from_str::<Value>(s) {
                    visit(&inner, f);
                }
            }
            _ => {}
        }
    }

    /// Every field of the index an object's state names.
    fn fields(v: &Value, out: &mut BTreeSet<String>) {
        let text = |x: &Value| x.as_str().map(String::from);
        visit(v, &mut |k, x| match (k, x) {
            ("field" | "geoField" | "sortField" | "timeFieldName", _) => out.extend(text(x)),
            ("columns" | "tooltipProperties", Value::Array(cols)) => {
                out.extend(cols.iter().filter_map(text))
            }
            ("sort", Value::Array(sorts)) => {
                out.extend(sorts.iter().filter_map(|s| s.get(0).and_then(text)))
            }
            _ => {}
        });
    }

    /// The reference names an object's state points at
    /// (`indexRefName`, `panelRefName`, `indexPatternRefName`).
    fn ref_names(v: &Value, out: &mut Vec<String>) {
        visit(v, &mut |k, x| {
            if matches!(k, "indexRefName" | "panelRefName" | "indexPatternRefName") {
                out.extend(x.as_str().map(String::from));
            }
        });
    }

    #[test]
    fn every_field_the_dashboard_uses_is_in_the_mapping() {
        let mapped: HashSet<&str> = crate::mapping::FIELDS.iter().map(|(f, _)| *f).collect();
        let mut used = BTreeSet::new();
        for o in objects() {
            fields(&o["attributes"], &mut used);
        }
        for must in [
            "hashtags",
            "created_at",
            "retweet_count",
            "favorite_count",
            "lang",
            "location",
            "score",
            "text",
        ] {
            assert!(
                used.contains(must),
                "the dashboard does not use {must}: {used:?}"
            );
        }
        let unknown: Vec<&String> = used
            .iter()
            .filter(|f| !mapped.contains(f.as_str()))
            .collect();
        assert!(unknown.is_empty(), "fields not in the mapping: {unknown:?}");
    }

    #[test]
    fn every_reference_resolves_and_the_data_view_is_on_the_index() {
        let objects = objects();
        let ids: HashSet<(String, String)> = objects
            .iter()
            .map(|o| {
                (
                    o["type"].as_str().expect("type").to_string(),
                    o["id"].as_str().expect("id").to_string(),
                )
            })
            .collect();
        assert_eq!(ids.len(), objects.len(), "ids are unique");
        let mut names_used = 0;
        for o in &objects {
            let refs = o["references"].as_array().expect("references");
            let names: HashSet<&str> = refs.iter().filter_map(|r| r["name"].as_str()).collect();
            for r in refs {
                let key = (
                    r["type"].as_str().expect("type").to_string(),
                    r["id"].as_str().expect("id").to_string(),
                );
                assert!(ids.contains(&key), "{} refers to missing {key:?}", o["id"]);
            }
            // Every reference name the object's state points at exists.
            let mut pointed = Vec::new();
            ref_names(&o["attributes"], &mut pointed);
            for name in pointed {
                assert!(
                    names.contains(name.as_str()),
                    "{}: {name} has no reference",
                    o["id"]
                );
                names_used += 1;
            }
        }
        assert!(names_used >= 7, "only {names_used} references checked");
        let view = objects
            .iter()
            .find(|o| o["type"] == "index-pattern")
            .expect("a data view");
        assert_eq!(view["attributes"]["title"], "tweets");
        assert_eq!(view["attributes"]["timeFieldName"], "created_at");
        let dashboard = objects
            .iter()
            .find(|o| o["type"] == "dashboard")
            .expect("a dashboard");
        let panels: Vec<Value> = serde_json::from_str(
            dashboard["attributes"]["panelsJSON"]
                .as_str()
                .expect("panels"),
        )
        .expect("JSON");
        assert_eq!(
            panels.len(),
            6,
            "bar, tweets over time, engagement, languages, map, table"
        );
    }

    #[test]
    fn kibana_errors_are_reported_by_object() {
        let answer = json!({"success": false, "successCount": 6, "errors": [
            {"id": "tl-map", "type": "map", "title": "Where", "error": {"type": "missing_references",
             "references": [{"type": "index-pattern", "id": "x"}]}},
            {"id": "tl-y", "type": "visualization", "error": {"type": "unsupported_type"}},
        ]});
        let report = read_report(&answer);
        assert_eq!(report.success_count, 6);
        assert_eq!(
            report.errors,
            vec![
                "map tl-map: missing_references (missing: index-pattern x)".to_string(),
                "visualization tl-y: unsupported_type".to_string(),
            ]
        );
    }
}
