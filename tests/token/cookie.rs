//! Cookie: finding the session cookie, and the attributes of issue and removal.

use std::collections::BTreeSet;

use http::HeaderMap;
use http::header::{COOKIE, HeaderValue};
use jwt_session::{CookieSettings, EncodeError, MAX_COOKIE_LEN, SameSite};

use crate::{T0, attributes, builder, ed_codec, login};

/// The attributes of a `Set-Cookie` value other than its `name=value` pair and lifetime.
fn without_value_and_lifetime(attrs: &BTreeSet<String>, name: &str) -> BTreeSet<String> {
    let pair = format!("{name}=");
    attrs
        .iter()
        .filter(|a| !a.starts_with(&pair))
        .filter(|a| !a.starts_with("Max-Age=") && !a.starts_with("Expires="))
        .cloned()
        .collect()
}

#[test]
fn cookie_find_across_several_cookie_headers() {
    let settings = CookieSettings::default();
    let mut headers = HeaderMap::new();
    headers.append(
        COOKIE,
        HeaderValue::from_static("theme=dark; __Host-session2=no; x__Host-session=no"),
    );
    headers.append(
        COOKIE,
        HeaderValue::from_static("a=1; __Host-session=; b=2"),
    );
    headers.append(
        COOKIE,
        HeaderValue::from_static("lang=en;__Host-session=hdr.pay.sig ; z=9"),
    );
    headers.append(
        COOKIE,
        HeaderValue::from_static("__Host-session=later.one.sig"),
    );
    assert_eq!(settings.find(&headers), Some(&b"hdr.pay.sig"[..]));
}

#[test]
fn cookie_find_among_other_cookies_in_one_header() {
    let settings = CookieSettings::default();
    let mut headers = HeaderMap::new();
    headers.insert(
        COOKIE,
        HeaderValue::from_static("a=1; session=wrong; __Host-session=\"quoted.tok.en\"; b=2"),
    );
    assert_eq!(settings.find(&headers), Some(&b"quoted.tok.en"[..]));

    let mut none = HeaderMap::new();
    assert_eq!(settings.find(&none), None);
    none.insert(
        COOKIE,
        HeaderValue::from_static("session=x; __host-session=y"),
    );
    assert_eq!(settings.find(&none), None);
}

#[test]
fn cookie_issue_has_secure_attributes() {
    let value = CookieSettings::default().issue("hdr.pay.sig", 600).unwrap();
    let text = value.to_str().unwrap();
    assert!(text.starts_with("__Host-session=hdr.pay.sig;"), "{text}");
    let attrs = attributes(&value);
    for expected in [
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=600",
    ] {
        assert!(attrs.contains(expected), "{expected} missing from {text}");
    }
    assert!(!text.contains("Domain"), "{text}");
}

#[test]
fn cookie_removal_mirrors_the_issue_attributes() {
    let config = builder()
        .cookie_name("sid")
        .cookie_path("/app")
        .cookie_domain("example.com")
        .cookie_same_site(SameSite::Strict)
        .build()
        .unwrap();
    for settings in [CookieSettings::default(), config.cookie().clone()] {
        let issued = attributes(&settings.issue("tok", 600).unwrap());
        let removed = attributes(&settings.removal());
        let text = settings.removal().to_str().unwrap().to_owned();
        assert!(
            text.starts_with(&format!("{}=;", settings.name())),
            "{text}"
        );
        assert!(removed.contains("Max-Age=0"), "{text}");
        assert!(
            removed
                .iter()
                .any(|a| a.starts_with("Expires=") && a.contains("1970")),
            "{text}"
        );
        assert_eq!(
            without_value_and_lifetime(&issued, settings.name()),
            without_value_and_lifetime(&removed, settings.name()),
            "{text}"
        );
    }
    let custom = attributes(&config.cookie().removal());
    for expected in [
        "Domain=example.com",
        "Path=/app",
        "SameSite=Strict",
        "Secure",
        "HttpOnly",
    ] {
        assert!(
            custom.contains(expected),
            "{expected} missing from {custom:?}"
        );
    }
}

#[test]
fn cookie_issue_refuses_a_value_over_the_browser_limit() {
    let err = CookieSettings::default()
        .issue(&"a".repeat(5000), 600)
        .unwrap_err();
    assert!(
        matches!(err, EncodeError::CookieTooLarge { len } if len > MAX_COOKIE_LEN),
        "{err}"
    );
    // A real token at the default cap fits.
    let token = ed_codec().encode(&login(T0)).unwrap();
    assert!(CookieSettings::default().issue(&token, 600).is_ok());
}
