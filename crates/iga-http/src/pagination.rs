//! Pagination helpers: RFC 8288 `Link` headers, cursor/next-token paging, and
//! index/offset paging (SCIM `startIndex`/`count`/`totalResults`).
//!
//! The pagers are small state machines, not I/O: ask for the next request's
//! parameters, make the call, report what the page said. They stop on the signals
//! real targets give (no next link, `totalResults` reached, a short or empty page)
//! and guard against targets that loop (the same cursor twice, a page cap).

use http::HeaderMap;
use iga_adapter::{Error, ErrorKind, Result};

/// One link of an RFC 8288 `Link` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The target URI, as written between `<` and `>`.
    pub uri: String,
    /// The relation types (`rel="next last"` gives two), lowercased.
    pub rels: Vec<String>,
    /// Other parameters, names lowercased, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Link {
    /// Whether the link has relation `rel` (case-insensitive).
    pub fn has_rel(&self, rel: &str) -> bool {
        self.rels.iter().any(|r| r.eq_ignore_ascii_case(rel))
    }
}

/// Parse one `Link` header value (comma-separated links). Commas and semicolons
/// inside `<...>` and inside quoted strings are handled; malformed links are
/// skipped.
pub fn parse_link_header(value: &str) -> Vec<Link> {
    let mut links = Vec::new();
    let b = value.as_bytes();
    let mut i = 0;
    while i < b.len() {
        // find '<'
        while i < b.len() && b[i] != b'<' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let Some(end) = value[i + 1..].find('>') else {
            break;
        };
        let uri = value[i + 1..i + 1 + end].trim().to_string();
        i = i + 1 + end + 1;
        // parameters until a top-level ',' or end
        let mut rels = Vec::new();
        let mut params = Vec::new();
        loop {
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            if i >= b.len() || b[i] == b',' {
                i += 1;
                break;
            }
            if b[i] != b';' {
                // garbage: skip to next top-level comma
                while i < b.len() && b[i] != b',' {
                    i += 1;
                }
                continue;
            }
            i += 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let name_start = i;
            while i < b.len() && !matches!(b[i], b'=' | b';' | b',') {
                i += 1;
            }
            let name = value[name_start..i].trim().to_ascii_lowercase();
            let mut val = String::new();
            if i < b.len() && b[i] == b'=' {
                i += 1;
                while i < b.len() && b[i] == b' ' {
                    i += 1;
                }
                if i < b.len() && b[i] == b'"' {
                    i += 1;
                    while i < b.len() && b[i] != b'"' {
                        if b[i] == b'\\' && i + 1 < b.len() {
                            i += 1;
                        }
                        // push the whole UTF-8 char
                        let ch = value[i..].chars().next().expect("char boundary");
                        val.push(ch);
                        i += ch.len_utf8();
                    }
                    i += 1; // closing quote
                } else {
                    let s = i;
                    while i < b.len() && !matches!(b[i], b';' | b',') {
                        i += 1;
                    }
                    val = value[s..i].trim().to_string();
                }
            }
            if name.is_empty() {
                continue;
            }
            if name == "rel" {
                rels.extend(val.split_whitespace().map(|r| r.to_ascii_lowercase()));
            } else {
                params.push((name, val));
            }
        }
        if !uri.is_empty() {
            links.push(Link { uri, rels, params });
        }
    }
    links
}

/// The `rel="next"` URI across all `Link` headers of a response, if any.
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    find_rel(headers, "next")
}

/// The URI with relation `rel` across all `Link` headers.
pub fn find_rel(headers: &HeaderMap, rel: &str) -> Option<String> {
    headers
        .get_all(http::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_link_header)
        .find(|l| l.has_rel(rel))
        .map(|l| l.uri)
}

/// Cursor paging: next-token (Jira `nextPageToken`, Graph `@odata.nextLink`,
/// SCIM `nextCursor`) or `Link: rel="next"` URLs.
///
/// ```
/// let mut p = iga_http::CursorPager::new();
/// let mut pages = vec![(vec![1, 2], Some("c2")), (vec![], Some("c3")), (vec![3], None)].into_iter();
/// let mut all = vec![];
/// while let Some(cursor) = p.next_request() {
///     let (items, next) = pages.next().unwrap(); // fetch with `cursor` (None = first page)
///     all.extend(items);
///     p.record_page(next.map(str::to_string)).unwrap();
/// }
/// assert_eq!(all, vec![1, 2, 3]);
/// ```
#[derive(Debug, Clone)]
pub struct CursorPager {
    cursor: Option<String>,
    started: bool,
    done: bool,
    pages: u64,
    max_pages: u64,
    seen: std::collections::HashSet<String>,
}

impl Default for CursorPager {
    fn default() -> Self {
        Self::new()
    }
}

impl CursorPager {
    /// A pager starting at the first page (no cursor), at most 100,000 pages.
    pub fn new() -> Self {
        Self {
            cursor: None,
            started: false,
            done: false,
            pages: 0,
            max_pages: 100_000,
            seen: Default::default(),
        }
    }

