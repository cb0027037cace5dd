//! Starting an in-process simulator on random ports, and the client-side steps tests repeat.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::Method;
use rsa::PrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use superoffice_sim::{
    RunningSim, SimConfig, Simulator, TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_REDIRECT_URI,
};

pub const CLAIM: &str = "http://schemes.superoffice.net/identity/";
/// Display names of users of [`SimConfig::for_tests`].
pub const ADA_ADMIN: &str = "Ada Admin";
pub const ULF_USER: &str = "Ulf User";
pub const PER_ADMIN: &str = "Per Admin";

pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testkit/data")
        .join(name)
}

pub fn partner_key() -> PrivateKey {
    let pem = std::fs::read_to_string(data("service-console-key.pem")).unwrap();
    PrivateKey::from_pkcs1_pem(&pem).unwrap()
}

/// The system user token signed as SuperOffice documents: `token.yyyyMMddHHmm.base64(RS256(token.ts))`.
pub fn sign_with(key: &PrivateKey, token: &str, at: DateTime<Utc>) -> String {
    let signed = format!("{token}.{}", at.format("%Y%m%d%H%M"));
    let signature = SigningKey::<Sha256>::new(key.clone()).sign(signed.as_bytes());
    format!("{signed}.{}", STANDARD.encode(signature.to_bytes()))
}

pub fn pkce_pair() -> (String, String) {
    let verifier = "v".repeat(20) + "-._~0123456789abcdefghijklmnop";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// Minimal HTML entity decoding for values the sign-in page escaped.
pub fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// `name="…" value="…"` pairs of the inputs in an HTML fragment.
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    html.split("<input ")
        .skip(1)
        .filter_map(|input| {
            let name = input.split("name=\"").nth(1)?.split('"').next()?;
            let value = input.split("value=\"").nth(1)?.split('"').next()?;
            Some((name.to_owned(), html_unescape(value)))
        })
        .collect()
}

/// Sending a request in a test: a transport failure fails the test.
pub trait Fetch {
    fn fetch(self) -> impl Future<Output = reqwest::Response>;
    fn fetch_status(self) -> impl Future<Output = reqwest::StatusCode>;
    fn fetch_json(self) -> impl Future<Output = Value>;
    /// With a system user ticket and the test application's token, as the tenant API wants them.
    fn with_ticket(self, ticket: &str) -> Self;
}

/// Reading an answer's body in a test: an unreadable body fails the test.
pub trait Body {
    fn body_json(self) -> impl Future<Output = Value>;
    fn body_text(self) -> impl Future<Output = String>;
}

impl Body for reqwest::Response {
    async fn body_json(self) -> Value {
        self.json().await.unwrap()
    }

    async fn body_text(self) -> String {
        self.text().await.unwrap()
    }
}

/// A JSON string value, or the test fails.
pub trait Text {
    fn text(&self) -> &str;
}

impl Text for Value {
    fn text(&self) -> &str {
        self.as_str()
            .unwrap_or_else(|| panic!("expected a JSON string, got {self}"))
    }
}

impl Fetch for reqwest::RequestBuilder {
    async fn fetch(self) -> reqwest::Response {
        self.send().await.unwrap()
    }

    async fn fetch_status(self) -> reqwest::StatusCode {
        self.fetch().await.status()
    }

    async fn fetch_json(self) -> Value {
        self.fetch().await.body_json().await
    }

    fn with_ticket(self, ticket: &str) -> Self {
        self.header("Authorization", format!("SOTicket {ticket}"))
            .header("SO-AppToken", TEST_CLIENT_SECRET)
    }
}

/// A simulator for one test. It is not stopped explicitly: its listeners end with the test's runtime.
pub struct TestSim {
    pub sim: RunningSim,
    /// A client that does not follow redirects.
    pub http: reqwest::Client,
    pub key: PrivateKey,
}

pub async fn spawn() -> TestSim {
    spawn_with(|_| {}).await
}

/// A simulator and a system user ticket for Cust10001.
pub async fn spawn_with_ticket() -> (TestSim, String) {
    let t = spawn().await;
    let ticket = t.ticket("Cust10001").await;
    (t, ticket)
}

pub async fn spawn_with(adjust: impl FnOnce(&mut SimConfig)) -> TestSim {
    let public = std::fs::read_to_string(data("service-console-public-key.pem")).unwrap();
    let mut config = SimConfig::for_tests(&public);
    config.superid.signing_key_file = Some(data("superid-signing-key.pem"));
    adjust(&mut config);
    let sim = Simulator::start(config).await.unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    TestSim {
        sim,
        http,
        key: partner_key(),
    }
}

