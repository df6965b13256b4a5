//! XML escaping for the writer. Characters XML 1.0 cannot carry at all (most C0 controls) are
//! replaced by U+FFFD so that a stray byte in a VM's name cannot make a whole response unparsable.

fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// Bytes that send a string down the slow path: markup characters, controls, and 0xEF, the first
/// byte of U+FFFE / U+FFFF (the slow path tells those from other characters starting with it).
const fn special(attribute: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = attribute || (b != b'\t' as usize && b != b'\n' as usize);
        b += 1;
    }
    t[b'&' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'\r' as usize] = true;
    t[b'"' as usize] = attribute;
    t[0xEF] = true;
    t
}

const TEXT_SPECIAL: [bool; 256] = special(false);
const ATTR_SPECIAL: [bool; 256] = special(true);

fn needs_work(s: &str, attribute: bool) -> bool {
    let table = if attribute { &ATTR_SPECIAL } else { &TEXT_SPECIAL };
    s.bytes().any(|b| table[b as usize])
}

fn push_escaped(out: &mut Vec<u8>, s: &str, attribute: bool) {
    if !needs_work(s, attribute) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    let mut buf = [0u8; 4];
    for c in s.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '>' => out.extend_from_slice(b"&gt;"),
            '"' if attribute => out.extend_from_slice(b"&quot;"),
            // Character references survive the end-of-line and attribute normalization of parsers.
            '\r' => out.extend_from_slice(b"&#13;"),
            '\n' if attribute => out.extend_from_slice(b"&#10;"),
            '\t' if attribute => out.extend_from_slice(b"&#9;"),
            c if is_xml_char(c) => out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
            _ => out.extend_from_slice("\u{FFFD}".as_bytes()),
        }
    }
}

/// Character data.
pub(crate) fn text(out: &mut Vec<u8>, s: &str) {
    push_escaped(out, s, false)
}

/// A double-quoted attribute value.
pub(crate) fn attr(out: &mut Vec<u8>, s: &str) {
    push_escaped(out, s, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> String {
        let mut v = Vec::new();
        text(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    fn a(s: &str) -> String {
        let mut v = Vec::new();
        attr(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escapes() {
        assert_eq!(t("plain"), "plain");
        assert_eq!(t("a<b>&\"c\"\n\t"), "a&lt;b&gt;&amp;\"c\"\n\t");
        assert_eq!(t("x\ry"), "x&#13;y");
        assert_eq!(t("bell\u{7}"), "bell\u{FFFD}");
        assert_eq!(t("\u{FFFF}é😀"), "\u{FFFD}é😀");
        assert_eq!(a("say \"hi\"\n\t<&>"), "say &quot;hi&quot;&#10;&#9;&lt;&amp;&gt;");
    }
}
