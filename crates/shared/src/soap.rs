//! SOAP 1.1 plumbing shared by the SuperID exchange and the tenant's NetServer clients: escaping of
//! interpolated values, and a small reader that turns a response into a tree matched by local names
//! (so `s:Body`, `soap:Body` and `Body` are all the body), refuses DTDs and unknown entities, and
//! notices a document cut short.

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// The SOAP 1.1 envelope namespace.
pub const ENVELOPE_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";

/// Content type of SOAP 1.1 requests.
pub const CONTENT_TYPE: &str = "text/xml;charset=UTF-8";

/// Deeper documents are refused; SOAP responses here are a handful of levels deep.
const MAX_DEPTH: usize = 64;

/// Escapes a value for element content or an attribute (`& < > " '`).
pub fn escape(value: &str) -> Cow<'_, str> {
    quick_xml::escape::escape(value)
}

/// Why a response could not be read as XML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error("the response is not UTF-8")]
    NotUtf8,
    #[error("the response declares a DTD, which is refused")]
    Doctype,
    #[error("the response uses the undefined entity &{0};")]
    Entity(String),
    #[error("the response is not well-formed XML: {0}")]
    Malformed(String),
    #[error("the response ends before its elements are closed (truncated)")]
    Truncated,
    #[error("the response nests elements deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("the response has no root element")]
    Empty,
    #[error("the response is not a SOAP envelope with a Body")]
    NotSoap,
}

/// One element: its namespace, local name, text and children. `nil` is `xsi:nil="true"`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub namespace: Option<String>,
    pub name: String,
    pub nil: bool,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The first child with this local name, whatever its prefix.
    pub fn child(&self, local: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == local)
    }

    /// The trimmed text of the first child with this local name; `None` if missing, nil or empty.
    pub fn child_text(&self, local: &str) -> Option<&str> {
        self.child(local).and_then(Element::value)
    }

    /// The trimmed text of this element; `None` if nil or empty.
    pub fn value(&self) -> Option<&str> {
        let text = self.text.trim();
        (!self.nil && !text.is_empty()).then_some(text)
    }

    /// A mutable child by local name.
    pub fn child_mut(&mut self, local: &str) -> Option<&mut Element> {
        self.children.iter_mut().find(|c| c.name == local)
    }

    /// Writes the element back as XML: a namespace is declared where it differs from the parent's,
    /// nil elements carry `xsi:nil`, text is escaped.
    pub fn write_xml(&self, out: &mut String, parent_namespace: Option<&str>) {
        out.push('<');
        out.push_str(&self.name);
        let namespace = self.namespace.as_deref();
        if namespace != parent_namespace {
            out.push_str(" xmlns=\"");
            out.push_str(&escape(namespace.unwrap_or_default()));
            out.push('"');
        }
        if self.nil {
            out.push_str(
                " xsi:nil=\"true\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"/>",
            );
            return;
        }
        out.push('>');
        if self.children.is_empty() {
            out.push_str(&escape(&self.text));
        } else {
            for child in &self.children {
                child.write_xml(out, namespace);
            }
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }

    /// The first element with this local name, this one or below, depth first.
    pub fn find(&self, local: &str) -> Option<&Element> {
        if self.name == local {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(local))
    }
}

/// Parses a whole document into its root element.
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let text = std::str::from_utf8(bytes).map_err(|_| XmlError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = NsReader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let (resolved, event) = reader
            .read_resolved_event()
            .map_err(|e| XmlError::Malformed(e.to_string()))?;
        let namespace = match resolved {
            // The reader hands over the `xmlns` attribute's raw text: unescape it like any attribute, so
            // that a namespace holding `&amp;` is matched and written back as itself, not re-escaped.
            ResolveResult::Bound(ns) => Some(
                quick_xml::escape::unescape(ns.as_ref())
                    .map_err(|e| XmlError::Malformed(format!("namespace name: {e}")))?
                    .into_owned(),
            ),
            _ => None,
        };
        match event {
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(XmlError::TooDeep);
                }
                stack.push(open(&start, namespace)?);
            }
            Event::Empty(start) => {
                let element = open(&start, namespace)?;
                close(element, &mut stack, &mut root)?;
            }
            Event::End(_) => {
                let element = stack.pop().ok_or(XmlError::Truncated)?;
                close(element, &mut stack, &mut root)?;
            }
            Event::Text(text) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&text.xml10_content());
                }
            }
            Event::CData(data) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&data.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference
                    .resolve_char_ref()
                    .map_err(|e| XmlError::Malformed(e.to_string()))?
                {
                    Some(ch) => ch.to_string(),
                    None => quick_xml::escape::resolve_predefined_entity(&reference)
                        .ok_or_else(|| XmlError::Entity(reference.chars().take(32).collect()))?
                        .to_owned(),
                };
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(XmlError::Truncated);
    }
    root.ok_or(XmlError::Empty)
}

