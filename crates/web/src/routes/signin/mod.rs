//! Sign-in through SuperID: `GET /login`, `GET /callback` (code flow) and `POST /callback` (legacy form post).

mod capture;
mod login;

pub use login::{callback_get, callback_post, login};
