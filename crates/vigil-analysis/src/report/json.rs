//! JSON output: each review as one pretty-printed object, one after another, so `jq` reads the
//! whole output as a stream. The shape is the [`Review`] serialization, which carries every
//! field the evaluation format asks for.

use vigil_core::Review;

/// Renders each review as a pretty JSON object followed by a newline.
pub fn render_json(reviews: &[Review]) -> String {
    let mut out = String::new();
    for review in reviews {
        out.push_str(&review_json(review));
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