    /// Resume from a stored cursor.
    pub fn resume(cursor: impl Into<String>) -> Self {
        let mut p = Self::new();
        p.cursor = Some(cursor.into());
        p
    }

    /// Stop with an error after this many pages.
    pub fn max_pages(mut self, n: u64) -> Self {
        self.max_pages = n;
        self
    }

    /// The next request: `None` when finished, `Some(None)` for the first page
    /// without a cursor, `Some(Some(cursor))` otherwise.
    pub fn next_request(&mut self) -> Option<Option<&str>> {
        if self.done {
            return None;
        }
        self.started = true;
        Some(self.cursor.as_deref())
    }

    /// Record the page just fetched by its next cursor/link (`None` or empty = last
    /// page). An empty page that still has a next cursor continues (Graph delta does
    /// this). The same cursor twice, or more than `max_pages` pages, is an
    /// `Unexpected` error (a looping target).
    pub fn record_page(&mut self, next: Option<String>) -> Result<()> {
        self.pages += 1;
        match next.filter(|n| !n.is_empty()) {
            None => {
                self.done = true;
                self.cursor = None;
                Ok(())
            }
            Some(n) => {
                if !self.seen.insert(n.clone()) || self.cursor.as_deref() == Some(n.as_str()) {
                    self.done = true;
                    return Err(Error::new(
                        ErrorKind::Unexpected,
                        "target returned the same page cursor twice",
                    ));
                }
                if self.pages >= self.max_pages {
                    self.done = true;
                    return Err(Error::new(
                        ErrorKind::Unexpected,
                        format!("more than {} pages", self.max_pages),
                    ));
                }
                self.cursor = Some(n);
                Ok(())
            }
        }
    }

    /// Pages recorded so far.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Whether the last page was reached.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// The cursor for the next page (store it to resume later).
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }
}

/// Index/offset paging: SCIM (`startIndex` 1-based, `count`, `totalResults`) or
/// 0-based `offset`/`limit` APIs.
///
/// Stops when `totalResults` is reached, when a page comes back empty (even if
/// `totalResults` claims more: a shrinking collection must not loop), or, when the
/// target gives no total, when a page is shorter than the server's page size.
/// Servers may return fewer than `count` (their own maximum): the next index
/// advances by what was actually returned.
#[derive(Debug, Clone)]
pub struct IndexPager {
    next_index: u64,
    page_size: u64,
    done: bool,
    total: Option<u64>,
    fetched: u64,
    base: u64,
}

impl IndexPager {
    /// SCIM: `startIndex` starts at 1.
    pub fn scim(count: u64) -> Self {
        Self::with_base(1, count)
    }

    /// 0-based offset/limit.
    pub fn offset(limit: u64) -> Self {
        Self::with_base(0, limit)
    }

    fn with_base(base: u64, size: u64) -> Self {
        Self {
            next_index: base,
            page_size: size.max(1),
            done: false,
            total: None,
            fetched: 0,
            base,
        }
    }

    /// `(start_index or offset, count)` for the next request, or `None` when done.
    pub fn next_request(&self) -> Option<(u64, u64)> {
        (!self.done).then_some((self.next_index, self.page_size))
    }

    /// Record a page: how many items it held, and `totalResults` if the target
    /// sent it. (SCIM `itemsPerPage` need not be passed: the item count is what
    /// matters.)
    pub fn record_page(&mut self, items: u64, total_results: Option<u64>) {
        self.fetched += items;
        if total_results.is_some() {
            self.total = total_results;
        }
        self.next_index += items;
        let consumed = self.next_index - self.base;
        self.done = items == 0
            || match self.total {
                Some(t) => consumed >= t,
                None => items < self.page_size,
            };
    }

    /// The last `totalResults` seen.
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// Items recorded so far.
    pub fn fetched(&self) -> u64 {
        self.fetched
    }

