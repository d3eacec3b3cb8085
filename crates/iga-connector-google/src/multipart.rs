//! `multipart/mixed` batch bodies as Google's batch endpoint speaks them: each part
//! is `Content-Type: application/http` (+ optional `Content-ID`) around one complete
//! inner HTTP request or response (start line, headers, body).
//!
//! Used by the connector (requests out, responses in) and by the mock (the reverse).

/// One part: outer `Content-ID` and the inner HTTP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Outer `Content-ID` without angle brackets (`item1`, `response-item1`).
    pub content_id: Option<String>,
    /// Inner start line: `POST /admin/directory/v1/... HTTP/1.1` or `HTTP/1.1 409 Conflict`.
    pub start_line: String,
    /// Inner headers.
    pub headers: Vec<(String, String)>,
    /// Inner body (may be empty).
    pub body: String,
}

impl Part {
    /// For a response part: the status code of the start line.
    pub fn status(&self) -> Option<u16> {
        let mut it = self.start_line.split_whitespace();
        let proto = it.next()?;
        if !proto.starts_with("HTTP/") {
            return None;
        }
        it.next()?.parse().ok()
    }

    /// For a request part: method and path of the start line.
    pub fn method_and_path(&self) -> Option<(&str, &str)> {
        let mut it = self.start_line.split_whitespace();
        let m = it.next()?;
        let p = it.next()?;
        Some((m, p))
    }

    /// An inner header, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The `boundary` parameter of a `multipart/mixed` content type.
pub fn boundary_of(content_type: &str) -> Option<String> {
    let (mime, params) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/mixed") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
    })
}

/// Encode parts with CRLF line ends, closing delimiter included.
pub fn encode(boundary: &str, parts: &[Part]) -> String {
    let mut out = String::new();
    for p in parts {
        out.push_str(&format!(
            "--{boundary}\r\nContent-Type: application/http\r\n"
        ));
        if let Some(id) = &p.content_id {
            out.push_str(&format!("Content-ID: <{id}>\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&p.start_line);
        out.push_str("\r\n");
        for (k, v) in &p.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&p.body);
        out.push_str("\r\n");
    }
    out.push_str(&format!("--{boundary}--\r\n"));
    out
}

fn split_blank(s: &str) -> (&str, &str) {
    match s.find("\n\n") {
        Some(i) => (&s[..i], &s[i + 2..]),
        None => (s, ""),
    }
}

fn headers(block: &str) -> Result<Vec<(String, String)>, String> {
    block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| format!("malformed header line `{l}`"))
        })
        .collect()
}

/// Decode a multipart body. Errors name the part (1-based) and what is wrong.
pub fn decode(boundary: &str, body: &str) -> Result<Vec<Part>, String> {
    let text = body.replace("\r\n", "\n");
    let delim = format!("--{boundary}");
    let mut segments = text.split(delim.as_str());
    segments.next(); // preamble
    let mut parts = Vec::new();
    let mut closed = false;
    for (i, seg) in segments.enumerate() {
        if seg.starts_with("--") {
            closed = true;
            break;
        }
        let n = i + 1;
        let seg = seg.strip_prefix('\n').unwrap_or(seg);
        let (outer, inner) = split_blank(seg);
        let outer = headers(outer).map_err(|e| format!("part {n}: {e}"))?;
        let ct = outer
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str());
        if !ct.is_some_and(|c| c.to_ascii_lowercase().starts_with("application/http")) {
            return Err(format!("part {n}: Content-Type must be application/http"));
        }
        let content_id = outer
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-id"))
            .map(|(_, v)| v.trim_start_matches('<').trim_end_matches('>').to_string());
        let (head, body) = split_blank(inner);
        let mut lines = head.lines();
        let start_line = lines
            .next()
            .filter(|l| !l.trim().is_empty())
            .ok_or_else(|| format!("part {n}: missing inner start line"))?
            .trim()
            .to_string();
        let hdrs =
            headers(&lines.collect::<Vec<_>>().join("\n")).map_err(|e| format!("part {n}: {e}"))?;
        parts.push(Part {
            content_id,
            start_line,
            headers: hdrs,
            body: body.trim_end_matches('\n').to_string(),
        });
    }
    if !closed {
        return Err("multipart body has no closing delimiter".into());
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_protocol_example() {
        let parts = vec![Part {
            content_id: Some("item1".into()),
            start_line: "POST /admin/directory/v1/groups/g%40x.com/members HTTP/1.1".into(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: r#"{"email":"ada@x.com","role":"MEMBER"}"#.into(),
        }];
        let enc = encode("b1", &parts);
        assert_eq!(decode("b1", &enc).unwrap(), parts);
        // The example of the protocol digest (no inner headers, empty body).
        let ex = "--b\nContent-Type: application/http\nContent-ID: <item1>\n\nDELETE /admin/directory/v1/groups/eng%40x.com/members/ada%40x.com HTTP/1.1\n\n--b--\n";
        let d = decode("b", ex).unwrap();
        assert_eq!(d[0].method_and_path().unwrap().0, "DELETE");
        assert_eq!(d[0].content_id.as_deref(), Some("item1"));
        assert_eq!(
            boundary_of("multipart/mixed; boundary=\"batch_x\"").as_deref(),
            Some("batch_x")
        );
        assert!(boundary_of("application/json").is_none());
        let resp = Part {
            content_id: None,
            start_line: "HTTP/1.1 409 Conflict".into(),
            headers: vec![],
            body: String::new(),
        };
        assert_eq!(resp.status(), Some(409));
    }

    #[test]
    fn malformed_bodies_are_rejected_with_the_place() {
        assert!(
            decode(
                "b",
                "--b\nContent-Type: application/http\n\nGET / HTTP/1.1\n\n"
            )
            .is_err()
        );
        let e = decode(
            "b",
            "--b\nContent-Type: text/plain\n\nGET / HTTP/1.1\n\n--b--",
        )
        .unwrap_err();
        assert!(e.contains("part 1"), "{e}");
    }
}
