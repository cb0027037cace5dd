//! A small namespace-aware XML reader for SOAP requests. It builds an element tree, ignores prefixes
//! (elements are matched by namespace URI and local name), rejects DOCTYPE declarations and resolves
//! only the five predefined entities and character references: nothing is ever expanded.

use std::borrow::Cow;

use quick_xml::NsReader;
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;

pub const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Deepest element nesting accepted.
const MAX_DEPTH: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error("the request body is not UTF-8")]
    NotUtf8,
    #[error("DOCTYPE declarations are not allowed")]
    DocType,
    #[error("undefined entity &{0};")]
    Entity(String),
    #[error("elements are nested too deeply")]
    TooDeep,
    #[error("unknown namespace prefix {0:?}")]
    UnknownPrefix(String),
    #[error("the document has no root element")]
    NoRoot,
    #[error("malformed XML: {0}")]
    Syntax(String),
}

impl From<quick_xml::Error> for XmlError {
    fn from(e: quick_xml::Error) -> Self {
        Self::Syntax(e.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub ns: Option<String>,
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub ns: Option<String>,
    pub name: String,
    pub attributes: Vec<Attribute>,
    pub children: Vec<Element>,
    pub text: String,
}

impl Element {
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.ns.as_deref() == Some(ns) && self.name == name
    }

    /// The first child element with this namespace and local name.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// `xsi:nil="true"`.
    pub fn is_nil(&self) -> bool {
        self.attributes
            .iter()
            .any(|a| a.ns.as_deref() == Some(XSI_NS) && a.name == "nil" && a.value.trim() == "true")
    }

    /// The text content, or None when the element is `xsi:nil`.
    pub fn value(&self) -> Option<&str> {
        (!self.is_nil()).then_some(self.text.as_str())
    }
}

/// Parses a whole document into its root element.
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(bytes).map_err(|_| XmlError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    loop {
        let (resolved, event) = reader.read_resolved_event()?;
        let ns = namespace(resolved)?;
        match event {
            Event::DocType(_) => return Err(XmlError::DocType),
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                stack.push(element(&reader, ns, &start)?);
            }
            Event::Empty(start) => {
                let el = element(&reader, ns, &start)?;
                attach(&mut stack, &mut root, el)?;
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| XmlError::Syntax("unexpected end tag".into()))?;
                attach(&mut stack, &mut root, el)?;
            }
            Event::Text(t) => push_text(&mut stack, &t.xml10_content())?,
            Event::CData(c) => push_text(&mut stack, &c.into_inner())?,
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref()? {
                    Some(c) => c.to_string(),
                    None => predefined(&r.xml10_content())?.to_owned(),
                };
                push_text(&mut stack, &resolved)?;
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Syntax("unclosed element".into()));
    }
    root.ok_or(XmlError::NoRoot)
}

fn namespace(resolved: ResolveResult<'_>) -> Result<Option<String>, XmlError> {
    match resolved {
        // The reader hands over the `xmlns` attribute's raw text; unescape it like any attribute value.
        ResolveResult::Bound(ns) => quick_xml::escape::unescape(ns.as_ref())
            .map(|ns| Some(ns.into_owned()))
            .map_err(|e| XmlError::Syntax(format!("namespace name: {e}"))),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(prefix) => Err(XmlError::UnknownPrefix(prefix)),
    }
}

fn element(
    reader: &NsReader<&[u8]>,
    ns: Option<String>,
    start: &BytesStart<'_>,
) -> Result<Element, XmlError> {
    let mut attributes = Vec::new();
    for attr in start.attributes() {
        let attr = attr.map_err(|e| XmlError::Syntax(e.to_string()))?;
        if attr.key.as_namespace_binding().is_some() {
            continue;
        }
        let (resolved, local) = reader.resolver().resolve_attribute(attr.key);
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| XmlError::Syntax(e.to_string()))?;
        attributes.push(Attribute {
            ns: namespace(resolved)?,
            name: local.as_ref().to_owned(),
            value: value.into_owned(),
        });
    }
    Ok(Element {
        ns,
        name: start.local_name().as_ref().to_owned(),
        attributes,
        children: Vec::new(),
        text: String::new(),
    })
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, el: Element) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None if root.is_none() => *root = Some(el),
        None => return Err(XmlError::Syntax("more than one root element".into())),
    }
    Ok(())
}

fn push_text(stack: &mut [Element], text: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(el) => el.text.push_str(text),
        None if text.trim().is_empty() => {}
        None => return Err(XmlError::Syntax("text outside the root element".into())),
    }
    Ok(())
}

fn predefined(name: &str) -> Result<&'static str, XmlError> {
    Ok(match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        other => return Err(XmlError::Entity(other.to_owned())),
    })
}

/// Escapes text for XML (and HTML) content and attribute values.
pub fn escape(text: &str) -> Cow<'_, str> {
    quick_xml::escape::escape(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn matches_by_namespace_not_prefix() {
        let doc = br#"<?xml version="1.0"?><a:Root xmlns:a="urn:x" xmlns:b="urn:x"><b:Child>v &amp; &#65;</b:Child><Plain/></a:Root>"#;
        let root = parse(doc).unwrap();
        assert!(root.is("urn:x", "Root"));
        assert_eq!(root.child("urn:x", "Child").unwrap().text, "v & A");
        assert_eq!(root.children[1].ns, None);
    }

    /// The same raw-namespace reading the soap_response fuzz target found in the clients' reader: a
    /// request whose namespace uses a character reference did not match the operation's namespace.
    #[test]
    fn namespaces_are_matched_unescaped() {
        let root = parse(br#"<a:Root xmlns:a="urn:x&#47;y&amp;z"><a:C/></a:Root>"#).unwrap();
        assert!(root.is("urn:x/y&z", "Root"));
        assert!(root.child("urn:x/y&z", "C").is_some());
        assert!(parse(br#"<r xmlns="urn:&x;"/>"#).is_err());
    }

    #[test]
    fn rejects_doctype_and_custom_entities() {
        let bomb = br#"<!DOCTYPE r [<!ENTITY x "boom">]><r>&x;</r>"#;
        assert!(matches!(parse(bomb), Err(XmlError::DocType)));
        assert!(matches!(parse(b"<r>&x;</r>"), Err(XmlError::Entity(_))));
    }

    #[test]
    fn reads_xsi_nil_and_rejects_garbage() {
        let root = parse(
            br#"<r xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><v i:nil="true"/></r>"#,
        )
        .unwrap();
        assert!(root.children[0].is_nil());
        assert_eq!(root.children[0].value(), None);
        assert!(parse(b"not xml").is_err());
        assert!(parse(b"<a><b></a>").is_err());
        assert!(parse(b"<p:a/>").is_err());
        assert!(parse(b"").is_err());
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("<a & 'b'>"), "&lt;a &amp; &apos;b&apos;&gt;");
    }
}
