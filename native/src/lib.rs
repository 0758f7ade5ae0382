//! logtap's per-line kernel: the line-by-line work of the access-log parser's JSON path, out of the Python loop.
//!
//! It cuts a line the way the parser's fast path does (the quotes, the head's tokens, the status and size),
//! looks each field up in a cache of JSON pieces, and joins a document (and its bulk action line) from them.
//! Most pieces are made by the parser's own Python functions, once per distinct value (escapes, request lines,
//! host names, GeoIP answers). Three rules live here as their one implementation, which Python calls too:
//! Apache's time (`apache_epoch`, `iso_utc`: the kernel writes the `@timestamp` of an Apache time itself), what
//! an IP address is (`ip_address`, glibc's `inet_pton`) and its GeoIP block (`geo_block`): the source piece of
//! an address that is all an IP address is joined here from GeoIP's answer, asked once per block where the
//! answer holds for the whole block. A line the cut does not take, or whose piece says "not here" (`None`),
//! goes back to the Python parser, which gives its document or its reason.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};
use rustc_hash::FxHashMap;

/// A cache of the JSON pieces of one field: value -> piece (`None`: the line takes the Python path).
struct Pieces {
    make: Py<PyAny>,
    known: FxHashMap<Vec<u8>, Option<u32>>,
    pieces: Vec<Vec<u8>>,
}

impl Pieces {
    fn new(make: Py<PyAny>) -> Self {
        Pieces {
            make,
            known: FxHashMap::default(),
            pieces: Vec::new(),
        }
    }

    /// The piece of `value` (made by `make` on the first sight of it), or None.
    fn get(&mut self, py: Python<'_>, value: &[u8], limit: usize) -> PyResult<Option<&[u8]>> {
        let found = match self.known.get(value) {
            Some(&found) => found,
            None => self.learn(py, value, limit)?,
        };
        Ok(found.map(|k| self.pieces[k as usize].as_slice()))
    }

    /// The pieces of `value` as `make` gives them: a tuple of `n` bytes (or one bytes), or None.
    fn learn(&mut self, py: Python<'_>, value: &[u8], limit: usize) -> PyResult<Option<u32>> {
        let made = self.make.call1(py, (PyBytes::new(py, value),))?;
        self.make_room(limit);
        let found = if made.is_none(py) {
            None
        } else {
            let first = self.pieces.len() as u32;
            let made = made.bind(py);
            match made.cast::<PyTuple>() {
                Ok(parts) => {
                    for part in parts.iter() {
                        self.pieces
                            .push(part.cast::<PyBytes>()?.as_bytes().to_vec());
                    }
                }
                Err(_) => self
                    .pieces
                    .push(made.cast::<PyBytes>()?.as_bytes().to_vec()),
            }
            Some(first)
        };
        self.known.insert(value.to_vec(), found);
        Ok(found)
    }

    /// A full cache starts again (call it before adding a value).
    fn make_room(&mut self, limit: usize) {
        if self.known.len() >= limit {
            self.known.clear();
            self.pieces.clear();
        }
    }

    /// Remember `piece` as the piece of `value` (made here rather than by `make`).
    fn keep(&mut self, value: &[u8], piece: Vec<u8>, limit: usize) -> u32 {
        self.make_room(limit);
        let k = self.pieces.len() as u32;
        self.pieces.push(piece);
        self.known.insert(value.to_vec(), Some(k));
        k
    }

    /// The `n` pieces of `value` from a `make` that gives a tuple of `n`, or None.
    fn get_n(&mut self, py: Python<'_>, value: &[u8], limit: usize) -> PyResult<Option<usize>> {
        let found = match self.known.get(value) {
            Some(&found) => found,
            None => self.learn(py, value, limit)?,
        };
        Ok(found.map(|k| k as usize))
    }
}

/// What the parser's fast path reads of a line (see `AccessLogParser`'s `_Engine.parse_json`).
struct Cut<'a> {
    vhost: &'a [u8],
    host: &'a [u8],
    user: &'a [u8],
    ts: &'a [u8],
    req: &'a [u8],
    status: &'a [u8],
    size: &'a [u8],
    referrer: &'a [u8],
    agent: &'a [u8],
}

/// Python's `bytes.split()` whitespace: space, \t, \n, \r, \x0b, \x0c.
fn is_py_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn ends_with_backslash(s: &[u8]) -> bool {
    s.last() == Some(&b'\\')
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The cut of a line of three quoted fields (`head "req" mid "referrer" sep "agent" rest`), or None.
///
/// Inside quotes a backslash escapes the next byte, as Apache writes `\"` and `\\`. A line without an escaped
/// quote and whose fields do not end in a backslash is cut as the parser's split does (`fields()`'s fast path);
/// any other is cut only where the parser's strict regex reads the same fields: every token, status and size
/// without whitespace, single spaces between them, no `]` in the timestamp and no escaped newline.
fn cut(line: &[u8], three: bool, four: bool) -> Option<Cut<'_>> {
    let mut quotes = [0usize; 6];
    let mut n = 0;
    let (mut escaped_quote, mut escaped_newline) = (false, false);
    let mut k = 0;
    while let Some(at) = memchr::memchr(b'"', &line[k..]) {
        // an opening quote at k + at; its field runs to the next quote no backslash escapes
        if n == 6 {
            return None;
        }
        quotes[n] = k + at;
        n += 1;
        k += at + 1;
        loop {
            let Some(at) = memchr::memchr2(b'"', b'\\', &line[k..]) else {
                return None; // unclosed
            };
            if line[k + at] == b'"' {
                if n == 6 {
                    return None;
                }
                quotes[n] = k + at;
                n += 1;
                k += at + 1;
                break;
            }
            match line.get(k + at + 1) {
                Some(b'"') => escaped_quote = true,
                Some(b'\n') => escaped_newline = true,
                None => return None,
                _ => {}
            }
            k += at + 2;
        }
    }
    if n != 6 {
        return None;
    }
    let head = &line[..quotes[0]];
    let req = &line[quotes[0] + 1..quotes[1]];
    let mid = &line[quotes[1] + 1..quotes[2]];
    let referrer = &line[quotes[2] + 1..quotes[3]];
    let sep = &line[quotes[3] + 1..quotes[4]];
    let agent = &line[quotes[4] + 1..quotes[5]];
    let regex_way = escaped_quote
        || ends_with_backslash(req)
        || ends_with_backslash(referrer)
        || ends_with_backslash(agent);
    if regex_way && escaped_newline {
        return None;
    }
    let i = find(head, b" [")?;
    if i == 0
        || sep != b" "
        || !head.ends_with(b"] ")
        || mid.first() != Some(&b' ')
        || mid.last() != Some(&b' ')
    {
        return None;
    }
    let mut sizes = mid.split(|&b| is_py_space(b)).filter(|s| !s.is_empty());
    let (status, size) = (sizes.next()?, sizes.next()?);
    if sizes.next().is_some() {
        return None;
    }
    let mut tokens: [&[u8]; 4] = [b""; 4];
    let mut nt = 0;
    for token in head[..i].split(|&b| b == b' ') {
        if nt == 4 {
            return None;
        }
        tokens[nt] = token;
        nt += 1;
    }
    if !((nt == 3 && three) || (nt == 4 && four)) || (tokens[nt - 3] == b"-" && nt != 3) {
        return None;
    }
    let (start, end) = (i + 2, head.len() - 2);
    let ts: &[u8] = if start <= end { &head[start..end] } else { b"" };
    if regex_way {
        let plain = |s: &[u8]| !s.is_empty() && !s.iter().any(|&b| is_py_space(b));
        if !tokens[..nt].iter().all(|t| plain(t))
            || ts.contains(&b']')
            || mid.len() != status.len() + size.len() + 3
            || mid[1 + status.len()] != b' '
            || !plain(status)
            || !plain(size)
        {
            return None;
        }
    }
    Some(Cut {
        vhost: if nt == 4 { tokens[0] } else { b"" },
        host: tokens[nt - 3],
        user: tokens[nt - 1],
        ts,
        req,
        status,
        size,
        referrer,
        agent,
    })
}

