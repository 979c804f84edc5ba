//! Hashtags: the one normalisation every layer uses, and extraction from
//! text for sources that carry no hashtag entities (the CSV export).

/// Normalises a hashtag: surrounding whitespace and leading `#`/`＃` are
/// stripped, then the tag is lower-cased (Unicode lower case, so `#GOPDebate`,
/// `gopdebate` and `＃GopDebate` are one hashtag). Returns `None` when nothing
/// is left.
pub fn normalize_hashtag(tag: &str) -> Option<String> {
    let stripped = tag.trim().trim_start_matches(['#', '＃']).trim();
    if stripped.is_empty() {
        None
    } else {
        Some(stripped.to_lowercase())
    }
}

/// Normalises a list of hashtags and removes duplicates, keeping the order of
/// first appearance: the distinct hashtags of one tweet.
pub fn distinct_hashtags<I, S>(tags: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out: Vec<String> = Vec::new();
    for tag in tags {
        if let Some(n) = normalize_hashtag(tag.as_ref()) {
            if !out.contains(&n) {
                out.push(n);
            }
        }
    }
    out
}

/// Finds the hashtags in a tweet's text, as written (not normalised).
///
/// A hashtag starts with `#` or `＃` at the start of the text or after a
/// character that cannot be part of a word, and runs over letters, digits,
/// marks and `_`. Like Twitter, a tag made of digits only (`#1`) is not a
/// hashtag.
pub fn extract_hashtags(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut prev: Option<char> = None;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let starts = (c == '#' || c == '＃') && !prev.is_some_and(|p| is_tag_char(p) || p == '&');
        prev = Some(c);
        if !starts {
            continue;
        }
        let begin = i + c.len_utf8();
        let mut end = begin;
        while let Some(&(j, d)) = iter.peek() {
            if !is_tag_char(d) {
                break;
            }
            end = j + d.len_utf8();
            prev = Some(d);
            iter.next();
        }
        let tag = &text[begin..end];
        if tag.chars().any(|ch| !ch.is_ascii_digit()) {
            found.push(tag);
        }
    }
    found
}

fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric()
        || c == '_'
        // Zero-width joiners and combining marks used by Indic and Arabic scripts.
        || c == '\u{200c}'
        || c == '\u{200d}'
        || ('\u{0300}'..='\u{036f}').contains(&c)
        || ('\u{0900}'..='\u{0dff}').contains(&c)
        || ('\u{0610}'..='\u{061a}').contains(&c)
        || ('\u{064b}'..='\u{065f}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn case_and_hash_sign_are_folded() {
        assert_eq!(
            normalize_hashtag("#GOPDebate").as_deref(),
            Some("gopdebate")
        );
        assert_eq!(normalize_hashtag("＃Ünïcödé").as_deref(), Some("ünïcödé"));
        assert_eq!(normalize_hashtag("  ##x "), Some("x".to_string()));
        assert_eq!(normalize_hashtag("#"), None);
        assert_eq!(normalize_hashtag("   "), None);
    }

    #[test]
    fn distinct_keeps_first_order() {
        assert_eq!(
            distinct_hashtags(["#B", "a", "b", "#A", "c"]),
            vec!["b", "a", "c"]
        );
    }

    #[test]
    fn extraction_follows_word_boundaries() {
        assert_eq!(
            extract_hashtags("RT @x: Watching #GOPDebate, #Walker16! a#b &#39; #1 #1a #café"),
            vec!["GOPDebate", "Walker16", "1a", "café"]
        );
        assert_eq!(extract_hashtags("#start and end#"), vec!["start"]);
        assert_eq!(extract_hashtags("truncated #GOPDeb…"), vec!["GOPDeb"]);
    }

    proptest! {
        /// Normalising twice is normalising once.
        #[test]
        fn normalisation_is_idempotent(s in "\\PC{0,30}") {
            if let Some(n) = normalize_hashtag(&s) {
                prop_assert_eq!(normalize_hashtag(&n), Some(n.clone()));
                prop_assert!(!n.is_empty());
                prop_assert!(!n.starts_with('#'));
            }
        }

        /// Case and a leading `#` never make two hashtags of one.
        #[test]
        fn case_and_prefix_do_not_matter(s in "[a-zA-Z0-9_]{1,20}") {
            prop_assert_eq!(normalize_hashtag(&s), normalize_hashtag(&format!("#{}", s.to_uppercase())));
        }

        /// Every tag extracted from arbitrary text is a substring that
        /// normalises to something.
        #[test]
        fn extracted_tags_are_substrings(s in "\\PC{0,60}") {
            for tag in extract_hashtags(&s) {
                prop_assert!(s.contains(tag));
                prop_assert!(normalize_hashtag(tag).is_some());
            }
        }
    }
}