fn open(start: &BytesStart<'_>, namespace: Option<String>) -> Result<Element, XmlError> {
    let mut nil = false;
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| XmlError::Malformed(e.to_string()))?;
        if attribute.key.local_name().as_ref() == "nil" {
            let value = attribute
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| XmlError::Malformed(e.to_string()))?;
            nil = matches!(value.trim(), "true" | "1");
        }
    }
    let name = start.local_name().as_ref().to_owned();
    if !is_xml_name(&name) {
        return Err(XmlError::Malformed(format!(
            "{:?} is not an XML element name",
            name.chars().take(32).collect::<String>()
        )));
    }
    Ok(Element {
        namespace,
        name,
        nil,
        ..Element::default()
    })
}

/// Whether `name` is an XML (NCName) name, conservatively: a letter or `_`, then letters, digits, `_ - .`.
/// The reader itself takes anything up to whitespace or `>` as a name, and `write_xml` writes names back
/// unescaped, so a name like `a><b` must be refused here.
fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_alphabetic() || first == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '\u{b7}'))
}

fn close(
    element: Element,
    stack: &mut [Element],
    root: &mut Option<Element>,
) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None if root.is_none() => *root = Some(element),
        None => return Err(XmlError::Malformed("more than one root element".into())),
    }
    Ok(())
}

/// A SOAP envelope's Header (if any) and Body.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub header: Option<Element>,
    pub body: Element,
}

impl Envelope {
    /// Reads a SOAP envelope; a 1.2 envelope is accepted too, since only local names are matched.
    pub fn parse(bytes: &[u8]) -> Result<Self, XmlError> {
        let mut root = parse(bytes)?;
        if root.name != "Envelope" {
            return Err(XmlError::NotSoap);
        }
        let body_at = root
            .children
            .iter()
            .position(|c| c.name == "Body")
            .ok_or(XmlError::NotSoap)?;
        let body = root.children.swap_remove(body_at);
        let header = root.children.into_iter().find(|c| c.name == "Header");
        Ok(Self { header, body })
    }

    /// The first element in the Body (the operation's response, or a Fault).
    pub fn payload(&self) -> Option<&Element> {
        self.body.children.first()
    }

    /// The Body's Fault, if the call failed.
    pub fn fault(&self) -> Option<Fault> {
        let fault = self.body.child("Fault")?;
        // SOAP 1.1: faultcode/faultstring; SOAP 1.2: Code/Value and Reason/Text.
        let code = fault
            .child_text("faultcode")
            .or_else(|| fault.child("Code").and_then(|c| c.child_text("Value")))
            .unwrap_or_default()
            .to_owned();
        let message = fault
            .child_text("faultstring")
            .or_else(|| fault.child("Reason").and_then(|r| r.child_text("Text")))
            .unwrap_or_default()
            .to_owned();
        Some(Fault { code, message })
    }
}

