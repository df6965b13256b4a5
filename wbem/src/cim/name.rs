//! CIM names are case-insensitive (DSP0004 5.1): compare and hash them folded, keep the original
//! spelling for output.

use std::cmp::Ordering;

/// Case-insensitive equality of two CIM names (class, property, qualifier, key or parameter names).
pub fn names_equal(a: &str, b: &str) -> bool {
    // The common cases first: equal up to ASCII case, or different ASCII names.
    if a.eq_ignore_ascii_case(b) {
        return true;
    }
    if a.is_ascii() && b.is_ascii() {
        return false;
    }
    a.chars().flat_map(char::to_lowercase).eq(b.chars().flat_map(char::to_lowercase))
}

/// The folded form of a name: the key to use in maps and sets of names.
pub fn fold_name(name: &str) -> String {
    if name.is_ascii() {
        name.to_ascii_lowercase()
    } else {
        name.chars().flat_map(char::to_lowercase).collect()
    }
}

/// Case-insensitive ordering of names (the canonical order of keybindings).
pub fn compare_names(a: &str, b: &str) -> Ordering {
    a.chars().flat_map(char::to_lowercase).cmp(b.chars().flat_map(char::to_lowercase))
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic() || ('\u{80}'..='\u{FFEF}').contains(&c)
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit()
}

/// Whether `s` is a legal CIM identifier (DSP0004 ANNEX A `IDENTIFIER`).
pub fn is_valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if is_name_start(c) => chars.all(is_name_char),
        _ => false,
    }
}

/// Whether `s` is a legal namespace name: identifiers separated by `/` (DSP0004 8.2.1).
pub fn is_valid_namespace(s: &str) -> bool {
    !s.is_empty() && s.split('/').all(is_valid_name)
}

/// Finds an item by case-insensitive name.
pub fn find_by_name<'a, T>(items: &'a [T], name: &str, get: impl Fn(&T) -> &str) -> Option<&'a T> {
    items.iter().find(|item| names_equal(get(item), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_ignores_case_including_non_ascii() {
        assert!(names_equal("CIM_ComputerSystem", "cim_computersystem"));
        assert!(names_equal("Größe", "GRÖßE"));
        assert!(!names_equal("Name", "Names"));
        assert_eq!(fold_name("Xen_VM"), "xen_vm");
        assert_eq!(compare_names("a", "B"), Ordering::Less);
        assert_eq!(compare_names("NAME", "name"), Ordering::Equal);
    }

    #[test]
    fn identifiers() {
        for ok in ["Xen_ComputerSystem", "_x", "a1", "Ünicode"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "1abc", "a-b", "a.b", "a b", "a:b"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        assert!(is_valid_namespace("root/virt"));
        assert!(!is_valid_namespace("root//virt"));
        assert!(!is_valid_namespace("/root"));
    }
}
