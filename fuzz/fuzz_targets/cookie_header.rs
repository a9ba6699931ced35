//! Arbitrary bytes as one or more `Cookie` headers: finding the session cookie never
//! panics and only ever returns a substring of the headers.
#![no_main]

use http::{HeaderMap, HeaderValue, header::COOKIE};
use jwt_session::CookieSettings;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let settings = CookieSettings::default();
    let mut headers = HeaderMap::new();
    // A 0xFF byte splits the input into several Cookie headers (HTTP/2 style).
    for part in data.split(|b| *b == 0xFF) {
        if let Ok(value) = HeaderValue::from_bytes(part) {
            headers.append(COOKIE, value);
        }
    }
    if let Some(found) = settings.find(&headers) {
        assert!(!found.is_empty());
        assert!(headers.get_all(COOKIE).iter().any(|v| {
            v.to_str().is_ok_and(|s| s.contains(found))
        }));
    }
});