impl TestSim {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.superid_url())
    }

    pub fn api(&self, host: &str, path: &str) -> String {
        format!("{}{path}", self.sim.api_host_url(host).unwrap())
    }

    /// The status of a plain GET.
    pub async fn get_status(&self, url: impl reqwest::IntoUrl) -> reqwest::StatusCode {
        self.http.get(url).fetch_status().await
    }

    /// A GET with a system user ticket.
    pub async fn get_with_ticket(&self, url: &str, ticket: &str) -> reqwest::Response {
        self.http.get(url).with_ticket(ticket).fetch().await
    }

    /// The status of a GET with a system user ticket.
    pub async fn status_with_ticket(&self, url: &str, ticket: &str) -> reqwest::StatusCode {
        self.get_with_ticket(url, ticket).await.status()
    }

    /// The JSON body of a GET with a system user ticket.
    pub async fn json_with_ticket(&self, url: &str, ticket: &str) -> Value {
        self.get_with_ticket(url, ticket).await.body_json().await
    }

    pub fn system_token(&self, ctx: &str) -> String {
        self.sim.admin().tenant(ctx).unwrap().system_token.unwrap()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.sim.admin().clock().now
    }

    pub fn sign(&self, token: &str) -> String {
        sign_with(&self.key, token, self.now())
    }

    pub async fn exchange_rest(&self, ctx: &str, signed: &str, app_token: &str) -> Value {
        let response = self
            .http
            .post(self.url("/Login/api/PartnerSystemUser/Authenticate"))
            .json(&serde_json::json!({
                "SignedSystemToken": signed,
                "ApplicationToken": app_token,
                "ContextIdentifier": ctx,
                "ReturnTokenType": "JWT",
            }))
            .fetch()
            .await;
        assert_eq!(response.status(), 200);
        response.body_json().await
    }

    /// A system user ticket for the tenant, through the REST exchange.
    pub async fn ticket(&self, ctx: &str) -> String {
        let signed = self.sign(&self.system_token(ctx));
        let body = self.exchange_rest(ctx, &signed, TEST_CLIENT_SECRET).await;
        assert_eq!(body["IsSuccessful"], true, "{body}");
        let claims = self.verify(body["Token"].text(), None).await;
        claims[format!("{CLAIM}ticket")].text().to_owned()
    }

    /// A GET of the OpenID Connect discovery document.
    pub fn discovery(&self) -> reqwest::RequestBuilder {
        self.http
            .get(self.url("/login/.well-known/openid-configuration"))
    }

    pub async fn jwks(&self) -> Value {
        self.http
            .get(self.url("/login/.well-known/jwks"))
            .fetch_json()
            .await
    }

    /// Verifies a JWT against the JWKS (key chosen by kid); checks `aud` when given.
    pub async fn verify(&self, jwt: &str, audience: Option<&str>) -> Value {
        let header = jsonwebtoken::decode_header(jwt).unwrap();
        let kid = header.kid.unwrap();
        let jwks = self.jwks().await;
        let jwk = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid.as_str())
            .unwrap_or_else(|| panic!("kid {kid} not in the JWKS"))
            .clone();
        let key = DecodingKey::from_rsa_components(jwk["n"].text(), jwk["e"].text()).unwrap();
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = 5;
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        jsonwebtoken::decode::<Value>(jwt, &key, &validation)
            .unwrap()
            .claims
    }

    /// The authorize URL with the usual parameters plus `extra`.
    pub fn authorize_url(&self, tenant_path: &str, extra: &[(&str, &str)]) -> String {
        let mut url =
            url::Url::parse(&self.url(&format!("/login/{tenant_path}/oauth/authorize"))).unwrap();
        url.query_pairs_mut()
            .append_pair("client_id", TEST_CLIENT_ID)
            .append_pair("scope", "openid")
            .append_pair("redirect_uri", TEST_REDIRECT_URI)
            .append_pair("response_type", "code")
            .extend_pairs(extra);
        url.to_string()
    }

    /// Opens the sign-in page and clicks "Sign in as {name}"; returns the raw response.
    pub async fn click_sign_in(&self, authorize_url: &str, name: &str) -> reqwest::Response {
        let page = self.http.get(authorize_url).fetch().await;
        assert_eq!(page.status(), 200);
        let html = page.body_text().await;
        let button = format!("Sign in as {name}</button>");
        let form = html
            .split("<form ")
            .find(|f| f.contains(&button))
            .unwrap_or_else(|| panic!("no button {button:?} in {html}"));
        let action = html_unescape(
            form.split("action=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap(),
        );
        self.post_form(&action, &hidden_inputs(form)).await
    }

    /// POSTs a form to a SuperID path.
    pub async fn post_form(&self, path: &str, form: &impl serde::Serialize) -> reqwest::Response {
        self.http.post(self.url(path)).form(form).fetch().await
    }

    /// Signs in through the page and returns the callback's query parameters.
    pub async fn sign_in(&self, name: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let response = self
            .click_sign_in(&self.authorize_url("common", extra), name)
            .await;
        assert_eq!(response.status(), 302);
        let location = response.headers()["location"].to_str().unwrap();
        assert!(location.starts_with(TEST_REDIRECT_URI), "{location}");
        url::Url::parse(location)
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    pub async fn code(&self, name: &str, extra: &[(&str, &str)]) -> String {
        let params = self.sign_in(name, extra).await;
        params.iter().find(|(k, _)| k == "code").unwrap().1.clone()
    }

    /// POSTs to the token endpoint with client_secret_post.
    pub async fn token_request(&self, form: &[(&str, &str)]) -> reqwest::Response {
        let mut body = vec![
            ("client_id", TEST_CLIENT_ID),
            ("client_secret", TEST_CLIENT_SECRET),
        ];
        body.extend_from_slice(form);
        self.post_form("/login/common/oauth/tokens", &body).await
    }

    pub async fn exchange_code(&self, code: &str, verifier: Option<&str>) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", TEST_REDIRECT_URI),
        ];
        form.extend(verifier.map(|v| ("code_verifier", v)));
        self.token_request(&form).await
    }

    /// Signs in as the user and returns the token response.
    pub async fn tokens_for(&self, name: &str) -> Value {
        let code = self.code(name, &[]).await;
        let response = self.exchange_code(&code, None).await;
        assert_eq!(response.status(), 200);
        response.body_json().await
    }

    /// A request to the admin API.
    fn admin_request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.sim.admin_url()))
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> reqwest::Response {
        self.admin_request(Method::POST, path)
            .json(&body)
            .fetch()
            .await
    }

    /// Sets a tenant's state through the admin API, which must succeed; the change it answers.
    pub async fn admin_set_state(&self, context_id: &str, state: &str) -> Value {
        let path = format!("/tenants/{context_id}/state");
        let response = self.admin_post(&path, json!({ "state": state })).await;
        assert_eq!(response.status(), 200, "{state}");
        response.body_json().await
    }

    pub async fn admin_put(&self, path: &str, body: Value) -> reqwest::Response {
        self.admin_request(Method::PUT, path)
            .json(&body)
            .fetch()
            .await
    }

    pub async fn admin_delete(&self, path: &str) -> reqwest::Response {
        self.admin_request(Method::DELETE, path).fetch().await
    }

    /// The JSON answer of an admin API GET, which must succeed.
    pub async fn admin_get(&self, path: &str) -> Value {
        let response = self.admin_request(Method::GET, path).fetch().await;
        assert_eq!(response.status(), 200);
        response.body_json().await
    }
}

