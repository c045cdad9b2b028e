//! The answer to a forwarded request, on its way back to the agent: what its
//! body is ([`Body`], read once from its head), and the checks every
//! readable answer passes through.

/// What an answer's body is, by its `content-type` and `content-encoding`:
/// the one rule every check of the answer (the tool gate, the scan) reads it by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// Server-sent events (`text/event-stream`): rewritten event by event.
    Events,
    /// JSON or other text (or a body with no type): read whole. A client SDK
    /// parses an answer as JSON whatever text type it is labelled with, so
    /// every text is read.
    Document,
    /// Audio, images and other bytes: nothing a check can name in them.
    Opaque,
    /// Compressed (any `content-encoding` but `identity`): no check can read
    /// it, and upstream was asked for a plain answer, so it is refused.
    Compressed,
}

impl Body {
    /// Classifies an answer by its `content_type` and `content_encoding`
    /// headers (absent: `None`).
    pub fn of(content_type: Option<&str>, content_encoding: Option<&str>) -> Body {
        if content_encoding.is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity")) {
            return Body::Compressed;
        }
        let content_type = content_type.unwrap_or_default().to_ascii_lowercase();
        if content_type.contains("text/event-stream") {
            Body::Events
        } else if content_type.trim().is_empty()
            || content_type.contains("json")
            || content_type.trim_start().starts_with("text/")
        {
            Body::Document
        } else {
            Body::Opaque
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_reads_every_answer() {
        for (content_type, body) in [
            (Some("text/event-stream"), Body::Events),
            (Some("Text/Event-Stream; charset=utf-8"), Body::Events),
            (Some("application/json"), Body::Document),
            (Some("application/vnd.api+json"), Body::Document),
            (Some("text/plain; charset=utf-8"), Body::Document),
            (Some("text/markdown"), Body::Document),
            (Some(""), Body::Document),
            (None, Body::Document),
            (Some("audio/mpeg"), Body::Opaque),
            (Some("image/png"), Body::Opaque),
            (Some("application/octet-stream"), Body::Opaque),
        ] {
            assert_eq!(Body::of(content_type, None), body, "{content_type:?}");
            assert_eq!(Body::of(content_type, Some(" Identity ")), body);
        }
        // Whatever the type: compressed cannot be read, and is never passed as
        // unreadable bytes (a client decompresses and parses it all the same).
        for encoding in ["gzip", "br", "", "identity, gzip"] {
            for content_type in [Some("application/json"), Some("image/png"), None] {
                assert_eq!(
                    Body::of(content_type, Some(encoding)),
                    Body::Compressed,
                    "{content_type:?} {encoding:?}"
                );
            }
        }
    }
}
