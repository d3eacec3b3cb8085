//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`) for HTTP connectors that talk to AWS
//! (IAM Query API, Identity Store, ...), on the workspace's `sha2` + `hmac`.
//!
//! [`canonical_request`], [`string_to_sign`] and [`signature`] are the three steps;
//! [`authorization`] gives the `Authorization` header value for a request (send it with
//! the signed `X-Amz-Date`, and `X-Amz-Security-Token` with temporary credentials).
//! The same functions serve mocks that verify signatures ([`SigningInput`] from the
//! received request, [`parse_authorization`] for the header).
//! Checked against AWS's published SigV4 test suite (see the tests).

use std::fmt;

use hmac::{KeyInit, Mac};
use iga_adapter::Secret;
use sha2::{Digest, Sha256};

type HmacSha256 = hmac::Hmac<Sha256>;

/// The algorithm name in the `Authorization` header and the string to sign.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// AWS credentials. `Debug` shows the access key id only.
#[derive(Clone)]
pub struct AwsCredentials {
    /// Access key id (`AKIA...`, `ASIA...`); not secret, appears in `Authorization`.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: Secret,
    /// Session token of temporary credentials.
    pub session_token: Option<Secret>,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl AwsCredentials {
    /// Long-term credentials.
    pub fn new(access_key_id: impl Into<String>, secret: impl Into<Secret>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key: secret.into(),
            session_token: None,
        }
    }
}

/// What is signed: method, path, query pairs (raw, unencoded), headers (any case) and
/// the payload, plus region, service and the request time (`YYYYMMDDTHHMMSSZ`).
#[derive(Debug, Clone)]
pub struct SigningInput<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Absolute path, unencoded (`/`); each segment is URI-encoded once (non-S3 rule
    /// applies double encoding to an already-encoded path: pass it raw).
    pub path: &'a str,
    /// Query parameters, unencoded.
    pub query: &'a [(String, String)],
    /// Headers to sign (`host` must be among them).
    pub headers: &'a [(String, String)],
    /// Request body.
    pub payload: &'a [u8],
    /// Region (`us-east-1`).
    pub region: &'a str,
    /// Service (`iam`, `identitystore`).
    pub service: &'a str,
    /// `X-Amz-Date` value.
    pub amz_date: &'a str,
}

/// RFC 3986 unreserved characters stay; everything else is `%XX` (upper-case hex).
pub fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if !encode_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn trim_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Lower-case, sorted, `;`-joined header names.
pub fn signed_headers(input: &SigningInput<'_>) -> String {
    let mut names: Vec<String> = input
        .headers
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .collect();
    names.sort();
    names.dedup();
    names.join(";")
}

/// The canonical request (task 1).
pub fn canonical_request(input: &SigningInput<'_>) -> String {
    let path = if input.path.is_empty() {
        "/".to_string()
    } else {
        uri_encode(input.path, false)
    };
    let mut q: Vec<(String, String)> = input
        .query
        .iter()
        .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
        .collect();
    q.sort();
    let query = q
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut hs: Vec<(String, String)> = Vec::new();
    for (k, v) in input.headers {
        let k = k.to_ascii_lowercase();
        let v = trim_value(v);
        match hs.iter_mut().find(|(n, _)| *n == k) {
            Some((_, existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            None => hs.push((k, v)),
        }
    }
    hs.sort();
    let headers: String = hs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        input.method,
        path,
        query,
        headers,
        signed_headers(input),
        sha256_hex(input.payload)
    )
}

/// The credential scope `<date>/<region>/<service>/aws4_request`.
pub fn credential_scope(input: &SigningInput<'_>) -> String {
    let date = input.amz_date.get(..8).unwrap_or(input.amz_date);
    format!("{date}/{}/{}/aws4_request", input.region, input.service)
}

/// The string to sign (task 2).
pub fn string_to_sign(input: &SigningInput<'_>) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        input.amz_date,
        credential_scope(input),
        sha256_hex(canonical_request(input).as_bytes())
    )
}

/// The hex signature (tasks 3 and 4).
pub fn signature(secret: &Secret, input: &SigningInput<'_>) -> String {
    let date = input.amz_date.get(..8).unwrap_or(input.amz_date);
    let k_date = hmac(
        format!("AWS4{}", secret.expose()).as_bytes(),
        date.as_bytes(),
    );
    let k_region = hmac(&k_date, input.region.as_bytes());
    let k_service = hmac(&k_region, input.service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    hex::encode(hmac(&k_signing, string_to_sign(input).as_bytes()))
}

/// The `Authorization` header value.
pub fn authorization(creds: &AwsCredentials, input: &SigningInput<'_>) -> String {
    format!(
        "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={}",
        creds.access_key_id,
        credential_scope(input),
        signed_headers(input),
        signature(&creds.secret_access_key, input)
    )
}

/// The parts of a received `Authorization` header (for verifiers and mocks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuthorization {
    /// Access key id.
    pub access_key_id: String,
    /// Credential scope.
    pub scope: String,
    /// Signed header names, lower-case.
    pub signed_headers: Vec<String>,
    /// Hex signature.
    pub signature: String,
}

