//! `GET /login/.well-known/jwks`: the current signing key, then any kept after a rotation.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::context::SimContext;

pub const PATH: &str = "/login/.well-known/jwks";

pub async fn jwks(ctx: web::Data<SimContext>) -> HttpResponse {
    let mut store = ctx.store();
    store.records.superid.fetches.jwks += 1;
    let keys: Vec<_> = std::iter::once(&store.signing_key)
        .chain(store.old_keys.iter())
        .map(|k| k.jwk().clone())
        .collect();
    HttpResponse::Ok().json(json!({ "keys": keys }))
}
