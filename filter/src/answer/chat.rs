//! OpenAI chat completions (and legacy completions) answers: where a streamed
//! chunk carries the text the model writes, what closes it, and the shape held
//! text is sent in.

use serde_json::{json, Value};

use super::index_of;

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

/// Where a chat chunk carries delta text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum At {
    /// `choices[p].delta.<key>` (`p` the position in the array).
    Field(usize, &'static str),
    /// `choices[p].delta.tool_calls[c].function.arguments`.
    ToolArguments(usize, usize),
    /// `choices[p].delta.function_call.arguments`.
    FunctionArguments(usize),
    /// `choices[p].delta.audio.transcript`.
    AudioTranscript(usize),
    /// `choices[p].text`.
    CompletionText(usize),
}

/// The value at `at` in a chunk.
pub(crate) fn slot(value: &mut Value, at: At) -> Option<&mut Value> {
    fn choice_delta(value: &mut Value, p: usize) -> Option<&mut Value> {
        value.get_mut("choices")?.get_mut(p)?.get_mut("delta")
    }
    match at {
        At::Field(p, key) => choice_delta(value, p)?.get_mut(key),
        At::ToolArguments(p, c) => choice_delta(value, p)?
            .get_mut("tool_calls")?
            .get_mut(c)?
            .get_mut("function")?
            .get_mut("arguments"),
        At::FunctionArguments(p) => choice_delta(value, p)?
            .get_mut("function_call")?
            .get_mut("arguments"),
        At::AudioTranscript(p) => choice_delta(value, p)?
            .get_mut("audio")?
            .get_mut("transcript"),
        At::CompletionText(p) => value.get_mut("choices")?.get_mut(p)?.get_mut("text"),
    }
}

/// An event's `choices`, with their positions.
pub(crate) fn choices(value: &Value) -> impl Iterator<Item = (usize, &Value)> {
    value
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

/// The delta texts of a chunk's choices: choice index, which text, where.
pub(crate) fn delta_texts(value: &Value) -> Vec<(u64, ChoiceText, At)> {
    let mut found = Vec::new();
    let is_text = |v: Option<&Value>| v.is_some_and(Value::is_string);
    for (p, choice) in choices(value) {
        let i = index_of(choice, "index", p);
        if is_text(choice.get("text")) {
            found.push((i, ChoiceText::CompletionText, At::CompletionText(p)));
        }
        let Some(delta) = choice.get("delta") else {
            continue;
        };
        for key in CHOICE_TEXT_FIELDS {
            if is_text(delta.get(key)) {
                found.push((i, ChoiceText::Field(key), At::Field(p, key)));
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
                let text = ChoiceText::ToolArguments(index_of(call, "index", c));
                found.push((i, text, At::ToolArguments(p, c)));
            }
        }
        if is_text(delta.get("function_call").and_then(|f| f.get("arguments"))) {
            found.push((i, ChoiceText::FunctionArguments, At::FunctionArguments(p)));
        }
        if is_text(delta.get("audio").and_then(|a| a.get("transcript"))) {
            found.push((i, ChoiceText::AudioTranscript, At::AudioTranscript(p)));
        }
    }
    found
}

/// The choices a chunk closes (they have a `finish_reason`).
pub(crate) fn closed(value: &Value) -> impl Iterator<Item = u64> + '_ {
    choices(value)
        .filter(|(_, choice)| choice.get("finish_reason").is_some_and(|f| !f.is_null()))
        .map(|(p, choice)| index_of(choice, "index", p))
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
