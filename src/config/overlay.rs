//! Environment overlay: `POSTURED__SECTION__KEY=value` sets `section.key` of the parsed TOML
//! table before it is decoded (segments lower-cased; a numeric segment indexes an array; the
//! value is read as TOML when it parses as one, otherwise as a string).
//!
//! Must not: read the process environment itself (the pairs are passed in).

use super::{ConfigProblem, ENV_PREFIX, problem};

/// Apply `POSTURED__A__B=value` overrides to the parsed table.
pub(super) fn apply_overrides(
    root: &mut toml::Table,
    overrides: &[(String, String)],
    problems: &mut Vec<ConfigProblem>,
) {
    for (name, raw) in overrides {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let segments: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        if segments.iter().any(String::is_empty) {
            problems.push(problem(name.as_str(), "malformed override name"));
            continue;
        }
        let value = parse_override_value(raw);
        if let Err(m) = set_path(root, &segments, value) {
            problems.push(problem(format!("{name} ({})", segments.join(".")), m));
        }
    }
}

fn parse_override_value(raw: &str) -> toml::Value {
    format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn set_path(
    table: &mut toml::Table,
    segments: &[String],
    value: toml::Value,
) -> Result<(), String> {
    let (first, rest) = segments.split_first().ok_or("empty key")?;
    if rest.is_empty() {
        table.insert(first.clone(), value);
        return Ok(());
    }
    let slot = table
        .entry(first.clone())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    set_in_value(slot, rest, value)
}

fn set_in_value(
    slot: &mut toml::Value,
    segments: &[String],
    value: toml::Value,
) -> Result<(), String> {
    match slot {
        toml::Value::Table(t) => set_path(t, segments, value),
        toml::Value::Array(items) => {
            let (idx, rest) = segments.split_first().ok_or("empty key")?;
            let i: usize = idx
                .parse()
                .map_err(|_| format!("{idx:?} is not an array index"))?;
            let len = items.len();
            let item = items
                .get_mut(i)
                .ok_or_else(|| format!("index {i} is out of range (array has {len})"))?;
            if rest.is_empty() {
                *item = value;
                Ok(())
            } else {
                set_in_value(item, rest, value)
            }
        }
        _ => Err("cannot set a key inside a plain value".into()),
    }
}
