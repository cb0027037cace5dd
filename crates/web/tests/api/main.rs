//! partner-web's integration tests: the application built by `Application::build` on a random port, each test
//! with its own Postgres database (`testkit::TestApp`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attacks;
mod companies;
mod health;
mod hostile;
mod operator;
mod sessions;
mod signin;
mod state_change;
mod support;
mod system_user;
mod tenant_page;
