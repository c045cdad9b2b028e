//! URL-encoded form bodies, including repeated fields (checkboxes).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;

use crate::web::WebError;

/// A form submission's raw body. One too large or unreadable gets a readable
/// error page, not axum's plain-text rejection.
pub struct FormBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for FormBody {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, WebError> {
        Bytes::from_request(req, state)
            .await
            .map(FormBody)
            .map_err(|e| match e.status() {
                StatusCode::PAYLOAD_TOO_LARGE => WebError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "This form is too large (over {} bytes). Shorten what you entered and try again.",
                        crate::api::MAX_BODY_BYTES
                    ),
                ),
                status => WebError::new(status, "The form could not be read; please try again."),
            })
    }
}

/// A parsed form: every `name=value` pair in order.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `name`, trimmed; `""` when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    }

    /// The first value of `name` exactly as sent (passwords: a space is part of
    /// them); `""` when absent.
    pub fn raw(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// Every value of `name` (checkbox groups).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn repeated_fields_are_kept() {
        let f = super::Form::parse(b"cap=prompt%3Asend&cap=tool%3Aexecute&name=+bot+");
        assert_eq!(f.all("cap"), vec!["prompt:send", "tool:execute"]);
        assert_eq!(f.get("name"), "bot");
        assert_eq!(f.get("missing"), "");
    }
}
