//! Redaction of headers, URLs and response snippets before anything is logged or
//! put into an error. Every value replaced is shown as [`MASK`] (`***`).

use std::fmt;

use http::{HeaderMap, HeaderName};
use iga_adapter::redact::{MASK, is_sensitive_key};
use url::Url;

/// Header names always masked, on top of [`is_sensitive_key`].
const SENSITIVE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
    "x-csrf-token",
    "x-hub-signature",
    "x-hub-signature-256",
    "x-slack-signature",
    "stripe-signature",
    "webhook-signature",
    "x-bamboohr-signature",
];

/// Query parameters always masked, on top of [`is_sensitive_key`] (which already
/// catches `access_token`, `client_secret`, `api_key`, `sig`, `password`, ...).
const SENSITIVE_QUERY: &[&str] = &[
    "code",
    "state",
    "assertion",
    "client_assertion",
    "id_token_hint",
    "refresh_token",
    "x-amz-credential",
    "x-amz-signature",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "validationtoken",
];

/// Whether a header's value must never be shown.
pub fn is_sensitive_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SENSITIVE_HEADERS.contains(&n.as_str()) || is_sensitive_key(&n)
}

/// Whether a query parameter's value must never be shown.
pub fn is_sensitive_query_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SENSITIVE_QUERY.contains(&n.as_str()) || is_sensitive_key(&n)
}

/// A URL with userinfo (user and password) and sensitive query values masked.
/// Query parameter order and the remaining values are kept.
pub fn redact_url(url: &Url) -> Url {
    let mut u = url.clone();
    if !u.username().is_empty() {
        let _ = u.set_username(MASK);
    }
    if u.password().is_some() {
        let _ = u.set_password(Some(MASK));
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_sensitive_query_param(&k) {
                    MASK.to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        if pairs.is_empty() {
            u.set_query(None);
        } else {
            u.query_pairs_mut().clear().extend_pairs(pairs);
        }
    }
    if u.fragment().is_some() {
        // OAuth implicit flows put tokens in fragments; never show one.
        u.set_fragment(Some(MASK));
    }
    u
}

/// [`redact_url`] for a string. Something that does not parse as an absolute URL is
/// replaced entirely by [`MASK`] rather than risking a leak.
pub fn redact_url_str(url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => redact_url(&u).to_string(),
        Err(_) => MASK.to_string(),
    }
}

/// Headers as `(name, value)` pairs with sensitive values masked. Non-UTF-8 values
/// are shown as `<binary>`.
pub fn redact_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), redact_header_value(k, v)))
        .collect()
}

fn redact_header_value(name: &HeaderName, value: &http::HeaderValue) -> String {
    if is_sensitive_header(name.as_str()) {
        MASK.to_string()
    } else {
        match value.to_str() {
            Ok(s) => s.to_string(),
            Err(_) => "<binary>".to_string(),
        }
    }
}

/// `Debug`/`Display` view of a header map with sensitive values masked.
pub struct RedactedHeaders<'a>(pub &'a HeaderMap);

impl fmt::Debug for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in self.0 {
            m.entry(&k.as_str(), &redact_header_value(k, v));
        }
        m.finish()
    }
}

impl fmt::Display for RedactedHeaders<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}: {}", k, redact_header_value(k, v))?;
        }
        Ok(())
    }
}

/// A loggable summary of an outgoing request: method, redacted URL, redacted
/// headers. Never holds the body.
///
/// ```
/// let client = iga_http::default_client().unwrap();
/// let req = client
///     .get("https://u:pw@api.example.com/users?access_token=abc&filter=x")
///     .bearer_auth("abc")
///     .build()
///     .unwrap();
/// let shown = format!("{:?}", iga_http::RedactedRequest::new(&req));
/// assert!(!shown.contains("abc") && !shown.contains("pw"));
/// # drop(client);
/// ```
#[derive(Clone)]
pub struct RedactedRequest {
    method: http::Method,
    url: Url,
    headers: Vec<(String, String)>,
}

impl RedactedRequest {
    /// Summarise a built request.
    pub fn new(req: &reqwest::Request) -> Self {
        Self::from_parts(req.method(), req.url(), req.headers())
    }

    /// Summarise from parts (also usable for inbound requests).
    pub fn from_parts(method: &http::Method, url: &Url, headers: &HeaderMap) -> Self {
        Self {
            method: method.clone(),
            url: redact_url(url),
            headers: redact_headers(headers),
        }
    }

    /// The method.
    pub fn method(&self) -> &http::Method {
        &self.method
    }

    /// The redacted URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The redacted headers.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }
}

