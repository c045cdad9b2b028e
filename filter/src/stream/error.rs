//! The error events that end a stream the filter cut short, in the dialect
//! of the API the stream speaks, so that its SDK raises on them.

use serde_json::json;

use crate::refusal::ErrorCode;
use crate::route::Format;

/// Why a stream was cut short; nothing after it is forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamStop {
    /// `response_mode` is `block` and the answer carried PII or a secret.
    Blocked,
    /// An event the reader cannot judge (longer than the limit; for the tool gate,
    /// also JSON the reader refuses), so it is not forwarded.
    Unreadable,
}

impl StreamStop {
    pub fn code(self) -> ErrorCode {
        match self {
            StreamStop::Blocked => ErrorCode::PromptBlocked,
            StreamStop::Unreadable => ErrorCode::KalguardUnavailable,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            StreamStop::Blocked => ANSWER_BLOCKED,
            StreamStop::Unreadable => {
                "KalGuard stopped this answer: one of its events is larger than it can check, or unreadable"
            }
        }
    }
}

/// The message of an answer withheld by `response_mode` `block`.
pub const ANSWER_BLOCKED: &str =
    "KalGuard withheld this answer: it contained personal data or a secret";

/// An event name of the API a request on `format` streams in (none: OpenAI chat and
/// completions), so that an error event sent before any named event is in the
/// dialect its SDK raises on.
pub fn dialect(format: Format) -> Option<&'static str> {
    match format {
        Format::AnthropicMessages => Some("message_start"),
        Format::OpenAiResponses => Some("response.created"),
        _ => None,
    }
}

/// The error event that ends a refused stream, in the dialect of the stream's
/// `event:` names (none: OpenAI chat; `response.*`: the Responses API; others:
/// Anthropic), so the SDKs raise on it. The Responses API's own error event has no
/// `error` object; openai-python raises only on one, so it gets both.
pub fn error_event(event_name: Option<&str>, code: ErrorCode, message: &str) -> Vec<u8> {
    let code = code.as_str();
    let kalguard_error = json!({"type": "kalguard_error", "code": code, "message": message});
    match event_name {
        Some(name) if name.starts_with("response.") => {
            let error = json!({"type": "error", "code": code, "message": message, "param": null,
                "error": kalguard_error});
            format!("event: error\ndata: {error}\n\n").into_bytes()
        }
        Some(_) => {
            let error = json!({"type": "error", "error": kalguard_error});
            format!("event: error\ndata: {error}\n\n").into_bytes()
        }
        None => {
            let error = json!({"error": kalguard_error});
            format!("data: {error}\n\ndata: [DONE]\n\n").into_bytes()
        }
    }
}

/// The error event that cuts a stream at an event the filter cannot read.
pub fn cut_event(event_name: Option<&str>) -> Vec<u8> {
    let stop = StreamStop::Unreadable;
    error_event(event_name, stop.code(), stop.message())
}
