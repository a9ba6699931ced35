//! Config: defaults, and every inconsistent setting refused at build.

use std::time::Duration;

use jwt_session::DEFAULT_MAX_TOKEN_LEN;
use jwt_session::{
    ConfigError, CookieSettings, DEFAULT_ABSOLUTE, DEFAULT_IDLE, DEFAULT_ISSUER, DEFAULT_LEEWAY,
    DEFAULT_REISSUE_AFTER, ManualClock, SameSite, SessionConfig, SessionConfigBuilder,
};

use crate::{DEV_KID, T0, attributes, builder, dev_ring, header_of, login_with};

fn build_err(change: impl FnOnce(SessionConfigBuilder) -> SessionConfigBuilder) -> ConfigError {
    change(builder()).build().unwrap_err()
}

fn is_cookie_error(err: &ConfigError, needle: &str) -> bool {
    matches!(err, ConfigError::Cookie(msg) if msg.contains(needle))
}

#[test]
fn config_defaults() {
    assert_eq!(DEFAULT_IDLE, Duration::from_secs(30 * 60));
    assert_eq!(DEFAULT_ABSOLUTE, Duration::from_secs(8 * 3600));
    assert_eq!(DEFAULT_REISSUE_AFTER, Duration::from_secs(60));
    assert_eq!(DEFAULT_LEEWAY, Duration::from_secs(5));
    let config = SessionConfig::builder(dev_ring())
        .clock(ManualClock::new(T0))
        .build()
        .unwrap();
    let p = config.policy();
    assert_eq!(p.idle_timeout(), 30 * 60);
    assert_eq!(p.absolute_timeout(), 8 * 3600);
    assert_eq!(p.reissue_after(), 60);
    assert_eq!(p.leeway(), 5);
    assert_eq!(config.codec().issuer(), DEFAULT_ISSUER);
    assert_eq!(config.codec().audience(), DEFAULT_ISSUER);
    assert_eq!(config.codec().max_len(), DEFAULT_MAX_TOKEN_LEN);
    assert_eq!(config.cookie().name(), "__Host-session");
    assert_eq!(config.cookie(), &CookieSettings::default());
    assert_eq!(config.clock().now(), T0);
    // The configured codec signs with the keyring's signer and verifies its own tokens.
    let token = config
        .codec()
        .encode(&login_with(T0, (), config.policy()))
        .unwrap();
    assert_eq!(header_of(&token)["kid"], DEV_KID);
    assert!(config.codec().decode::<()>(token.as_bytes()).is_ok());
}

#[test]
fn config_idle_over_absolute_is_refused() {
    let err = build_err(|b| {
        b.idle_timeout(Duration::from_secs(7200))
            .absolute_timeout(Duration::from_secs(3600))
    });
    assert!(
        matches!(
            err,
            ConfigError::IdleOverAbsolute {
                idle: 7200,
                absolute: 3600
            }
        ),
        "{err}"
    );
}

#[test]
fn config_zero_durations_are_refused() {
    let err = build_err(|b| b.idle_timeout(Duration::ZERO));
    assert!(matches!(err, ConfigError::Zero("idle timeout")), "{err}");
    let err = build_err(|b| b.absolute_timeout(Duration::ZERO));
    assert!(
        matches!(err, ConfigError::Zero("absolute timeout")),
        "{err}"
    );
}

#[test]
fn config_sub_second_durations_are_refused() {
    let err = build_err(|b| b.idle_timeout(Duration::from_millis(1500)));
    assert!(
        matches!(err, ConfigError::SubSecond("idle timeout")),
        "{err}"
    );
    let err = build_err(|b| b.absolute_timeout(Duration::from_millis(3_600_001)));
    assert!(
        matches!(err, ConfigError::SubSecond("absolute timeout")),
        "{err}"
    );
    let err = build_err(|b| b.reissue_after(Duration::from_millis(500)));
    assert!(
        matches!(err, ConfigError::SubSecond("reissue-after")),
        "{err}"
    );
    let err = build_err(|b| b.leeway(Duration::from_nanos(1)));
    assert!(matches!(err, ConfigError::SubSecond("leeway")), "{err}");
}