/// Bytes a JSON string escapes: `"`, `\\` and the control characters.
const ESCAPED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// `s` as a JSON string, escaped as orjson escapes it (`"`, `\\`, and control characters: `\b \t \n \f \r`,
/// the others as `\u00XX`); `s` is valid UTF-8.
fn json_string(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut from = 0;
    let mut at = 0;
    while at < s.len() {
        let b = s[at];
        if !ESCAPED[b as usize] {
            at += 1;
            continue;
        }
        out.extend_from_slice(&s[from..at]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 15) as usize]);
            }
        }
        at += 1;
        from = at;
    }
    out.extend_from_slice(&s[from..]);
    out.push(b'"');
}

/// `size` (all ASCII digits) as Python's `%d` of `int(size)` writes it: without leading zeros.
fn digits(size: &[u8]) -> &[u8] {
    let first = size
        .iter()
        .position(|&b| b != b'0')
        .unwrap_or(size.len() - 1);
    &size[first..]
}

// -- Apache time ----------------------------------------------------------------------------------------------
// The one implementation of reading Apache's `dd/Mon/yyyy:HH:MM:SS +zzzz` and of writing UTC text: the Python
// reader (`EventTimeReader`) and `iso_utc` call these functions, and the document and split paths use them here.

const MONTHS: [&[u8; 3]; 12] = [
    b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec",
];

/// The address of an IPv4 text as glibc's `inet_pton(AF_INET, ...)` reads it: four decimal octets of at most
/// 255, without leading zeros, nothing else.
fn inet_pton4(s: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let (mut octets, mut at, mut saw_digit, mut value) = (0usize, 0usize, false, 0u32);
    for &ch in s {
        if ch.is_ascii_digit() {
            if saw_digit && value == 0 {
                return None; // a leading zero
            }
            value = value * 10 + u32::from(ch - b'0');
            if value > 255 {
                return None;
            }
            if !saw_digit {
                octets += 1;
                if octets > 4 {
                    return None;
                }
                saw_digit = true;
            }
            out[at] = value as u8;
        } else if ch == b'.' && saw_digit {
            if octets == 4 {
                return None;
            }
            at += 1;
            value = 0;
            saw_digit = false;
        } else {
            return None;
        }
    }
    (octets == 4).then_some(out)
}

/// The address of an IPv6 text as glibc's `inet_pton(AF_INET6, ...)` reads it (groups of at most four hex
/// digits, one `::`, an IPv4 tail).
fn inet_pton6(s: &[u8]) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    let mut src = s;
    if src.is_empty() {
        return None;
    }
    if src[0] == b':' {
        if src.len() < 2 || src[1] != b':' {
            return None;
        }
        src = &src[1..];
    }
    let (mut tp, mut colonp): (usize, Option<usize>) = (0, None);
    let (mut xdigits_seen, mut value) = (0usize, 0u32);
    let mut curtok = 0usize;
    let mut i = 0usize;
    while i < src.len() {
        let ch = src[i];
        i += 1;
        if let Some(digit) = (ch as char).to_digit(16) {
            if xdigits_seen == 4 {
                return None;
            }
            value = (value << 4) | digit;
            xdigits_seen += 1;
            continue;
        }
        if ch == b':' {
            curtok = i;
            if xdigits_seen == 0 {
                if colonp.is_some() {
                    return None;
                }
                colonp = Some(tp);
                continue;
            } else if i == src.len() {
                return None;
            }
            if tp + 2 > 16 {
                return None;
            }
            out[tp] = (value >> 8) as u8;
            out[tp + 1] = value as u8;
            tp += 2;
            xdigits_seen = 0;
            value = 0;
            continue;
        }
        if ch == b'.' && tp + 4 <= 16 {
            if let Some(v4) = inet_pton4(&src[curtok..]) {
                out[tp..tp + 4].copy_from_slice(&v4);
                tp += 4;
                xdigits_seen = 0;
                break;
            }
        }
        return None;
    }
    if xdigits_seen > 0 {
        if tp + 2 > 16 {
            return None;
        }
        out[tp] = (value >> 8) as u8;
        out[tp + 1] = value as u8;
        tp += 2;
    }
    if let Some(c) = colonp {
        if tp == 16 {
            return None; // "::" would stand for no group
        }
        let n = tp - c;
        out.copy_within(c..tp, 16 - n);
        out[c..16 - n].fill(0);
        tp = 16;
    }
    (tp == 16).then_some(out)
}

/// An IP address text's bytes: 4 (IPv4) or 16 (IPv6), as glibc's `inet_pton` reads the text; None when it is
/// neither (a zone `%eth0`, a port or a host name included).
fn ip_address(text: &[u8]) -> Option<Vec<u8>> {
    inet_pton4(text)
        .map(|a| a.to_vec())
        .or_else(|| inet_pton6(text).map(|a| a.to_vec()))
}

