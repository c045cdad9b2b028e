//! The answer to a forwarded request, on its way back to the agent, as one
//! pipeline:
//!
//! 1. what its body is is read once, from its head ([`Body`]);
//! 2. a streamed answer is split into events once ([`Pipeline`], with
//!    `crate::stream`'s reader), and each event goes through a chain of
//!    [`Transform`]s: the tool gate ([`tool_calls`] for an LLM's tool calls,
//!    [`mcp`] for a `tools/list`), then the redactor ([`redact`]); a whole
//!    answer goes through the same checks at its end;
//! 3. where each provider's events carry the text the model writes is in one
//!    file each ([`chat`], [`responses`], [`anthropic`]; MCP in [`mcp`]); the
//!    tool calls each provider's answers make are read in [`tool_calls`].
//!
//! `crate::exchange` drives it across the answer's callbacks and turns what
//! it finds into effects.

use std::ops::{Deref, DerefMut};

use crate::stream::{find_line_break, Event, EventSplitter, Events};

pub mod anthropic;
pub mod chat;
pub mod mcp;
pub mod redact;
pub mod responses;
pub mod tool_calls;

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
    /// headers (absent: `None`; the encoding is every line of it, joined as
    /// one list: a client applies each coding listed).
    pub fn of(content_type: Option<&str>, content_encoding: Option<&str>) -> Body {
        if content_encoding.is_some_and(crate::route::coded) {
            return Body::Compressed;
        }
        // The media type alone, as clients read it: a parameter naming
        // another type (`application/json; x=text/event-stream`) changes
        // nothing.
        let content_type = content_type.unwrap_or_default().to_ascii_lowercase();
        let media = content_type.split(';').next().unwrap_or_default().trim();
        if media == "text/event-stream" {
            Body::Events
        } else if media.is_empty() || media.contains("json") || media.starts_with("text/") {
            Body::Document
        } else {
            Body::Opaque
        }
    }
}

/// `v`'s `key` number, or `default` (an index a provider left out: the position).
pub(crate) fn index_of(v: &serde_json::Value, key: &str, default: usize) -> u64 {
    v.get(key)
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(default as u64)
}

/// One stage of a streamed answer's checks: it reads complete events and
/// passes on complete events (changed, dropped, or ending the stream).
pub trait Transform {
    /// One event of the stream: what goes on is written to `out`.
    fn event(&mut self, event: Event<'_>, out: &mut Events);
    /// The event being read outgrew the limit: it cannot be judged, and the
    /// stream is cut here.
    fn too_long(&mut self, out: &mut Events);
    /// The end of the stream: what is still held goes out.
    fn finish(&mut self, out: &mut Events);
    /// Whether the stream was cut short here: nothing more goes on.
    fn stopped(&self) -> bool;
}

/// A streamed answer split into events once, each handed through a chain of
/// [`Transform`]s in order (the first reads the upstream's events, each next
/// one what the one before passed on).
pub struct Pipeline {
    split: EventSplitter,
}

impl Pipeline {
    /// A pipeline that holds at most `max_event_bytes` of one event.
    pub fn new(max_event_bytes: usize) -> Pipeline {
        Pipeline {
            split: EventSplitter::new(max_event_bytes),
        }
    }

    /// Adds a network chunk; returns the bytes to forward now.
    pub fn push(&mut self, chunk: &[u8], stages: &mut [&mut dyn Transform]) -> Vec<u8> {
        let Some((first, rest)) = stages.split_first_mut() else {
            return chunk.to_vec();
        };
        if first.stopped() {
            self.split.clear();
            return Vec::new();
        }
        let mut out = Events::output(chunk.len());
        let mut between = Events::new();
        let within = self.split.push(chunk, |bytes, separator, one_line| {
            let event = Event {
                bytes,
                separator,
                one_line,
            };
            if rest.is_empty() {
                first.event(event, &mut out);
            } else {
                first.event(event, &mut between);
                through(rest, &mut between, &mut out);
            }
            !first.stopped()
        });
        if !within {
            first.too_long(&mut between);
            through(rest, &mut between, &mut out);
        }
        out.into_bytes()
    }

    /// The end of the stream: an unterminated last event is judged like the
    /// others (ended, so that nothing sent after it joins it), then each
    /// stage in turn lets go of what it holds.
    pub fn finish(&mut self, stages: &mut [&mut dyn Transform]) -> Vec<u8> {
        let mut out = Events::output(0);
        let last = self.split.rest();
        for at in 0..stages.len() {
            let (done, rest) = stages.split_at_mut(at + 1);
            let Some(stage) = done.last_mut() else {
                continue;
            };
            let mut between = Events::new();
            if at == 0 && !last.is_empty() && !stage.stopped() {
                let one_line = find_line_break(&last).is_none();
                let event = Event {
                    bytes: &last,
                    separator: b"\n\n",
                    one_line,
                };
                stage.event(event, &mut between);
            }
            stage.finish(&mut between);
            through(rest, &mut between, &mut out);
        }
        out.into_bytes()
    }
}

/// Hands the events in `input` through `stages` in turn, the last one's
/// events going to `out`; `input` is left empty.
fn through(stages: &mut [&mut dyn Transform], input: &mut Events, out: &mut Events) {
    let Some((first, rest)) = stages.split_first_mut() else {
        for event in input.iter() {
            out.pass(event);
        }
        input.clear();
        return;
    };
    let mut next = Events::new();
    for event in input.iter() {
        first.event(event, &mut next);
    }
    input.clear();
    through(rest, &mut next, out);
}

/// One [`Transform`] over a whole stream, with its own [`Pipeline`]: a
/// check used alone (its tests, the benchmarks). It reads as the check itself.
pub struct Piped<T: Transform> {
    pipeline: Pipeline,
    transform: T,
}

impl<T: Transform> Piped<T> {
    pub fn new(transform: T, max_event_bytes: usize) -> Piped<T> {
        Piped {
            pipeline: Pipeline::new(max_event_bytes),
            transform,
        }
    }

    /// Adds a network chunk; returns the bytes to forward now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.pipeline.push(chunk, &mut [&mut self.transform])
    }

    /// The end of the stream: whatever is held goes out.
    pub fn finish(&mut self) -> Vec<u8> {
        self.pipeline.finish(&mut [&mut self.transform])
    }
}

impl<T: Transform> Deref for Piped<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.transform
    }
}

impl<T: Transform> DerefMut for Piped<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.transform
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
            // A parameter naming another type changes nothing (clients read
            // the media type alone).
            (
                Some("application/json; x=text/event-stream"),
                Body::Document,
            ),
            (Some("image/png; a=application/json"), Body::Opaque),
        ] {
            assert_eq!(Body::of(content_type, None), body, "{content_type:?}");
            assert_eq!(Body::of(content_type, Some(" Identity ")), body);
            assert_eq!(Body::of(content_type, Some("identity, IDENTITY")), body);
        }
        // Whatever the type: compressed cannot be read, and is never passed as
        // unreadable bytes (a client decompresses and parses it all the same).
        for encoding in [
            "gzip",
            "br",
            "",
            "identity, gzip",
            "identity,",
            "gzip, identity",
        ] {
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