/// Asserts the claims that name Cust10001 and its URLs on sod2.
pub fn assert_cust10001_claims(t: &TestSim, claims: &Value) {
    let c = |name: &str| &claims[format!("{CLAIM}{name}")];
    let sod2 = t.sim.api_host_url("sod2").unwrap();
    assert_eq!(c("ctx"), "Cust10001");
    assert_eq!(c("serial"), "1801510001");
    assert_eq!(c("company_name"), "Northwind Traders AS");
    assert_eq!(c("webapi_url"), &format!("{sod2}/Cust10001/api/"));
    assert_eq!(
        c("netserver_url"),
        &format!("{sod2}/Cust10001/Remote/Services88/")
    );
}

/// An element of a response document, for assertions (parsed independently of the simulator).
#[derive(Debug, Default, Clone)]
pub struct El {
    pub ns: String,
    pub name: String,
    pub text: String,
    pub nil: bool,
    pub children: Vec<El>,
}

impl El {
    pub fn child(&self, name: &str) -> &El {
        self.children
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no {name} in {}", self.name))
    }

    /// The first descendant (or self) with this local name.
    pub fn find(&self, name: &str) -> Option<&El> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }

    pub fn value(&self) -> Option<&str> {
        (!self.nil).then_some(self.text.as_str())
    }
}

pub fn parse_xml(xml: &str) -> El {
    use quick_xml::NsReader;
    use quick_xml::events::{BytesStart, Event};
    use quick_xml::name::ResolveResult;

    fn open(ns: ResolveResult<'_>, e: &BytesStart<'_>) -> El {
        El {
            ns: match ns {
                ResolveResult::Bound(ns) => ns.as_ref().to_owned(),
                _ => String::new(),
            },
            name: e.local_name().as_ref().to_owned(),
            nil: e.attributes().any(|a| {
                let a = a.unwrap();
                a.key.local_name().as_ref() == "nil" && a.value == "true"
            }),
            ..El::default()
        }
    }

    let mut reader = NsReader::from_str(xml);
    let mut stack = vec![El::default()];
    loop {
        let (ns, event) = reader.read_resolved_event().unwrap();
        match event {
            Event::Start(e) => {
                let el = open(ns, &e);
                stack.push(el);
            }
            Event::Empty(e) => {
                let el = open(ns, &e);
                stack.last_mut().unwrap().children.push(el);
            }
            Event::End(_) => {
                let el = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(el);
            }
            Event::Text(t) => stack.last_mut().unwrap().text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let text = match &*r.xml10_content() {
                    "lt" => "<",
                    "gt" => ">",
                    "amp" => "&",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("entity {other}"),
                };
                stack.last_mut().unwrap().text.push_str(text);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    stack.pop().unwrap().children.remove(0)
}
