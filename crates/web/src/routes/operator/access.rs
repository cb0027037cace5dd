//! Who gets into the operator console: identities listed in `web.operators`; everyone else gets the
//! same 404 as an unknown page.

use crate::errors::WebError;
use crate::session::{SessionUser, TypedSession};
use crate::state::AppState;

pub(crate) fn not_found() -> WebError {
    WebError::NotFound("There is no page at this address.".to_owned())
}

/// A signed-in operator, or 404 for everyone else.
pub struct SignedInOperator {
    pub user: SessionUser,
    /// `operator:{email}` (the subject when SuperID gave no e-mail): who audit events name.
    pub actor: String,
}

pub fn require_operator(
    session: &TypedSession,
    state: &AppState,
) -> Result<SignedInOperator, WebError> {
    if state.operators.is_empty() {
        return Err(not_found());
    }
    let Ok(Some(user)) = session.user() else {
        return Err(not_found());
    };
    let listed = state
        .operators
        .iter()
        .any(|op| op.matches(&user.context_id, &user.subject, user.email.as_deref()));
    if !listed {
        return Err(not_found());
    }
    let actor = format!(
        "operator:{}",
        user.email.as_deref().unwrap_or(user.subject.as_str())
    );
    Ok(SignedInOperator { user, actor })
}