const V4_MAPPED: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/// The block of an address whose GeoIP answer its neighbours share when the database's network covers it: the
/// /24 of an IPv4 address (also of an IPv4-mapped IPv6 one), the /48 of an IPv6 address. Its length in bits is
/// 8 × its length in bytes.
fn geo_block(packed: &[u8]) -> &[u8] {
    match packed.len() {
        16 if packed[..12] == V4_MAPPED => &packed[12..15],
        16 => &packed[..6],
        _ => &packed[..3],
    }
}

/// ``ip_address(text)``: the bytes of an IPv4 (4) or IPv6 (16) address text as glibc's ``inet_pton`` reads
/// it, or None.
#[pyfunction(name = "ip_address")]
fn py_ip_address<'py>(py: Python<'py>, text: &[u8]) -> Option<Bound<'py, PyBytes>> {
    ip_address(text).map(|a| PyBytes::new(py, &a))
}

/// ``geo_block(packed)``: the block of an address (``ip_address``'s bytes) whose GeoIP answer is shared when the
/// database's network covers it: 3 bytes (an IPv4 /24, also of an IPv4-mapped address) or 6 (an IPv6 /48).
#[pyfunction(name = "geo_block")]
fn py_geo_block<'py>(py: Python<'py>, packed: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    if packed.len() != 4 && packed.len() != 16 {
        return Err(PyValueError::new_err(format!(
            "packed must be 4 or 16 bytes (ip_address's). Got {}",
            packed.len()
        )));
    }
    Ok(PyBytes::new(py, geo_block(packed)))
}

/// Why a text is not an Apache time (the messages are `EventTimeReader`'s reasons' last part).
#[derive(Debug, PartialEq)]
enum NotApache {
    Shape,
    Month([u8; 3]),
    Day,
    Zone,
    TimeOfDay,
}