/// Parse `AWS4-HMAC-SHA256 Credential=.../scope, SignedHeaders=a;b, Signature=hex`.
pub fn parse_authorization(value: &str) -> Option<ParsedAuthorization> {
    let rest = value.strip_prefix(ALGORITHM)?.trim();
    let mut cred = None;
    let mut signed = None;
    let mut sig = None;
    for p in rest.split(',') {
        let (k, v) = p.trim().split_once('=')?;
        match k {
            "Credential" => cred = Some(v.to_string()),
            "SignedHeaders" => signed = Some(v.split(';').map(str::to_string).collect()),
            "Signature" => sig = Some(v.to_string()),
            _ => return None,
        }
    }
    let cred = cred?;
    let (id, scope) = cred.split_once('/')?;
    Some(ParsedAuthorization {
        access_key_id: id.to_string(),
        scope: scope.to_string(),
        signed_headers: signed?,
        signature: sig?,
    })
}

/// `YYYYMMDDTHHMMSSZ` of a Unix time (UTC).
pub fn amz_date(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let secs = unix_secs % 86_400;
    // Civil-from-days (H. Hinnant), proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    //! Vectors from AWS's published "Signature Version 4 test suite"
    //! (<https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html>,
    //! the `aws-sig-v4-test-suite` directory: `get-vanilla`, `post-vanilla`,
    //! `get-vanilla-query-order-key-case`), credentials `AKIDEXAMPLE` /
    //! `wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY`, region `us-east-1`, service
    //! `service`, time `20150830T123600Z`.
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn creds() -> AwsCredentials {
        AwsCredentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    }

    fn headers() -> Vec<(String, String)> {
        vec![
            ("Host".into(), "example.amazonaws.com".into()),
            ("X-Amz-Date".into(), "20150830T123600Z".into()),
        ]
    }

    fn input<'a>(
        method: &'a str,
        query: &'a [(String, String)],
        h: &'a [(String, String)],
    ) -> SigningInput<'a> {
        SigningInput {
            method,
            path: "/",
            query,
            headers: h,
            payload: b"",
            region: "us-east-1",
            service: "service",
            amz_date: "20150830T123600Z",
        }
    }

    #[test]
    fn get_vanilla() {
        let h = headers();
        let i = input("GET", &[], &h);
        assert_eq!(
            canonical_request(&i),
            format!(
                "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n{EMPTY}"
            )
        );
        assert_eq!(
            string_to_sign(&i),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
        assert_eq!(
            authorization(&creds(), &i),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn post_vanilla() {
        let h = headers();
        let i = input("POST", &[], &h);
        assert_eq!(
            canonical_request(&i),
            format!(
                "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n{EMPTY}"
            )
        );
        assert_eq!(
            signature(&creds().secret_access_key, &i),
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        );
    }

    #[test]
    fn get_vanilla_query_order_key_case() {
        let h = headers();
        let q = vec![
            ("Param2".to_string(), "value2".to_string()),
            ("Param1".to_string(), "value1".to_string()),
        ];
        let i = input("GET", &q, &h);
        assert_eq!(
            canonical_request(&i),
            format!(
                "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n{EMPTY}"
            )
        );
        assert_eq!(
            signature(&creds().secret_access_key, &i),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        );
    }

    #[test]
    fn tampering_changes_the_signature_and_parse_round_trips() {
        let h = headers();
        let i = input("GET", &[], &h);
        let mut other = i.clone();
        other.payload = b"x";
        assert_ne!(
            signature(&creds().secret_access_key, &i),
            signature(&creds().secret_access_key, &other)
        );
        let p = parse_authorization(&authorization(&creds(), &i)).unwrap();
        assert_eq!(p.access_key_id, "AKIDEXAMPLE");
        assert_eq!(p.scope, "20150830/us-east-1/service/aws4_request");
        assert_eq!(p.signed_headers, vec!["host", "x-amz-date"]);
        assert!(parse_authorization("Bearer x").is_none());
        assert!(!format!("{:?}", creds()).contains("EXAMPLEKEY"));
    }

    #[test]
    fn amz_date_formats_utc() {
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_709_164_800), "20240229T000000Z");
        assert_eq!(uri_encode("a b/c~", false), "a%20b/c~");
        assert_eq!(uri_encode("a/b", true), "a%2Fb");
    }
}
