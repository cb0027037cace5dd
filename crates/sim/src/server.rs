//! Starting and stopping the simulator: one listener for SuperID, one per API host.

use std::net::TcpListener;
use std::sync::Arc;

use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use tokio::task::JoinHandle;

use crate::admin::{self, Admin};
use crate::config::{ConfigError, SimConfig};
use crate::context::{ApiHost, Application, SimContext};
use crate::faults::{self, Listener};
use crate::keys::{KeyError, SigningKey, parse_public_key};
use crate::tenant_api::{self, ApiHostName};
use crate::{exchange, state, superid};

/// Largest request body accepted (413 beyond).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Worker threads per listener.
const WORKERS: usize = 2;
/// How long a hanging request waits: longer than any sensible client timeout.
const HANG: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("could not listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("application {client_id}: could not read the partner public key {path}: {source}")]
    PartnerKeyFile {
        client_id: String,
        path: String,
        source: std::io::Error,
    },
    #[error("application {client_id}: {source}")]
    PartnerKey { client_id: String, source: KeyError },
    #[error("signing key: {0}")]
    SigningKey(String),
    #[error("could not build the notification HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Entry point of the library.
pub struct Simulator;

impl Simulator {
    /// Binds every configured address (port 0 picks a free port) and starts serving.
    pub async fn start(config: SimConfig) -> Result<RunningSim, StartError> {
        config.validate()?;
        let superid_listener = bind(&config.superid.bind)?;
        let superid_url = public_url(config.superid.public_url.as_deref(), &superid_listener)?;
        let mut host_listeners = Vec::new();
        let mut hosts = Vec::new();
        for host in &config.api_hosts {
            let listener = bind(&host.bind)?;
            hosts.push(ApiHost {
                name: host.name.clone(),
                url: public_url(host.public_url.as_deref(), &listener)?,
            });
            host_listeners.push((host.name.clone(), listener));
        }
        let applications = applications(&config)?;
        let key = signing_key(&config).await?;
        let ctx = Arc::new(SimContext::new(
            &config,
            superid_url,
            hosts,
            applications,
            key,
        )?);
        let data = web::Data::from(ctx.clone());

        let mut handles = Vec::new();
        let mut tasks = Vec::new();
        let superid_data = data.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(superid_data.clone())
                .app_data(Listener::SuperId)
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .wrap(from_fn(inject_faults))
                .configure(superid::routes)
                .route("/api/state/{ctx}", web::get().to(state::tenant_state))
                .configure(admin::routes)
                .default_service(web::to(superid_fallback))
        });
        let server = server
            .workers(WORKERS)
            .disable_signals()
            .shutdown_timeout(1)
            .listen(superid_listener)
            .map_err(|source| StartError::Bind {
                addr: config.superid.bind.clone(),
                source,
            })?
            .run();
        handles.push(server.handle());
        tasks.push(tokio::spawn(server));

        for (name, listener) in host_listeners {
            let host_data = data.clone();
            let host_name = web::Data::new(ApiHostName(name.clone()));
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(host_data.clone())
                    .app_data(host_name.clone())
                    .app_data(Listener::ApiHost)
                    .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                    .wrap(from_fn(inject_faults))
                    .default_service(web::to(tenant_api::dispatch))
            });
            let server = server
                .workers(WORKERS)
                .disable_signals()
                .shutdown_timeout(1)
                .listen(listener)
                .map_err(|source| StartError::Bind { addr: name, source })?
                .run();
            handles.push(server.handle());
            tasks.push(tokio::spawn(server));
        }
        tracing::info!(
            superid = %ctx.superid.url,
            hosts = ?ctx.hosts.iter().map(|h| format!("{}={}", h.name, h.url)).collect::<Vec<_>>(),
            "superoffice-sim started"
        );
        Ok(RunningSim {
            ctx,
            handles,
            tasks,
        })
    }
}

/// Case-insensitive PartnerSystemUserService paths; everything else is 404.
async fn superid_fallback(
    ctx: web::Data<SimContext>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let path = req.path().trim_end_matches('/').to_ascii_lowercase();
    let handler = match path.as_str() {
        "/login/api/partnersystemuser/authenticate" => exchange::rest::authenticate,
        "/login/services/partnersystemuserservice.svc" => exchange::soap::authenticate,
        _ => return HttpResponse::NotFound().body("Not found"),
    };
    if req.method() != actix_web::http::Method::POST {
        return HttpResponse::MethodNotAllowed()
            .insert_header(("Allow", "POST"))
            .finish();
    }
    ctx.rotate_for_mode().await;
    handler(&ctx, &req, &body)
}

fn bind(addr: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).map_err(|source| StartError::Bind {
        addr: addr.to_owned(),
        source,
    })
}

