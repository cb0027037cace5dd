//! Tenants as partner-web's sign-in leaves them: a captured system user token, optionally a ticket and the
//! `active` state. `tenant("Cust1").company("Acme").with_ticket().insert(&mut conn)`; a tenant of the
//! simulator, with its real token sealed by the kit's cipher: [`from_sim`].

use chrono::Utc;
use diesel_async::AsyncPgConnection;
use secrecy::ExposeSecret as _;
use shared::crypto::at_rest::{Encrypted, SecretKind};
use shared::db::models::TenantState;
use shared::db::tenants::{CaptureOutcome, TenantDetails, TokenCapture, capture_token};
use shared::db::tickets;
use shared::domain::ContextId;
use superoffice_sim::admin::TenantView;

/// What an administrator's sign-in says of a seeded tenant unless changed: company `Northwind`, serial
/// `123`, no URLs. For tests that call `capture_token` themselves.
pub const DETAILS: TenantDetails<'static> = TenantDetails {
    environment: "custom",
    company_name: Some("Northwind"),
    serial: Some("123"),
    webapi_url: None,
    netserver_url: None,
};

/// A tenant to seed. Unless changed: company `Northwind`, serial `123`, no URLs, token `x` (not a real
/// ciphertext) under key version 1, captured by `admin@<ctx>.example`, no ticket, left `pending`.
#[derive(Clone, Debug)]
pub struct Seed {
    context_id: String,
    company_name: Option<String>,
    serial: Option<String>,
    webapi_url: Option<String>,
    netserver_url: Option<String>,
    sealed: Encrypted,
    /// The plain token when it is a real one (sealed by [`crate::cipher`]): a capture of the same token
    /// is then recognised as such.
    token: Option<String>,
    captured_by: String,
    ticket: Option<Vec<u8>>,
    active: bool,
}

/// A tenant with the defaults of [`Seed`].
pub fn tenant(ctx: &str) -> Seed {
    Seed {
        context_id: ctx.to_owned(),
        company_name: DETAILS.company_name.map(str::to_owned),
        serial: DETAILS.serial.map(str::to_owned),
        webapi_url: None,
        netserver_url: None,
        sealed: Encrypted {
            key_version: 1,
            bytes: b"x".to_vec(),
        },
        token: None,
        captured_by: format!("admin@{}.example", ctx.to_lowercase()),
        ticket: None,
        active: false,
    }
}

/// A tenant of the simulator with its current system user token, sealed by [`crate::cipher`], as
/// partner-web captures it on an administrator's sign-in.
pub fn from_sim(view: &TenantView) -> Seed {
    let ctx =
        ContextId::parse(&view.context_id).unwrap_or_else(|e| panic!("{}: {e}", view.context_id));
    let token = view
        .system_token
        .clone()
        .unwrap_or_else(|| panic!("{} has no system user token", view.context_id));
    let sealed = crate::cipher()
        .encrypt(&ctx, SecretKind::SystemUserToken, token.as_bytes())
        .unwrap_or_else(|e| panic!("sealing the token: {e}"));
    Seed {
        sealed,
        token: Some(token),
        ..tenant(&view.context_id)
            .company(&view.company_name)
            .serial(&view.serial)
    }
}

impl Seed {
    pub fn company(mut self, name: &str) -> Self {
        self.company_name = Some(name.to_owned());
        self
    }

    pub fn serial(mut self, serial: &str) -> Self {
        self.serial = Some(serial.to_owned());
        self
    }

    /// The tenant's WebAPI and NetServer URLs.
    pub fn urls(mut self, webapi: &str, netserver: Option<&str>) -> Self {
        self.webapi_url = Some(webapi.to_owned());
        self.netserver_url = netserver.map(str::to_owned);
        self
    }

    /// The URLs of the tenant on a simulator API host (`{api}/{ctx}/api/`, `{api}/{ctx}/Remote/Services88/`).
    pub fn on_host(self, api: &str) -> Self {
        let ctx = self.context_id.clone();
        self.urls(
            &format!("{api}/{ctx}/api/"),
            Some(&format!("{api}/{ctx}/Remote/Services88/")),
        )
    }

    /// The stored token's ciphertext.
    pub fn token(mut self, ciphertext: &[u8]) -> Self {
        self.sealed.bytes = ciphertext.to_vec();
        self.token = None;
        self
    }

    pub fn captured_by(mut self, who: &str) -> Self {
        self.captured_by = who.to_owned();
        self
    }

    /// A ticket (`ciphertext`, not a real one) for the captured token.
    pub fn with_ticket(mut self, ciphertext: &[u8]) -> Self {
        self.ticket = Some(ciphertext.to_vec());
        self
    }

    /// The tenant `active` and not due (its row only: no audit event), as after a successful exchange.
    pub fn active(mut self) -> Self {
        self.active = true;
        self
    }

    pub fn context_id(&self) -> &str {
        &self.context_id
    }

    /// Captures the token (and stores the ticket, and activates, as asked).
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> CaptureOutcome {
        let outcome = self.capture(conn).await;
        if let Some(ticket) = &self.ticket {
            tickets::store(
                conn,
                tickets::NewTicket {
                    context_id: &self.context_id,
                    ciphertext: ticket.clone(),
                    key_version: 1,
                    token_generation: 1,
                    issued_at: Utc::now(),
                },
            )
            .await
            .unwrap_or_else(|e| panic!("storing the ticket of {}: {e}", self.context_id));
        }
        if self.active {
            use diesel::{ExpressionMethods as _, QueryDsl as _};
            use diesel_async::RunQueryDsl as _;
            use shared::db::schema::tenants;
            diesel::update(tenants::table.filter(tenants::context_id.eq(&self.context_id)))
                .set((
                    tenants::state.eq(TenantState::Active.as_str()),
                    tenants::next_attempt_at.eq(None::<chrono::DateTime<Utc>>),
                ))
                .execute(conn)
                .await
                .unwrap_or_else(|e| panic!("activating {}: {e}", self.context_id));
        }
        outcome
    }

    async fn capture(&self, conn: &mut AsyncPgConnection) -> CaptureOutcome {
        let ctx = ContextId::parse(&self.context_id).ok();
        let same_token = |stored: &Encrypted| match (&self.token, &ctx) {
            (Some(token), Some(ctx)) => crate::cipher()
                .decrypt_string(ctx, SecretKind::SystemUserToken, stored)
                .is_ok_and(|old| old.expose_secret() == token),
            _ => false,
        };
        capture_token(
            conn,
            TokenCapture {
                context_id: &self.context_id,
                details: TenantDetails {
                    environment: DETAILS.environment,
                    company_name: self.company_name.as_deref(),
                    serial: self.serial.as_deref(),
                    webapi_url: self.webapi_url.as_deref(),
                    netserver_url: self.netserver_url.as_deref(),
                },
                token: self.sealed.clone(),
                captured_by: &self.captured_by,
                same_token: &same_token,
                token_issued_at: None,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("capturing the token of {}: {e}", self.context_id))
    }
}
