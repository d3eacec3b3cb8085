//! A small element tree over quick-xml for IAM Query API responses.

use iga_adapter::{Error, ErrorKind, Result};
use quick_xml::Reader;
use quick_xml::events::Event;

use crate::KIND;

/// One element: name (without namespace prefix), text, children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) text: String,
    pub(crate) children: Vec<Node>,
}

impl Node {
    /// First child named `name`.
    pub(crate) fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Follow a path of child names.
    pub(crate) fn at(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |n, p| n.child(p))
    }

    /// Text of the child at `path`.
    pub(crate) fn text_at(&self, path: &[&str]) -> Option<String> {
        self.at(path).map(|n| n.text.trim().to_string())
    }

    /// The `member` children of the element at `path` (IAM list shape).
    pub(crate) fn members(&self, path: &[&str]) -> Vec<&Node> {
        self.at(path)
            .map(|n| n.children.iter().filter(|c| c.name == "member").collect())
            .unwrap_or_default()
    }
}

/// Parse a document; returns its root element.
pub(crate) fn parse(xml: &str) -> Result<Node> {
    let bad = |why: String| {
        Error::new(
            ErrorKind::Unexpected,
            format!("response is not valid XML: {why}"),
        )
        .with_connector(KIND)
    };
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Node> = vec![Node::default()];
    loop {
        match reader.read_event().map_err(|e| bad(e.to_string()))? {
            Event::Start(s) => {
                let name = AsRef::<str>::as_ref(&s.local_name()).to_string();
                stack.push(Node {
                    name,
                    ..Node::default()
                });
            }
            Event::Empty(s) => {
                let name = AsRef::<str>::as_ref(&s.local_name()).to_string();
                if let Some(top) = stack.last_mut() {
                    top.children.push(Node {
                        name,
                        ..Node::default()
                    });
                }
            }
            Event::Text(t) => {
                let t = t.xml10_content();
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t);
                }
            }
            Event::GeneralRef(r) => {
                let name = AsRef::<str>::as_ref(&r).to_string();
                let s = quick_xml::escape::unescape(&format!("&{name};"))
                    .map_err(|e| bad(e.to_string()))?
                    .into_owned();
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&s);
                }
            }
            Event::End(_) => {
                let done = stack
                    .pop()
                    .ok_or_else(|| bad("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => return Err(bad("unbalanced end tag".into())),
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        return Err(bad("unclosed element".into()));
    }
    stack
        .pop()
        .and_then(|r| r.children.into_iter().next())
        .ok_or_else(|| bad("empty document".into()))
}

/// Escape text for an XML element body.
pub fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iam_list_and_error_shapes() {
        let x = r#"<ListUsersResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <ListUsersResult><Users><member><UserName>ada&amp;co</UserName><Tags><member><Key>k</Key></member></Tags></member>
  <member><UserName>bob</UserName></member></Users><IsTruncated>false</IsTruncated></ListUsersResult>
  <ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></ListUsersResponse>"#;
        let n = parse(x).unwrap();
        assert_eq!(n.name, "ListUsersResponse");
        let users = n.members(&["ListUsersResult", "Users"]);
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].text_at(&["UserName"]).as_deref(), Some("ada&co"));
        assert_eq!(
            n.text_at(&["ListUsersResult", "IsTruncated"]).as_deref(),
            Some("false")
        );
        assert!(parse("<a><b></a>").is_err());
        assert_eq!(escape("a<b&"), "a&lt;b&amp;");
    }
}