impl NotApache {
    fn message(&self, py: Python<'_>) -> PyResult<String> {
        Ok(match self {
            NotApache::Shape => "not dd/Mon/yyyy:HH:MM:SS +zzzz".to_owned(),
            NotApache::Month(m) => {
                // Python's f"unknown month {m.decode('ascii', 'backslashreplace')!r}"
                let decoded: String = m
                    .iter()
                    .map(|&b| {
                        if b < 0x80 {
                            (b as char).to_string()
                        } else {
                            format!("\\x{b:02x}")
                        }
                    })
                    .collect();
                format!(
                    "unknown month {}",
                    pyo3::types::PyString::new(py, &decoded).repr()?
                )
            }
            NotApache::Day => "day out of range".to_owned(),
            NotApache::Zone => "zone offset out of range".to_owned(),
            NotApache::TimeOfDay => "time of day out of range".to_owned(),
        })
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date of the proleptic Gregorian calendar (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01 (`civil_from_days`): `(year, month, day)`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn two(t: &[u8], at: usize) -> Option<i64> {
    let (a, b) = (t[at], t[at + 1]);
    (a.is_ascii_digit() && b.is_ascii_digit())
        .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
}

/// UTC epoch seconds of an Apache time text, read exactly as strptime's `%d/%b/%Y:%H:%M:%S %z` reads it (ASCII
/// digits, the month's name in any case) and second 60 (a leap second, the next minute's first).
fn apache_epoch(t: &[u8]) -> Result<i64, NotApache> {
    use NotApache::*;
    if t.len() != 26 || t[11] != b':' || t[14] != b':' || t[17] != b':' {
        return Err(Shape);
    }
    let (Some(hh), Some(mm), Some(ss)) = (two(t, 12), two(t, 15), two(t, 18)) else {
        return Err(Shape);
    };
    if t[2] != b'/' || t[6] != b'/' || t[20] != b' ' || !(t[21] == b'+' || t[21] == b'-') {
        return Err(Shape);
    }
    let (Some(day), Some(y1), Some(y2), Some(zh), Some(zm)) =
        (two(t, 0), two(t, 7), two(t, 9), two(t, 22), two(t, 24))
    else {
        return Err(Shape);
    };
    let name = [t[3], t[4], t[5]];
    let lower = name.map(|b| b.to_ascii_lowercase());
    let Some(month) = MONTHS.iter().position(|m| **m == lower) else {
        return Err(Month(name));
    };
    let (month, year) = (month as u32 + 1, y1 * 100 + y2);
    if year < 1 || day < 1 || day > i64::from(days_in_month(year, month)) {
        return Err(Day);
    }
    if zh > 23 || zm > 59 {
        return Err(Zone);
    }
    let offset = (zh * 3600 + zm * 60) * if t[21] == b'-' { -1 } else { 1 };
    if hh > 23 || mm > 59 || ss > 60 {
        return Err(TimeOfDay);
    }
    Ok(days_from_civil(year, month, day as u32) * 86_400 - offset + hh * 3600 + mm * 60 + ss)
}

/// Append `2015-10-28T14:03:07Z` of a UTC epoch second, or return its year when that is not 1 to 9999.
fn write_iso_utc(out: &mut Vec<u8>, epoch: i64) -> Result<(), i64> {
    let (days, second) = (epoch.div_euclid(86_400), epoch.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    if !(1..=9999).contains(&year) {
        return Err(year);
    }
    let text = [
        (year, 4, b'-'),
        (i64::from(month), 2, b'-'),
        (i64::from(day), 2, b'T'),
        (second / 3600, 2, b':'),
        (second / 60 % 60, 2, b':'),
        (second % 60, 2, b'Z'),
    ];
    for (n, width, after) in text {
        let mut digits = [b'0'; 4];
        let mut n = n;
        for d in digits[..width].iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        out.extend_from_slice(&digits[..width]);
        out.push(after);
    }
    Ok(())
}

/// UTC epoch seconds of an Apache time text ``dd/Mon/yyyy:HH:MM:SS +zzzz``; ValueError (the reason) if not one.
#[pyfunction(name = "apache_epoch")]
fn py_apache_epoch(py: Python<'_>, text: &[u8]) -> PyResult<i64> {
    apache_epoch(text).or_else(|e| Err(PyValueError::new_err(e.message(py)?)))
}

/// ``2015-10-28T14:03:07Z`` of UTC epoch seconds; ValueError for a time outside the years 1 to 9999.
#[pyfunction(name = "iso_utc")]
fn py_iso_utc(epoch: i64) -> PyResult<String> {
    let mut out = Vec::with_capacity(20);
    write_iso_utc(&mut out, epoch)
        .map_err(|year| PyValueError::new_err(format!("year {year} is not in 1-9999")))?;
    Ok(String::from_utf8(out).expect("ASCII"))
}

/// The cached pieces of a parser (one per `AccessLogParser`); see the module's documentation.
#[pyclass(module = "airflow_provider_logtap._kernel")]
struct Documents {
    three: bool,
    four: bool,
    limit: usize,
    stamp: Pieces,
    status: Pieces,
    source: Pieces,
    referrer: Pieces,
    agent: Pieces,
    user: Pieces,
    vhost: Pieces,
    request: Pieces,
    /// `geo(ip)` -> `(piece, whole_block)`: the GeoIP part of an IP address's source piece, and whether it holds
    /// for every address of its `geo_block`.
    geo: Py<PyAny>,
    /// geo_block -> the index of its GeoIP part in `geo_pieces` (None: its addresses' answers differ).
    blocks: FxHashMap<Vec<u8>, Option<u32>>,
    /// The distinct GeoIP parts (one per network's answer, ~700 bytes each), at most `geo_limit`.
    geo_pieces: Vec<Vec<u8>>,
    geo_known: FxHashMap<Vec<u8>, u32>,
    geo_limit: usize,
    index_of: Option<Pieces>,
    /// Apache time texts are read here (the stamp piece is not asked for): the reader's epoch bounds.
    apache_bounds: Option<(i64, i64)>,
}

impl Documents {
    /// Append the document of `line` (without its closing `}`), or return false (the Python path's line).
    fn document(&mut self, py: Python<'_>, line: &[u8], out: &mut Vec<u8>) -> PyResult<bool> {
        if std::str::from_utf8(line).is_err() {
            return Ok(false);
        }
        let Some(c) = cut(line, self.three, self.four) else {
            return Ok(false);
        };
        let limit = self.limit;
        let mark = out.len();
        macro_rules! piece {
            ($cache:ident, $value:expr) => {
                match self.$cache.get(py, $value, limit)? {
                    Some(p) => out.extend_from_slice(p),
                    None => {
                        out.truncate(mark);
                        return Ok(false);
                    }
                }
            };
        }
        match self.apache_bounds {
            Some((first, end)) => match apache_epoch(c.ts) {
                Ok(epoch) if first <= epoch && epoch < end => {
                    out.extend_from_slice(b"{\"@timestamp\":\"");
                    if write_iso_utc(out, epoch).is_err() {
                        out.truncate(mark);
                        return Ok(false);
                    }
                    out.extend_from_slice(b"\",\"message\":");
                }
                _ => return Ok(false), // the Python way gives the reason
            },
            None => piece!(stamp, c.ts),
        }
        json_string(out, line);
        match self.source_piece(py, c.host)? {
            Some(k) => out.extend_from_slice(&self.source.pieces[k as usize]),
            None => {
                out.truncate(mark);
                return Ok(false);
            }
        }
        // a size of up to 18 digits is below the parser's MAX_SIZE (2**63 - 1); a longer one is the Python way's
        let size_ok = c.size == b"-"
            || (!c.size.is_empty()
                && c.size.iter().all(u8::is_ascii_digit)
                && digits(c.size).len() <= 18);
        let Some(request) = (if size_ok {
            self.request.get_n(py, c.req, limit)?
        } else {
            None
        }) else {
            out.truncate(mark);
            return Ok(false);
        };
        let [url, opening] = [request, request + 1].map(|k| &self.request.pieces[k]);
        out.extend_from_slice(url);
        out.extend_from_slice(opening);
        if !c.referrer.is_empty() && c.referrer != b"-" {
            piece!(referrer, c.referrer);
        }
        out.extend_from_slice(&self.request.pieces[request + 2]);
        let at = out.len();
        piece!(status, c.status);
        if out.len() == at {
            out.truncate(mark); // no status code: the general way
            return Ok(false);
        }
        if c.size != b"-" {
            out.extend_from_slice(b",\"body\":{\"bytes\":");
            out.extend_from_slice(digits(c.size));
            out.push(b'}');
        }
        out.extend_from_slice(b"}}");
        if !c.agent.is_empty() && c.agent != b"-" {
            piece!(agent, c.agent);
        }
        if c.user != b"-" {
            piece!(user, c.user);
        }
        if !c.vhost.is_empty() {
            piece!(vhost, c.vhost);
        }
        Ok(true)
    }
}

impl Documents {
    /// The index of the source piece of a client address (see `source_of`).
    fn source_piece(&mut self, py: Python<'_>, host: &[u8]) -> PyResult<Option<u32>> {
        if let Some(&found) = self.source.known.get(host) {
            return Ok(found);
        }
        match self.source_of(py, host)? {
            Some(piece) => Ok(Some(self.source.keep(host, piece, self.limit))),
            None => self.source.learn(py, host, self.limit),
        }
    }

    /// The source piece of an address that is all an IP address (`ip_address`): `address` and `ip` are the text,
    /// the GeoIP part `geo` gives, asked once per block where it holds for the whole block. None for any other
    /// address (a host name, a port, an IPv6 zone): the parser's `source` makes its piece.
    fn source_of(&mut self, py: Python<'_>, host: &[u8]) -> PyResult<Option<Vec<u8>>> {
        let Some(packed) = ip_address(host) else {
            return Ok(None);
        };
        let block = geo_block(&packed);
        let k = match self.blocks.get(block) {
            Some(&Some(k)) => k,
            known => {
                let mixed = known.is_some();
                let made = self.geo.call1(py, (PyBytes::new(py, host),))?;
                let (part, whole): (Bound<'_, PyBytes>, bool) = made.bind(py).extract()?;
                let k = match self.geo_known.get(part.as_bytes()) {
                    Some(&k) => k,
                    None => {
                        if self.geo_pieces.len() >= self.geo_limit {
                            self.blocks.clear(); // their indexes go with the pieces
                            self.geo_known.clear();
                            self.geo_pieces.clear();
                        }
                        let k = self.geo_pieces.len() as u32;
                        self.geo_pieces.push(part.as_bytes().to_vec());
                        self.geo_known.insert(part.as_bytes().to_vec(), k);
                        k
                    }
                };
                if !mixed {
                    if self.blocks.len() >= self.limit {
                        self.blocks.clear();
                    }
                    self.blocks.insert(block.to_vec(), whole.then_some(k));
                }
                k
            }
        };
        let part = &self.geo_pieces[k as usize];
        // an IP address text is ASCII hex digits, dots and colons: JSON as it is
        let mut piece = Vec::with_capacity(40 + 2 * host.len() + part.len());
        piece.extend_from_slice(b",\"source\":{\"address\":\"");
        piece.extend_from_slice(host);
        piece.extend_from_slice(b"\",\"ip\":\"");
        piece.extend_from_slice(host);
        piece.push(b'"');
        piece.extend_from_slice(part);
        piece.push(b'}');
        Ok(Some(piece))
    }
}

fn values_and_offsets<'py>(
    values: &Bound<'py, PyList>,
    offsets: &Bound<'py, PyAny>,
) -> PyResult<Vec<i64>> {
    let offsets: Vec<i64> = offsets.extract()?;
    if offsets.len() != values.len() {
        return Err(PyValueError::new_err(format!(
            "offsets has {} items for {} values",
            offsets.len(),
            values.len()
        )));
    }
    Ok(offsets)
}

#[pymethods]
impl Documents {
    /// :param three: lines of three head tokens (``host ident user``) are taken.
    /// :param four: lines of four (``vhost host ident user``) are taken.
    /// :param pieces: ``{name: make}`` for ``stamp``, ``status``, ``source``, ``request``, ``referrer``,
    ///     ``agent``, ``user``, ``vhost``: ``make(value)`` is the piece's bytes or None (the request's: a tuple
    ///     ``(url, opening, middle)`` or None); and ``geo``: ``geo(ip)`` is ``(part, whole_block)``, the GeoIP
    ///     part of the source piece of an address that is all an IP address (``b""`` or ``b',"geo":...'``) and
    ///     whether it holds for every address of its ``geo_block``. ``source`` makes the others' pieces.
    /// :param limit: cached values per field; a full cache starts again.
    /// :param geo_limit: distinct GeoIP parts kept (each is shared by the blocks whose answer it is).
    /// :param apache_bounds: ``(first, end)``: timestamps are Apache's, read here (see :func:`apache_epoch`) and
    ///     taken when their UTC epoch is in ``[first, end)``; ``stamp`` is then not asked. None: ``stamp`` makes
    ///     the piece of every timestamp text.
    #[new]
    #[pyo3(signature = (*, three, four, pieces, limit, geo_limit, apache_bounds=None))]
    fn new(
        three: bool,
        four: bool,
        pieces: &Bound<'_, pyo3::types::PyDict>,
        limit: usize,
        geo_limit: usize,
        apache_bounds: Option<(i64, i64)>,
    ) -> PyResult<Self> {
        let take = |name: &str| -> PyResult<Py<PyAny>> {
            pieces
                .get_item(name)?
                .map(|f| f.unbind())
                .ok_or_else(|| PyValueError::new_err(format!("pieces has no {name:?}")))
        };
        Ok(Documents {
            three,
            four,
            limit: limit.max(1),
            stamp: Pieces::new(take("stamp")?),
            status: Pieces::new(take("status")?),
            source: Pieces::new(take("source")?),
            referrer: Pieces::new(take("referrer")?),
            agent: Pieces::new(take("agent")?),
            user: Pieces::new(take("user")?),
            vhost: Pieces::new(take("vhost")?),
            request: Pieces::new(take("request")?),
            geo: take("geo")?,
            blocks: FxHashMap::default(),
            geo_pieces: Vec::new(),
            geo_known: FxHashMap::default(),
            geo_limit: geo_limit.max(1),
            index_of: None,
            apache_bounds,
        })
    }

    /// The JSON document of each value (``tail`` closes it: ``b"}"``, or ``kafka`` + offset + ``b"}}"`` with a
    /// ``kafka`` prefix and ``offsets``), or None where the Python parser has to read the value.
    #[pyo3(signature = (values, offsets=None, kafka=None))]
    fn documents<'py>(
        &mut self,
        py: Python<'py>,
        values: &Bound<'py, PyList>,
        offsets: Option<&Bound<'py, PyAny>>,
        kafka: Option<&[u8]>,
    ) -> PyResult<Bound<'py, PyList>> {
        let offsets = match offsets {
            Some(o) => Some(values_and_offsets(values, o)?),
            None => None,
        };
        let found = PyList::empty(py);
        let mut out = Vec::with_capacity(1024);
        let mut number = itoa::Buffer::new();
        for (i, value) in values.iter().enumerate() {
            out.clear();
            let taken = match value.cast::<PyBytes>() {
                Ok(b) => self.document(py, b.as_bytes(), &mut out)?,
                Err(_) => false,
            };
            if !taken {
                found.append(py.None())?;
                continue;
            }
            match kafka {
                Some(k) => {
                    out.extend_from_slice(k);
                    let offset = offsets.as_ref().map_or(i as i64, |o| o[i]);
                    out.extend_from_slice(number.format(offset).as_bytes());
                    out.extend_from_slice(b"}}");
                }
                None => out.push(b'}'),
            }
            found.append(PyBytes::new(py, &out))?;
        }
        Ok(found)
    }

    /// Bulk lines (an action line and a document line each) of the values this kernel takes, in order:
    /// ``(body, rest, indices)``, ``rest`` the indexes of the values the Python parser has to read, ``indices``
    /// the index names used. The action is ``{"index":{"_index":<index_of(day)>,"_id":<id_prefix><offset>}}``
    /// (``index_of(b"2015-10-28")``: cached per day while the same function is given).
    fn bulk<'py>(
        &mut self,
        py: Python<'py>,
        values: &Bound<'py, PyList>,
        offsets: &Bound<'py, PyAny>,
        id_prefix: &[u8],
        kafka: &[u8],
        index_of: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyBytes>, Vec<usize>, Vec<Bound<'py, PyBytes>>)> {
        let offsets = values_and_offsets(values, offsets)?;
        let mut index_of = match self.index_of.take() {
            Some(known) if known.make.bind(py).is(index_of) => known,
            _ => Pieces::new(index_of.clone().unbind()),
        };
        let result = (|| {
            let mut body = Vec::with_capacity(values.len() * 512);
            let mut doc = Vec::with_capacity(1024);
            let mut rest = Vec::new();
            let mut used: Vec<Vec<u8>> = Vec::new();
            let mut number = itoa::Buffer::new();
            for (i, value) in values.iter().enumerate() {
                doc.clear();
                let taken = match value.cast::<PyBytes>() {
                    Ok(b) => self.document(py, b.as_bytes(), &mut doc)?,
                    Err(_) => false,
                };
                // the stamp piece opens the document: {"@timestamp":"YYYY-MM-DD...
                let index = if taken && doc.len() >= 25 {
                    index_of.get(py, &doc[15..25], self.limit)?
                } else {
                    None
                };
                let Some(index) = index else {
                    rest.push(i);
                    continue;
                };
                if !used.iter().any(|u| u == index) {
                    used.push(index.to_vec());
                }
                let offset = number.format(offsets[i]);
                body.extend_from_slice(b"{\"index\":{\"_index\":\"");
                body.extend_from_slice(index);
                body.extend_from_slice(b"\",\"_id\":\"");
                body.extend_from_slice(id_prefix);
                body.extend_from_slice(offset.as_bytes());
                body.extend_from_slice(b"\"}}\n");
                body.extend_from_slice(&doc);
                body.extend_from_slice(kafka);
                body.extend_from_slice(offset.as_bytes());
                body.extend_from_slice(b"}}\n");
            }
            let indices = used.iter().map(|u| PyBytes::new(py, u)).collect();
            Ok((PyBytes::new(py, &body), rest, indices))
        })();
        self.index_of = Some(index_of);
        result
    }
}

/// `(length, group start, group end)` of a pattern whose every match has the same length and its `group` the
/// same offsets in it (a concatenation of fixed-length parts, the group one of them), or None.
fn fixed_group(pattern: &str, group: usize) -> Option<(usize, usize, usize)> {
    use regex_syntax::hir::{Hir, HirKind};
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    let fixed = |h: &Hir| {
        let p = h.properties();
        match (p.minimum_len(), p.maximum_len()) {
            (Some(low), Some(high)) if low == high => Some(low),
            _ => None,
        }
    };
    let len = fixed(&hir)?;
    if group == 0 {
        return Some((len, 0, len));
    }
    let items = match hir.kind() {
        HirKind::Concat(items) => items.as_slice(),
        _ => std::slice::from_ref(&hir),
    };
    let mut at = 0;
    for item in items {
        let n = fixed(item)?;
        if matches!(item.kind(), HirKind::Capture(c) if c.index as usize == group) {
            return Some((len, at, at + n));
        }
        at += n;
    }
    None
}

/// Where a timestamp text's lines go: a partition (an index into `Splitter::paths`) or a reason (its index into
/// `Splitter::reasons`).
#[derive(Clone, Copy)]
enum Place {
    Path(u32),
    Reason(u32),
}

/// Splits lines by the partition of their own event time (see `EventTimePartitioner`): the format's regex finds
/// each line's timestamp text, and `place(text)` (the partitioner's Python rules) says where the lines of that
/// text go, once per distinct text. Apache texts are read here (`apache_epoch`) and placed per UTC minute:
/// `minute_place(minute)` says once per minute which partition has all of it (or that none does: then the text's
/// own `place`).
#[pyclass(module = "airflow_provider_logtap._kernel")]
struct Splitter {
    regex: regex::bytes::Regex,
    group: usize,
    /// `(length, group start, group end)` when every match of the regex has one length and the group the same
    /// offsets in it: the leftmost match is then the one that ends first, found without captures.
    fixed: Option<(usize, usize, usize)>,
    place: Py<PyAny>,
    minute_place: Option<Py<PyAny>>,
    no_match: Py<PyAny>,
    limit: usize,
    texts: FxHashMap<Vec<u8>, Place>,
    minutes: FxHashMap<i64, Option<Place>>,
    paths: Vec<Py<PyAny>>,
    path_numbers: FxHashMap<String, u32>,
    reasons: Vec<Py<PyAny>>,
}

impl Splitter {
    /// The number of a partition path (a Python `str`), the same for the same text.
    fn path_number(&mut self, path: Bound<'_, PyAny>) -> PyResult<u32> {
        let text: String = path.extract()?;
        if let Some(&k) = self.path_numbers.get(&text) {
            return Ok(k);
        }
        let k = self.paths.len() as u32;
        self.paths.push(path.unbind());
        self.path_numbers.insert(text, k);
        Ok(k)
    }