#[test]
fn config_reissue_after_not_under_idle_is_refused() {
    for reissue in [600, 601] {
        let err = build_err(|b| {
            b.idle_timeout(Duration::from_secs(600))
                .reissue_after(Duration::from_secs(reissue))
        });
        assert!(
            matches!(err, ConfigError::ReissueAfterIdle { idle: 600, reissue: r } if r == reissue),
            "{err}"
        );
    }
    assert!(
        builder()
            .idle_timeout(Duration::from_secs(600))
            .reissue_after(Duration::from_secs(599))
            .build()
            .is_ok()
    );
}

#[test]
fn config_leeway_not_under_idle_is_refused() {
    let err = build_err(|b| {
        b.idle_timeout(Duration::from_secs(60))
            .reissue_after(Duration::from_secs(10))
            .leeway(Duration::from_secs(60))
    });
    assert!(
        matches!(
            err,
            ConfigError::LeewayTooLarge {
                leeway: 60,
                idle: 60
            }
        ),
        "{err}"
    );
}

#[test]
fn config_host_cookie_without_secure_is_refused() {
    let err = build_err(|b| b.cookie_secure(false));
    assert!(is_cookie_error(&err, "__Host-"), "{err}");
}

#[test]
fn config_host_cookie_with_a_path_is_refused() {
    let err = build_err(|b| b.cookie_path("/app"));
    assert!(is_cookie_error(&err, "__Host-"), "{err}");
}

#[test]
fn config_host_cookie_with_a_domain_is_refused() {
    let err = build_err(|b| b.cookie_domain("example.com"));
    assert!(is_cookie_error(&err, "__Host-"), "{err}");
}

#[test]
fn config_secure_prefix_cookie_without_secure_is_refused() {
    let err = build_err(|b| b.cookie_name("__Secure-session").cookie_secure(false));
    assert!(is_cookie_error(&err, "__Secure-"), "{err}");
}

#[test]
fn config_same_site_none_without_secure_is_refused() {
    let err = build_err(|b| {
        b.cookie_name("session")
            .cookie_secure(false)
            .cookie_same_site(SameSite::None)
    });
    assert!(is_cookie_error(&err, "SameSite=None"), "{err}");
    assert!(builder().cookie_same_site(SameSite::None).build().is_ok());
}

#[test]
fn config_empty_issuer_is_refused() {
    for issuer in ["", "   "] {
        let err = build_err(|b| b.issuer(issuer));
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    field: "issuer",
                    ..
                }
            ),
            "{err}"
        );
    }
    let err = build_err(|b| b.audience(""));
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                field: "audience",
                ..
            }
        ),
        "{err}"
    );
    let err = build_err(|b| b.token_type(""));
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                field: "token type",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn config_invalid_cookie_name_is_refused() {
    for name in ["", "bad name", "a;b", "a=b", "sess\u{e9}", "a,b", "(x)"] {
        let err = build_err(|b| b.cookie_name(name));
        assert!(is_cookie_error(&err, "cookie name"), "{name:?}: {err}");
    }
}

#[test]
fn config_invalid_cookie_path_or_domain_is_refused() {
    let err = build_err(|b| b.cookie_name("sess").cookie_path("app"));
    assert!(is_cookie_error(&err, "path"), "{err}");
    let err = build_err(|b| b.cookie_name("sess").cookie_path("/a;b"));
    assert!(is_cookie_error(&err, "path"), "{err}");
    let err = build_err(|b| b.cookie_name("sess").cookie_domain("a b"));
    assert!(is_cookie_error(&err, "domain"), "{err}");
}

#[test]
fn config_tiny_token_cap_is_refused() {
    let err = build_err(|b| b.max_token_len(255));
    assert!(
        matches!(
            err,
            ConfigError::Invalid {
                field: "max token length",
                ..
            }
        ),
        "{err}"
    );
    assert!(builder().max_token_len(256).build().is_ok());
}

#[test]
fn config_development_cookies_build() {
    let config = builder().development_cookies().build().unwrap();
    assert_eq!(config.cookie().name(), "session");
    let set_cookie = config.cookie().issue("tok", 60).unwrap();
    let attrs = attributes(&set_cookie);
    assert!(!attrs.contains("Secure"), "{attrs:?}");
    assert!(attrs.contains("HttpOnly"));
    let removal = attributes(&config.cookie().removal());
    assert!(!removal.contains("Secure"), "{removal:?}");
}