    /// Whether paging is finished.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_table() {
        type Case<'a> = (&'a str, Vec<(&'a str, Vec<&'a str>)>);
        let cases: Vec<Case<'_>> = vec![
            (
                r#"<https://api.example/u?after=abc&limit=200>; rel="next""#,
                vec![("https://api.example/u?after=abc&limit=200", vec!["next"])],
            ),
            (
                r#"<https://a/1>; rel="self", <https://a/2>; rel="next""#,
                vec![("https://a/1", vec!["self"]), ("https://a/2", vec!["next"])],
            ),
            // unquoted rel, extra params, multiple rels, a comma inside the URI
            (
                r#"<https://a/x?ids=1,2>; title="a, b; c"; rel=next, <https://a/last>; rel="last prev""#,
                vec![
                    ("https://a/x?ids=1,2", vec!["next"]),
                    ("https://a/last", vec!["last", "prev"]),
                ],
            ),
            // case and whitespace
            (
                "  <https://a/p2> ;REL=\"Next\"  ,<https://a/p9>;rel=\"last\"",
                vec![
                    ("https://a/p2", vec!["next"]),
                    ("https://a/p9", vec!["last"]),
                ],
            ),
            // no next
            (
                r#"<https://a/1>; rel="self""#,
                vec![("https://a/1", vec!["self"])],
            ),
            // garbage and empty
            ("", vec![]),
            ("not a link", vec![]),
            ("<unterminated; rel=next", vec![]),
            // escaped quote inside a quoted value
            (
                r#"<https://a/2>; title="say \"hi\""; rel="next""#,
                vec![("https://a/2", vec!["next"])],
            ),
        ];
        for (input, want) in cases {
            let got: Vec<(String, Vec<String>)> = parse_link_header(input)
                .into_iter()
                .map(|l| (l.uri, l.rels))
                .collect();
            let want: Vec<(String, Vec<String>)> = want
                .into_iter()
                .map(|(u, r)| (u.to_string(), r.into_iter().map(String::from).collect()))
                .collect();
            assert_eq!(got, want, "{input}");
        }
        let l = &parse_link_header(r#"<https://a/2>; title="say \"hi\""; rel="next""#)[0];
        assert_eq!(
            l.params,
            vec![("title".to_string(), "say \"hi\"".to_string())]
        );
    }

    #[test]
    fn next_link_across_multiple_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(next_link(&h), None);
        h.append("link", r#"<https://a/1>; rel="self""#.parse().unwrap());
        assert_eq!(next_link(&h), None);
        h.append("link", r#"<https://a/2>; rel="next""#.parse().unwrap());
        assert_eq!(next_link(&h).as_deref(), Some("https://a/2"));
        assert_eq!(find_rel(&h, "SELF").as_deref(), Some("https://a/1"));
    }

    #[test]
    fn cursor_pager_follows_empty_pages_and_detects_loops() {
        let mut p = CursorPager::new();
        assert_eq!(p.next_request(), Some(None));
        p.record_page(Some("a".into())).unwrap();
        assert_eq!(p.next_request(), Some(Some("a")));
        // empty page with a next link: keep going
        p.record_page(Some("b".into())).unwrap();
        assert_eq!(p.next_request(), Some(Some("b")));
        // empty string = no more pages (Jira sometimes omits, sometimes blanks)
        p.record_page(Some(String::new())).unwrap();
        assert_eq!(p.next_request(), None);
        assert!(p.is_done());
        assert_eq!(p.pages(), 3);

        let mut p = CursorPager::resume("x");
        assert_eq!(p.next_request(), Some(Some("x")));
        p.record_page(Some("y".into())).unwrap();
        let e = p.record_page(Some("y".into())).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unexpected);
        assert_eq!(p.next_request(), None);

        let mut p = CursorPager::new();
        p.record_page(Some("1".into())).unwrap();
        p.record_page(Some("2".into())).unwrap();
        p.record_page(Some("1".into())).unwrap_err();

        let mut p = CursorPager::new().max_pages(2);
        p.record_page(Some("1".into())).unwrap();
        assert!(p.record_page(Some("2".into())).is_err());
    }

    #[test]
    fn scim_index_pager() {
        // 245 results, server caps pages at 100 even though we ask for 100
        let mut p = IndexPager::scim(100);
        let mut requests = vec![];
        let mut remaining = 245u64;
        while let Some((start, count)) = p.next_request() {
            requests.push((start, count));
            let n = remaining.min(count);
            remaining -= n;
            p.record_page(n, Some(245));
        }
        assert_eq!(requests, vec![(1, 100), (101, 100), (201, 100)]);
        assert_eq!(p.fetched(), 245);

        // server returns fewer than asked (its own max of 50)
        let mut p = IndexPager::scim(100);
        p.record_page(50, Some(120));
        assert_eq!(p.next_request(), Some((51, 100)));
        p.record_page(50, Some(120));
        assert_eq!(p.next_request(), Some((101, 100)));
        p.record_page(20, Some(120));
        assert_eq!(p.next_request(), None);

        // totalResults shrinks between pages: an empty page stops
        let mut p = IndexPager::scim(10);
        p.record_page(10, Some(30));
        p.record_page(0, Some(30));
        assert!(p.is_done());
        assert_eq!(p.total(), Some(30));

        // totalResults grows: keep going until reached
        let mut p = IndexPager::scim(10);
        p.record_page(10, Some(10));
        assert!(p.is_done(), "reached the total announced so far");
        let mut p = IndexPager::scim(10);
        p.record_page(10, Some(15));
        p.record_page(10, Some(25));
        assert_eq!(p.next_request(), Some((21, 10)));

        // empty collection
        let mut p = IndexPager::scim(10);
        p.record_page(0, Some(0));
        assert_eq!(p.next_request(), None);
    }

    #[test]
    fn offset_pager_without_total() {
        let mut p = IndexPager::offset(50);
        assert_eq!(p.next_request(), Some((0, 50)));
        p.record_page(50, None);
        assert_eq!(p.next_request(), Some((50, 50)));
        p.record_page(49, None);
        assert_eq!(p.next_request(), None, "short page ends it");
        let p = IndexPager::offset(0);
        assert_eq!(p.next_request(), Some((0, 1)), "page size at least 1");
    }
}
