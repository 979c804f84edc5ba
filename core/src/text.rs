//! Tweet text as the APIs deliver it: HTML-escaped.
//!
//! The X API (v1.1 and v2) escapes `&`, `<` and `>` in `text` as `&amp;`,
//! `&lt;` and `&gt;`. [`decode_html_entities`] turns them back, in one pass,
//! so that `&amp;lt;` becomes `&lt;` and not `<`.

use std::borrow::Cow;

/// `text` with the HTML character references the APIs write decoded:
/// `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, and numeric ones
/// (`&#39;`, `&#x1F600;`). Anything else, including a lone `&` or an
/// unknown name, is kept as it is.
pub fn decode_html_entities(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        // A reference is at most `&#x10FFFF;` (10 bytes) long.
        let decoded = rest
            .char_indices()
            .take(12)
            .find(|(_, c)| *c == ';')
            .and_then(|(end, _)| entity(&rest[1..end]).map(|c| (c, end)));
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The character a reference names (the text between `&` and `;`).
fn entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let digits = name.strip_prefix('#')?;
            let code = match digits.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => digits.parse().ok()?,
            };
            char::from_u32(code).filter(|c| *c != '\0')
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_escapes_of_the_api_are_decoded_once() {
        assert_eq!(
            decode_html_entities("Fish &amp; chips &lt;3 &gt; all"),
            "Fish & chips <3 > all"
        );
        assert_eq!(decode_html_entities("&amp;lt;"), "&lt;");
        assert_eq!(decode_html_entities("it&#39;s &#x1F600;"), "it's 😀");
        assert!(matches!(decode_html_entities("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn what_is_not_a_reference_is_kept() {
        for s in [
            "a & b",
            "AT&T",
            "&unknown;",
            "&#;",
            "&#xZZ;",
            "&#0;",
            "tail &",
            "&amp",
            "é&ü;",
        ] {
            assert_eq!(decode_html_entities(s), s);
        }
    }
}
