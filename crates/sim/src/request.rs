//! Small request-reading helpers shared by the front ends.

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Map, Value};

/// Whether the Content-Type starts with `media_type` (case-insensitive, parameters ignored).
pub fn content_type_is(req: &HttpRequest, media_type: &str) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with(media_type))
}

/// A plain-text answer.
pub fn plain(status: StatusCode, text: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(text.to_owned())
}

/// A JSON object body whose property names match case-insensitively, as ASP.NET binds them.
pub struct JsonObject(Map<String, Value>);

impl JsonObject {
    /// The body as a JSON object, or `not_json` (followed by the parser's reason) or `not_object`.
    pub fn parse(body: &[u8], not_json: &str, not_object: &str) -> Result<Self, String> {
        match serde_json::from_slice(body) {
            Ok(Value::Object(object)) => Ok(Self(object)),
            Ok(_) => Err(not_object.to_owned()),
            Err(e) => Err(format!("{not_json}: {e}")),
        }
    }

    /// A property by its name in any case.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_found_by_their_name_in_any_case() {
        let body = br#"{"SignedSystemToken": "signed", "applicationToken": "app"}"#;
        let object = JsonObject::parse(body, "not JSON", "not an object").unwrap();
        assert_eq!(
            object.field("signedsystemtoken"),
            Some(&Value::from("signed"))
        );
        assert_eq!(object.field("ApplicationToken"), Some(&Value::from("app")));
        assert_eq!(object.field("ReturnTokenType"), None);
    }

    #[test]
    fn a_body_that_is_no_json_object_is_refused_with_the_callers_words() {
        let refusal = |body: &[u8]| {
            JsonObject::parse(body, "not JSON", "not an object")
                .err()
                .expect("refused")
        };
        assert_eq!(refusal(b"[\"a\", \"b\"]"), "not an object");
        assert_eq!(refusal(b"\"text\""), "not an object");
        let cut = refusal(b"{\"SignedSystemToken\": ");
        assert!(cut.starts_with("not JSON: "), "{cut}");
    }
}
