//! Plain text as every reader of it takes it: the UTF-8 check and the line ends. The books
//! reader uses them before it turns to other encodings, and tokenizer training (one sentence a
//! line, as SentencePiece reads its input) for its text files, so a file is cut and checked the
//! same way wherever it is read.

/// `bytes` as text when they are UTF-8; else the offset of the first byte that is not.
/// (simdutf8 checks ten times as fast as std on text that is not all ASCII.)
pub fn utf8(bytes: &[u8]) -> Result<&str, u64> {
    simdutf8::compat::from_utf8(bytes).map_err(|e| e.valid_up_to() as u64)
}

/// A line cut at `\n` without its line end: the `\r`s before the `\n` (`\r\n` ends a line
/// like `\n`).
pub fn line_content(line: &str) -> &str {
    line.trim_end_matches('\r')
}

/// `\r\n` and lone `\r` become `\n`.
pub fn normalize_newlines(text: &str) -> String {
    if !text.contains('\r') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_finds_the_first_bad_byte_and_lines_drop_their_ends() {
        assert_eq!(utf8("Grüße 東京".as_bytes()), Ok("Grüße 東京"));
        assert_eq!(utf8(b"ab\xC3(cd"), Err(2));
        assert_eq!(utf8(b"ok\n\xF0\x9D"), Err(3));
        assert_eq!(line_content("a line\r\r"), "a line");
        assert_eq!(line_content("mid\rline"), "mid\rline");
        assert_eq!(normalize_newlines("a\r\nb\rc\n"), "a\nb\nc\n");
    }
}
