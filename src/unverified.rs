//! Reading a token **without verifying it** — quarantined here so that no call site can
//! reach for it by accident.
//!
//! Nothing in this module checks a signature, a key, an algorithm, an issuer, an audience
//! or a time. It exists for diagnostics: the operator's `jwt-session inspect`, or a log of
//! the `kid` a refused token named. Decisions are made with [`Codec::decode`](crate::Codec::decode) (or the
//! layer), never with what is read here.

use crate::error::Refusal;

/// Read a token's header and claims **without verifying anything**: for diagnostics only
/// (the operator's `jwt-session inspect`, a debugging log of a refused token's `kid`).
///
/// The token must be at most 64 KiB and have exactly three `.`-separated parts whose
/// first two are base64url (no padding) JSON objects; the signature part is not looked
/// at. Duplicate member names are not refused here (the last one wins), unlike in
/// [`Codec::decode`](crate::Codec::decode).
///
/// # Security
///
/// **Nothing is verified**: not the signature, not the key, not the algorithm, not the
/// issuer, audience or times. Anyone can forge a token that peeks as anything. Never
/// base a decision on what this returns; use [`Codec::decode`](crate::Codec::decode) and
/// [`Claims::check`](crate::Claims::check) for that. The claims include the session's
/// CSRF secret (`csrf`): do not log them as they are.
///
/// # Errors
///
/// [`Refusal::TooLarge`] over 64 KiB, [`Refusal::Malformed`] for anything that is not
/// shaped like a JWT with JSON-object header and claims. Never panics, whatever the bytes.
pub fn peek(token: &[u8]) -> Result<(serde_json::Value, serde_json::Value), Refusal> {
    const PEEK_MAX_LEN: usize = 64 * 1024;
    let [head, payload, _signature] = crate::codec::split(token, PEEK_MAX_LEN)?;
    let object = |part: &[u8]| -> Result<serde_json::Value, Refusal> {
        let json = crate::codec::json_object_part(part)?;
        match serde_json::from_slice(&json) {
            Ok(value @ serde_json::Value::Object(_)) => Ok(value),
            _ => Err(Refusal::Malformed),
        }
    };
    Ok((object(head)?, object(payload)?))
}
