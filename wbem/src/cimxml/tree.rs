//! Turns request bytes into a small element tree, refusing what a CIM-XML message never needs:
//! DTDs (and so custom entities), non-UTF-8 text, and documents deeper or larger than the limits.
//! The tree is built with an explicit stack, so hostile nesting cannot exhaust the call stack.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::error::{ProtocolError, ProtocolErrorKind};

/// Bounds on what a request may contain. The defaults are far above any real CIM-XML message;
/// the daemon sets them from its config (`xml_max_depth`, `xml_max_elements`,
/// `xml_max_attributes`, `max_string_bytes`, `max_array_items`), and each refusal names its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Maximum element nesting depth.
    pub max_depth: usize,
    /// Maximum attributes on one element.
    pub max_attributes: usize,
    /// Maximum number of elements in one document.
    pub max_elements: usize,
    /// Maximum nesting of embedded objects (instances inside string values).
    pub max_embedding: usize,
    /// Longest text of one element (text and CDATA, unescaped) or value of one attribute, in bytes.
    pub max_string_bytes: usize,
    /// Most items (children) of one `VALUE.ARRAY` or `VALUE.REFARRAY`.
    pub max_array_items: usize,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_depth: 100,
            max_attributes: 32,
            max_elements: 250_000,
            max_embedding: 8,
            max_string_bytes: 1 << 20,
            max_array_items: 100_000,
        }
    }
}

/// Elements whose children are the items of an array value.
fn is_array(name: &str) -> bool {
    matches!(name, "VALUE.ARRAY" | "VALUE.REFARRAY")
}

