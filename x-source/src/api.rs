//! Requests to the X API v2 and the reading of their answers: the fields
//! the product asks for, the bearer token (never printed), and the sorting
//! of failures into "retry" ([`Failure`]) and "stop" ([`Error`]).

use std::path::Path;
use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::Value;
use url::Url;

use crate::error::{Error, Result};
use crate::retry::{Failure, RateLimit};

/// `tweet.fields`: what the `tweets` message and the MySQL schema use.
pub const TWEET_FIELDS: &str =
    "created_at,lang,public_metrics,entities,referenced_tweets,geo,author_id,note_tweet";
/// `expansions`: the author, the referenced tweets (a retweet's full text
/// and hashtags) with their authors, and the place.
pub const EXPANSIONS: &str =
    "author_id,referenced_tweets.id,referenced_tweets.id.author_id,geo.place_id";
/// `user.fields`.
pub const USER_FIELDS: &str = "username,name";
/// `place.fields`.
pub const PLACE_FIELDS: &str = "full_name,country_code,geo";

/// The recent-search endpoint.
pub const SEARCH_PATH: &str = "/2/tweets/search/recent";
/// The filtered-stream endpoint.
pub const STREAM_PATH: &str = "/2/tweets/search/stream";
/// The filtered stream's rules.
pub const RULES_PATH: &str = "/2/tweets/search/stream/rules";

/// The environment variable that holds the bearer token.
pub const TOKEN_VARIABLE: &str = "TWEETLAMBDA_X_BEARER_TOKEN";

/// The bearer token, and where it came from. Its `Debug` shows only the
/// latter.
#[derive(Clone)]
pub struct Token {
    value: String,
    /// The setting it came from, for error messages.
    pub setting: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token(from {})", self.setting)
    }
}

impl Token {
    /// From `--bearer-token-file` when given, else from
    /// `TWEETLAMBDA_X_BEARER_TOKEN`.
    pub fn read(file: Option<&Path>) -> Result<Token> {
        let (value, setting) = match file {
            // The path is not repeated in messages: a token passed there by
            // mistake would be printed.
            Some(path) => {
                let setting = "--bearer-token-file".to_string();
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::Config(format!("cannot read the file of {setting}: {e}"))
                })?;
                (text, setting)
            }
            None => match std::env::var(TOKEN_VARIABLE) {
                Ok(v) => (v, TOKEN_VARIABLE.to_string()),
                Err(_) => {
                    return Err(Error::Config(format!(
                        "no bearer token: set {TOKEN_VARIABLE} or pass --bearer-token-file PATH (an app's token from the X developer portal)"
                    )))
                }
            },
        };
        let value = value.trim().to_string();
        if value.is_empty() || value.chars().any(|c| c.is_control() || c == ' ') {
            return Err(Error::Config(format!(
                "the bearer token in {setting} is empty or not one line of text"
            )));
        }
        Ok(Token { value, setting })
    }
}

/// A recent-search request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchRequest {
    /// The query, in X's search syntax.
    pub query: String,
    /// Only tweets newer than this id.
    pub since_id: Option<String>,
    /// Only tweets older than this id.
    pub until_id: Option<String>,
    /// The page after the one that gave this token.
    pub next_token: Option<String>,
    /// Tweets per page, 10 to 100.
    pub max_results: u32,
}

/// A successful answer.
#[derive(Debug)]
pub struct Answer {
    /// The body.
    pub body: Vec<u8>,
    /// Its rate-limit headers.
    pub rate: RateLimit,
}

/// Why a request failed: worth retrying, or not.
#[derive(Debug)]
pub enum Trouble {
    /// Retry after a wait ([`crate::retry::Backoff`]).
    Retry(Failure),
    /// Stop: retrying cannot help.
    Stop(Error),
}

impl From<Error> for Trouble {
    fn from(e: Error) -> Trouble {
        Trouble::Stop(e)
    }
}

/// The X API client.
pub struct Api {
    http: reqwest::Client,
    base: Url,
    token: Token,
}

impl Api {
    /// A client of the API at `base` (`https://api.x.com`).
    pub fn new(base: &str, token: Token) -> Result<Api> {
        let base = Url::parse(base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| Error::Config(format!("--api-base {base:?} is not an http(s) URL")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("tweetlambda/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot create the HTTP client: {e}")))?;
        Ok(Api { http, base, token })
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.base.clone();
        let prefix = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{prefix}{path}"));
        url
    }