    fn learn_text(&mut self, py: Python<'_>, text: &[u8]) -> PyResult<Place> {
        let made = self.place.call1(py, (PyBytes::new(py, text),))?;
        let (path, reason): (Option<Bound<'_, PyAny>>, Option<Py<PyAny>>) = made.extract(py)?;
        let place = match (path, reason) {
            (Some(path), _) => Place::Path(self.path_number(path)?),
            (None, Some(reason)) => {
                self.reasons.push(reason);
                Place::Reason((self.reasons.len() - 1) as u32)
            }
            (None, None) => {
                return Err(PyValueError::new_err(
                    "place gave neither a path nor a reason",
                ))
            }
        };
        self.texts.insert(text.to_vec(), place);
        Ok(place)
    }

    /// The place of every second of the UTC minute `minute` (epoch // 60), or None (ask per text).
    fn minute(&mut self, py: Python<'_>, minute: i64) -> PyResult<Option<Place>> {
        if let Some(&known) = self.minutes.get(&minute) {
            return Ok(known);
        }
        let ask = self
            .minute_place
            .as_ref()
            .expect("apache texts only")
            .bind(py);
        let path = ask.call1((minute * 60,))?;
        let place = if path.is_none() {
            None
        } else {
            Some(Place::Path(self.path_number(path)?))
        };
        self.minutes.insert(minute, place);
        Ok(place)
    }
}

#[pymethods]
impl Splitter {
    /// :param regex: the format's regex (one of the built-in formats'; Python's and Rust's syntax agree there).
    /// :param group: the regex group that is the timestamp text (0: the whole match).
    /// :param place: ``place(text)`` -> ``(path, None)`` or ``(None, reason)``.
    /// :param minute_place: texts are Apache's: ``minute_place(epoch)`` -> the path of every second of the UTC
    ///     minute starting at ``epoch``, or None where they have not all one (None: texts are not Apache's).
    /// :param no_match: the reason of a line the regex finds nothing in.
    /// :param limit: distinct texts (and minutes) kept; full, the caches start again before the next batch.
    #[new]
    #[pyo3(signature = (*, regex, group, place, minute_place, no_match, limit))]
    fn new(
        regex: &str,
        group: usize,
        place: Py<PyAny>,
        minute_place: Option<Py<PyAny>>,
        no_match: Py<PyAny>,
        limit: usize,
    ) -> PyResult<Self> {
        let pattern = format!("(?-u){regex}");
        let regex = regex::bytes::Regex::new(&pattern).map_err(|e| {
            PyValueError::new_err(format!("the kernel cannot compile {regex:?}: {e}"))
        })?;
        Ok(Splitter {
            regex,
            group,
            fixed: fixed_group(&pattern, group),
            place,
            minute_place,
            no_match,
            limit: limit.max(1),
            texts: FxHashMap::default(),
            minutes: FxHashMap::default(),
            paths: Vec::new(),
            path_numbers: FxHashMap::default(),
            reasons: Vec::new(),
        })
    }

