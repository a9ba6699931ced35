//! What a key share writes to Redis and announces: names, and one JSON entry per public
//! key. Everything read back is checked as untrusted input.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::keys::Key;
use crate::redis_conn::{names_prefix, scan_pattern};

/// Largest entry read from Redis, in bytes (a public JWK and its envelope take ~250).
pub(super) const MAX_ENTRY_BYTES: usize = 4096;

/// Key, pattern and channel names of one namespace.
#[derive(Debug)]
pub(super) struct Names {
    /// `<ns>key:`, followed by the `kid`.
    pub(super) prefix: String,
    /// `SCAN` pattern of the prefix.
    pub(super) pattern: String,
    /// The channel of announcements: `<ns>keys`.
    pub(super) channel: String,
}

impl Names {
    /// In a cluster every name starts with the namespace as a hash tag (`{jwt-session:}…`,
    /// unless it has a tag of its own), as the denylist's: one slot, so a key's `SET` and
    /// its `SPUBLISH` stay one transaction on one node, and one node holds every key.
    pub(super) fn new(namespace: &str, cluster: bool) -> Self {
        let namespace = names_prefix(namespace, cluster);
        let prefix = format!("{namespace}key:");
        let pattern = scan_pattern(&prefix);
        Self {
            prefix,
            pattern,
            channel: format!("{namespace}keys"),
        }
    }

    /// The Redis key of `kid`.
    pub(super) fn key(&self, kid: &str) -> String {
        format!("{}{kid}", self.prefix)
    }

    /// The `kid` a Redis key names, if it is one of ours.
    pub(super) fn kid_of<'a>(&self, key: &'a [u8]) -> Option<&'a str> {
        std::str::from_utf8(key.strip_prefix(self.prefix.as_bytes())?).ok()
    }
}

/// The JSON of an entry or announcement. Members it does not know are ignored, so a later
/// version may add some without older instances refusing its keys.
#[derive(Serialize, Deserialize)]
struct Wire {
    kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jwk: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<i64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    retired: bool,
    by: String,
}

/// A public key another instance published.
#[derive(Debug, Clone)]
pub(super) struct Published {
    pub(super) key: Key,
    /// Until when it is trusted (UNIX seconds): by then every token it signed has expired,
    /// unless its instance publishes it again.
    pub(super) exp: i64,
    /// The publishing instance.
    pub(super) by: String,
}

/// What one entry or announcement says.
#[derive(Debug)]
pub(super) enum Message {
    /// A public key, published or refreshed.
    Put(Box<Published>),
    /// Its instance retired the key: every token it signed has expired (or it leaked).
    Retired { kid: String },
}

/// An entry that is not taken, and why (never the material: the text is logged).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Refused {
    /// The `kid` as read, made printable (at most 64 characters).
    pub(super) kid: String,
    pub(super) problem: String,
}

/// The JSON of a published key: `{"kid","jwk","exp","by"}`.
pub(super) fn put(kid: &str, jwk: &Value, exp: i64, by: &str) -> String {
    let wire = Wire {
        kid: kid.to_owned(),
        jwk: Some(jwk.clone()),
        exp: Some(exp),
        retired: false,
        by: by.to_owned(),
    };
    serde_json::to_string(&wire).unwrap_or_default()
}

/// The JSON of a retirement: `{"kid","retired":true,"by"}`.
pub(super) fn retired(kid: &str, by: &str) -> String {
    let wire = Wire {
        kid: kid.to_owned(),
        jwk: None,
        exp: None,
        retired: true,
        by: by.to_owned(),
    };
    serde_json::to_string(&wire).unwrap_or_default()
}

