//! `CookieSettings::find` against its contract, on raw bytes (not UTF-8 included).
//!
//! Input: `[flags, position (u16, little-endian), body…]`. `body` is split on `\n` (a byte no header value can
//! hold) into lines and each line on `;` into pairs.
//!
//! 1. Generic: every line `HeaderValue::from_bytes` accepts is one `Cookie` header. Whatever
//!    `find` returns is non-empty, lies inside one header value's bytes, and is exactly
//!    what the small reference parser below returns (same bytes, same place).
//! 2. Hostile cookies: the pairs become hostile cookies (bytes no header value may hold
//!    removed; pairs that would themselves be a non-empty session cookie dropped; empty
//!    session cookies kept, since they must not hide a later one). A valid session cookie
//!    is placed at the fuzzer-chosen `position` among them, the pairs keep their lines
//!    (several `Cookie` headers, HTTP/2 style), and `find` must return exactly its token.
//!    With `flags` the cookie is quoted, padded with whitespace, on a header line of its
//!    own, and/or followed by a second session cookie that must never win.
#![no_main]

use std::sync::LazyLock;

use http::{HeaderMap, HeaderValue, header::COOKIE};
use jwt_session::CookieSettings;
use jwt_session::testing::TestKit;
use libfuzzer_sys::fuzz_target;

const NAME: &[u8] = b"__Host-session";

static SETTINGS: LazyLock<CookieSettings> = LazyLock::new(CookieSettings::default);
/// A real session token, minted once.
static TOKEN: LazyLock<String> = LazyLock::new(|| {
    let (token, _) = TestKit::new().mint("fuzz-user", ()).unwrap();
    token
});

/// RFC 9110 field-value octets, as `HeaderValue::from_bytes` accepts them.
fn header_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

fn ws(b: &u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s
        && ws(first)
    {
        s = rest;
    }
    while let [rest @ .., last] = s
        && ws(last)
    {
        s = rest;
    }
    s
}

/// The contract, written independently of `src/cookie.rs`: pairs split on `;` over every
/// Cookie header in order, name before the first `=` trimmed and compared exactly, value
/// trimmed and one pair of surrounding DQUOTEs removed; the first non-empty value wins.
fn reference<'a>(headers: &'a HeaderMap) -> Option<&'a [u8]> {
    reference_in(headers.get_all(COOKIE).iter().map(HeaderValue::as_bytes))
}

fn reference_in<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Option<&'a [u8]> {
    for bytes in values {
        let mut start = 0;
        while start <= bytes.len() {
            let end = bytes[start..]
                .iter()
                .position(|b| *b == b';')
                .map_or(bytes.len(), |i| start + i);
            let pair = &bytes[start..end];
            if let Some(eq) = pair.iter().position(|b| *b == b'=')
                && trim(&pair[..eq]) == NAME
            {
                let mut v = trim(&pair[eq + 1..]);
                if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' {
                    v = &v[1..v.len() - 1];
                }
                if !v.is_empty() {
                    return Some(v);
                }
            }
            start = end + 1;
        }
    }
    None
}

/// Would this pair be taken as a session cookie carrying a value?
fn is_session_cookie(pair: &[u8]) -> bool {
    reference_in([pair]).is_some()
}

fn same_place(a: &[u8], b: &[u8]) -> bool {
    std::ptr::eq(a.as_ptr(), b.as_ptr()) && a.len() == b.len()
}

fn generic(body: &[u8]) {
    let mut headers = HeaderMap::new();
    for line in body.split(|b| *b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, value);
        }
    }
    let found = SETTINGS.find(&headers);
    let expected = reference(&headers);
    match (found, expected) {
        (None, None) => {}
        (Some(found), Some(expected)) => {
            assert!(!found.is_empty());
            assert!(
                same_place(found, expected),
                "find returned {found:?}, the reference {expected:?}"
            );
            assert!(headers.get_all(COOKIE).iter().any(|v| {
                let v = v.as_bytes().as_ptr_range();
                let f = found.as_ptr_range();
                v.start <= f.start && f.end <= v.end
            }));
        }
        (found, expected) => panic!("find returned {found:?}, the reference {expected:?}"),
    }
}

fn hostile(flags: u8, position: u16, body: &[u8]) {
    let token = TOKEN.as_bytes();
    // (line, pair) for every hostile cookie, in order.
    let mut pairs: Vec<(usize, Vec<u8>)> = Vec::new();
    for (l, line) in body.split(|b| *b == b'\n').enumerate() {
        for pair in line.split(|b| *b == b';') {
            let pair: Vec<u8> = pair.iter().copied().filter(|b| header_byte(*b)).collect();
            if !is_session_cookie(&pair) {
                pairs.push((l, pair));
            }
        }
    }
    let own_line = flags & 1 != 0;
    let joiner: &[u8] = if flags & 2 != 0 { b"; " } else { b";" };
    let mut ours = Vec::new();
    let pad = flags & 8 != 0;
    if pad {
        ours.extend_from_slice(b" \t");
    }
    ours.extend_from_slice(NAME);
    if pad {
        ours.push(b' ');
    }
    ours.push(b'=');
    if pad {
        ours.extend_from_slice(b"\t ");
    }
    let quoted = flags & 4 != 0;
    if quoted {
        ours.push(b'"');
    }
    ours.extend_from_slice(token);
    if quoted {
        ours.push(b'"');
    }
    if pad {
        ours.push(b' ');
    }
    // A pair inserted before index `i` joins the line of the pair it precedes (the last
    // line at the end).
    let line_of =
        |pairs: &[(usize, Vec<u8>)], i: usize| pairs.get(i).or(pairs.last()).map_or(0, |(l, _)| *l);
    let at = usize::from(position) % (pairs.len() + 1);
    let ours_line = if own_line {
        usize::MAX
    } else {
        line_of(&pairs, at)
    };
    pairs.insert(at, (ours_line, ours));
    if flags & 16 != 0 {
        // A later session cookie (another valid-looking token): never tried instead.
        let later = at + 1 + usize::from(flags >> 5) % (pairs.len() - at);
        let line = line_of(&pairs, later);
        pairs.insert(later, (line, [NAME, b"=later.session.token"].concat()));
    }

    let mut headers = HeaderMap::new();
    let mut line: Vec<u8> = Vec::new();
    let mut current = None;
    for (l, pair) in &pairs {
        if current.is_some_and(|c| c != *l) {
            headers.append(COOKIE, HeaderValue::from_bytes(&line).unwrap());
            line.clear();
        } else if current.is_some() {
            line.extend_from_slice(joiner);
        }
        current = Some(*l);
        line.extend_from_slice(pair);
    }
    headers.append(COOKIE, HeaderValue::from_bytes(&line).unwrap());

    let found = SETTINGS.find(&headers);
    assert_eq!(
        found,
        Some(token),
        "the session cookie was not found among hostile cookies: {headers:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let (flags, position, body) = match data {
        [flags, lo, hi, body @ ..] => (*flags, u16::from_le_bytes([*lo, *hi]), body),
        _ => (0, 0, data),
    };
    generic(body);
    hostile(flags, position, body);
});
