//! OpenAI chat completions (and legacy completions) answers: where a streamed
//! chunk carries the text the model writes, what closes it, and the shape held
//! text is sent in.

use serde_json::{json, Value};

use super::redact::deltas::{index_of, Closed, DeltaAt, Stream};

/// The text fields of an OpenAI chat `delta`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ChoiceText {
    /// `content`, `refusal`, `reasoning_content` or `reasoning`.
    Field(&'static str),
    /// `tool_calls[]` with this `index`: `function.arguments`.
    ToolArguments(u64),
    /// The legacy `function_call.arguments`.
    FunctionArguments,
    /// An audio answer's `audio.transcript`.
    AudioTranscript,
    /// A legacy completion's `text` (beside `delta`, not in it).
    CompletionText,
}

/// The plain text fields of a chat `delta` the model writes.
const CHOICE_TEXT_FIELDS: [&str; 4] = ["content", "refusal", "reasoning_content", "reasoning"];

/// An event's `choices`, with their positions.
pub(crate) fn choices(value: &Value) -> impl Iterator<Item = (usize, &Value)> {
    value
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

/// The delta texts of a chunk's choices, with their stream and place.
pub(crate) fn delta_texts(value: &Value, found: &mut Vec<(Stream, DeltaAt)>) {
    let is_text = |v: Option<&Value>| v.is_some_and(Value::is_string);
    for (p, choice) in choices(value) {
        let i = index_of(choice, "index", p);
        if is_text(choice.get("text")) {
            found.push((
                Stream::Choice(i, ChoiceText::CompletionText),
                DeltaAt::CompletionText(p),
            ));
        }
        let Some(delta) = choice.get("delta") else {
            continue;
        };
        for key in CHOICE_TEXT_FIELDS {
            if is_text(delta.get(key)) {
                found.push((
                    Stream::Choice(i, ChoiceText::Field(key)),
                    DeltaAt::Choice(p, key),
                ));
            }
        }
        for (c, call) in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if is_text(call.get("function").and_then(|f| f.get("arguments"))) {
                let stream =
                    Stream::Choice(i, ChoiceText::ToolArguments(index_of(call, "index", c)));
                found.push((stream, DeltaAt::ToolArguments(p, c)));
            }
        }
        if is_text(delta.get("function_call").and_then(|f| f.get("arguments"))) {
            found.push((
                Stream::Choice(i, ChoiceText::FunctionArguments),
                DeltaAt::FunctionArguments(p),
            ));
        }
        if is_text(delta.get("audio").and_then(|a| a.get("transcript"))) {
            found.push((
                Stream::Choice(i, ChoiceText::AudioTranscript),
                DeltaAt::AudioTranscript(p),
            ));
        }
    }
}

/// The choices a chunk closes (they have a `finish_reason`).
pub(crate) fn closed_streams(value: &Value, closed: &mut Vec<Closed>) {
    for (p, choice) in choices(value) {
        if choice.get("finish_reason").is_some_and(|f| !f.is_null()) {
            closed.push(Closed::Choice(index_of(choice, "index", p)));
        }
    }
}

/// The chunk that sends `rest`, the text held of choice `i`'s `text`, in
/// the envelope of the chunk that opened it (`template`).
pub(crate) fn flush_event(i: u64, text: ChoiceText, rest: String, template: Value) -> String {
    match text {
        ChoiceText::CompletionText => {
            let mut chunk = template;
            chunk["choices"] = json!([{"index": i, "text": rest, "finish_reason": null}]);
            format!("data: {chunk}\n\n")
        }
        text => {
            let delta = match text {
                ChoiceText::Field(key) => json!({ key: rest }),
                ChoiceText::ToolArguments(call) => {
                    json!({"tool_calls": [{"index": call, "function": {"arguments": rest}}]})
                }
                ChoiceText::FunctionArguments => json!({"function_call": {"arguments": rest}}),
                ChoiceText::AudioTranscript => json!({"audio": {"transcript": rest}}),
                ChoiceText::CompletionText => Value::Null,
            };
            let mut chunk = template;
            chunk["choices"] = json!([{"index": i, "delta": delta, "finish_reason": null}]);
            format!("data: {chunk}\n\n")
        }
    }
}
