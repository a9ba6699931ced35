//! Peak memory of loading a revocation journal: `VmHWM` of a process that loads a journal
//! of N live session revocations into a `MemoryDenylist` (the read-only load, which reads
//! the file the way a start does, without the lock and the rewrite).
//!
//! ```text
//! journal-load-rss write PATH N   # write a journal of N live revocations (JSON lines)
//! journal-load-rss load PATH      # load it; prints key=value lines
//! ```

use std::io::Write as _;
use std::time::Instant;

use jwt_session::{Clock as _, MemoryDenylist, SystemClock};

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A session id of the real shape (as `denylist-rss`).
fn sid(i: u64) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = u128::from(i)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)
        .to_be_bytes();
    let mut out = String::with_capacity(22);
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for k in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize]));
        }
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let now = SystemClock.now();
    match args.get(1).map(String::as_str) {
        Some("write") => {
            let path = &args[2];
            let n: u64 = args[3].parse().expect("N");
            let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
            for i in 0..n {
                writeln!(
                    out,
                    "{{\"t\":\"s\",\"sid\":\"{}\",\"exp\":{},\"at\":{}}}",
                    sid(i),
                    now + 3600,
                    now
                )
                .expect("write");
            }
            out.flush().expect("flush");
        }
        Some("load") => {
            let path = &args[2];
            let before = status_kib("VmRSS");
            let started = Instant::now();
            let (store, summary) = MemoryDenylist::builder()
                .capacity(10_000_000)
                .journal(path)
                .build_read_only(&SystemClock)
                .expect("load");
            let seconds = started.elapsed().as_secs_f64();
            let file = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            println!("sessions={}", summary.sessions);
            println!("held={}", jwt_session::RevocationStore::len(&*store));
            println!("file_mb={:.1}", file as f64 / 1e6);
            println!("load_seconds={seconds:.2}");
            println!("rss_before_kib={before}");
            println!("rss_after_kib={}", status_kib("VmRSS"));
            println!(
                "rss_peak_mb={:.1}",
                status_kib("VmHWM") as f64 * 1024.0 / 1e6
            );
        }
        _ => eprintln!("usage: journal-load-rss write PATH N | load PATH"),
    }
}
