//! HTTP Basic authentication (RFC 7617): the credentials WBEM clients send with every request.

use base64::Engine;
use hyper::header::AUTHORIZATION;
use hyper::HeaderMap;

/// The user name and password of an `Authorization: Basic ...` header, if there is a
/// well-formed one. The password must never reach a log; callers log the user name only.
///
/// The scheme name is case-insensitive; the password may contain `:` (only the first one
/// separates); credentials that are not UTF-8 after decoding are refused.
pub fn parse_basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(token.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn parses_and_refuses() {
        let ok = |u: &str, p: &str| Some((u.to_owned(), p.to_owned()));
        assert_eq!(parse_basic_auth(&with(&format!("Basic {}", b64(b"root:secret")))), ok("root", "secret"));
        assert_eq!(parse_basic_auth(&with(&format!("basic  {}", b64(b"a:b:c")))), ok("a", "b:c"));
        assert_eq!(parse_basic_auth(&with(&format!("BASIC {}", b64(b"u:")))), ok("u", ""));
        assert_eq!(parse_basic_auth(&with(&format!("Basic {}", b64("jörg:pässwörd".as_bytes())))), ok("jörg", "pässwörd"));
        assert_eq!(parse_basic_auth(&HeaderMap::new()), None);
        assert_eq!(parse_basic_auth(&with(&format!("Bearer {}", b64(b"u:p")))), None);
        assert_eq!(parse_basic_auth(&with(&format!("Basic {}", b64(b"no-colon")))), None);
        assert_eq!(parse_basic_auth(&with("Basic !!!not-base64")), None);
        assert_eq!(parse_basic_auth(&with(&format!("Basic {}", b64(b"\xff\xfe:x")))), None);
        assert_eq!(parse_basic_auth(&with("Basic")), None);
    }
}
