//! The rule-based English sentence splitter shared by the C4 "at least 5 sentences" rule
//! ([`count_sentences`]) and C4's three-sentence span deduplication ([`split_sentences`]); C4 and
//! datatrove use NLTK's Punkt model, which is not available in Rust.
//!
//! A line end always ends a sentence. Within a line, a sentence ends at a run of `.`, `!`, `?`
//! or `…` (closing quotes and brackets may follow) that is followed by the end of the line, or by
//! whitespace and then a character that is not a lowercase letter. A period does not end a
//! sentence after a single letter (`J. Smith`) or a common abbreviation (`Mr.`, `Dr.`, `e.g.`,
//! `etc.`, `No.`, ...). Every stretch of non-blank text between ends is a sentence;
//! [`count_sentences`] counts only those holding a letter or digit.

/// Abbreviations (lowercase, without the final period) after which a period is no sentence end.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "inc", "ltd",
    "co", "corp", "no", "vol", "fig", "gen", "col", "lt", "sgt", "capt", "rev", "hon", "jan",
    "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "approx", "dept",
    "est", "mt", "ft", "u.s", "u.k", "p", "pp", "cf", "al",
];

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…')
}

fn is_closing(c: char) -> bool {
    matches!(c, '"' | '\'' | ')' | ']' | '}' | '”' | '’' | '»' | '›')
}

/// True when the word ending just before a period at byte `dot` is an abbreviation or initial.
fn abbreviation_before(text: &str, dot: usize) -> bool {
    let head = &text[..dot];
    let word_start = head
        .char_indices()
        .rev()
        .find(|&(_, c)| c.is_whitespace() || matches!(c, '(' | '"' | '\'' | '['))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = &head[word_start..];
    if word.is_empty() {
        return false;
    }
    let mut chars = word.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return c.is_alphabetic();
    }
    word.len() <= 6
        && ABBREVIATIONS
            .iter()
            .any(|a| a.len() == word.len() && a.eq_ignore_ascii_case(word))
}

/// One sentence: its byte range in the text and its line number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sentence {
    /// Start byte.
    pub start: usize,
    /// End byte (exclusive, trailing whitespace excluded).
    pub end: usize,
    /// Index of the line it is on.
    pub line: usize,
    /// Whether it holds a letter or digit.
    pub has_alphanumeric: bool,
}

/// Calls `f` with every sentence of `text`, in order (rules in the module documentation).
pub fn for_each_sentence(text: &str, mut f: impl FnMut(Sentence)) {
    let mut line_start = 0;
    for (line_no, line) in text.split('\n').enumerate() {
        let base = line_start;
        line_start += line.len() + 1;
        let mut start: Option<usize> = None;
        let mut content = false;
        let mut chars = line.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c.is_whitespace() {
                continue;
            }
            start.get_or_insert(i);
            if !is_terminator(c) {
                content |= c.is_alphanumeric();
                continue;
            }
            let single_period = c == '.' && chars.peek().is_none_or(|&(_, n)| n != '.');
            let mut end = i + c.len_utf8();
            while let Some(&(k, n)) = chars.peek() {
                if is_terminator(n) || is_closing(n) {
                    end = k + n.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let boundary = match line[end..].chars().next() {
                None => true,
                Some(n) if n.is_whitespace() => line[end..]
                    .trim_start()
                    .chars()
                    .next()
                    .is_none_or(|x| !x.is_lowercase()),
                Some(_) => false,
            };
            if boundary && !(single_period && abbreviation_before(line, i)) {
                if let Some(s) = start.take() {
                    f(Sentence {
                        start: base + s,
                        end: base + end,
                        line: line_no,
                        has_alphanumeric: content,
                    });
                }
                content = false;
            }
        }
        if let Some(s) = start {
            f(Sentence {
                start: base + s,
                end: base + line.trim_end().len(),
                line: line_no,
                has_alphanumeric: content,
            });
        }
    }
}

/// Cuts `text` into sentences (rules in the module documentation), replacing `out`.
pub fn split_sentences(text: &str, out: &mut Vec<Sentence>) {
    out.clear();
    for_each_sentence(text, |s| out.push(s));
}

/// Counts the sentences of `text` that hold a letter or digit.
pub fn count_sentences(text: &str) -> usize {
    let mut count = 0;
    for_each_sentence(text, |s| count += usize::from(s.has_alphanumeric));
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_sentence_ends() {
        assert_eq!(count_sentences("One. Two! Three? Four"), 4);
        assert_eq!(count_sentences("He said \"stop.\" Then he left."), 2);
        assert_eq!(
            count_sentences("Mr. Smith met Dr. J. Watson at 3 p.m. today."),
            1
        );
        assert_eq!(count_sentences("Version 3.14 is out... and more"), 1);
        assert_eq!(count_sentences("Wait... What?"), 2);
        assert_eq!(count_sentences(""), 0);
        assert_eq!(count_sentences("..."), 0);
        assert_eq!(count_sentences("One line\nanother line"), 2);
    }

    #[test]
    fn sentences_split_on_terminal_punctuation_and_lines() {
        let text = "Hello there. It is \"fine!\" Version 1.5 works\nSecond line? Yes\n\
                    Mr. Smith met Dr. Watson … at 3 p.m. today.  ... \n\n";
        let mut v = Vec::new();
        split_sentences(text, &mut v);
        let got: Vec<&str> = v.iter().map(|s| &text[s.start..s.end]).collect();
        assert_eq!(
            got,
            [
                "Hello there.",
                "It is \"fine!\"",
                "Version 1.5 works",
                "Second line?",
                "Yes",
                "Mr. Smith met Dr. Watson … at 3 p.m. today.",
                "..."
            ]
        );
        let lines: Vec<usize> = v.iter().map(|s| s.line).collect();
        assert_eq!(lines, [0, 0, 0, 1, 1, 2, 2]);
        assert!(!v[6].has_alphanumeric && v[5].has_alphanumeric);
    }
}
