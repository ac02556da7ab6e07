//! Path scanning: the dotted signal paths (`msgraph.mfa.registered_ratio`) a rule's text
//! mentions, and the namespaces above them that must exist as CEL maps.
//!
//! Text only: it must not parse CEL (a lexical scan is enough and never fails) nor look at
//! signals.

use std::collections::HashSet;

use super::CompiledRule;

/// Dotted paths a rule text mentions: identifiers joined by `.` (or `["literal"]`), two
/// segments or more, string literals skipped, a trailing method or function name dropped.
/// Order of first appearance, no duplicates.
pub fn signal_paths(source: &str) -> Vec<String> {
    let chars: Vec<char> = source.chars().collect();
    let n = chars.len();
    let is_start = |c: char| c.is_ascii_alphabetic() || c == '_';
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let c = chars[i];
        if c == '"' || c == '\'' {
            i = skip_string(&chars, i).map_or(n, |(_, end)| end);
            continue;
        }
        let preceded = i > 0 && (is_ident(chars[i - 1]) || chars[i - 1] == '.');
        if !is_start(c) || preceded {
            i += 1;
            continue;
        }
        let mut segments: Vec<String> = Vec::new();
        let start = i;
        while i < n && is_ident(chars[i]) {
            i += 1;
        }
        segments.push(chars[start..i].iter().collect());
        loop {
            if i + 1 < n && chars[i] == '.' && is_start(chars[i + 1]) {
                let s = i + 1;
                i = s;
                while i < n && is_ident(chars[i]) {
                    i += 1;
                }
                segments.push(chars[s..i].iter().collect());
            } else if i + 1 < n && chars[i] == '[' && (chars[i + 1] == '"' || chars[i + 1] == '\'')
            {
                match skip_string(&chars, i + 1) {
                    Some((literal, end)) if end < n && chars[end] == ']' => {
                        segments.push(literal);
                        i = end + 1;
                    }
                    _ => break,
                }
            } else {
                break;
            }
        }
        let mut j = i;
        while j < n && chars[j].is_whitespace() {
            j += 1;
        }
        if j < n && chars[j] == '(' {
            segments.pop();
        }
        if segments.len() >= 2 {
            let path = segments.join(".");
            if seen.insert(path.clone()) {
                out.push(path);
            }
        }
    }
    out
}

/// Skip a string literal starting at `chars[start]` (a quote). Returns its content and the
/// index just after the closing quote; `None` when unterminated.
fn skip_string(chars: &[char], start: usize) -> Option<(String, usize)> {
    let quote = chars[start];
    let mut content = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if let Some(&next) = chars.get(i + 1) {
                    content.push(next);
                }
                i += 2;
            }
            c if c == quote => return Some((content, i + 1)),
            c => {
                content.push(c);
                i += 1;
            }
        }
    }
    None
}

/// The namespaces (`msgraph`, `msgraph.mfa`) above every path the given rules mention, sorted
/// and without duplicates: they always exist as CEL maps, so `has(msgraph.ca.x)` is `false`,
/// not an error, when nothing under `msgraph.ca` was ever collected.
pub fn rule_namespaces<'r>(rules: impl IntoIterator<Item = &'r CompiledRule>) -> Vec<String> {
    let mut out: Vec<String> = rules
        .into_iter()
        .flat_map(|r| r.paths())
        .filter_map(|p| p.rsplit_once('.').map(|(parent, _)| parent.to_string()))
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_paths_from_text() {
        let table: [(&str, &[&str]); 6] = [
            (
                "msgraph.mfa.users_total == 0.0 ? 'n' : msgraph.mfa.registered_ratio",
                &["msgraph.mfa.users_total", "msgraph.mfa.registered_ratio"],
            ),
            (
                "msgraph.securescore.controls[\"AdminMFAV2\"].score",
                &["msgraph.securescore.controls.AdminMFAV2.score"],
            ),
            (
                "msgraph.securescore.controls.X.state.startsWith('a.b.c')",
                &["msgraph.securescore.controls.X.state"],
            ),
            ("'msgraph.mfa.not_a_path' == x", &[]),
            ("has(msgraph.a.b) && msgraph.a.b", &["msgraph.a.b"]),
            ("size(x) > 0.5", &[]),
        ];
        for (rule, expected) in table {
            assert_eq!(signal_paths(rule), expected, "rule {rule}");
        }
    }
}
