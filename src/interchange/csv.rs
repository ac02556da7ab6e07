//! CSV: templates in a flat layout (import and export) and assessment reports (export), with
//! the `csv` crate.
//!
//! ## Template CSV layout
//!
//! One header row, then one row per (control, action) mapping. Columns are found by header
//! name, case-insensitively, in any order; unknown columns are ignored. The names are the
//! Compliance Manager workbook's, plus `templateId`, `actionId` and `responsibility`:
//!
//! | column | meaning | required |
//! |---|---|---|
//! | `templateId` | template id (else derived from `title`) | |
//! | `title`, `product`, `certification`, `inScopeServices` (`;;`) | template fields, repeated on every row (empty cells are fine; different non-empty values are an error) | `title`*, `certification`* (at least once) |
//! | `controlName`, `controlFamily`, `controlTitle`, `controlDescription` | the control of this row; empty `controlName` = an action no control references | column `controlName`; on a control's first row `controlFamily`*, `controlTitle`* |
//! | `actionId`, `actionTitle`, `implementationType`, `actionScore`, `responsibility`, `actionDescriptionTitle`, `actionDescription`, `actionGuidance`, `actionEvidence` | the action of this row; empty `actionTitle` = a control without actions | columns `actionTitle`, `implementationType`, `actionScore`; with a title, `implementationType`* and `actionScore`* |
//!
//! A row without `controlName` defines an action without mapping it. A control or an action
//! that appears on several rows must repeat the same values (or leave them empty). Action ids follow [`super::resolve_action_id`]. Controls and actions keep the
//! order of their first row. Errors are located `NAME!Row:column` where Row is the record's
//! row as a spreadsheet shows it (header = 1).
//!
//! ## Assessment CSV
//!
//! One row per (control, action) of the report — controls without actions get one row with
//! empty action columns — with the columns of [`REPORT_COLUMNS`].

use std::collections::HashMap;

use super::{
    ExportError, ImportError, MAX_TABLE_CELLS, Table, implementation_type_label, parse_points,
    parse_responsibility, resolve_action_id, responsibility_label, split_list,
    template_id_from_title,
};
use crate::evaluation::Catalog;
use crate::model::report::AssessmentReport;
use crate::model::template::is_pattern;
use crate::model::template::{ImplementationType, Template, TemplateAction, TemplateControl};

/// Header of the template CSV written by [`template_to_csv`].
pub const TEMPLATE_COLUMNS: [&str; 18] = [
    "templateId",
    "title",
    "product",
    "certification",
    "inScopeServices",
    "controlName",
    "controlFamily",
    "controlTitle",
    "controlDescription",
    "actionId",
    "actionTitle",
    "implementationType",
    "actionScore",
    "responsibility",
    "actionDescriptionTitle",
    "actionDescription",
    "actionGuidance",
    "actionEvidence",
];

/// Header of the assessment CSV written by [`report_to_csv`].
pub const REPORT_COLUMNS: [&str; 29] = [
    "assessment",
    "tenant",
    "group",
    "template",
    "certification",
    "generated_at",
    "control",
    "control_family",
    "control_title",
    "control_status",
    "action",
    "action_title",
    "implementation_type",
    "responsibility",
    "testing_source",
    "implementation_status",
    "test_status",
    "points",
    "points_achieved",
    "points_possible",
    "status_since",
    "testing_logic",
    "reason",
    "evidence",
    "assigned_to",
    "notes",
    "implementation_date",
    "test_date",
    "test_notes",
];

/// Characters that make a spreadsheet read a cell as a formula when they start it (OWASP's
/// CSV-injection list: `=`, `+`, `-`, `@`, tab, carriage return; also line feed, NUL and the
/// full-width `＝＋－＠`).
const FORMULA_TRIGGERS: [char; 12] = [
    '=', '+', '-', '@', '\t', '\r', '\n', '\0', '\u{FF1D}', '\u{FF0B}', '\u{FF0D}', '\u{FF20}',
];

/// A CSV cell neutralised against formula injection (OWASP "CSV Injection"): a value starting
/// with a [formula trigger](FORMULA_TRIGGERS) — or with `'` itself, so that the rule can be
/// undone — gets a leading `'`, which spreadsheets take as "this is text" and do not show.
/// Every exporter of this module writes its cells through it, and quotes every field.
/// [`template_from_csv`] removes the `'` again ([`unneutralise`]), so templates round-trip.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(FORMULA_TRIGGERS) || cell.starts_with('\'') {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// Undo [`neutralise`] on an imported cell: a leading `'` followed by a formula trigger or by
/// another `'` is removed (as a spreadsheet would); any other text is kept.
pub fn unneutralise(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_TRIGGERS) || rest.starts_with('\'') => rest,
        _ => cell,
    }
}

