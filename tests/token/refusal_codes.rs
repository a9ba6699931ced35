//! Refusal: unique snake_case codes, and statuses 401, 403 and 503.

use std::collections::BTreeSet;

use jwt_session::Refusal;
use serde_json::Value;

#[test]
fn refusal_codes_are_unique_snake_case() {
    let mut seen = BTreeSet::new();
    for refusal in Refusal::ALL {
        let code = refusal.code();
        assert!(seen.insert(code), "duplicate code {code}");
        assert!(
            !code.is_empty()
                && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                && !code.starts_with('_')
                && !code.ends_with('_')
                && !code.contains("__"),
            "{code} is not snake_case"
        );
        assert_eq!(refusal.to_string(), code);
        assert!(!refusal.message().is_empty());
        let body: Value = serde_json::from_str(&refusal.json_body()).unwrap();
        assert_eq!(body["error"]["code"], code);
        assert_eq!(body["error"]["message"], refusal.message());
    }
    assert_eq!(seen.len(), Refusal::ALL.len());
    assert_eq!(Refusal::ExpiredIdle.code(), "session_expired_idle");
}

#[test]
fn refusal_statuses_are_401_403_503() {
    for refusal in Refusal::ALL {
        let expected = match refusal {
            Refusal::CsrfMissing
            | Refusal::CsrfMismatch
            | Refusal::OriginRejected
            | Refusal::ReauthRequired => 403,
            Refusal::RevocationUnavailable => 503,
            _ => 401,
        };
        assert_eq!(refusal.status().as_u16(), expected, "{refusal}");
    }
    assert!(Refusal::ExpiredIdle.ends_session());
    assert!(Refusal::BadSignature.ends_session());
    assert!(!Refusal::CsrfMismatch.ends_session());
    assert!(!Refusal::RevocationUnavailable.ends_session());
    assert!(!Refusal::Missing.ends_session());
    // Step-up is not the end of the session; data from an incompatible version is.
    assert!(!Refusal::ReauthRequired.ends_session());
    assert!(Refusal::DataInvalid.ends_session());
}