fn string_too_long(what: &str, limits: &ParseLimits) -> ProtocolError {
    not_valid(format!("{what} longer than {} bytes (max_string_bytes)", limits.max_string_bytes))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// Character data directly inside the element (text and CDATA, unescaped, concatenated).
    pub text: String,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

fn not_well_formed(input: &str, position: u64, why: impl std::fmt::Display) -> ProtocolError {
    let pos = usize::try_from(position).unwrap_or(usize::MAX).min(input.len());
    let before = input.get(..pos).unwrap_or(input);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    ProtocolError::new(ProtocolErrorKind::RequestNotWellFormed, format!("line {line}, column {column}: {why}"))
}

fn not_valid(why: impl Into<String>) -> ProtocolError {
    ProtocolError::new(ProtocolErrorKind::RequestNotValid, why)
}

/// Checks that bytes are UTF-8 before any parsing, naming the offset of the first bad byte.
pub(crate) fn utf8(body: &[u8]) -> Result<&str, ProtocolError> {
    std::str::from_utf8(body).map_err(|e| {
        ProtocolError::new(
            ProtocolErrorKind::RequestNotWellFormed,
            format!("the body is not valid UTF-8 (byte offset {})", e.valid_up_to()),
        )
    })
}

fn start_element(input: &str, reader: &Reader<&[u8]>, e: &BytesStart, limits: &ParseLimits) -> Result<Element, ProtocolError> {
    let pos = reader.buffer_position();
    let name = std::str::from_utf8(e.name().as_ref()).map_err(|err| not_well_formed(input, pos, err))?.to_string();
    let mut attrs = Vec::new();
    for attr in e.attributes() {
        let attr = attr.map_err(|err| not_well_formed(input, pos, err))?;
        if attrs.len() == limits.max_attributes {
            return Err(not_valid(format!("element {name} has more than {} attributes (xml_max_attributes)", limits.max_attributes)));
        }
        let key = std::str::from_utf8(attr.key.as_ref()).map_err(|err| not_well_formed(input, pos, err))?.to_string();
        let value = attr.unescape_value().map_err(|err| not_well_formed(input, pos, err))?.into_owned();
        if value.len() > limits.max_string_bytes {
            return Err(string_too_long(&format!("attribute {key} of element {name} is"), limits));
        }
        attrs.push((key, value));
    }
    Ok(Element { name, attrs, children: Vec::new(), text: String::new() })
}

fn check_declaration(input: &str, pos: u64, decl: &quick_xml::events::BytesDecl) -> Result<(), ProtocolError> {
    let version = decl.version().map_err(|e| not_well_formed(input, pos, e))?;
    if !matches!(version.as_ref(), b"1.0" | b"1.1") {
        return Err(not_well_formed(input, pos, "unsupported XML version"));
    }
    if let Some(encoding) = decl.encoding() {
        let encoding = encoding.map_err(|e| not_well_formed(input, pos, e))?;
        let name = String::from_utf8_lossy(&encoding).to_ascii_lowercase();
        if !matches!(name.as_str(), "utf-8" | "utf8" | "us-ascii") {
            return Err(not_well_formed(input, pos, format!("encoding '{name}' is not supported: CIM-XML is UTF-8")));
        }
    }
    Ok(())
}

/// Appends character data to the open element, within `max_string_bytes`.
fn push_text(open: &mut Element, text: &str, limits: &ParseLimits) -> Result<(), ProtocolError> {
    if open.text.len() + text.len() > limits.max_string_bytes {
        return Err(string_too_long(&format!("the text of element {} is", open.name), limits));
    }
    open.text.push_str(text);
    Ok(())
}

/// Parses a whole document into its root element.
pub(crate) fn parse(input: &str, limits: &ParseLimits) -> Result<Element, ProtocolError> {
    let mut reader = Reader::from_str(input);
    let config = reader.config_mut();
    config.trim_text(false);
    config.check_end_names = true;
    config.expand_empty_elements = false;

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    let mut seen_anything = false;

    loop {
        let pos = reader.buffer_position();
        let event = reader.read_event().map_err(|e| not_well_formed(input, reader.buffer_position(), e))?;
        let is_empty = matches!(event, Event::Empty(_));
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if root.is_some() {
                    return Err(not_well_formed(input, pos, "content after the root element"));
                }
                elements += 1;
                if elements > limits.max_elements {
                    return Err(not_valid(format!("more than {} elements (xml_max_elements)", limits.max_elements)));
                }
                if stack.len() >= limits.max_depth {
                    return Err(not_valid(format!("elements nested deeper than {} (xml_max_depth)", limits.max_depth)));
                }
                if let Some(array) = stack.last().filter(|p| is_array(&p.name)) {
                    if array.children.len() >= limits.max_array_items {
                        return Err(not_valid(format!("{} with more than {} items (max_array_items)", array.name, limits.max_array_items)));
                    }
                }
                let element = start_element(input, &reader, e, limits)?;
                if is_empty {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(element),
                        None => root = Some(element),
                    }
                } else {
                    stack.push(element);
                }
            }
            Event::End(_) => {
                // check_end_names guarantees the name matches the open element.
                let element = stack.pop().ok_or_else(|| not_well_formed(input, pos, "unexpected end tag"))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(t) => {
                let text = t.unescape().map_err(|e| not_well_formed(input, pos, e))?;
                match stack.last_mut() {
                    Some(open) => push_text(open, &text, limits)?,
                    None if text.trim().is_empty() => {}
                    None => return Err(not_well_formed(input, pos, "text outside the root element")),
                }
            }
            Event::CData(c) => {
                let text = c.decode().map_err(|e| not_well_formed(input, pos, e))?;
                match stack.last_mut() {
                    Some(open) => push_text(open, &text, limits)?,
                    None => return Err(not_well_formed(input, pos, "CDATA outside the root element")),
                }
            }
            Event::Decl(ref d) => {
                if seen_anything {
                    return Err(not_well_formed(input, pos, "the XML declaration must come first"));
                }
                check_declaration(input, pos, d)?;
            }
            Event::DocType(_) => {
                return Err(not_well_formed(input, pos, "document type declarations (DTDs) are not accepted"));
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
        seen_anything = true;
    }
    if let Some(open) = stack.last() {
        return Err(not_well_formed(input, input.len() as u64, format!("element {} is not closed", open.name)));
    }
    root.ok_or_else(|| not_well_formed(input, 0, "no root element"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(input: &str) -> ProtocolErrorKind {
        parse(input, &ParseLimits::default()).unwrap_err().kind
    }

    #[test]
    fn builds_a_tree() {
        let doc = "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n<!-- c --><A x=\"1&amp;2\"><B/>t&lt;<![CDATA[<raw>]]><C></C></A>\n";
        let root = parse(doc, &ParseLimits::default()).unwrap();
        assert_eq!(root.name, "A");
        assert_eq!(root.attr("x"), Some("1&2"));
        assert_eq!(root.text, "t<<raw>");
        assert_eq!(root.children.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["B", "C"]);
    }

    #[test]
    fn refuses_what_cim_xml_never_needs() {
        use ProtocolErrorKind::*;
        let table = [
            ("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>", RequestNotWellFormed),
            ("<a>&x;</a>", RequestNotWellFormed),
            ("<a b=\"&x;\"/>", RequestNotWellFormed),
            ("<a>", RequestNotWellFormed),
            ("<a></b>", RequestNotWellFormed),
            ("<a/><b/>", RequestNotWellFormed),
            ("text<a/>", RequestNotWellFormed),
            ("", RequestNotWellFormed),
            ("<a x=\"1\" x=\"2\"/>", RequestNotWellFormed),
            ("<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><a/>", RequestNotWellFormed),
            ("<a/><?xml version=\"1.0\"?>", RequestNotWellFormed),
            ("<a>&#0;</a>", RequestNotWellFormed),
        ];
        for (doc, expected) in table {
            assert_eq!(kind(doc), expected, "{doc}");
        }
        let deep = "<a>".repeat(101) + &"</a>".repeat(101);
        assert_eq!(kind(&deep), RequestNotValid);
        let ok = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(&ok, &ParseLimits::default()).is_ok());
        let many_attrs = format!("<a {}/>", (0..33).map(|i| format!("a{i}=\"\"")).collect::<Vec<_>>().join(" "));
        assert_eq!(kind(&many_attrs), RequestNotValid);
        let limits = ParseLimits { max_elements: 3, ..ParseLimits::default() };
        assert_eq!(parse("<a><b/><c/><d/></a>", &limits).unwrap_err().kind, RequestNotValid);
    }

    /// Each limit: a document exactly at it parses, one a step over is refused as not valid,
    /// with the config key and its value in the description.
    #[test]
    fn each_limit_is_exact() {
        let small =
            ParseLimits { max_depth: 5, max_attributes: 3, max_elements: 6, max_embedding: 8, max_string_bytes: 10, max_array_items: 4 };
        let nest = |n: usize| "<a>".repeat(n) + &"</a>".repeat(n);
        let attrs = |n: usize| format!("<a {}/>", (0..n).map(|i| format!("a{i}=\"\"")).collect::<Vec<_>>().join(" "));
        let array = |name: &str, n: usize| format!("<{name}>{}</{name}>", "<VALUE>1</VALUE>".repeat(n));
        #[rustfmt::skip]
        let table: Vec<(&str, String, String, &str)> = vec![
            ("xml_max_depth", nest(5), nest(6), "deeper than 5 (xml_max_depth)"),
            ("xml_max_elements", format!("<a>{}</a>", "<b/>".repeat(5)), format!("<a>{}</a>", "<b/>".repeat(6)), "more than 6 elements (xml_max_elements)"),
            ("xml_max_attributes", attrs(3), attrs(4), "more than 3 attributes (xml_max_attributes)"),
            ("text", format!("<a>{}</a>", "x".repeat(10)), format!("<a>{}</a>", "x".repeat(11)), "longer than 10 bytes (max_string_bytes)"),
            ("text in pieces", "<a>12345<![CDATA[678]]>&amp;9</a>".into(), "<a>12345<![CDATA[678]]>&amp;90</a>".into(), "longer than 10 bytes (max_string_bytes)"),
            ("attribute value", format!("<a x=\"{}\"/>", "&lt;".repeat(10)), format!("<a x=\"{}\"/>", "&lt;".repeat(11)), "attribute x of element a is longer than 10 bytes (max_string_bytes)"),
            ("VALUE.ARRAY", array("VALUE.ARRAY", 4), array("VALUE.ARRAY", 5), "VALUE.ARRAY with more than 4 items (max_array_items)"),
            ("VALUE.REFARRAY", "<VALUE.REFARRAY><VALUE.NULL/><VALUE.NULL/><VALUE.NULL/><VALUE.NULL/></VALUE.REFARRAY>".into(), "<VALUE.REFARRAY><VALUE.NULL/><VALUE.NULL/><VALUE.NULL/><VALUE.NULL/><VALUE.NULL/></VALUE.REFARRAY>".into(), "VALUE.REFARRAY with more than 4 items (max_array_items)"),
        ];
        for (what, at, over, mention) in table {
            assert!(parse(&at, &small).is_ok(), "{what}: at the limit: {:?}", parse(&at, &small).unwrap_err());
            let e = parse(&over, &small).unwrap_err();
            assert_eq!(e.kind, ProtocolErrorKind::RequestNotValid, "{what}: {e}");
            assert!(e.description.contains(mention), "{what}: {e}");
            assert!(parse(&over, &ParseLimits::default()).is_ok(), "{what}: only the small limit refuses it");
        }
        // Other elements with many children are not arrays.
        assert!(parse(&format!("<a>{}</a>", "<b/>".repeat(5)), &ParseLimits { max_elements: 100, ..small }).is_ok());
    }

    #[test]
    fn utf8_check_names_the_offset() {
        let e = utf8(b"<a>\xff</a>").unwrap_err();
        assert_eq!(e.kind, ProtocolErrorKind::RequestNotWellFormed);
        assert!(e.description.contains("offset 3"), "{e}");
    }
}