    /// One page of recent search.
    pub async fn search(&self, r: &SearchRequest) -> std::result::Result<Answer, Trouble> {
        let mut url = self.url(SEARCH_PATH);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("query", &r.query)
                .append_pair("max_results", &r.max_results.clamp(10, 100).to_string());
            fields(&mut q);
            if let Some(id) = &r.since_id {
                q.append_pair("since_id", id);
            }
            if let Some(id) = &r.until_id {
                q.append_pair("until_id", id);
            }
            if let Some(t) = &r.next_token {
                q.append_pair("next_token", t);
            }
        }
        let request = self.http.get(url).timeout(Duration::from_secs(60));
        let response = self.send(&format!("GET {SEARCH_PATH}"), request).await?;
        let rate = RateLimit::from_headers(response.headers());
        let body = response
            .bytes()
            .await
            .map_err(|e| Trouble::Retry(Failure::Network(cause(&e))))?;
        Ok(Answer {
            body: body.to_vec(),
            rate,
        })
    }

    /// Opens the filtered stream; the caller reads the body as it arrives.
    pub async fn stream(&self) -> std::result::Result<Response, Trouble> {
        let mut url = self.url(STREAM_PATH);
        fields(&mut url.query_pairs_mut());
        self.send(&format!("GET {STREAM_PATH}"), self.http.get(url))
            .await
    }

    /// The stream's rules.
    pub async fn rules(&self) -> Result<Value> {
        let request = self
            .http
            .get(self.url(RULES_PATH))
            .timeout(Duration::from_secs(60));
        self.rules_call(&format!("GET {RULES_PATH}"), request).await
    }

    /// Adds or deletes stream rules: `body` is `{"add":[…]}` or
    /// `{"delete":{"ids":[…]}}`.
    pub async fn change_rules(&self, body: &Value) -> Result<Value> {
        let request = self
            .http
            .post(self.url(RULES_PATH))
            .json(body)
            .timeout(Duration::from_secs(60));
        self.rules_call(&format!("POST {RULES_PATH}"), request)
            .await
    }

    async fn rules_call(&self, what: &str, request: RequestBuilder) -> Result<Value> {
        let response = match self.send(what, request).await {
            Ok(r) => r,
            Err(Trouble::Stop(e)) => return Err(e),
            Err(Trouble::Retry(f)) => {
                return Err(Error::Config(format!(
                    "{what} failed ({f}); try again later"
                )))
            }
        };
        let body = response
            .bytes()
            .await
            .map_err(|e| Error::Config(format!("{what}: {}", cause(&e))))?;
        serde_json::from_slice(&body)
            .map_err(|e| Error::Config(format!("{what}: the answer is not JSON: {e}")))
    }

    /// Sends a request with the token and sorts the outcome.
    async fn send(
        &self,
        what: &str,
        request: RequestBuilder,
    ) -> std::result::Result<Response, Trouble> {
        let response = request
            .bearer_auth(&self.token.value)
            .send()
            .await
            .map_err(|e| Trouble::Retry(Failure::Network(cause(&e))))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let rate = RateLimit::from_headers(response.headers());
        // The body of an error is small; a cut one still says the status.
        let body = response.bytes().await.unwrap_or_default();
        let detail = error_detail(&body);
        tracing::debug!(%status, %detail, "{what} failed");
        Err(match status {
            StatusCode::TOO_MANY_REQUESTS => {
                Trouble::Retry(Failure::RateLimited { reset: rate.reset })
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Trouble::Stop(Error::Auth {
                status: status.as_u16(),
                detail,
                setting: self.token.setting.clone(),
            }),
            s if s.is_server_error() => Trouble::Retry(Failure::Server { status: s.as_u16() }),
            s => Trouble::Stop(Error::Refused {
                what: what.to_string(),
                status: s.as_u16(),
                detail,
            }),
        })
    }
}

fn fields(q: &mut url::form_urlencoded::Serializer<'_, url::UrlQuery<'_>>) {
    q.append_pair("tweet.fields", TWEET_FIELDS)
        .append_pair("expansions", EXPANSIONS)
        .append_pair("user.fields", USER_FIELDS)
        .append_pair("place.fields", PLACE_FIELDS);
}

/// A client error with its causes, each once (the URL in it holds the
/// query, never the token).
fn cause(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = current {
        let text = err.to_string();
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = err.source();
    }
    parts.join(": ")
}

/// What an error body says, in one line: `title: detail` of a problem
/// object, or the `message`s of an `errors` list; the raw start of a body
/// that is not JSON.
pub fn error_detail(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        let (text, _) = tweetlambda_core::messages::excerpt(body, 200);
        return if text.trim().is_empty() {
            "no details".into()
        } else {
            text.trim().to_string()
        };
    };
    let mut parts: Vec<String> = Vec::new();
    let title = v.get("title").and_then(Value::as_str);
    let detail = v.get("detail").and_then(Value::as_str);
    match (title, detail) {
        (Some(t), Some(d)) if t != d => parts.push(format!("{t}: {d}")),
        (Some(t), _) => parts.push(t.to_string()),
        (None, Some(d)) => parts.push(d.to_string()),
        (None, None) => {}
    }
    for e in v
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(m) = e
            .get("message")
            .or_else(|| e.get("detail"))
            .and_then(Value::as_str)
        {
            parts.push(m.to_string());
        }
    }
    if parts.is_empty() {
        "no details".into()
    } else {
        parts.join("; ")
    }
}
