//! Who gets into the operator console: identities listed in `web.operators`; everyone else gets the
//! same 404 as an unknown page.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use crate::errors::WebError;
use crate::session::{SessionUser, TypedSession};
use crate::state::AppState;

pub(crate) fn not_found() -> WebError {
    WebError::NotFound("There is no page at this address.".to_owned())
}

/// A signed-in operator, or 404 for everyone else; a console handler's first argument, so nothing else of
/// the request is looked at for anyone else.
pub struct SignedInOperator {
    pub user: SessionUser,
    /// `operator:{email}` (the subject when SuperID gave no e-mail): who audit events name.
    pub actor: String,
    session: TypedSession,
}

impl SignedInOperator {
    /// The session's CSRF token, for the console's forms.
    pub fn csrf(&self) -> Result<String, WebError> {
        self.session
            .csrf_token()
            .map_err(|e| WebError::Unexpected(anyhow::anyhow!("writing the session: {e}")))
    }

    /// Refuses an action whose form does not carry the session's CSRF token.
    pub fn require_csrf(&self, submitted: &str) -> Result<(), WebError> {
        crate::session::require_csrf(&self.session, submitted)
    }
}

impl FromRequest for SignedInOperator {
    type Error = WebError;
    type Future = std::future::Ready<Result<SignedInOperator, WebError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let operator = match req.app_data::<web::Data<AppState>>() {
            Some(state) => require_operator(TypedSession::of(req), state),
            None => Err(WebError::Unexpected(anyhow::anyhow!(
                "the application state is missing"
            ))),
        };
        std::future::ready(operator)
    }
}

fn require_operator(session: TypedSession, state: &AppState) -> Result<SignedInOperator, WebError> {
    if state.operators.is_empty() {
        return Err(not_found());
    }
    let Ok(Some(user)) = session.user() else {
        return Err(not_found());
    };
    let listed = state.operators.iter().any(|op| {
        op.matches(
            &user.tenant.context_id,
            &user.subject,
            user.email.as_deref(),
        )
    });
    if !listed {
        return Err(not_found());
    }
    let actor = format!(
        "operator:{}",
        user.email.as_deref().unwrap_or(user.subject.as_str())
    );
    Ok(SignedInOperator {
        user,
        actor,
        session,
    })
}
