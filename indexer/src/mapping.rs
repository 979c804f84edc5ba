//! The tweets index's explicit mapping, and the check of an existing index
//! against it: a field the indexer writes must have the type below, or the
//! indexer refuses to start (Elasticsearch would otherwise refuse documents
//! one by one, or aggregate them wrongly).

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// Every field of [`crate::TweetDocument`] with its Elasticsearch type,
/// dotted for object fields.
pub const FIELDS: &[(&str, &str)] = &[
    ("id", "keyword"),
    ("created_at", "date"),
    ("text", "text"),
    ("hashtags", "keyword"),
    ("lang", "keyword"),
    ("user.id", "keyword"),
    ("user.screen_name", "keyword"),
    ("retweet_count", "long"),
    ("favorite_count", "long"),
    ("score", "long"),
    ("retweet_of", "keyword"),
    ("quote_of", "keyword"),
    ("location", "geo_point"),
    ("place", "keyword"),
    ("country_code", "keyword"),
];

/// The body of `PUT /{index}`: the mapping of [`FIELDS`]. `dynamic: false`
/// keeps fields the indexer does not know out of the mapping.
pub fn index_body() -> Value {
    let mut properties = serde_json::Map::new();
    for (path, ty) in FIELDS {
        match path.split_once('.') {
            Some((object, field)) => {
                let entry = properties
                    .entry(object.to_string())
                    .or_insert_with(|| json!({"properties": {}}));
                entry["properties"][field] = json!({ "type": ty });
            }
            None => {
                properties.insert(path.to_string(), json!({ "type": ty }));
            }
        }
    }
    json!({
        "mappings": { "dynamic": false, "properties": properties },
    })
}

/// The fields of a `properties` object, dotted, with their types (an object
/// field without a type is walked into).
pub fn flatten(properties: &Value) -> BTreeMap<String, String> {
    fn walk(prefix: &str, properties: &Value, out: &mut BTreeMap<String, String>) {
        let Some(map) = properties.as_object() else {
            return;
        };
        for (name, field) in map {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            if let Some(ty) = field.get("type").and_then(Value::as_str) {
                out.insert(path.clone(), ty.to_string());
            }
            if let Some(inner) = field.get("properties") {
                walk(&path, inner, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", properties, &mut out);
    out
}

/// What is wrong with an existing index's mapping, one line per field: a
/// field of another type, or a field missing. `mapping` is the index's
/// entry of `GET /{index}/_mapping` (`{"mappings": {"properties": …}}`).
pub fn conflicts(mapping: &Value) -> Vec<String> {
    let existing = flatten(&mapping["mappings"]["properties"]);
    FIELDS
        .iter()
        .filter_map(|(path, ty)| match existing.get(*path) {
            Some(found) if found == ty => None,
            Some(found) => Some(format!("`{path}` is {found}, the indexer writes {ty}")),
            None => Some(format!("`{path}` is not mapped (the indexer writes {ty})")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mapping_holds_every_field_with_its_type() {
        let body = index_body();
        let flat = flatten(&body["mappings"]["properties"]);
        assert_eq!(flat.len(), FIELDS.len());
        assert_eq!(flat["user.screen_name"], "keyword");
        assert_eq!(flat["location"], "geo_point");
        assert_eq!(
            body["mappings"]["properties"]["user"]["properties"]["id"]["type"],
            "keyword"
        );
        assert!(conflicts(&body).is_empty());
    }

    #[test]
    fn another_type_or_a_missing_field_is_a_conflict() {
        let mut body = index_body();
        body["mappings"]["properties"]["hashtags"] = json!({"type": "text"});
        body["mappings"]["properties"]
            .as_object_mut()
            .expect("object")
            .remove("location");
        let found = conflicts(&body);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("`hashtags` is text"), "{found:?}");
        assert!(found[1].contains("`location` is not mapped"), "{found:?}");
    }
}
