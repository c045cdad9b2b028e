//! A whole (non-streamed) answer redacted: every string the model generated,
//! skipping identifiers and blobs, tool-call arguments read as JSON text;
//! logprobs, which repeat the text token by token, removed.

use serde_json::Value;

use crate::firewall::TextForm;
use crate::work;

/// Removes logprobs wherever they are (`null` for an object, `[]` for a list): they
/// repeat the text token by token, and a value split across tokens cannot be
/// redacted there. Whether anything went.
pub fn drop_logprobs(value: &mut Value) -> bool {
    match value {
        Value::Object(map) => map.iter_mut().fold(false, |changed, (key, item)| {
            if key == "logprobs" {
                let empty = match item {
                    Value::Array(items) if !items.is_empty() => Value::Array(Vec::new()),
                    Value::Object(_) => Value::Null,
                    _ => return changed,
                };
                *item = empty;
                true
            } else {
                drop_logprobs(item) | changed
            }
        }),
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, item| drop_logprobs(item) | changed),
        _ => false,
    }
}

/// Keys whose string values are identifiers, enums or opaque blobs (signatures,
/// encrypted reasoning, images), never generated text: a placeholder in a blob
/// would break it. Not applied inside a tool call's input, which the model writes
/// whole.
const NON_TEXT_KEYS: [&str; 18] = [
    "signature",
    "encrypted_content",
    "partial_image_b64",
    "b64_json",
    "id",
    "object",
    "model",
    "type",
    "role",
    "finish_reason",
    "stop_reason",
    "system_fingerprint",
    "status",
    "tool_call_id",
    "call_id",
    "item_id",
    "service_tier",
    // OpenAI's random padding of a streamed event, no text of the model's.
    "obfuscation",
];

/// How a text is redacted: `redact(text, form)` gives the redacted text, or `None`.
pub type Redact<'a> = dyn FnMut(&str, TextForm) -> Option<String> + 'a;

/// Redacts every generated string in `value`; whether anything changed. A tool
/// call's `arguments` string is JSON text ([`TextForm::Json`]).
pub fn redact_strings(value: &mut Value, redact: &mut Redact) -> bool {
    redact_within(value, redact, true, TextForm::Prose)
}

/// [`redact_strings`], skipping [`NON_TEXT_KEYS`] when `skip_keys`; the object a
/// tool call takes as `input` or `arguments` is the model's, every key of it.
fn redact_within(value: &mut Value, redact: &mut Redact, skip_keys: bool, form: TextForm) -> bool {
    match value {
        Value::String(text) => match redact(text, form) {
            Some(redacted) => {
                *text = redacted;
                true
            }
            None => false,
        },
        Value::Array(items) => items.iter_mut().fold(false, |changed, item| {
            redact_within(item, redact, skip_keys, TextForm::Prose) | changed
        }),
        Value::Object(map) => map.iter_mut().fold(false, |changed, (key, item)| {
            let key = key.as_str();
            if skip_keys && NON_TEXT_KEYS.contains(&key) {
                return changed;
            }
            let tool_input = matches!(key, "input" | "arguments") && item.is_object();
            // The envelope's `arguments` string (chat and Responses tool calls) is JSON
            // text; inside a tool's input, a key of that name is the tool's own.
            let form = if skip_keys && key == "arguments" && item.is_string() {
                TextForm::Json
            } else {
                TextForm::Prose
            };
            redact_within(item, redact, skip_keys && !tool_input, form) | changed
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// A whole (non-streaming) response body with its generated text redacted and its
/// logprobs removed; `None` when nothing changed. A body that is not JSON is
/// redacted as text.
pub fn redact_body(body: &[u8], redact: &mut Redact) -> Option<Vec<u8>> {
    // Parsing the body, walking its strings and writing it out again.
    work::charge(3 * body.len());
    match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            let changed = drop_logprobs(&mut value) | redact_strings(&mut value, redact);
            changed.then(|| value.to_string().into_bytes())
        }
        Err(_) => redact(&String::from_utf8_lossy(body), TextForm::Prose).map(String::into_bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::redact::tests::redact_all;
    use serde_json::json;

    /// `body` through [`redact_body`] with the fake redaction; `None` if unchanged.
    fn redacted_body(body: &Value) -> Option<Value> {
        let mut redact = |t: &str, _| {
            let r = redact_all(t);
            (r != t).then_some(r)
        };
        let out = redact_body(body.to_string().as_bytes(), &mut redact)?;
        serde_json::from_slice(&out).ok()
    }

    #[test]
    fn whole_bodies_redact_text_but_not_identifiers() {
        let body = json!({"id":"SECRET-1","object":"chat.completion","choices":[{"message":{"role":"assistant","content":"use SECRET-42"}}]});
        let out = redacted_body(&body).unwrap();
        assert_eq!(out["choices"][0]["message"]["content"], "use [SECRET_1]");
        assert_eq!(out["id"], "SECRET-1");
        assert!(redacted_body(&json!({"a": "clean"})).is_none());
    }

    #[test]
    fn whole_bodies_judge_tool_inputs_and_keep_blobs() {
        let body = json!({"content": [
            {"type": "tool_use", "id": "t1", "name": "mail", "input": {"id": "SECRET-31", "to": "x"}},
            {"type": "thinking", "thinking": "fine", "signature": "SECRET-32"},
        ], "choices": [{"logprobs": {"content": [{"token": "SECRET-"}]}}]});
        let out = redacted_body(&body).unwrap();
        assert_eq!(out["content"][0]["input"]["id"], "[SECRET_1]");
        assert_eq!(out["content"][0]["id"], "t1");
        assert_eq!(
            out["content"][1]["signature"], "SECRET-32",
            "a placeholder would break it"
        );
        assert_eq!(out["choices"][0]["logprobs"], Value::Null);
    }
}
