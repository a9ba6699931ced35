//! Reading a revocation record (the journal's JSON line, also the Redis wire format)
//! quickly: the exact compact shape `serde_json` writes — `{"t":"s","sid":"…","exp":…,
//! "at":…}` and its siblings — is read directly; anything else goes through `serde_json`.
//!
//! Why: a cold start of the Redis denylist reads every live revocation (a million of
//! them at a time), and `serde_json` into the internally tagged [`Record`] first buffers
//! each record's fields as generic content, which cost a third of the client's time
//! (`benches/redis_resync.rs`). The fast path accepts only inputs `serde_json` reads the
//! same way (tested against it), so the result is always serde's.

use super::journal::{FULL, Record};

/// Parse one record; the same result as `serde_json::from_slice::<Record>(bytes)`.
pub(crate) fn parse(bytes: &[u8]) -> serde_json::Result<Record> {
    match fast(bytes) {
        Some(record) => Ok(record),
        None => serde_json::from_slice(bytes),
    }
}

/// The compact shape, or `None` (not necessarily invalid: then serde decides).
fn fast(bytes: &[u8]) -> Option<Record> {
    let mut r = Reader(bytes);
    let record = if r.literal(br#"{"t":"s","sid":""#) {
        let sid = r.string()?;
        r.expect(br#","exp":"#)?;
        let exp = r.int()?;
        r.expect(br#","at":"#)?;
        let at = r.int()?;
        let floor = if r.literal(br#","floor":"#) {
            u32::try_from(r.int()?).ok()?
        } else {
            FULL
        };
        Record::Session {
            sid: sid.to_owned(),
            exp,
            at,
            floor,
        }
    } else if r.literal(br#"{"t":"u","sub":""#) {
        let sub = r.string()?;
        r.expect(br#","before":"#)?;
        let before = r.int()?;
        r.expect(br#","exp":"#)?;
        let exp = r.int()?;
        r.expect(br#","at":"#)?;
        let at = r.int()?;
        Record::Subject {
            sub: sub.to_owned(),
            before,
            exp,
            at,
        }
    } else if r.literal(br#"{"t":"w","at":"#) {
        Record::Watermark { at: r.int()? }
    } else {
        return None;
    };
    r.expect(b"}")?;
    r.0.is_empty().then_some(record)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// Consume `text` if the input starts with it.
    fn literal(&mut self, text: &[u8]) -> bool {
        match self.0.strip_prefix(text) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }

    fn expect(&mut self, text: &[u8]) -> Option<()> {
        self.literal(text).then_some(())
    }

    /// The rest of a string whose opening quote was consumed, and its closing quote:
    /// only when it holds no escape and no control character (serde reads those).
    fn string(&mut self) -> Option<&'a str> {
        let end = self
            .0
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        let (text, rest) = self.0.split_at(end);
        let rest = rest.strip_prefix(b"\"")?;
        let text = std::str::from_utf8(text).ok()?;
        self.0 = rest;
        Some(text)
    }

    /// A JSON integer of at most 18 digits (so it fits an `i64`), without leading zeros;
    /// `-0` is left to serde.
    fn int(&mut self) -> Option<i64> {
        let negative = self.0.first() == Some(&b'-');
        let digits = &self.0[usize::from(negative)..];
        let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
        if len == 0 || len > 18 || (len > 1 && digits[0] == b'0') {
            return None;
        }
        let mut n = 0_i64;
        for &d in &digits[..len] {
            n = n * 10 + i64::from(d - b'0');
        }
        if negative && n == 0 {
            return None;
        }
        self.0 = &digits[len..];
        Some(if negative { -n } else { n })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::{FULL, Record, fast, parse};

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z0-9_-]{0,24}",
            any::<String>(),
            Just("with \"quote\" and \\ and \u{1}".to_owned()),
        ]
    }

    fn record() -> impl Strategy<Value = Record> {
        prop_oneof![
            (text(), any::<i64>(), any::<i64>(), any::<u32>()).prop_map(|(sid, exp, at, f)| {
                Record::Session {
                    sid,
                    exp,
                    at,
                    floor: if f % 2 == 0 { FULL } else { f },
                }
            }),
            (text(), any::<i64>(), any::<i64>(), any::<i64>()).prop_map(
                |(sub, before, exp, at)| Record::Subject {
                    sub,
                    before,
                    exp,
                    at,
                }
            ),
            any::<i64>().prop_map(|at| Record::Watermark { at }),
        ]
    }

    /// Whatever `fast` reads, serde reads the same.
    fn agrees(bytes: &[u8]) -> Result<(), TestCaseError> {
        if let Some(record) = fast(bytes) {
            let serde = serde_json::from_slice::<Record>(bytes);
            prop_assert!(
                serde.is_ok(),
                "serde refuses {:?}",
                String::from_utf8_lossy(bytes)
            );
            prop_assert_eq!(serde.unwrap(), record);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn every_written_record_reads_back(record in record()) {
            let bytes = serde_json::to_vec(&record).unwrap();
            prop_assert_eq!(parse(&bytes).unwrap(), record);
            agrees(&bytes)?;
        }

        #[test]
        fn a_damaged_record_reads_as_serde_reads_it(
            record in record(),
            cut in any::<prop::sample::Index>(),
            at in any::<prop::sample::Index>(),
            byte in prop_oneof![Just(b' '), Just(b'0'), Just(b'-'), Just(b'"'), Just(b'.'),
                Just(b'e'), Just(b'}'), Just(b','), Just(b'\\'), any::<u8>()],
            how in 0..3_u8,
        ) {
            let mut bytes = serde_json::to_vec(&record).unwrap();
            match how {
                0 => bytes.truncate(cut.index(bytes.len() + 1)),
                1 => {
                    let i = at.index(bytes.len());
                    bytes[i] = byte;
                }
                _ => bytes.insert(at.index(bytes.len() + 1), byte),
            }
            agrees(&bytes)?;
            match (parse(&bytes), serde_json::from_slice::<Record>(&bytes)) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(_), Err(_)) => {}
                (a, b) => prop_assert!(false, "parse {a:?}, serde {b:?}"),
            }
        }

        #[test]
        fn arbitrary_bytes_read_as_serde_reads_them(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            agrees(&bytes)?;
        }
    }

    #[test]
    fn the_shapes_this_crate_writes_take_the_fast_path() {
        for line in [
            r#"{"t":"s","sid":"AAAAAAAAAAAAAAAAAAAAAA","exp":1767227405,"at":1767225600}"#,
            r#"{"t":"s","sid":"x","exp":-5,"at":0,"floor":3}"#,
            r#"{"t":"u","sub":"alice","before":10,"exp":20,"at":10}"#,
            r#"{"t":"w","at":7}"#,
        ] {
            let record = fast(line.as_bytes()).unwrap();
            assert_eq!(record, serde_json::from_str::<Record>(line).unwrap());
        }
        // Left to serde: whitespace, other orders, escapes, a negative zero, huge numbers.
        for line in [
            r#"{"t":"s", "sid":"x","exp":1,"at":1}"#,
            r#"{"sid":"x","t":"s","exp":1,"at":1}"#,
            r#"{"t":"s","sid":"\u0041","exp":1,"at":1}"#,
            r#"{"t":"s","sid":"x","exp":-0,"at":1}"#,
            r#"{"t":"s","sid":"x","exp":1234567890123456789,"at":1}"#,
        ] {
            assert!(fast(line.as_bytes()).is_none(), "{line}");
            let serde = serde_json::from_str::<Record>(line).ok();
            assert_eq!(parse(line.as_bytes()).ok(), serde, "{line}");
        }
        // (serde reads `-0` as a float, which an `i64` refuses.)
        assert!(parse(br#"{"t":"s","sid":"x","exp":-0,"at":1}"#).is_err());
        assert!(parse(br#"{"t":"s","sid":"x","exp":1,"at":1,"floor":-1}"#).is_err());
        assert!(parse(br#"{"t":"s","sid":"x","exp":01,"at":1}"#).is_err());
    }
}