/// A SOAP Fault: its code and message (the message is SuperOffice's text, logged and shown as is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn prefixed_and_unprefixed_documents_read_the_same() {
        let prefixed = br#"<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
  <s:Body><a:R xmlns:a="urn:x"><a:V>1 &amp; 2</a:V></a:R></s:Body></s:Envelope>"#;
        let plain = br#"<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body>
  <R xmlns="urn:x"><V>1 &#38; 2</V></R></Body></Envelope>"#;
        for doc in [&prefixed[..], &plain[..]] {
            let envelope = Envelope::parse(doc).unwrap();
            let payload = envelope.payload().unwrap();
            assert_eq!(payload.name, "R");
            assert_eq!(payload.namespace.as_deref(), Some("urn:x"));
            assert_eq!(payload.child_text("V"), Some("1 & 2"));
            assert!(envelope.fault().is_none());
        }
    }

    #[test]
    fn nil_and_empty_elements_have_no_value() {
        let doc = br#"<r xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
            <a i:nil="true"/><b></b><c> x </c><d i:nil="true">ignored</d></r>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.child_text("a"), None);
        assert!(root.child("a").unwrap().nil);
        assert_eq!(root.child_text("b"), None);
        assert_eq!(root.child_text("c"), Some("x"));
        assert_eq!(root.child_text("d"), None);
        assert_eq!(root.child_text("missing"), None);
    }

    #[test]
    fn doctype_and_custom_entities_are_refused() {
        let doc = br#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "boom">]><r>&x;</r>"#;
        assert_eq!(parse(doc), Err(XmlError::Doctype));
        assert!(matches!(parse(b"<r>&x;</r>"), Err(XmlError::Entity(e)) if e == "x"));
    }

    /// Found by the soap_response fuzz target: the namespace was kept escaped, so every write-back
    /// escaped it once more (`&amp;` became `&amp;amp;`) and the element no longer matched its namespace.
    #[test]
    fn escaped_namespaces_are_read_unescaped_and_written_back_unchanged() {
        let doc = br#"<r xmlns="urn:a&amp;b&#60;"><v>1</v></r>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.namespace.as_deref(), Some("urn:a&b<"));
        let mut written = String::new();
        root.write_xml(&mut written, None);
        assert_eq!(written, r#"<r xmlns="urn:a&amp;b&lt;"><v>1</v></r>"#);
        assert_eq!(parse(written.as_bytes()).unwrap(), root);
        assert!(matches!(
            parse(br#"<r xmlns="urn:&x;"/>"#),
            Err(XmlError::Malformed(_))
        ));
    }

    /// Found by the soap_response fuzz target: `<a!x="b/>c"/>` gave the element the name `a!x="b/>c"`, which
    /// `write_xml` wrote back verbatim, injecting markup into the request sent back to NetServer.
    #[test]
    fn element_names_that_are_not_xml_names_are_refused() {
        for doc in [
            &br#"<r><a!x="b/>c"/></r>"#[..],
            br#"<r><p:a!x="b/>c">1</p:a!x="b/>c"></r>"#,
            br#"<r><p:x"y/></r>"#,
            br#"<r><1a/></r>"#,
            br#"<r><a&amp;b/></r>"#,
        ] {
            assert!(
                matches!(parse(doc), Err(XmlError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(doc)
            );
        }
        let root = parse("<r><_a.b-c1/><Navn_Å/></r>".as_bytes()).unwrap();
        assert_eq!(root.children[1].name, "Navn_Å");
    }

    #[test]
    fn truncated_and_broken_documents_are_errors() {
        assert_eq!(
            parse(b"<s:Envelope xmlns:s=\"urn:s\"><s:Body><x>"),
            Err(XmlError::Truncated)
        );
        assert!(matches!(
            parse(b"<a><b></a></b>"),
            Err(XmlError::Malformed(_))
        ));
        assert_eq!(parse(b"   "), Err(XmlError::Empty));
        assert_eq!(parse(&[0xff, 0xfe]), Err(XmlError::NotUtf8));
        assert_eq!(Envelope::parse(b"<html/>").err(), Some(XmlError::NotSoap));
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert_eq!(parse(deep.as_bytes()), Err(XmlError::TooDeep));
    }

    #[test]
    fn faults_of_both_soap_versions_are_read() {
        let v11 = br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
            <s:Fault><faultcode>s:Client</faultcode><faultstring xml:lang="en">Bad ticket</faultstring></s:Fault>
            </s:Body></s:Envelope>"#;
        let fault = Envelope::parse(v11).unwrap().fault().unwrap();
        assert_eq!(fault.code, "s:Client");
        assert_eq!(fault.message, "Bad ticket");
        let v12 =
            br#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><e:Fault>
            <e:Code><e:Value>e:Sender</e:Value></e:Code><e:Reason><e:Text>No</e:Text></e:Reason>
            </e:Fault></e:Body></e:Envelope>"#;
        let fault = Envelope::parse(v12).unwrap().fault().unwrap();
        assert_eq!(
            (fault.code.as_str(), fault.message.as_str()),
            ("e:Sender", "No")
        );
    }

    #[test]
    fn elements_write_back_as_they_were_read() {
        let doc =
            br#"<a:Entity xmlns:a="urn:a" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
            <a:Id>0</a:Id><a:Name>A &amp; B</a:Name><a:Gone i:nil="true"/>
            <b:List xmlns:b="urn:b"><b:Item>1</b:Item></b:List><Plain>p</Plain></a:Entity>"#;
        let entity = parse(doc).unwrap();
        let mut xml = String::new();
        entity.write_xml(&mut xml, None);
        assert_eq!(
            xml,
            "<Entity xmlns=\"urn:a\"><Id>0</Id><Name>A &amp; B</Name><Gone xsi:nil=\"true\" \
             xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"/><List xmlns=\"urn:b\"><Item>1</Item>\
             </List><Plain xmlns=\"\">p</Plain></Entity>"
        );
        let again = parse(xml.as_bytes()).unwrap();
        assert_eq!(again.child_text("Name"), Some("A & B"));
        assert!(again.child("Gone").unwrap().nil);
        assert_eq!(
            again.child("List").unwrap().namespace.as_deref(),
            Some("urn:b")
        );
        assert_eq!(again.child("Plain").unwrap().namespace, None);
    }

    #[test]
    fn escape_covers_markup_characters() {
        assert_eq!(escape(r#"a&b<c>d"e'f"#), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
    }
}
