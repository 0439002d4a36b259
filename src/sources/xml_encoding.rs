//! The character encoding of an XML stream, and a reader that turns it into UTF-8.
//!
//! XML allows UTF-16 and any encoding named in the declaration (`<?xml version="1.0"
//! encoding="ISO-8859-1"?>`); quick-xml parses only ASCII-compatible bytes. The encoding is
//! found as the XML specification's appendix F says: a byte-order mark (UTF-8, UTF-16LE,
//! UTF-16BE) first, then the byte pattern of `<?` in UTF-16 without a mark, then the
//! declaration's `encoding`, else UTF-8. A UTF-8 stream passes through untouched (without its
//! mark); any other is decoded as it streams, with `encoding_rs`, in bounded buffers.

use std::io::{self, Read};

use encoding_rs::{CoderResult, Decoder, Encoding, UTF_16BE, UTF_16LE, UTF_8};

/// Bytes looked at to find the encoding.
const SNIFF_BYTES: usize = 1024;

/// An XML stream as UTF-8, with the encoding it was written in.
pub struct Utf8Xml<R> {
    /// The encoding of the original bytes.
    pub encoding: &'static Encoding,
    /// The text, UTF-8 without a byte-order mark.
    pub reader: Utf8Stream<R>,
}

/// The UTF-8 text of an XML stream: the bytes themselves, or decoded from another encoding.
pub enum Utf8Stream<R> {
    /// Already UTF-8.
    Plain(io::Chain<io::Cursor<Vec<u8>>, R>),
    /// Decoded as it is read.
    Decoded(Box<Utf8Decoder<io::Chain<io::Cursor<Vec<u8>>, R>>>),
}

impl<R: Read> Read for Utf8Stream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Utf8Stream::Plain(r) => r.read(buf),
            Utf8Stream::Decoded(r) => r.read(buf),
        }
    }
}

/// Reads the start of `input` to find its encoding and returns it as a UTF-8 stream.
pub fn utf8_xml<R: Read>(mut input: R) -> io::Result<Utf8Xml<R>> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    (&mut input)
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)?;
    let (encoding, bom_len) = sniff(&head);
    let mut head = io::Cursor::new(head);
    head.set_position(bom_len as u64);
    let rest = head.chain(input);
    let reader = if encoding == UTF_8 {
        Utf8Stream::Plain(rest)
    } else {
        Utf8Stream::Decoded(Box::new(Utf8Decoder::new(rest, encoding)))
    };
    Ok(Utf8Xml { encoding, reader })
}

/// The encoding of an XML document from its first bytes, and the length of its byte-order mark.
pub fn sniff(head: &[u8]) -> (&'static Encoding, usize) {
    if let Some((enc, len)) = Encoding::for_bom(head) {
        return (enc, len);
    }
    if head.starts_with(&[b'<', 0, b'?', 0]) {
        return (UTF_16LE, 0);
    }
    if head.starts_with(&[0, b'<', 0, b'?']) {
        return (UTF_16BE, 0);
    }
    match declared_encoding(head) {
        // A declaration read as ASCII cannot truly be UTF-16 (that has no ASCII bytes).
        Some(enc) if enc != UTF_16LE && enc != UTF_16BE => (enc, 0),
        _ => (UTF_8, 0),
    }
}

/// The encoding named by the `encoding` pseudo-attribute of an `<?xml ...?>` declaration.
fn declared_encoding(head: &[u8]) -> Option<&'static Encoding> {
    let decl = head.strip_prefix(b"<?xml")?;
    let end = memchr::memmem::find(decl, b"?>")?;
    let decl = &decl[..end];
    let at = memchr::memmem::find(decl, b"encoding")?;
    let rest = decl[at + "encoding".len()..].trim_ascii_start();
    let rest = rest.strip_prefix(b"=")?.trim_ascii_start();
    let quote = *rest.first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let value = &rest[1..];
    let close = memchr::memchr(quote, value)?;
    Encoding::for_label(&value[..close])
}