    /// ``({path: lines in order}, [(index, reason), ...])`` for ``values`` (tombstones are skipped).
    fn split<'py>(
        &mut self,
        py: Python<'py>,
        values: &Bound<'py, PyList>,
    ) -> PyResult<(Bound<'py, pyo3::types::PyDict>, Bound<'py, PyList>)> {
        let (held, lines, bad) = self.place_all(py, values)?;
        let buckets = pyo3::types::PyDict::new(py);
        for (k, found) in lines.into_iter().enumerate() {
            if !found.is_empty() {
                let found = PyList::new(py, found.into_iter().map(|j| &held[j].1))?;
                buckets.set_item(self.paths[k].bind(py), found)?;
            }
        }
        Ok((buckets, bad))
    }

    /// ``({path: block}, [(index, reason), ...])``: :meth:`split` with each partition's lines joined into one
    /// block, every line followed by ``\n``.
    fn split_joined<'py>(
        &mut self,
        py: Python<'py>,
        values: &Bound<'py, PyList>,
    ) -> PyResult<(Bound<'py, pyo3::types::PyDict>, Bound<'py, PyList>)> {
        let (held, lines, bad) = self.place_all(py, values)?;
        let blocks = pyo3::types::PyDict::new(py);
        for (k, found) in lines.into_iter().enumerate() {
            if !found.is_empty() {
                let slices: Vec<&[u8]> = found.into_iter().map(|j| held[j].1.as_bytes()).collect();
                blocks.set_item(self.paths[k].bind(py), joined(py, &slices)?)?;
            }
        }
        Ok((blocks, bad))
    }
}

