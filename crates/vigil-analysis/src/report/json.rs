//! JSON output: one review is one pretty-printed JSON document; several are JSON Lines, one
//! compact object per line, so every JSON reader and `jq` can take the output as it is. The
//! shape is the [`Review`] serialization, which carries every field the evaluation format asks
//! for.

use vigil_core::Review;

/// Renders one review as a pretty JSON document, several as JSON Lines.
pub fn render_json(reviews: &[Review]) -> String {
    if let [only] = reviews {
        return review_json(only) + "\n";
    }
    let mut out = String::new();
    for review in reviews {
        // See `review_json`: serialization of a Review cannot fail.
        out.push_str(&serde_json::to_string(review).expect("a Review always serializes to JSON"));
        out.push('\n');
    }
    out
}

/// One review as pretty JSON.
pub fn review_json(review: &Review) -> String {
    // A Review holds only strings, numbers, lists and string-keyed maps, so serialization cannot
    // fail; a failure would be a bug in the domain types.
    serde_json::to_string_pretty(review).expect("a Review always serializes to JSON")
}