/// Decodes a stream of another encoding into UTF-8 as it is read (malformed sequences become
/// U+FFFD).
pub struct Utf8Decoder<R> {
    inner: R,
    decoder: Decoder,
    input: Vec<u8>,
    in_start: usize,
    in_end: usize,
    output: Vec<u8>,
    out_start: usize,
    out_end: usize,
    eof: bool,
    finished: bool,
}

impl<R: Read> Utf8Decoder<R> {
    fn new(inner: R, encoding: &'static Encoding) -> Self {
        Utf8Decoder {
            inner,
            decoder: encoding.new_decoder_without_bom_handling(),
            input: vec![0; 64 << 10],
            in_start: 0,
            in_end: 0,
            output: vec![0; 128 << 10],
            out_start: 0,
            out_end: 0,
            eof: false,
            finished: false,
        }
    }
}

impl<R: Read> Read for Utf8Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_start < self.out_end {
                let n = buf.len().min(self.out_end - self.out_start);
                buf[..n].copy_from_slice(&self.output[self.out_start..self.out_start + n]);
                self.out_start += n;
                return Ok(n);
            }
            if self.finished || buf.is_empty() {
                return Ok(0);
            }
            if self.in_start == self.in_end && !self.eof {
                let n = match self.inner.read(&mut self.input) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                self.in_start = 0;
                self.in_end = n;
                self.eof = n == 0;
            }
            let (result, read, written, _) = self.decoder.decode_to_utf8(
                &self.input[self.in_start..self.in_end],
                &mut self.output,
                self.eof,
            );
            self.in_start += read;
            self.out_start = 0;
            self.out_end = written;
            if self.eof && result == CoderResult::InputEmpty {
                self.finished = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(bytes: Vec<u8>) -> (String, &'static str) {
        let mut x = utf8_xml(io::Cursor::new(bytes)).unwrap();
        let mut s = String::new();
        x.reader.read_to_string(&mut s).unwrap();
        (s, x.encoding.name())
    }

    fn utf16(text: &str, le: bool, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if bom {
            out.extend_from_slice(if le { &[0xFF, 0xFE] } else { &[0xFE, 0xFF] });
        }
        for u in text.encode_utf16() {
            out.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
        }
        out
    }

    #[test]
    fn marks_patterns_and_declarations_decide() {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><a>Straße 東京</a>";
        for (le, bom) in [(true, true), (false, true), (true, false), (false, false)] {
            let (text, _) = decoded(utf16(xml, le, bom));
            assert_eq!(text, xml, "le {le} bom {bom}");
        }
        let mut utf8 = vec![0xEF, 0xBB, 0xBF];
        utf8.extend_from_slice(xml.as_bytes());
        assert_eq!(decoded(utf8), (xml.to_string(), "UTF-8"));
        let latin = b"<?xml version='1.0' encoding = 'ISO-8859-1'?><a>Stra\xdfe</a>".to_vec();
        let (text, name) = decoded(latin);
        assert_eq!(
            (text.as_str(), name),
            (
                "<?xml version='1.0' encoding = 'ISO-8859-1'?><a>Straße</a>",
                "windows-1252"
            )
        );
        // A UTF-16 label on ASCII bytes is a wrong label: the bytes are read as UTF-8.
        assert_eq!(decoded(xml.as_bytes().to_vec()).1, "UTF-8");
        assert_eq!(decoded(Vec::new()), (String::new(), "UTF-8"));
    }

    #[test]
    fn long_streams_decode_across_buffer_edges() {
        let line = "<p>Ünïcödé ✓ text</p>\n";
        let xml = format!("<r>{}</r>", line.repeat(20_000));
        let (text, name) = decoded(utf16(&xml, true, true));
        assert_eq!(name, "UTF-16LE");
        assert!(text == xml);
    }
}