/// The values that are bytes (with their indexes), the lines per path number (indexes into the first), and the
/// `(index, reason)` of the others.
type Placed<'py> = (
    Vec<(usize, Bound<'py, PyBytes>)>,
    Vec<Vec<usize>>,
    Bound<'py, PyList>,
);

impl Splitter {
    fn place_all<'py>(
        &mut self,
        py: Python<'py>,
        values: &Bound<'py, PyList>,
    ) -> PyResult<Placed<'py>> {
        if self.texts.len() + self.minutes.len() + self.reasons.len() >= self.limit {
            // full: start again, between batches only (a batch's lines are kept by their paths' numbers)
            self.texts.clear();
            self.minutes.clear();
            self.paths.clear();
            self.path_numbers.clear();
            self.reasons.clear();
        }
        // The values are held here, so that their bytes can be read without the GIL (another thread reads the
        // next batch meanwhile); what the caches do not know yet is asked of Python afterwards, in order.
        let held: Vec<(usize, Bound<'py, PyBytes>)> = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.cast_into::<PyBytes>().ok().map(|b| (i, b)))
            .collect();
        let slices: Vec<&[u8]> = held.iter().map(|(_, b)| b.as_bytes()).collect();
        let this = &*self;
        let found: Vec<Found> = py.detach(|| {
            let mut captures = this.regex.capture_locations();
            slices
                .iter()
                .map(|line| this.find(line, &mut captures))
                .collect()
        });
        let mut lines: Vec<Vec<usize>> = Vec::new();
        let bad = PyList::empty(py);
        for (j, (((i, _), line), found)) in held.iter().zip(&slices).zip(found).enumerate() {
            let i = *i;
            let place = match found {
                Found::NoMatch => {
                    bad.append((i, self.no_match.bind(py)))?;
                    continue;
                }
                Found::Known(place) => place,
                Found::Minute(minute, start, end) => match self.minute(py, minute)? {
                    Some(place) => place,
                    None => self.text_place(py, &line[start..end])?,
                },
                Found::Text(start, end) => self.text_place(py, &line[start..end])?,
            };
            match place {
                Place::Path(k) => {
                    let k = k as usize;
                    if lines.len() <= k {
                        lines.resize_with(k + 1, Vec::new);
                    }
                    lines[k].push(j);
                }
                Place::Reason(k) => bad.append((i, self.reasons[k as usize].bind(py)))?,
            }
        }
        drop(slices);
        Ok((held, lines, bad))
    }

    /// What the caches say of a line (no Python: run without the GIL).
    fn find(&self, line: &[u8], captures: &mut regex::bytes::CaptureLocations) -> Found {
        let span = match self.fixed {
            Some((len, from, to)) => self
                .regex
                .shortest_match(line)
                .map(|end| (end - len + from, end - len + to)),
            None => self
                .regex
                .captures_read(captures, line)
                .and_then(|_| captures.get(self.group)),
        };
        let Some((start, end)) = span else {
            return Found::NoMatch;
        };
        let text = &line[start..end];
        if self.minute_place.is_some() {
            if let Ok(epoch) = apache_epoch(text) {
                let minute = epoch.div_euclid(60);
                match self.minutes.get(&minute) {
                    Some(Some(place)) => return Found::Known(*place),
                    Some(None) => {}
                    None => return Found::Minute(minute, start, end),
                }
            }
        }
        match self.texts.get(text) {
            Some(place) => Found::Known(*place),
            None => Found::Text(start, end),
        }
    }

    fn text_place(&mut self, py: Python<'_>, text: &[u8]) -> PyResult<Place> {
        match self.texts.get(text) {
            Some(&place) => Ok(place),
            None => self.learn_text(py, text),
        }
    }
}

/// What a line's text is, as far as the caches know: no regex match, a known place, or a UTC minute or a text
/// (its span in the line) to ask about.
enum Found {
    NoMatch,
    Known(Place),
    Minute(i64, usize, usize),
    Text(usize, usize),
}

/// Each slice into `buf` followed by a newline (`buf` has their lengths + 1 each).
fn copy_lines(buf: &mut [u8], slices: &[&[u8]]) {
    let mut at = 0;
    for s in slices {
        buf[at..at + s.len()].copy_from_slice(s);
        buf[at + s.len()] = b'\n';
        at += s.len() + 1;
    }
}

/// ``b"\n".join(lines) + b"\n"`` of byte slices (a short copy: kept under the GIL, not worth handing it over).
fn joined<'py>(py: Python<'py>, slices: &[&[u8]]) -> PyResult<Bound<'py, PyBytes>> {
    let total: usize = slices.iter().map(|s| s.len() + 1).sum();
    PyBytes::new_with(py, total, |buf| {
        copy_lines(buf, slices);
        Ok(())
    })
}

