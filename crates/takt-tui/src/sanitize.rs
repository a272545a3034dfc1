//! Making text from agents and trackers safe to draw in one terminal cell.
//!
//! Titles, messages, errors and questions come from people and programs the operator does not
//! control. Printed raw, an escape sequence in an issue title can move the cursor, recolour the
//! screen, set the window title, or hide text from the operator; a `\r` or a backspace can
//! overwrite what was drawn before it. [`sanitize`] drops every escape sequence and control
//! character and folds line breaks into spaces, so one value stays on one line of one cell.

/// What a character starts, as the scanner in [`sanitize`] sees it.
enum Introducer {
    /// Control Sequence Introducer (`ESC [` or U+009B): parameters up to a final byte.
    Csi,
    /// A string command (OSC `ESC ]`, DCS `ESC P`, SOS `ESC X`, PM `ESC ^`, APC `ESC _`, or
    /// their 8-bit forms): anything up to BEL or the string terminator `ESC \`.
    StringCommand,
}

/// Returns `text` as a single line with no escape sequences and no control characters.
///
/// - CSI sequences (`ESC [ … final`), string commands (OSC, DCS, SOS, PM, APC; ended by BEL or
///   `ESC \`) and the other `ESC` sequences (`ESC c`, `ESC ( B`, …) are removed whole, in their
///   7-bit and 8-bit (C1) forms. An unterminated sequence removes the rest of the text: its end
///   was never meant to be shown.
/// - Line breaks and tabs (`\n`, `\r`, `\t`, vertical tab, form feed) become one space; a run
///   of them, with the spaces around it, collapses to one space.
/// - Every other control character (BEL, backspace, DEL, C1, …) is dropped, and so are the
///   Unicode bidirectional overrides, which can make a terminal show text in another order than
///   it is stored in.
/// - Leading and trailing whitespace is trimmed.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // Set when whitespace was seen and not yet written: written once, before the next visible
    // character, which collapses runs and trims the end.
    let mut space_pending = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let introducer = match c {
            '\u{1b}' => match chars.next() {
                Some('[') => Some(Introducer::Csi),
                Some(']' | 'P' | 'X' | '^' | '_') => Some(Introducer::StringCommand),
                Some(next) => {
                    // nF sequences (`ESC ( B`) carry intermediate bytes before their final
                    // byte; the others are `ESC` plus one character.
                    if (' '..='/').contains(&next) {
                        while chars.next_if(|c| (' '..='/').contains(c)).is_some() {}
                        chars.next();
                    }
                    None
                }
                None => None,
            },
            '\u{9b}' => Some(Introducer::Csi),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => Some(Introducer::StringCommand),
            _ => {
                if is_line_space(c) {
                    space_pending = !out.is_empty();
                } else if !is_hidden(c) {
                    if space_pending {
                        out.push(' ');
                        space_pending = false;
                    }
                    out.push(c);
                }
                continue;
            }
        };
        match introducer {
            Some(Introducer::Csi) => {
                // Parameter and intermediate bytes, then one final byte in `@`..=`~`.
                for next in chars.by_ref() {
                    if ('@'..='~').contains(&next) {
                        break;
                    }
                }
            }
            Some(Introducer::StringCommand) => skip_string_command(&mut chars),
            None => {}
        }
    }
    out
}

/// Consumes a string command's body and its terminator (BEL, `ESC \` or the 8-bit ST).
fn skip_string_command(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                chars.next_if_eq(&'\\');
                return;
            }
            _ => {}
        }
    }
}

/// Characters that separate words on a line of their own: shown as one space.
fn is_line_space(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\t' | '\u{b}' | '\u{c}' | ' ') || c == '\u{2028}' || c == '\u{2029}'
}

/// Characters never shown: controls (C0, DEL, C1) and the bidirectional overrides.
fn is_hidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn plain_text_is_unchanged() {
        assert_eq!(
            sanitize("Fix the login page (#12) — ünïcödé ✓"),
            "Fix the login page (#12) — ünïcödé ✓"
        );
    }

    #[test]
    fn csi_sequences_are_removed() {
        assert_eq!(sanitize("\u{1b}[31mred\u{1b}[0m text"), "red text");
        assert_eq!(sanitize("a\u{1b}[2J\u{1b}[1;1Hb"), "ab");
        assert_eq!(sanitize("\u{1b}[?25lhidden cursor"), "hidden cursor");
        // The 8-bit CSI.
        assert_eq!(sanitize("x\u{9b}31my"), "xy");
    }

    #[test]
    fn osc_sequences_are_removed_with_either_terminator() {
        assert_eq!(sanitize("\u{1b}]0;pwned title\u{7}after"), "after");
        assert_eq!(
            sanitize("\u{1b}]8;;https://evil.example\u{1b}\\link\u{1b}]8;;\u{1b}\\"),
            "link"
        );
        assert_eq!(sanitize("a\u{9d}0;title\u{9c}b"), "ab");
    }

    #[test]
    fn other_string_commands_are_removed() {
        assert_eq!(sanitize("a\u{1b}Pq#0;2;0;0;0\u{1b}\\b"), "ab");
        assert_eq!(sanitize("a\u{1b}_apc payload\u{7}b"), "ab");
    }

    #[test]
    fn raw_escapes_are_removed() {
        assert_eq!(sanitize("reset\u{1b}c here"), "reset here");
        assert_eq!(sanitize("charset\u{1b}(B ok"), "charset ok");
        assert_eq!(sanitize("save\u{1b}7 restore\u{1b}8"), "save restore");
        assert_eq!(sanitize("trailing escape\u{1b}"), "trailing escape");
    }

    #[test]
    fn unterminated_sequences_drop_the_rest() {
        assert_eq!(sanitize("visible\u{1b}[12;"), "visible");
        assert_eq!(sanitize("visible\u{1b}]0;never ends"), "visible");
    }

    #[test]
    fn bell_backspace_and_delete_are_dropped() {
        assert_eq!(sanitize("ding\u{7}!"), "ding!");
        assert_eq!(
            sanitize("passwd\u{8}\u{8}\u{8}\u{8}\u{8}\u{8}secret"),
            "passwdsecret"
        );
        assert_eq!(sanitize("del\u{7f}ete"), "delete");
        assert_eq!(sanitize("nul\u{0}byte"), "nulbyte");
    }

    #[test]
    fn carriage_returns_cannot_overwrite_the_line() {
        assert_eq!(
            sanitize("all tests passed\rFAILED"),
            "all tests passed FAILED"
        );
    }

    #[test]
    fn line_breaks_and_tabs_fold_into_one_space() {
        assert_eq!(
            sanitize("first line\r\nsecond\n\n\tthird"),
            "first line second third"
        );
        assert_eq!(sanitize("  \n padded \n  "), "padded");
        assert_eq!(sanitize("para\u{2029}graph"), "para graph");
    }

    #[test]
    fn bidirectional_overrides_are_dropped() {
        assert_eq!(sanitize("abc\u{202e}fed\u{202c}"), "abcfed");
        assert_eq!(sanitize("\u{2067}isolate\u{2069}"), "isolate");
    }

    #[test]
    fn empty_and_control_only_text_is_empty() {
        assert_eq!(sanitize(""), "");
        assert_eq!(sanitize("\u{1b}[0m\r\n\u{7}"), "");
    }
}
