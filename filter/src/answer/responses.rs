//! OpenAI Responses API answers: where a streamed event carries the text the
//! model writes (`response.<kind>.delta`), what closes it (`.done`), and the
//! shape held text is sent in; the calls an answer's output items make,
//! judged whole or event by event.

use serde_json::{json, Value};

use super::index_of;
use super::tool_calls::{ToolCallGate, ToolCallStream};

/// The Responses API's streamed texts: `response.<kind>.delta` events, closed by
/// `response.<kind>.done` (which repeats the whole text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ResponsesText {
    OutputText,
    Refusal,
    FunctionCallArguments,
    CustomToolCallInput,
    McpCallArguments,
    CodeInterpreterCallCode,
    AudioTranscript,
    ReasoningText,
    ReasoningSummaryText,
}

impl ResponsesText {
    pub(crate) const ALL: [ResponsesText; 9] = [
        ResponsesText::OutputText,
        ResponsesText::Refusal,
        ResponsesText::FunctionCallArguments,
        ResponsesText::CustomToolCallInput,
        ResponsesText::McpCallArguments,
        ResponsesText::CodeInterpreterCallCode,
        ResponsesText::AudioTranscript,
        ResponsesText::ReasoningText,
        ResponsesText::ReasoningSummaryText,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            ResponsesText::OutputText => "output_text",
            ResponsesText::Refusal => "refusal",
            ResponsesText::FunctionCallArguments => "function_call_arguments",
            ResponsesText::CustomToolCallInput => "custom_tool_call_input",
            ResponsesText::McpCallArguments => "mcp_call_arguments",
            ResponsesText::CodeInterpreterCallCode => "code_interpreter_call_code",
            ResponsesText::AudioTranscript => "audio.transcript",
            ResponsesText::ReasoningText => "reasoning_text",
            ResponsesText::ReasoningSummaryText => "reasoning_summary_text",
        }
    }

    /// The kind of a `response.<kind>.<suffix>` event type.
    pub(crate) fn of(event_type: &str, suffix: &str) -> Option<ResponsesText> {
        let kind = event_type.strip_prefix("response.")?.strip_suffix(suffix)?;
        ResponsesText::ALL.into_iter().find(|k| k.name() == kind)
    }

    /// The field that numbers its parts.
    pub(crate) fn part_key(self) -> &'static str {
        match self {
            ResponsesText::ReasoningSummaryText => "summary_index",
            _ => "content_index",
        }
    }
}

/// The delta text of a `response.<kind>.delta` (`kind` is the event's
/// type, its text at `delta`): which text, of which output and part.
pub(crate) fn delta_text(value: &Value, kind: &str) -> Option<(ResponsesText, u64, u64)> {
    let text = ResponsesText::of(kind, ".delta")?;
    value
        .get("delta")
        .is_some_and(Value::is_string)
        .then(|| part(value, text))
}

/// The part a `response.<kind>.done` closes.
pub(crate) fn closed(value: &Value, kind: &str) -> Option<(ResponsesText, u64, u64)> {
    ResponsesText::of(kind, ".done").map(|text| part(value, text))
}

/// The output and part an event of `text` is about.
fn part(value: &Value, text: ResponsesText) -> (ResponsesText, u64, u64) {
    (
        text,
        index_of(value, "output_index", 0),
        index_of(value, text.part_key(), 0),
    )
}

/// The event that sends `rest`, the text held of part `part` of output
/// `output`, shaped like the event that opened it (`template`).
pub(crate) fn flush_event(
    text: ResponsesText,
    output: u64,
    part: u64,
    rest: String,
    template: Value,
) -> String {
    let mut delta = template;
    delta["delta"] = Value::String(rest);
    delta["output_index"] = json!(output);
    delta[text.part_key()] = json!(part);
    format!("event: response.{}.delta\ndata: {delta}\n\n", text.name())
}

/// The tool a Responses output item calls, if it is a call the agent runs:
/// functions and custom tools by name, the built-in client tools by kind (as
/// the request declares them).
pub fn responses_call_name(item: &Value) -> Option<&str> {
    match item.get("type").and_then(Value::as_str)? {
        "function_call" | "custom_tool_call" => {
            Some(item.get("name").and_then(Value::as_str).unwrap_or(""))
        }
        "computer_call" => Some("computer"),
        "local_shell_call" => Some("local_shell"),
        "shell_call" => Some("shell"),
        "apply_patch_call" => Some("apply_patch"),
        _ => None,
    }
}

impl ToolCallGate {
    /// A whole Responses answer's output items calling tools the agent may
    /// not call, each collected in `denied` (and removed when `remove`).
    pub(crate) fn responses_body(&self, value: &mut Value, remove: bool, denied: &mut Vec<String>) {
        if value.get("object").and_then(Value::as_str) == Some("response") {
            self.retain(value, "output", responses_call_name, remove, denied);
        }
    }
}

impl ToolCallStream {
    /// An output item added or done: a call of a tool the agent may not call
    /// refuses the stream (its items cannot be renumbered safely).
    pub(crate) fn responses_item(&mut self, value: &Value) {
        if let Some(tool) = responses_call_name(&value["item"]) {
            if !self.gate.allows(tool) {
                self.denied.push(tool.to_owned());
                self.refused = true;
            }
        }
    }
}