impl fmt::Debug for RedactedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method.as_str())
            .field("url", &self.url.as_str())
            .field("headers", &self.headers)
            .finish()
    }
}

impl fmt::Display for RedactedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.url)
    }
}

/// Longest body snippet [`redact_body_snippet`] keeps, in characters.
pub const MAX_SNIPPET_CHARS: usize = 256;

/// Make a response body safe to put into an error: JSON bodies have the values of
/// sensitive-looking keys masked (recursively); the result is truncated to
/// [`MAX_SNIPPET_CHARS`] characters with `…` appended when cut. Non-JSON text is
/// only truncated.
pub fn redact_body_snippet(body: &str) -> String {
    let text = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(mut v) if v.is_object() || v.is_array() => {
            mask_json(&mut v);
            v.to_string()
        }
        _ => body.trim().to_string(),
    };
    truncate_chars(&text, MAX_SNIPPET_CHARS)
}

fn mask_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                if is_sensitive_key(k) {
                    *val = serde_json::Value::String(MASK.to_string());
                } else {
                    mask_json(val);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(mask_json),
        _ => {}
    }
}

pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let cases = [
            (
                "https://user:pw@h.example/p?a=1&access_token=T0K&sig=S1G",
                "https://***:***@h.example/p?a=1&access_token=***&sig=***",
            ),
            (
                "https://h.example/cb?code=C0DE&state=ST&client_secret=CS&api_key=AK&x=y",
                "https://h.example/cb?code=***&state=***&client_secret=***&api_key=***&x=y",
            ),
            (
                "https://h.example/p?filter=userName+eq+%22ada%22&startIndex=1",
                "https://h.example/p?filter=userName+eq+%22ada%22&startIndex=1",
            ),
            (
                "https://h.example/p#access_token=X",
                "https://h.example/p#***",
            ),
            ("https://h.example/p", "https://h.example/p"),
            (
                "https://acct.blob.example/c?sv=2020&sig=abc%2Fdef&se=2026",
                "https://acct.blob.example/c?sv=2020&sig=***&se=2026",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(redact_url_str(input), want, "{input}");
        }
        assert_eq!(redact_url_str("not a url with token=abc"), "***");
    }

    #[test]
    fn headers() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer S3CRET".parse().unwrap());
        h.insert("cookie", "sid=S3CRET".parse().unwrap());
        h.insert("set-cookie", "sid=S3CRET".parse().unwrap());
        h.insert("x-api-key", "S3CRET".parse().unwrap());
        h.insert("x-vendor-token", "S3CRET".parse().unwrap());
        h.insert("x-client-secret", "S3CRET".parse().unwrap());
        h.insert("stripe-signature", "t=1,v1=S3CRET".parse().unwrap());
        h.insert("content-type", "application/json".parse().unwrap());
        h.insert("x-request-id", "req-1".parse().unwrap());
        let shown = format!(
            "{:?} {} {:?}",
            RedactedHeaders(&h),
            RedactedHeaders(&h),
            redact_headers(&h)
        );
        assert!(!shown.contains("S3CRET"), "{shown}");
        assert!(shown.contains("application/json") && shown.contains("req-1"));
        assert_eq!(shown.matches(MASK).count(), 21, "{shown}");
    }

    #[test]
    fn body_snippets() {
        let s = redact_body_snippet(
            r#"{"error":"invalid_client","client_secret":"CS","nested":[{"access_token":"AT"}]}"#,
        );
        assert!(!s.contains("CS\"") && !s.contains("AT"), "{s}");
        assert!(s.contains("invalid_client"));
        let long = "x".repeat(1000);
        let s = redact_body_snippet(&long);
        assert_eq!(s.chars().count(), MAX_SNIPPET_CHARS + 1);
        assert!(s.ends_with('…'));
        assert_eq!(redact_body_snippet("  plain  "), "plain");
        assert_eq!(truncate_chars("ééé", 2), "éé…");
    }

    #[test]
    fn request_summary() {
        crate::install_ring_provider();
        let client = crate::default_client().unwrap();
        let req = client
            .post("https://ada:pw@h.example/x?api_key=K3Y&page=2")
            .header("x-api-key", "K3Y")
            .basic_auth("ada", Some("pw0rd"))
            .build()
            .unwrap();
        let r = RedactedRequest::new(&req);
        let shown = format!("{r:?} {r}");
        assert!(
            !shown.contains("K3Y") && !shown.contains("pw0rd"),
            "{shown}"
        );
        assert!(shown.contains("page=2") && shown.starts_with("Request"));
        assert_eq!(r.to_string(), "POST https://h.example/x?api_key=***&page=2");
    }
}
