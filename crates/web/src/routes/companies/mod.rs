//! The two actions: create a company with the login user, or ask the service to do it with the system user.

mod as_system_user;
mod as_user;
mod request_status;

pub use as_system_user::{post as post_as_system_user, system_user_refusal};
pub use as_user::post as post_as_user;
pub use request_status::get as get_request;

use serde::Deserialize;

use crate::errors::WebError;

/// The form both actions post.
#[derive(Debug, Deserialize)]
pub struct CompanyForm {
    pub csrf_token: String,
    pub name: String,
}

impl CompanyForm {
    /// The company name, trimmed; empty or overlong names are refused.
    pub fn company_name(&self) -> Result<String, WebError> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(WebError::BadRequest("Enter a company name.".into()));
        }
        if name.chars().count() > 200 {
            return Err(WebError::BadRequest(
                "A company name has at most 200 characters.".into(),
            ));
        }
        Ok(name.to_owned())
    }
}
