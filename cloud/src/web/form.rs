//! URL-encoded form bodies, including repeated fields (checkboxes).

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