/// The archive's framing of a block of values: ``(b"\n".join(lines) + b"\n", embedded, utf8)`` of its lines
/// (the values that are not ``None``: a tombstone has no bytes), ``embedded`` the newlines inside the lines,
/// ``utf8`` whether the whole block is valid UTF-8. The copy and the scans run without the GIL (the reading
/// thread goes on meanwhile); the lines are held by this call while it runs.
#[pyfunction]
fn frame<'py>(
    py: Python<'py>,
    lines: &Bound<'py, PyList>,
) -> PyResult<(Bound<'py, PyBytes>, usize, bool)> {
    let mut held: Vec<Bound<'py, PyBytes>> = Vec::with_capacity(lines.len());
    for v in lines.iter() {
        if !v.is_none() {
            held.push(v.cast_into::<PyBytes>()?);
        }
    }
    let slices: Vec<&[u8]> = held.iter().map(|b| b.as_bytes()).collect();
    let total: usize = slices.iter().map(|s| s.len() + 1).sum();
    let mut embedded = 0;
    let mut utf8 = true;
    let data = PyBytes::new_with(py, total, |buf| {
        let (e, u) = py.detach(|| {
            copy_lines(buf, &slices);
            (
                memchr::memchr_iter(b'\n', buf).count() - slices.len(),
                std::str::from_utf8(buf).is_ok(),
            )
        });
        embedded = e;
        utf8 = u;
        Ok(())
    })?;
    Ok((data, embedded, utf8))
}

/// One pass over a consume() result: ``(values, nbytes, tombstones, events)``: the values of the messages
/// that are records (``None`` for a tombstone), their total length, the tombstones among them, and the indexes
/// of the messages that are events (``error()`` is not ``None``: end of partition, an error), left out of the
/// rest.
#[pyfunction]
fn unpack<'py>(
    py: Python<'py>,
    messages: &Bound<'py, PyList>,
) -> PyResult<(Bound<'py, PyList>, usize, usize, Vec<usize>)> {
    let value = pyo3::intern!(py, "value");
    let error = pyo3::intern!(py, "error");
    let mut values: Vec<Bound<'py, PyAny>> = Vec::with_capacity(messages.len());
    let mut nbytes = 0;
    let mut tombstones = 0;
    let mut events = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        if !m.call_method0(error)?.is_none() {
            events.push(i);
            continue;
        }
        let v = m.call_method0(value)?;
        if v.is_none() {
            tombstones += 1;
        } else {
            nbytes += v.cast::<PyBytes>()?.as_bytes().len();
        }
        values.push(v);
    }
    Ok((PyList::new(py, values)?, nbytes, tombstones, events))
}

#[pymodule]
fn _kernel(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(frame, m)?)?;
    m.add_function(wrap_pyfunction!(unpack, m)?)?;
    m.add_function(wrap_pyfunction!(py_apache_epoch, m)?)?;
    m.add_function(wrap_pyfunction!(py_iso_utc, m)?)?;
    m.add_function(wrap_pyfunction!(py_ip_address, m)?)?;
    m.add_function(wrap_pyfunction!(py_geo_block, m)?)?;
    m.add_class::<Documents>()?;
    m.add_class::<Splitter>()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_as_orjson() {
        let mut out = Vec::new();
        json_string(&mut out, b"a\"b\\c\x01\n\x1f\x7f");
        assert_eq!(out, b"\"a\\\"b\\\\c\\u0001\\n\\u001f\x7f\"".to_vec());
    }

    #[test]
    fn fixed_groups() {
        let apache = r"(?-u)\[(\d{2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\]";
        assert_eq!(fixed_group(apache, 1), Some((28, 1, 27)));
        assert_eq!(fixed_group(apache, 0), Some((28, 0, 28)));
        assert_eq!(fixed_group(r"(?-u)\b(\d{12,13})\b", 1), None);
        assert_eq!(fixed_group(r"(?-u)a(?:b(c))d", 1), Some((4, 2, 3))); // (?:...) is no part of its own
        assert_eq!(fixed_group(r"(?-u)a((b)c)d", 2), None); // inside another group: the captures' way
        assert_eq!(fixed_group(r"(?-u)a(b|cd)", 1), None);
        assert_eq!(fixed_group(r"(?-u)(ab)", 1), Some((2, 0, 2)));
    }

    #[test]
    fn apache_and_iso() {
        assert_eq!(
            apache_epoch(b"28/Oct/2015:14:03:20 +0000"),
            Ok(1_446_041_000)
        );
        assert_eq!(
            apache_epoch(b"28/Oct/2015:06:03:20 -0800"),
            Ok(1_446_041_000)
        );
        assert_eq!(
            apache_epoch(b"28/Okt/2015:06:03:20 -0800"),
            Err(NotApache::Month(*b"Okt"))
        );
        let mut out = Vec::new();
        assert_eq!(write_iso_utc(&mut out, 1_446_041_000), Ok(()));
        assert_eq!(out, b"2015-10-28T14:03:20Z");
        assert_eq!(civil_from_days(days_from_civil(1, 1, 1)), (1, 1, 1));
    }

    #[test]
    fn ip_addresses_as_glibc() {
        assert_eq!(ip_address(b"81.2.69.160"), Some(vec![81, 2, 69, 160]));
        assert_eq!(ip_address(b"081.2.69.160"), None); // no leading zeros
        assert_eq!(ip_address(b"1.2.3"), None);
        assert_eq!(ip_address(b"1.2.3.256"), None);
        let mapped = ip_address(b"::ffff:1.2.3.4").unwrap();
        assert_eq!(geo_block(&mapped), &[1, 2, 3]);
        let v6 = ip_address(b"2001:db8::1").unwrap();
        assert_eq!(v6.len(), 16);
        assert_eq!(geo_block(&v6), &[0x20, 0x01, 0x0d, 0xb8, 0, 0]);
        assert_eq!(
            ip_address(b"1:2:3:4:5:6:7:8"),
            Some((1..=8).flat_map(|g: u8| [0, g]).collect())
        );
        assert_eq!(ip_address(b"1:2:3:4:5:6:7:8::"), None); // "::" standing for no group
        assert_eq!(ip_address(b"12345::"), None); // five hex digits
        assert_eq!(ip_address(b"1::2:"), None); // a trailing single colon
        assert_eq!(ip_address(b":1::2"), None);
        assert_eq!(ip_address(b"fe80::1%eth0"), None);
        assert_eq!(ip_address(b""), None);
    }

    #[test]
    fn digits_drop_leading_zeros() {
        assert_eq!(digits(b"000"), b"0");
        assert_eq!(digits(b"0120"), b"120");
    }
}
