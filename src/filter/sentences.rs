//! A small rule-based English sentence counter for the C4 "at least 5 sentences" rule (C4 and
//! datatrove use NLTK's Punkt model, which is not available in Rust).
//!
//! A sentence ends at a run of `.`, `!`, `?` or `…` (closing quotes and brackets may follow)
//! that is followed by whitespace and then a character that is not a lowercase letter, or by
//! the end of the text. A period does not end a sentence after a single letter (`J. Smith`) or
//! a common abbreviation (`Mr.`, `Dr.`, `e.g.`, `etc.`, `No.`, ...). Any text left after the last
//! end counts as one more sentence if it holds a letter or digit.

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

/// Counts the sentences of `text` (rules in the module documentation).
pub fn count_sentences(text: &str) -> usize {
    let mut count = 0;
    let mut content = false;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if !is_terminator(c) {
            content |= c.is_alphanumeric();
            continue;
        }
        let single_period = c == '.' && chars.peek().is_none_or(|&(_, n)| n != '.');
        while let Some(&(_, n)) = chars.peek() {
            if is_terminator(n) || is_closing(n) {
                chars.next();
            } else {
                break;
            }
        }
        let boundary = match chars.peek() {
            None => true,
            Some(&(_, n)) if n.is_whitespace() => {
                let next = text[i..]
                    .char_indices()
                    .skip_while(|&(_, x)| !x.is_whitespace())
                    .map(|(_, x)| x)
                    .find(|x| !x.is_whitespace());
                next.is_none_or(|x| !x.is_lowercase())
            }
            Some(_) => false,
        };
        if boundary && content && !(single_period && abbreviation_before(text, i)) {
            count += 1;
            content = false;
        }
    }
    count + content as usize
}

#[cfg(test)]
mod tests {
    use super::count_sentences;

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
    }
}