fn public_url(configured: Option<&str>, listener: &TcpListener) -> Result<String, StartError> {
    match configured {
        Some(url) => Ok(url.trim_end_matches('/').to_owned()),
        None => {
            let addr = listener.local_addr().map_err(|source| StartError::Bind {
                addr: "local address".into(),
                source,
            })?;
            Ok(format!("http://{addr}"))
        }
    }
}

fn applications(config: &SimConfig) -> Result<Vec<Application>, StartError> {
    config
        .applications
        .iter()
        .map(|app| {
            let pem = match (&app.partner_public_key, &app.partner_public_key_file) {
                (Some(pem), _) => pem.clone(),
                (None, Some(file)) => {
                    let path = config.resolve_path(file);
                    std::fs::read_to_string(&path).map_err(|source| StartError::PartnerKeyFile {
                        client_id: app.client_id.clone(),
                        path: path.display().to_string(),
                        source,
                    })?
                }
                (None, None) => String::new(),
            };
            let public_key = parse_public_key(&pem).map_err(|source| StartError::PartnerKey {
                client_id: app.client_id.clone(),
                source,
            })?;
            Ok(Application {
                client_id: app.client_id.clone(),
                client_secret: app.client_secret.clone(),
                name: app.name.clone(),
                redirect_uris: app.redirect_uris.clone(),
                public_key,
                state_change_url: app.state_change_url.clone(),
            })
        })
        .collect()
}

async fn signing_key(config: &SimConfig) -> Result<SigningKey, StartError> {
    match &config.superid.signing_key_file {
        Some(file) => {
            let path = config.resolve_path(file);
            let pem = std::fs::read_to_string(&path)
                .map_err(|e| StartError::SigningKey(format!("{}: {e}", path.display())))?;
            SigningKey::from_pem(&pem).map_err(|e| StartError::SigningKey(e.to_string()))
        }
        None => tokio::task::spawn_blocking(SigningKey::generate)
            .await
            .map_err(|e| StartError::SigningKey(e.to_string()))?
            .map_err(|e| StartError::SigningKey(e.to_string())),
    }
}

/// A started simulator. Dropping it leaves the servers running until the runtime ends; call
/// [`RunningSim::stop`] for a graceful shutdown.
pub struct RunningSim {
    ctx: Arc<SimContext>,
    handles: Vec<ServerHandle>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
}

impl RunningSim {
    /// SuperID's base URL (the issuer), e.g. `http://127.0.0.1:9100`.
    pub fn superid_url(&self) -> &str {
        &self.ctx.superid.url
    }

    /// Base URL of an API host by name, e.g. `sod2`.
    pub fn api_host_url(&self, name: &str) -> Option<&str> {
        self.ctx.host_url(name)
    }

    /// Base URL of the admin API.
    pub fn admin_url(&self) -> String {
        format!("{}/admin", self.ctx.superid.url)
    }

    /// In-process admin operations (the same as the admin API's).
    pub fn admin(&self) -> Admin {
        Admin::new(self.ctx.clone())
    }

    /// Stops accepting connections, lets requests in flight finish (1 s at most) and waits.
    pub async fn stop(self) {
        for handle in &self.handles {
            handle.stop(true).await;
        }
        for task in self.tasks {
            if let Ok(Err(e)) = task.await {
                tracing::warn!(error = %e, "a simulator listener ended with an error");
            }
        }
    }
}

/// Middleware applying the configured faults before the request reaches its handler.
async fn inject_faults(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let decision = match (
        req.app_data::<web::Data<SimContext>>(),
        req.app_data::<Listener>(),
    ) {
        (Some(ctx), Some(listener)) => faults::group_of(*listener, req.path())
            .map(|group| ctx.store().faults.decide(group, req.method().as_str())),
        _ => None,
    };
    let Some((delay, action)) = decision else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match action {
        faults::Action::Proceed => Ok(next.call(req).await?.map_into_boxed_body()),
        faults::Action::Fail(status) => {
            tracing::info!(path = req.path(), %status, "injected failure");
            let response = HttpResponse::build(status)
                .content_type("text/plain; charset=utf-8")
                .body("Simulated failure (superoffice-sim fault injection)");
            Ok(req.into_response(response))
        }
        faults::Action::LoseAnswer(status) => {
            let (request, _) = next.call(req).await?.into_parts();
            tracing::info!(path = request.path(), %status, "injected lost answer");
            let response = HttpResponse::build(status)
                .content_type("text/plain; charset=utf-8")
                .body("Simulated lost answer (superoffice-sim fault injection)");
            Ok(ServiceResponse::new(request, response))
        }
        faults::Action::Hang => {
            tracing::info!(path = req.path(), "injected hang");
            tokio::time::sleep(HANG).await;
            Ok(req.into_response(HttpResponse::GatewayTimeout().finish()))
        }
    }
}
