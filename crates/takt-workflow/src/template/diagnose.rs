//! Turning liquid's multi-line error reports into one-line messages with file positions.

use crate::error::Position;
use crate::front_matter::position_of;
use crate::suggest::did_you_mean;

/// The message and file position of a parse error. `template` is the text that was parsed and
/// `start` the file position of its first character.
pub(super) fn parse_error(
    report: &str,
    template: &str,
    start: Position,
) -> (String, Option<Position>) {
    let mut message = flatten(report);
    let mut position = pest_position(report).map(|(line, column)| shift(start, line, column));
    if let Some(filter) = field(report, "requested filter=") {
        if position.is_none() {
            position = find_filter(template, filter).map(|offset| {
                let at = position_of(template, offset);
                shift(start, at.line, at.column)
            });
        }
        let available: Vec<&str> = field(report, "available filters=")
            .map(|list| list.split(", ").collect())
            .unwrap_or_default();
        if let Some(known) = did_you_mean(filter, &available) {
            message = format!("unknown filter `{filter}`, did you mean `{known}`? ({message})");
        } else {
            message = format!("unknown filter `{filter}` ({message})");
        }
    }
    (message, position)
}

/// Liquid's report as one line, without the echoed source lines.
pub(super) fn flatten(report: &str) -> String {
    let report = report.strip_prefix("liquid:").unwrap_or(report);
    report
        .lines()
        .map(str::trim)
        .filter(|line| {
            !line.is_empty()
                && *line != "with:"
                && !line.starts_with("-->")
                && !line.starts_with('|')
                && !is_source_echo(line)
        })
        .map(|line| line.trim_start_matches("= "))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `12 | {% if x %}`: a source line echoed by the parser.
fn is_source_echo(line: &str) -> bool {
    line.split_once('|').is_some_and(|(number, _)| {
        !number.trim().is_empty() && number.trim().chars().all(|c| c.is_ascii_digit())
    })
}

/// The ` --> LINE:COLUMN` pest puts in syntax errors, relative to the template.
fn pest_position(report: &str) -> Option<(u32, u32)> {
    let after = report.split("-->").nth(1)?.trim_start();
    let (line, rest) = after.split_once(':')?;
    let line = line.trim().parse().ok()?;
    let column = rest
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()?;
    Some((line, column))
}

/// A template position shifted to the file: line 1 continues `start`'s line.
fn shift(start: Position, line: u32, column: u32) -> Position {
    if line <= 1 {
        Position::new(
            start.line,
            start.column.saturating_add(column.saturating_sub(1)),
        )
    } else {
        Position::new(start.line.saturating_add(line - 1), column)
    }
}

/// The value after `key` up to the end of its line.
fn field<'a>(report: &'a str, key: &str) -> Option<&'a str> {
    let rest = &report[report.find(key)? + key.len()..];
    Some(rest.lines().next().unwrap_or_default().trim())
}

/// Byte offset of the first `| name` in the template.
fn find_filter(template: &str, name: &str) -> Option<usize> {
    template.match_indices(name).map(|(i, _)| i).find(|&i| {
        let before = template[..i].trim_end();
        let after = template[i + name.len()..].chars().next();
        before.ends_with('|') && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_liquid_reports() {
        assert_eq!(
            flatten("liquid: Unknown variable\n  with:\n    requested variable=nope\n"),
            "Unknown variable; requested variable=nope"
        );
        assert_eq!(
            flatten(
                "liquid:  --> 1:17\n1 | Hello {% if x %}\n  |                 ^\n  = Unclosed block. {% endif %} tag expected.\n"
            ),
            "Unclosed block. {% endif %} tag expected."
        );
    }

    #[test]
    fn syntax_error_positions_are_shifted_to_the_file() {
        let start = Position::new(10, 3);
        let (_, position) = parse_error(" --> 1:4\n", "", start);
        assert_eq!(position, Some(Position::new(10, 6)));
        let (_, position) = parse_error(" --> 3:11\n", "", start);
        assert_eq!(position, Some(Position::new(12, 11)));
    }

    #[test]
    fn unknown_filters_are_located_and_suggested() {
        let report = "liquid: Unknown filter\n  with:\n    requested filter=upcse\n    available filters=downcase, upcase\n";
        let (message, position) = parse_error(report, "Hi\n{{ x | upcse }}", Position::new(5, 1));
        assert!(
            message.starts_with("unknown filter `upcse`, did you mean `upcase`?"),
            "{message}"
        );
        assert_eq!(position, Some(Position::new(6, 8)));
    }

    #[test]
    fn filter_lookup_needs_a_pipe() {
        assert_eq!(find_filter("shout | shout", "shout"), Some(8));
        assert_eq!(find_filter("x | shouted", "shout"), None);
    }
}