/// A CSV writer quoting every field, as OWASP's CSV-injection guidance asks.
fn writer() -> ::csv::Writer<Vec<u8>> {
    ::csv::WriterBuilder::new()
        .quote_style(::csv::QuoteStyle::Always)
        .from_writer(Vec::new())
}

/// Write one record, every cell [neutralised](neutralise).
fn write_record<I, S>(w: &mut ::csv::Writer<Vec<u8>>, cells: I) -> Result<(), ::csv::Error>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    w.write_record(
        cells
            .into_iter()
            .map(|c| neutralise(c.as_ref()).into_owned()),
    )
}

/// Refuse a CSV file with a record of more than [`MAX_TABLE_CELLS`] fields before the `csv`
/// reader stores one: the fields are counted with `csv-core` (the `csv` crate's own parser,
/// same dialect), keeping nothing.
fn check_record_widths(text: &str, name: &str) -> Result<(), ImportError> {
    use ::csv_core::ReadFieldResult;
    let mut reader = ::csv_core::Reader::new();
    let mut input = text.as_bytes();
    let mut scratch = [0u8; 1024];
    let (mut record, mut fields) = (1usize, 0usize);
    loop {
        let (result, read, _) = reader.read_field(input, &mut scratch);
        input = &input[read..];
        match result {
            ReadFieldResult::InputEmpty | ReadFieldResult::OutputFull => {}
            ReadFieldResult::Field { record_end } => {
                fields += 1;
                if fields > MAX_TABLE_CELLS {
                    return Err(ImportError::new(
                        format!("{name}!{record}"),
                        format!("the row has more than {MAX_TABLE_CELLS} cells"),
                    ));
                }
                if record_end {
                    record += 1;
                    fields = 0;
                }
            }
            ReadFieldResult::End => return Ok(()),
        }
    }
}

fn read_table(text: &str, name: &str) -> Result<Table, Vec<ImportError>> {
    check_record_widths(text, name).map_err(|e| vec![e])?;
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let mut table = Table {
        sheet: name.to_owned(),
        header_row: 1,
        ..Table::default()
    };
    let mut kept = 0usize;
    let mut record = ::csv::StringRecord::new();
    for i in 0.. {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                return Err(vec![ImportError::new(
                    format!("{name}!{}", i + 1),
                    format!("malformed CSV: {e}"),
                )]);
            }
        }
        // Cells past the header's columns are never read: they are not kept.
        let width = if i == 0 {
            record.len()
        } else {
            record.len().min(table.headers.len())
        };
        if i > 0 && record.iter().take(width).all(|c| c.trim().is_empty()) {
            continue;
        }
        kept = kept.saturating_add(width.max(1));
        if kept > MAX_TABLE_CELLS {
            return Err(vec![ImportError::new(
                format!("{name}!{}", i + 1),
                format!("the file has more than {MAX_TABLE_CELLS} cells"),
            )]);
        }
        let cells: Vec<String> = record
            .iter()
            .take(width)
            .map(|c| unneutralise(c.trim()).to_owned())
            .collect();
        if i == 0 {
            table.headers = cells;
        } else {
            table.rows.push((i + 1, cells));
        }
    }
    Ok(table)
}

/// Keep the first non-empty value of a field; a later different non-empty value is an error.
fn agree(
    slot: &mut Option<(String, usize)>,
    value: &str,
    row: usize,
    sheet: &str,
    column: &str,
    errors: &mut Vec<ImportError>,
) {
    if value.is_empty() {
        return;
    }
    match slot {
        None => *slot = Some((value.to_owned(), row)),
        Some((v, first)) if v != value => errors.push(ImportError::cell(
            sheet,
            row,
            column,
            format!("`{value}` conflicts with `{v}` at row {first}"),
        )),
        Some(_) => {}
    }
}

