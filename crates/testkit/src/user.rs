//! A browser without a browser: a cookie-keeping client that signs in through the simulator's form and uses
//! partner-web's pages as a user would.

use std::time::{Duration, Instant};

/// A user of partner-web at `web_url`. Clones share one cookie jar.
#[derive(Clone)]
pub struct WebUser {
    /// Keeps cookies, does not follow redirects.
    pub client: reqwest::Client,
    pub web_url: String,
}

/// A client that keeps cookies and does not follow redirects.
pub fn cookie_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap_or_else(|e| panic!("building the HTTP client: {e}"))
}

/// A client that keeps no cookies and does not follow redirects: an attacker replaying a cookie.
pub fn bare_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap_or_else(|e| panic!("building the HTTP client: {e}"))
}

/// The `Location` of a redirect (empty when there is none).
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The first `Set-Cookie` header of a response, attributes and all (empty when there is none).
pub fn set_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The session cookie a response sets, as `name=value` (to replay it from another client).
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.contains("partner_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

impl WebUser {
    /// A new user (no cookies yet).
    pub fn new(web_url: &str) -> Self {
        Self {
            client: cookie_client(),
            web_url: web_url.to_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.web_url)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// `GET /login` and the simulator's sign-in form submitted as `username`; returns SuperID's redirect
    /// back to partner-web (`/callback?code=…&state=…`), not yet followed.
    pub async fn authorize_as(&self, username: &str) -> String {
        let login = self.get("/login").await;
        assert_eq!(login.status().as_u16(), 303, "GET /login did not redirect");
        let authorize =
            url::Url::parse(&location(&login)).unwrap_or_else(|e| panic!("GET /login: {e}"));
        let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
        form.push(("username".into(), username.into()));
        let mut action = authorize.clone();
        action.set_query(None);
        let answer = self
            .client
            .post(action)
            .form(&form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("sign-in form: {e}"));
        assert_eq!(
            answer.status().as_u16(),
            302,
            "the simulator did not redirect back"
        );
        location(&answer)
    }

    /// A full sign-in as `username`; returns the callback's response (a redirect home on success).
    pub async fn sign_in_as(&self, username: &str) -> reqwest::Response {
        let callback = self.authorize_as(username).await;
        self.client
            .get(callback)
            .send()
            .await
            .unwrap_or_else(|e| panic!("callback: {e}"))
    }

    /// Signs in as `username`; returns the callback's status.
    pub async fn sign_in(&self, username: &str) -> u16 {
        self.sign_in_as(username).await.status().as_u16()
    }

    /// The home page's HTML.
    pub async fn home(&self) -> String {
        self.get("/").await.text().await.unwrap_or_default()
    }

    /// The CSRF token of the signed-in session, read from the home page's forms.
    pub async fn csrf(&self) -> String {
        let home = self.home().await;
        let marker = "name=\"csrf_token\" value=\"";
        let start = home
            .find(marker)
            .map(|i| i + marker.len())
            .unwrap_or_else(|| panic!("no CSRF token on the home page:\n{home}"));
        home[start..start + 64].to_owned()
    }

    /// GET of an absolute URL (a redirect's target, say).
    pub async fn follow(&self, url: &str) -> reqwest::Response {
        self.client
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    /// Posts a form with `csrf_token` first; returns the response.
    pub async fn post(&self, path: &str, csrf: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form = vec![("csrf_token", csrf)];
        form.extend_from_slice(fields);
        self.client
            .post(self.url(path))
            .form(&form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// Posts a form with the session's CSRF token; returns the response.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let csrf = self.csrf().await;
        self.post(path, &csrf, fields).await
    }

    /// Posts one of the two company actions (`as-user`, `as-system-user`); returns the response.
    pub async fn create_company(&self, action: &str, name: &str) -> reqwest::Response {
        self.post_form(&format!("/companies/{action}"), &[("name", name)])
            .await
    }

    /// Queues a company for the system user and waits until its page says done or failed; returns the
    /// final state (`done`, `failed`, or `timeout` after `limit`) and the page.
    pub async fn system_user_company(&self, name: &str, limit: Duration) -> (String, String) {
        let queued = self.create_company("as-system-user", name).await;
        assert_eq!(
            queued.status().as_u16(),
            303,
            "not queued: {}",
            queued.text().await.unwrap_or_default()
        );
        self.wait_for_request(&location(&queued), limit).await
    }

    /// Polls a request page until done or failed (or `limit` passes: state `timeout`).
    pub async fn wait_for_request(&self, path: &str, limit: Duration) -> (String, String) {
        let deadline = Instant::now() + limit;
        loop {
            let page = self.get(path).await.text().await.unwrap_or_default();
            for state in ["done", "failed"] {
                if page.contains(&format!("data-state=\"{state}\"")) {
                    return (state.to_owned(), page);
                }
            }
            if Instant::now() > deadline {
                return ("timeout".to_owned(), page);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
