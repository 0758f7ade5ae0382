//! logtap's per-line kernel: the line-by-line work of the access-log parser's JSON path, out of the Python loop.
//!
//! It decides nothing about what a field means. It cuts a line the way the parser's fast path does (the quotes,
//! the head's tokens, the status and size), looks each field up in a cache of JSON pieces, and joins a document
//! (and its bulk action line) from them. Every piece is made by the parser's own Python functions, once per
//! distinct value: those functions are the one definition of the rules (escapes, request lines, addresses,
//! GeoIP, event times). A line the cut does not take, or whose piece says "not here" (`None`), goes back to
//! the Python parser, which gives its document or its reason.

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
        if self.known.len() >= limit {
            self.known.clear();
            self.pieces.clear();
        }
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
    index_of: Option<Pieces>,
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
        piece!(stamp, c.ts);
        json_string(out, line);
        piece!(source, c.host);
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
    ///     ``(url, opening, middle)`` or None).
    /// :param limit: cached values per field; a full cache starts again.
    #[new]
    #[pyo3(signature = (*, three, four, pieces, limit))]
    fn new(
        three: bool,
        four: bool,
        pieces: &Bound<'_, pyo3::types::PyDict>,
        limit: usize,
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
            index_of: None,
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

/// Where a timestamp text's lines go: a partition (an index into `Splitter::paths`) or a reason (its index into
/// `Splitter::reasons`).
#[derive(Clone, Copy)]
enum Place {
    Path(u32),
    Reason(u32),
}

/// Splits lines by the partition of their own event time (see `EventTimePartitioner`): the format's regex finds
/// each line's timestamp text, and `place(text)` (the partitioner's Python rules) says where the lines of that
/// text go, once per distinct text, or once per minute where it says the whole minute goes to one partition.
#[pyclass(module = "airflow_provider_logtap._kernel")]
struct Splitter {
    regex: regex::bytes::Regex,
    group: usize,
    minutes_of_apache: bool,
    place: Py<PyAny>,
    no_match: Py<PyAny>,
    limit: usize,
    texts: FxHashMap<Vec<u8>, Place>,
    minutes: FxHashMap<[u8; 23], Place>,
    paths: Vec<Py<PyAny>>,
    path_numbers: FxHashMap<String, u32>,
    reasons: Vec<Py<PyAny>>,
}

impl Splitter {
    /// The minute key of an Apache text ``dd/Mon/yyyy:HH:MM:SS +zzzz`` (the seconds cut out), when its seconds are
    /// 00-59.
    fn minute_key(text: &[u8]) -> Option<[u8; 23]> {
        if text.len() != 26
            || text[17] != b':'
            || !(b'0'..=b'5').contains(&text[18])
            || !text[19].is_ascii_digit()
        {
            return None;
        }
        let mut key = [0u8; 23];
        key[..17].copy_from_slice(&text[..17]);
        key[17..].copy_from_slice(&text[20..]);
        Some(key)
    }

    fn learn(&mut self, py: Python<'_>, text: &[u8]) -> PyResult<Place> {
        let made = self.place.call1(py, (PyBytes::new(py, text),))?;
        let (path, reason, minute): (Option<Py<PyAny>>, Option<Py<PyAny>>, bool) =
            made.extract(py)?;
        if self.texts.len() + self.minutes.len() >= self.limit {
            self.texts.clear();
            self.minutes.clear();
            self.paths.clear();
            self.reasons.clear();
        }
        let place = match (path, reason) {
            (Some(path), _) => {
                let known = self
                    .paths
                    .iter()
                    .position(|p| p.bind(py).eq(path.bind(py)).unwrap_or(false));
                Place::Path(known.unwrap_or_else(|| {
                    self.paths.push(path);
                    self.paths.len() - 1
                }) as u32)
            }
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
        match (minute, Self::minute_key(text)) {
            (true, Some(key)) if self.minutes_of_apache => {
                self.minutes.insert(key, place);
            }
            _ => {
                self.texts.insert(text.to_vec(), place);
            }
        }
        Ok(place)
    }
}

#[pymethods]
impl Splitter {
    /// :param regex: the format's regex (one of the built-in formats'; Python's and Rust's syntax agree there).
    /// :param group: the regex group that is the timestamp text (0: the whole match).
    /// :param minutes_of_apache: texts are Apache's, and ``place`` may say a whole minute has one partition.
    /// :param place: ``place(text)`` -> ``(path, None, minute)`` or ``(None, reason, False)``.
    /// :param no_match: the reason of a line the regex finds nothing in.
    /// :param limit: distinct texts (and minutes) kept; full, the cache starts again.
    #[new]
    #[pyo3(signature = (*, regex, group, minutes_of_apache, place, no_match, limit))]
    fn new(
        regex: &str,
        group: usize,
        minutes_of_apache: bool,
        place: Py<PyAny>,
        no_match: Py<PyAny>,
        limit: usize,
    ) -> PyResult<Self> {
        let regex = regex::bytes::Regex::new(&format!("(?-u){regex}")).map_err(|e| {
            PyValueError::new_err(format!("the kernel cannot compile {regex:?}: {e}"))
        })?;
        Ok(Splitter {
            regex,
            group,
            minutes_of_apache,
            place,
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
        if self.texts.len() + self.minutes.len() + self.reasons.len() >= self.limit {
            // full: start again (between batches, so that a batch's numbers of paths stay)
            self.texts.clear();
            self.minutes.clear();
            self.paths.clear();
            self.path_numbers.clear();
            self.reasons.clear();
        }
        let mut lines: Vec<Vec<Bound<'py, PyAny>>> = Vec::new();
        let bad = PyList::empty(py);
        let mut captures = self.regex.capture_locations();
        let mut seen_paths = 0;
        for (i, value) in values.iter().enumerate() {
            let Ok(bytes) = value.cast::<PyBytes>() else {
                continue;
            };
            let line = bytes.as_bytes();
            let Some(_) = self.regex.captures_read(&mut captures, line) else {
                bad.append((i, self.no_match.bind(py)))?;
                continue;
            };
            let Some((start, end)) = captures.get(self.group) else {
                bad.append((i, self.no_match.bind(py)))?;
                continue;
            };
            let text = &line[start..end];
            let known = match (self.minutes_of_apache, Self::minute_key(text)) {
                (true, Some(key)) => self.minutes.get(&key).copied(),
                _ => None,
            };
            let place = match known.or_else(|| self.texts.get(text).copied()) {
                Some(place) => place,
                None => self.learn(py, text)?,
            };
            match place {
                Place::Path(k) => {
                    let k = k as usize;
                    if lines.len() <= k {
                        lines.resize_with(k + 1, Vec::new);
                    }
                    lines[k].push(value);
                    seen_paths = seen_paths.max(k + 1);
                }
                Place::Reason(k) => bad.append((i, self.reasons[k as usize].bind(py)))?,
            }
        }
        let buckets = pyo3::types::PyDict::new(py);
        for (k, found) in lines.into_iter().enumerate().take(seen_paths) {
            if !found.is_empty() {
                buckets.set_item(self.paths[k].bind(py), PyList::new(py, found)?)?;
            }
        }
        Ok((buckets, bad))
    }
}

/// The archive's framing of a block of lines: ``(b"\n".join(lines) + b"\n", embedded, utf8)``, ``embedded``
/// the newlines inside the lines, ``utf8`` whether the whole block is valid UTF-8. The copy and the scans run
/// without the GIL (the reading thread goes on meanwhile); the lines are held by this call while it runs.
#[pyfunction]
fn frame<'py>(py: Python<'py>, lines: &Bound<'py, PyList>) -> PyResult<(Bound<'py, PyBytes>, usize, bool)> {
    let held: Vec<Bound<'py, PyBytes>> = lines
        .iter()
        .map(|v| v.cast_into::<PyBytes>().map_err(PyErr::from))
        .collect::<PyResult<_>>()?;
    let slices: Vec<&[u8]> = held.iter().map(|b| b.as_bytes()).collect();
    let total: usize = slices.iter().map(|s| s.len() + 1).sum();
    let mut embedded = 0;
    let mut utf8 = true;
    let data = PyBytes::new_with(py, total, |buf| {
        let (e, u) = py.detach(|| {
            let mut at = 0;
            for s in &slices {
                buf[at..at + s.len()].copy_from_slice(s);
                buf[at + s.len()] = b'\n';
                at += s.len() + 1;
            }
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

#[pymodule]
fn _kernel(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(frame, m)?)?;
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
    fn digits_drop_leading_zeros() {
        assert_eq!(digits(b"000"), b"0");
        assert_eq!(digits(b"0120"), b"120");
    }
}