/// Import a template from the flat CSV layout of the module documentation. `name` (e.g. the
/// file name) prefixes error locations.
///
/// # Errors
///
/// Every problem, as `name!Row:column: message`: malformed CSV, missing required columns or
/// values, unknown `implementationType`, `actionScore` not an integer in 1..=99, an unknown
/// `responsibility`, conflicting repeated values.
pub fn template_from_csv(
    text: &str,
    name: &str,
    catalog: &Catalog,
) -> Result<Template, Vec<ImportError>> {
    let t = read_table(text, name)?;
    let mut errors = Vec::new();
    t.require_columns(
        &[
            "title",
            "certification",
            "controlName",
            "actionTitle",
            "implementationType",
            "actionScore",
        ],
        &mut errors,
    );
    let mut fields: HashMap<&str, Option<(String, usize)>> = HashMap::new();
    let mut controls: Vec<TemplateControl> = Vec::new();
    let mut control_rows: HashMap<String, (usize, usize)> = HashMap::new(); // key -> (index, row)
    let mut actions: Vec<TemplateAction> = Vec::new();
    let mut action_rows: HashMap<String, (usize, usize)> = HashMap::new(); // id -> (index, row)
    let mut title_rows: HashMap<String, (String, usize)> = HashMap::new(); // title -> (id, row)

    for (row, cells) in &t.rows {
        let row = *row;
        for col in [
            "templateId",
            "title",
            "product",
            "certification",
            "inScopeServices",
        ] {
            agree(
                fields.entry(col).or_default(),
                t.get(cells, col),
                row,
                name,
                col,
                &mut errors,
            );
        }

        // The action of this row.
        let mut action_id = None;
        let title = t.get(cells, "actionTitle");
        let explicit = t.get(cells, "actionId");
        if title.is_empty() && is_pattern(explicit) {
            // A wildcard reference (`securescore.*`), not an action of its own.
            action_id = Some(explicit.to_owned());
        } else if !title.is_empty() {
            let itype = t
                .required(row, cells, "implementationType", &mut errors)
                .and_then(|v| {
                    ImplementationType::parse(v).or_else(|| {
                        errors.push(ImportError::cell(
                            name,
                            row,
                            "implementationType",
                            format!(
                                "unknown implementation type `{v}` (expected Operational, \
                                 Technical or Documentation)"
                            ),
                        ));
                        None
                    })
                });
            let points = t
                .required(row, cells, "actionScore", &mut errors)
                .and_then(|v| {
                    parse_points(v)
                        .map_err(|m| errors.push(ImportError::cell(name, row, "actionScore", m)))
                        .ok()
                });
            let resp_text = t.get(cells, "responsibility");
            let responsibility = parse_responsibility(resp_text).or_else(|| {
                errors.push(ImportError::cell(
                    name,
                    row,
                    "responsibility",
                    format!("unknown responsibility `{resp_text}` (expected Customer or Provider)"),
                ));
                None
            });
            let id = resolve_action_id(t.get(cells, "actionId"), title, itype, catalog);
            match title_rows.get(&title.to_lowercase()) {
                Some((other, first)) if *other != id => errors.push(ImportError::cell(
                    name,
                    row,
                    "actionTitle",
                    format!("duplicate action title `{title}` (action `{other}` at row {first})"),
                )),
                Some(_) => {}
                None => {
                    title_rows.insert(title.to_lowercase(), (id.clone(), row));
                }
            }
            if let (Some(implementation_type), Some(points), Some(responsibility)) =
                (itype, points, responsibility)
            {
                let mut action = TemplateAction {
                    id: id.clone(),
                    title: title.to_owned(),
                    implementation_type,
                    points,
                    responsibility,
                    description_title: t.get(cells, "actionDescriptionTitle").to_owned(),
                    description: t.get(cells, "actionDescription").to_owned(),
                    guidance: t.get(cells, "actionGuidance").to_owned(),
                    evidence: t.get(cells, "actionEvidence").to_owned(),
                };
                if let Some(&(i, _)) = action_rows.get(&id)
                    && actions[i].title.to_lowercase() == action.title.to_lowercase()
                {
                    action.title.clone_from(&actions[i].title);
                }
                match action_rows.get(&id) {
                    None => {
                        action_rows.insert(id.clone(), (actions.len(), row));
                        actions.push(action);
                    }
                    Some(&(i, first)) if actions[i] != action => {
                        errors.push(ImportError::cell(
                            name,
                            row,
                            "actionTitle",
                            format!(
                                "action `{id}` differs from its definition at row {first} \
                                 (repeat the same title, type, score, responsibility and \
                                 description)"
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
            action_id = Some(id);
        }

        // The control of this row.
        let cid = t.get(cells, "controlName");
        if cid.is_empty() {
            continue;
        }
        let key = cid.to_lowercase();
        let index = match control_rows.get(&key) {
            Some(&(i, first)) => {
                let c = &controls[i];
                for (col, have) in [
                    ("controlFamily", &c.family),
                    ("controlTitle", &c.title),
                    ("controlDescription", &c.description),
                ] {
                    let v = t.get(cells, col);
                    if !v.is_empty() && v != have {
                        errors.push(ImportError::cell(
                            name,
                            row,
                            col,
                            format!("`{v}` conflicts with `{have}` at row {first}"),
                        ));
                    }
                }
                i
            }
            None => {
                let family = t.required(row, cells, "controlFamily", &mut errors);
                let ctitle = t.required(row, cells, "controlTitle", &mut errors);
                control_rows.insert(key, (controls.len(), row));
                controls.push(TemplateControl {
                    id: cid.to_owned(),
                    family: family.unwrap_or_default().to_owned(),
                    title: ctitle.unwrap_or_default().to_owned(),
                    description: t.get(cells, "controlDescription").to_owned(),
                    actions: Vec::new(),
                });
                controls.len() - 1
            }
        };
        if let Some(id) = action_id
            && !controls[index].actions.contains(&id)
        {
            controls[index].actions.push(id);
        }
    }

    let value = |k: &str| {
        fields
            .get(k)
            .and_then(|v| v.as_ref())
            .map(|(v, _)| v.clone())
    };
    for col in ["title", "certification"] {
        if t.column(col).is_some() && value(col).is_none() {
            errors.push(ImportError::cell(
                name,
                2,
                col,
                "required value is empty (on every row)",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let title = value("title").unwrap_or_default();
    Ok(Template {
        id: value("templateId").unwrap_or_else(|| template_id_from_title(&title)),
        title,
        product: value("product").unwrap_or_default(),
        certification: value("certification").unwrap_or_default(),
        in_scope_services: split_list(&value("inScopeServices").unwrap_or_default()),
        controls,
        actions,
    })
}

/// Write a template in the flat CSV layout ([`TEMPLATE_COLUMNS`]): one row per action (no
/// control columns, template order), then one row per (control, action) — a control without
/// actions on a row with empty action columns. [`template_from_csv`] reads it back to the same
/// template.
///
/// # Errors
///
/// The CSV writer's error.
pub fn template_to_csv(template: &Template) -> Result<String, ExportError> {
    let mut w = writer();
    write_record(&mut w, TEMPLATE_COLUMNS)?;
    let services = template.in_scope_services.join(";;");
    let head = [
        template.id.as_str(),
        template.title.as_str(),
        template.product.as_str(),
        template.certification.as_str(),
        services.as_str(),
    ];
    let by_id: HashMap<&str, &TemplateAction> = template
        .actions
        .iter()
        .map(|a| (a.id.as_str(), a))
        .collect();
    let action_cells = |a: Option<&TemplateAction>| -> Vec<String> {
        match a {
            None => vec![String::new(); 9],
            Some(a) => vec![
                a.id.clone(),
                a.title.clone(),
                implementation_type_label(a.implementation_type).to_owned(),
                a.points.to_string(),
                responsibility_label(a.responsibility).to_owned(),
                a.description_title.clone(),
                a.description.clone(),
                a.guidance.clone(),
                a.evidence.clone(),
            ],
        }
    };
    let mut rows = 0;
    // One definition row per action first (no control), so that a re-import keeps the
    // template's action order; then one row per (control, action).
    for a in &template.actions {
        let mut record: Vec<String> = head.iter().map(|s| (*s).to_owned()).collect();
        record.extend(vec![String::new(); 4]);
        record.extend(action_cells(Some(a)));
        write_record(&mut w, &record)?;
        rows += 1;
    }
    for c in &template.controls {
        let control = [
            c.id.as_str(),
            c.family.as_str(),
            c.title.as_str(),
            c.description.as_str(),
        ];
        let mut list: Vec<Vec<String>> = c
            .actions
            .iter()
            .map(|id| match by_id.get(id.as_str()) {
                Some(a) => action_cells(Some(a)),
                // A wildcard (or dangling) reference: the id alone.
                None => {
                    let mut cells = action_cells(None);
                    cells[0].clone_from(id);
                    cells
                }
            })
            .collect();
        if list.is_empty() {
            list.push(action_cells(None));
        }
        for cells in list {
            let mut record: Vec<String> = head.iter().map(|s| (*s).to_owned()).collect();
            record.extend(control.iter().map(|s| (*s).to_owned()));
            record.extend(cells);
            write_record(&mut w, &record)?;
            rows += 1;
        }
    }
    if rows == 0 {
        let mut record: Vec<String> = head.iter().map(|s| (*s).to_owned()).collect();
        record.extend(vec![String::new(); 13]);
        write_record(&mut w, &record)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ExportError::Csv(e.into_error().into()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// An instant as RFC 3339 to the second (UTC, `Z`); empty for none.
fn rfc3339(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Write an assessment report as CSV ([`REPORT_COLUMNS`]): one row per (control, action), a
/// control without actions on one row with empty action columns; statuses snake_case, times
/// RFC 3339, evidence links joined with `;;`.
///
/// # Errors
///
/// The CSV writer's error.
pub fn report_to_csv(report: &AssessmentReport) -> Result<String, ExportError> {
    let mut w = writer();
    write_record(&mut w, REPORT_COLUMNS)?;
    let by_id: HashMap<&str, _> = report.actions.iter().map(|a| (a.id.as_str(), a)).collect();
    let generated = report
        .generated_at
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for c in &report.controls {
        let mut ids: Vec<Option<&str>> = c.actions.iter().map(|a| Some(a.as_str())).collect();
        if ids.is_empty() {
            ids.push(None);
        }
        for id in ids {
            let mut record = vec![
                report.id.clone(),
                report.tenant.clone(),
                report.group.clone(),
                report.template_id.clone(),
                report.certification.clone(),
                generated.clone(),
                c.id.clone(),
                c.family.clone(),
                c.title.clone(),
                super::snake(&c.status),
            ];
            match id.and_then(|id| by_id.get(id)) {
                Some(a) => record.extend([
                    a.id.clone(),
                    a.title.clone(),
                    a.implementation_type.as_str().to_owned(),
                    super::snake(&a.responsibility),
                    super::snake(&a.testing_source),
                    a.implementation_status.as_str().to_owned(),
                    a.test_status.as_str().to_owned(),
                    a.points.to_string(),
                    a.points_achieved.to_string(),
                    a.points_possible.to_string(),
                    rfc3339(a.status_since),
                    a.testing_logic.clone(),
                    a.reason.clone().unwrap_or_default(),
                    a.evidence.join(";;"),
                    a.assigned_to.clone().unwrap_or_default(),
                    a.notes.clone().unwrap_or_default(),
                    rfc3339(a.implementation_date),
                    rfc3339(a.test_date),
                    a.test_notes.clone().unwrap_or_default(),
                ]),
                None => {
                    record.push(id.unwrap_or_default().to_owned());
                    record.extend(vec![String::new(); REPORT_COLUMNS.len() - 11]);
                }
            }
            write_record(&mut w, &record)?;
        }
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ExportError::Csv(e.into_error().into()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
title,certification,product,controlName,controlFamily,controlTitle,actionTitle,implementationType,actionScore
ACME,ACME 1.0,M365,C-1,Access,MFA,Register every user for multifactor authentication,Technical,27
,,,C-1,,,Write a policy,Documentation,3
,,,C-2,Access,Policy,write a policy,documentation,3
,,,C-3,Other,Empty,,,
,,,,,,Train staff,Operational,1
";

    #[test]
    fn flat_csv_becomes_a_template_and_round_trips() {
        let catalog = Catalog::builtin();
        let t = template_from_csv(GOOD, "t.csv", &catalog).expect("valid");
        assert_eq!(t.id, "acme");
        assert_eq!(t.product, "M365");
        let ids: Vec<&str> = t.actions.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(
            ids,
            vec![
                "msgraph.mfa.all_users",
                "custom.write_a_policy",
                "custom.train_staff"
            ]
        );
        assert_eq!(
            t.controls[0].actions,
            vec!["msgraph.mfa.all_users", "custom.write_a_policy"]
        );
        assert_eq!(t.controls[1].actions, vec!["custom.write_a_policy"]);
        assert!(t.controls[2].actions.is_empty());
        let text = template_to_csv(&t).expect("written");
        assert_eq!(template_from_csv(&text, "t.csv", &catalog), Ok(t));
    }

    #[test]
    fn csv_errors_are_located() {
        let text = "\
title,certification,controlName,controlFamily,controlTitle,actionTitle,implementationType,actionScore,responsibility
ACME,,C-1,F,T,A,Manual,3,
OTHER,,C-1,G,T,B,Technical,0,someone
,,C-2,,T,,,,
";
        let got: Vec<String> = template_from_csv(text, "t.csv", &Catalog::builtin())
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            vec![
                "t.csv!2:implementationType: unknown implementation type `Manual` (expected Operational, Technical or Documentation)",
                "t.csv!3:title: `OTHER` conflicts with `ACME` at row 2",
                "t.csv!3:actionScore: `0` is not an integer in 1..=99",
                "t.csv!3:responsibility: unknown responsibility `someone` (expected Customer or Provider)",
                "t.csv!3:controlFamily: `G` conflicts with `F` at row 2",
                "t.csv!4:controlFamily: required value is empty",
                "t.csv!2:certification: required value is empty (on every row)",
            ]
        );
        let missing = template_from_csv("title\nX\n", "m.csv", &Catalog::builtin()).unwrap_err();
        assert_eq!(missing.len(), 5);
        assert_eq!(
            missing[0].to_string(),
            "m.csv!1:certification: missing required column"
        );
    }

    /// Issue 8 row 11: template titles and notes starting with `=`, `+`, `-`, `@` were written
    /// verbatim to CSV exports, where a spreadsheet runs them as formulas. Every exported cell
    /// is now neutralised per OWASP (a leading `'`, every field quoted).
    #[test]
    fn formula_cells_are_neutralised_in_csv_exports() {
        let hostile = [
            "=HYPERLINK(\"https://evil.example\",\"x\")",
            "+1+cmd|' /C calc'!A0",
            "-2+3",
            "@SUM(1,2)",
            "\t=1",
            "\r=1",
            "＝1+1",
        ];
        for h in hostile {
            let report = crate::interchange::testutil::report(h, h, h, h);
            let text = report_to_csv(&report).expect("csv");
            let mut reader = ::csv::Reader::from_reader(text.as_bytes());
            for record in reader.records() {
                for cell in record.expect("row").iter() {
                    assert!(!cell.starts_with(FORMULA_TRIGGERS), "{h:?} -> {cell:?}");
                }
            }
            assert!(
                text.contains(&format!("\"'{}\"", h.replace('"', "\"\""))),
                "{text}"
            );
            // Every field is quoted.
            assert!(text.lines().all(|l| l.starts_with('"')), "{text}");
        }
        // The template CSV too, and it still round-trips.
        let catalog = Catalog::builtin();
        let mut t = template_from_csv(GOOD, "t.csv", &catalog).expect("valid");
        t.title = "=cmd|' /C calc'!A0".into();
        t.controls[0].title = "@SUM(A1)".into();
        t.actions[1].description = "-1".into();
        t.actions[2].description_title = "'quoted' as typed".into();
        t.product = "''=x".into();
        let text = template_to_csv(&t).expect("written");
        assert!(text.contains("\"'=cmd|' /C calc'!A0\""), "{text}");
        assert!(!text.contains(",\"=") && !text.contains(",\"@") && !text.contains(",\"-"));
        assert_eq!(template_from_csv(&text, "t.csv", &catalog), Ok(t));
    }

    #[test]
    fn neutralising_is_undone_only_where_it_was_applied() {
        for v in ["=1", "'", "''", "'a", "a'", "-", "plain", "'=x", "", "＠x"] {
            assert_eq!(unneutralise(&neutralise(v)), v, "{v:?}");
        }
        assert_eq!(unneutralise("'=x"), "=x");
        assert_eq!(unneutralise("'quoted'"), "'quoted'");
    }

    /// A CSV file spanning more than `MAX_TABLE_CELLS` is refused at the row that crosses the
    /// bound; cells past the header's columns are not kept (nor counted).
    #[test]
    fn a_csv_past_the_cell_bound_is_refused() {
        let header = "title,certification,controlName,actionTitle,implementationType,actionScore\n";
        let width = 6;
        let rows = MAX_TABLE_CELLS / width + 1;
        let mut text = String::from(header);
        for _ in 0..rows {
            text.push_str("a,,,,,\n");
        }
        let e = template_from_csv(&text, "big.csv", &Catalog::builtin()).unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(
            e[0].to_string(),
            // The header and `rows - 1` data rows hold `rows * width` > MAX_TABLE_CELLS cells.
            format!("big.csv!{rows}: the file has more than {MAX_TABLE_CELLS} cells")
        );
        // Long rows past the header are cut, not counted: 100 rows of 20,000 cells are fine.
        let mut text = String::from(header);
        for i in 0..100 {
            text.push_str(&format!(
                "T,C,c{i},a{i},Operational,1{}\n",
                ",".repeat(20_000)
            ));
        }
        let t = template_from_csv(&text, "wide.csv", &Catalog::builtin()).expect("valid");
        assert_eq!(t.actions.len(), 100);
    }
}