/// A `kid` read from Redis, safe to print: at most 64 characters, anything outside the
/// `kid` alphabet replaced by `?`.
pub(super) fn printable(kid: &str) -> String {
    kid.chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// Read an entry (from its key, `named` = the `kid` in the key's name) or an announcement
/// (`named` = `None`). A key is taken only as [`Key::from_jwk`] takes one from a JWK Set:
/// Ed25519 or P-256, `use` absent or `sig`, a matching `alg`, no private member.
pub(super) fn decode(bytes: &[u8], named: Option<&str>) -> Result<Message, Refused> {
    let refused = |kid: &str, problem: &str| Refused {
        kid: printable(kid),
        problem: problem.to_owned(),
    };
    let fallback = named.unwrap_or("?");
    if bytes.len() > MAX_ENTRY_BYTES {
        return Err(refused(fallback, "an entry over 4096 bytes"));
    }
    // The parser's message is not kept: it may quote the entry.
    let Ok(wire) = serde_json::from_slice::<Wire>(bytes) else {
        return Err(refused(
            fallback,
            "not a key entry (a JSON object of kid, jwk, exp, by)",
        ));
    };
    if named.is_some_and(|kid| kid != wire.kid) {
        return Err(refused(
            fallback,
            "an entry whose kid differs from its key's name",
        ));
    }
    if wire.retired {
        return Ok(Message::Retired { kid: wire.kid });
    }
    let (Some(jwk), Some(exp)) = (&wire.jwk, wire.exp) else {
        return Err(refused(&wire.kid, "an entry without jwk or exp"));
    };
    if jwk.get("kid").and_then(Value::as_str) != Some(wire.kid.as_str()) {
        return Err(refused(
            &wire.kid,
            "a JWK whose kid differs from the entry's",
        ));
    }
    let key = Key::from_jwk(jwk).map_err(|e| refused(&wire.kid, &e.to_string()))?;
    Ok(Message::Put(Box::new(Published {
        key,
        exp,
        by: wire.by,
    })))
}

/// Whether two keys are the same public key (the key type, curve and points of their
/// JWKs; `kid`, `use` and `alg` aside).
pub(super) fn same_key(a: &Key, b: &Key) -> bool {
    let material = |key: &Key| {
        key.public_jwk().map(|jwk| {
            ["kty", "crv", "x", "y"]
                .map(|name| jwk.get(name).and_then(Value::as_str).map(str::to_owned))
        })
    };
    a.algorithm() == b.algorithm() && material(a).is_some() && material(a) == material(b)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::keys::{Algorithm, generate};

    fn jwk_of(key: &Key) -> Value {
        key.public_jwk().unwrap()
    }

    #[test]
    fn an_entry_round_trips_and_keeps_no_private_part() {
        let generated = generate(Algorithm::EdDSA, "k-").unwrap();
        let kid = generated.key.kid().to_owned();
        let text = put(&kid, &jwk_of(&generated.key), 1_800_000_000, "i-1");
        assert!(!text.contains("\"d\""), "{text}");
        let Ok(Message::Put(p)) = decode(text.as_bytes(), Some(&kid)) else {
            panic!("not taken: {text}");
        };
        assert_eq!(p.key.kid(), kid);
        assert!(!p.key.can_sign());
        assert_eq!((p.exp, p.by.as_str()), (1_800_000_000, "i-1"));
        assert!(same_key(&p.key, &generated.key));
        let other = generate(Algorithm::EdDSA, "k-").unwrap().key;
        assert!(!same_key(&p.key, &other));
        let Ok(Message::Retired { kid: gone }) = decode(retired(&kid, "i-1").as_bytes(), None)
        else {
            panic!("a retirement is read");
        };
        assert_eq!(gone, kid);
    }

    #[test]
    fn bad_entries_are_refused_with_a_reason_that_quotes_nothing() {
        let key = generate(Algorithm::EdDSA, "k-").unwrap().key;
        let kid = key.kid().to_owned();
        let jwk = jwk_of(&key);
        let mut private = jwk.clone();
        private["d"] = Value::String("c2VjcmV0LXNlZWQtbmV2ZXItbG9nZ2Vk".into());
        let mut wrong_kid = jwk.clone();
        wrong_kid["kid"] = Value::String("other".into());
        let mut enc = jwk.clone();
        enc["use"] = Value::String("enc".into());
        let hmac = serde_json::json!({"kty":"oct","k":"c2VjcmV0","kid":kid});
        let cases: Vec<(Vec<u8>, Option<&str>, &str)> = vec![
            (b"{not json".to_vec(), Some(&kid), "not a key entry"),
            (
                put(&kid, &private, 1, "x").into_bytes(),
                None,
                "no private member d",
            ),
            (
                put(&kid, &wrong_kid, 1, "x").into_bytes(),
                None,
                "kid differs",
            ),
            (put(&kid, &enc, 1, "x").into_bytes(), None, "use: sig"),
            (put(&kid, &hmac, 1, "x").into_bytes(), None, "OKP"),
            (
                put(&kid, &jwk, 1, "x").into_bytes(),
                Some("another"),
                "key's name",
            ),
            (
                format!(r#"{{"kid":"{kid}","by":"x"}}"#).into_bytes(),
                None,
                "without jwk",
            ),
            (
                format!(r#"{{"kid":"{kid}","by":"x","jwk":{jwk},"exp":"1"}}"#).into_bytes(),
                None,
                "not a key entry",
            ),
            (vec![b' '; MAX_ENTRY_BYTES + 1], None, "over 4096"),
        ];
        for (bytes, named, why) in cases {
            let Err(refused) = decode(&bytes, named) else {
                panic!("taken: {}", String::from_utf8_lossy(&bytes));
            };
            assert!(
                refused.problem.contains(why),
                "{refused:?} should say {why:?}"
            );
            assert!(!refused.problem.contains("c2Vj"), "{refused:?}");
        }
    }

    #[test]
    fn names_follow_the_namespace_and_a_cluster_hash_tag() {
        let plain = Names::new("jwt-session:", false);
        assert_eq!(plain.key("k1"), "jwt-session:key:k1");
        assert_eq!(plain.channel, "jwt-session:keys");
        assert_eq!(plain.pattern, "jwt-session:key:*");
        assert_eq!(plain.kid_of(b"jwt-session:key:k1"), Some("k1"));
        assert_eq!(plain.kid_of(b"jwt-session:revoked:sid:x"), None);
        let cluster = Names::new("jwt-session:", true);
        assert_eq!(cluster.key("k1"), "{jwt-session:}key:k1");
        assert_eq!(cluster.channel, "{jwt-session:}keys");
        assert_eq!(cluster.pattern, "{jwt-session:}key:*");
        assert_eq!(Names::new("a{b}:", true).channel, "a{b}:keys");
        assert_eq!(Names::new("a*[", false).pattern, "a\\*\\[key:*");
        assert_eq!(printable("k\n1\u{1b}[31m"), "k?1??31m");
    }
}
