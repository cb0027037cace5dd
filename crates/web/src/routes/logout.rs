//! `POST /logout`.

use actix_web::HttpResponse;
use actix_web::web;
use serde::Deserialize;

use crate::errors::WebError;
use crate::session::TypedSession;

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    csrf_token: String,
}

pub async fn post(
    session: TypedSession,
    form: web::Form<LogoutForm>,
) -> Result<HttpResponse, WebError> {
    crate::session::require_csrf(&session, &form.csrf_token)?;
    session.sign_out();
    Ok(HttpResponse::SeeOther()
        .insert_header(("Location", "/"))
        .finish())
}
