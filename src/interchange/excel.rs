//! Excel: templates in the Microsoft Compliance Manager template layout (import with
//! `calamine`, export with `rust_xlsxwriter`) and assessment reports (export, one sheet per
//! view).
//!
//! ## Template workbook layout (Compliance Manager "template format")
//!
//! The first non-empty row of each sheet is its header; columns are found by header name,
//! case-insensitively, in any order; unknown columns are ignored; empty rows are skipped.
//!
//! | sheet | one row per | required columns (`*` = value required) | optional columns |
//! |---|---|---|---|
//! | `Template` | the template (exactly one row) | `title`*, `product`, `certification`* | `inScopeServices` (`;;`-separated), `id` (postured extension) |
//! | `ControlFamily` | control | `controlName`*, `controlFamily`*, `controlTitle`*, `controlActionTitle` (`;;`-separated action titles or ids; a wildcard id such as `securescore.*` stands for every evaluated action with that prefix) | `controlDescription` |
//! | `Actions` | action | `actionTitle`*, `implementationType`* (`Operational`, `Technical`, `Documentation`), `actionScore`* (integer 1..=99) | `actionDescriptionTitle`, `actionDescription`, `actionId`, `responsibility` (`Customer`/`Provider`; postured extensions) |
//! | `Dimensions` | (optional) | — | tolerated and ignored: postured templates carry no dimensions |
//!
//! Action ids: `actionId` when given, else [`super::resolve_action_id`] (a technical action
//! whose title is a catalog action's id or title takes that catalog id and is tested
//! automatically; otherwise `custom.<slug of the title>`). Template id: `id` when given, else
//! [`super::template_id_from_title`] of `title` (the CLI's `--id` overrides both).
//!
//! Every problem is collected and reported as `Sheet!Row:Column: message` with the row number
//! Excel shows; a workbook with any problem yields no template.

use std::collections::HashMap;
use std::io::Cursor;

use calamine::{Data, Reader};
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use super::{
    ExportError, ImportError, Table, implementation_type_label, parse_points, parse_responsibility,
    resolve_action_id, responsibility_label, split_list, template_id_from_title,
};
use crate::evaluation::Catalog;
use crate::model::report::AssessmentReport;
use crate::model::template::is_pattern;
use crate::model::template::{ImplementationType, Template, TemplateAction, TemplateControl};

/// Sheet with the template-level row.
pub const SHEET_TEMPLATE: &str = "Template";
/// Sheet with one row per control.
pub const SHEET_CONTROLS: &str = "ControlFamily";
/// Sheet with one row per action.
pub const SHEET_ACTIONS: &str = "Actions";

fn cell_text(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.trim().to_owned(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => dt.to_string(),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

/// Read one worksheet into a [`Table`] (header = first non-empty row).
fn read_table<R: Reader<Cursor<Vec<u8>>>>(
    wb: &mut R,
    sheet: &str,
) -> Result<Option<Table>, ImportError>
where
    R::Error: std::fmt::Display,
{
    let Some(name) = wb
        .sheet_names()
        .into_iter()
        .find(|n| n.trim().eq_ignore_ascii_case(sheet))
    else {
        return Ok(None);
    };
    let range = wb
        .worksheet_range(&name)
        .map_err(|e| ImportError::new(sheet, format!("cannot read the sheet: {e}")))?;
    let first_row = range.start().map(|(r, _)| r as usize).unwrap_or(0);
    let first_col = range.start().map(|(_, c)| c as usize).unwrap_or(0);
    let mut table = Table {
        sheet: sheet.to_owned(),
        ..Table::default()
    };
    let mut have_header = false;
    for (i, row) in range.rows().enumerate() {
        let excel_row = first_row + i + 1;
        let mut cells = vec![String::new(); first_col];
        cells.extend(row.iter().map(cell_text));
        if cells.iter().all(String::is_empty) {
            continue;
        }
        if have_header {
            table.rows.push((excel_row, cells));
        } else {
            table.header_row = excel_row;
            table.headers = cells;
            have_header = true;
        }
    }
    if !have_header {
        table.header_row = 1;
    }
    Ok(Some(table))
}

/// Import a template from a Compliance Manager template workbook (`.xlsx`, also `.xls`,
/// `.xlsb`, `.ods`), mapping technical actions to `catalog` where their titles match.
///
/// # Errors
///
/// Every problem found, as `Sheet!Row:Column: message` (see the module documentation): a
/// missing sheet or required column, an empty required value, an unknown
/// `implementationType`, an `actionScore` that is not an integer in 1..=99, a duplicate
/// `controlName`, `actionTitle` or action id, a `controlActionTitle` naming no action, more
/// or fewer than one template row.
pub fn template_from_xlsx(bytes: &[u8], catalog: &Catalog) -> Result<Template, Vec<ImportError>> {
    let mut wb = calamine::open_workbook_auto_from_rs(Cursor::new(bytes.to_vec()))
        .map_err(|e| vec![ImportError::new("workbook", format!("not a workbook: {e}"))])?;
    let mut errors = Vec::new();
    let mut tables = Vec::new();
    for sheet in [SHEET_TEMPLATE, SHEET_CONTROLS, SHEET_ACTIONS] {
        match read_table(&mut wb, sheet) {
            Ok(Some(t)) => tables.push(t),
            Ok(None) => {
                errors.push(ImportError::new(sheet, "missing sheet"));
                tables.push(Table::default());
            }
            Err(e) => {
                errors.push(e);
                tables.push(Table::default());
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let actions = tables.pop().unwrap_or_default();
    let controls = tables.pop().unwrap_or_default();
    let template = tables.pop().unwrap_or_default();
    template_from_tables(&template, &controls, &actions, catalog)
}

/// Build a template from the three Compliance Manager tables (shared by the workbook importer
/// and tests). See [`template_from_xlsx`] for the checks.
pub(crate) fn template_from_tables(
    tt: &Table,
    ct: &Table,
    at: &Table,
    catalog: &Catalog,
) -> Result<Template, Vec<ImportError>> {
    let mut errors = Vec::new();
    tt.require_columns(&["title", "product", "certification"], &mut errors);
    ct.require_columns(
        &[
            "controlName",
            "controlFamily",
            "controlTitle",
            "controlActionTitle",
        ],
        &mut errors,
    );
    at.require_columns(
        &["actionTitle", "implementationType", "actionScore"],
        &mut errors,
    );

    // Template row.
    let mut template = Template {
        id: String::new(),
        title: String::new(),
        product: String::new(),
        certification: String::new(),
        in_scope_services: Vec::new(),
        controls: Vec::new(),
        actions: Vec::new(),
    };
    {
        match tt.rows.as_slice() {
            [] => errors.push(ImportError::cell(
                &tt.sheet,
                tt.header_row + 1,
                "title",
                "required value is empty (the sheet has no template row)",
            )),
            [(row, cells), rest @ ..] => {
                for (extra, _) in rest {
                    errors.push(ImportError::cell(
                        &tt.sheet,
                        *extra,
                        "title",
                        format!("only one template row is allowed (the template is row {row})"),
                    ));
                }
                template.title = tt
                    .required(*row, cells, "title", &mut errors)
                    .unwrap_or_default()
                    .to_owned();
                template.certification = tt
                    .required(*row, cells, "certification", &mut errors)
                    .unwrap_or_default()
                    .to_owned();
                template.product = tt.get(cells, "product").to_owned();
                template.in_scope_services = split_list(tt.get(cells, "inScopeServices"));
                let id = tt.get(cells, "id");
                template.id = if id.is_empty() {
                    template_id_from_title(&template.title)
                } else {
                    id.to_owned()
                };
            }
        }
    }

    // Actions: title and id -> index.
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let mut first_row_of: HashMap<String, usize> = HashMap::new();
    {
        for (row, cells) in &at.rows {
            let title = at.required(*row, cells, "actionTitle", &mut errors);
            let itype = at
                .required(*row, cells, "implementationType", &mut errors)
                .and_then(|v| match ImplementationType::parse(v) {
                    Some(t) => Some(t),
                    None => {
                        errors.push(ImportError::cell(
                            &at.sheet,
                            *row,
                            "implementationType",
                            format!(
                                "unknown implementation type `{v}` (expected Operational, \
                                 Technical or Documentation)"
                            ),
                        ));
                        None
                    }
                });
            let points = at
                .required(*row, cells, "actionScore", &mut errors)
                .and_then(|v| match parse_points(v) {
                    Ok(p) => Some(p),
                    Err(m) => {
                        errors.push(ImportError::cell(&at.sheet, *row, "actionScore", m));
                        None
                    }
                });
            let resp_text = at.get(cells, "responsibility");
            let responsibility = parse_responsibility(resp_text).unwrap_or_else(|| {
                errors.push(ImportError::cell(
                    &at.sheet,
                    *row,
                    "responsibility",
                    format!("unknown responsibility `{resp_text}` (expected Customer or Provider)"),
                ));
                Default::default()
            });
            let Some(title) = title else { continue };
            let id = resolve_action_id(at.get(cells, "actionId"), title, itype, catalog);
            let title_key = format!("title:{}", title.to_lowercase());
            let id_key = format!("id:{id}");
            if let Some(first) = first_row_of.get(&title_key) {
                errors.push(ImportError::cell(
                    &at.sheet,
                    *row,
                    "actionTitle",
                    format!("duplicate action title `{title}` (first at row {first})"),
                ));
                continue;
            }
            if let Some(first) = first_row_of.get(&id_key) {
                errors.push(ImportError::cell(
                    &at.sheet,
                    *row,
                    "actionId",
                    format!("duplicate action id `{id}` (first at row {first})"),
                ));
                continue;
            }
            first_row_of.insert(title_key.clone(), *row);
            first_row_of.insert(id_key, *row);
            let (Some(implementation_type), Some(points)) = (itype, points) else {
                continue;
            };
            by_key.insert(title.to_lowercase(), template.actions.len());
            by_key
                .entry(id.to_lowercase())
                .or_insert(template.actions.len());
            template.actions.push(TemplateAction {
                id,
                title: title.to_owned(),
                implementation_type,
                points,
                responsibility,
                description_title: at.get(cells, "actionDescriptionTitle").to_owned(),
                description: at.get(cells, "actionDescription").to_owned(),
            });
        }
    }
    let known_titles: std::collections::HashSet<String> = first_row_of
        .keys()
        .filter_map(|k| k.strip_prefix("title:").map(str::to_owned))
        .collect();

    // Controls.
    {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (row, cells) in &ct.rows {
            let id = ct.required(*row, cells, "controlName", &mut errors);
            let family = ct.required(*row, cells, "controlFamily", &mut errors);
            let title = ct.required(*row, cells, "controlTitle", &mut errors);
            let mut actions = Vec::new();
            for name in split_list(ct.get(cells, "controlActionTitle")) {
                let key = name.to_lowercase();
                match by_key.get(&key) {
                    Some(&i) => {
                        let aid = template.actions[i].id.clone();
                        if !actions.contains(&aid) {
                            actions.push(aid);
                        }
                    }
                    // An action whose row had errors: already reported there.
                    None if known_titles.contains(&key) => {}
                    // A wildcard (`securescore.*`): every evaluated action with that prefix.
                    None if is_pattern(&name) => {
                        if !actions.contains(&name) {
                            actions.push(name);
                        }
                    }
                    None => errors.push(ImportError::cell(
                        &ct.sheet,
                        *row,
                        "controlActionTitle",
                        format!("no action titled `{name}` in sheet {}", at.sheet),
                    )),
                }
            }
            let Some(id) = id else { continue };
            if let Some(first) = seen.get(&id.to_lowercase()) {
                errors.push(ImportError::cell(
                    &ct.sheet,
                    *row,
                    "controlName",
                    format!("duplicate control `{id}` (first at row {first})"),
                ));
                continue;
            }
            seen.insert(id.to_lowercase(), *row);
            template.controls.push(TemplateControl {
                id: id.to_owned(),
                family: family.unwrap_or_default().to_owned(),
                title: title.unwrap_or_default().to_owned(),
                description: ct.get(cells, "controlDescription").to_owned(),
                actions,
            });
        }
    }
    if errors.is_empty() {
        Ok(template)
    } else {
        Err(errors)
    }
}

fn header(ws: &mut Worksheet, names: &[&str]) -> Result<(), XlsxError> {
    let bold = Format::new().set_bold();
    for (i, n) in names.iter().enumerate() {
        ws.write_string_with_format(0, i as u16, *n, &bold)?;
    }
    ws.set_freeze_panes(1, 0)?;
    Ok(())
}

fn write_row(ws: &mut Worksheet, row: u32, cells: &[Cell<'_>]) -> Result<(), XlsxError> {
    for (i, c) in cells.iter().enumerate() {
        let col = i as u16;
        match c {
            Cell::Text(s) => {
                ws.write_string(row, col, *s)?;
            }
            Cell::Owned(s) => {
                ws.write_string(row, col, s)?;
            }
            Cell::Number(n) => {
                ws.write_number(row, col, *n)?;
            }
            Cell::Link(url) => {
                let is_web = url.starts_with("https://") || url.starts_with("http://");
                if !is_web || ws.write_url(row, col, *url).is_err() {
                    ws.write_string(row, col, *url)?;
                }
            }
        }
    }
    Ok(())
}

enum Cell<'a> {
    Text(&'a str),
    Owned(String),
    Number(f64),
    Link(&'a str),
}

/// Write a template as a Compliance Manager template workbook (the layout of the module
/// documentation, with the postured extension columns `id`, `actionId` and `responsibility`
/// so that a re-import gives the same template). Control actions are written by title.
///
/// # Errors
///
/// The writer's error (e.g. a cell longer than Excel's 32,767 characters).
pub fn template_to_xlsx(template: &Template) -> Result<Vec<u8>, ExportError> {
    let mut wb = Workbook::new();
    let titles: HashMap<&str, &str> = template
        .actions
        .iter()
        .map(|a| (a.id.as_str(), a.title.as_str()))
        .collect();
    {
        let ws = wb.add_worksheet();
        ws.set_name(SHEET_TEMPLATE)?;
        header(
            ws,
            &["title", "product", "certification", "inScopeServices", "id"],
        )?;
        write_row(
            ws,
            1,
            &[
                Cell::Text(&template.title),
                Cell::Text(&template.product),
                Cell::Text(&template.certification),
                Cell::Owned(template.in_scope_services.join(";;")),
                Cell::Text(&template.id),
            ],
        )?;
        ws.autofit();
    }
    {
        let ws = wb.add_worksheet();
        ws.set_name(SHEET_CONTROLS)?;
        header(
            ws,
            &[
                "controlName",
                "controlFamily",
                "controlTitle",
                "controlDescription",
                "controlActionTitle",
            ],
        )?;
        for (i, c) in template.controls.iter().enumerate() {
            let actions: Vec<&str> = c
                .actions
                .iter()
                .map(|id| titles.get(id.as_str()).copied().unwrap_or(id.as_str()))
                .collect();
            write_row(
                ws,
                i as u32 + 1,
                &[
                    Cell::Text(&c.id),
                    Cell::Text(&c.family),
                    Cell::Text(&c.title),
                    Cell::Text(&c.description),
                    Cell::Owned(actions.join(";;")),
                ],
            )?;
        }
        ws.set_column_width(3, 60)?;
    }
    {
        let ws = wb.add_worksheet();
        ws.set_name(SHEET_ACTIONS)?;
        header(
            ws,
            &[
                "actionTitle",
                "implementationType",
                "actionScore",
                "actionDescriptionTitle",
                "actionDescription",
                "actionId",
                "responsibility",
            ],
        )?;
        for (i, a) in template.actions.iter().enumerate() {
            write_row(
                ws,
                i as u32 + 1,
                &[
                    Cell::Text(&a.title),
                    Cell::Text(implementation_type_label(a.implementation_type)),
                    Cell::Number(f64::from(a.points)),
                    Cell::Text(&a.description_title),
                    Cell::Text(&a.description),
                    Cell::Text(&a.id),
                    Cell::Text(responsibility_label(a.responsibility)),
                ],
            )?;
        }
        ws.set_column_width(0, 50)?;
        ws.set_column_width(4, 60)?;
    }
    Ok(wb.save_to_buffer()?)
}

/// Write an assessment report as a workbook with one sheet per view:
///
/// - `Summary`: assessment, tenant, group, template, certification, generated at, status,
///   progress, points achieved / possible, score ratio;
/// - `Controls`: id, family, title, description, status, action ids (`;;`), points achieved
///   and possible over the control's actions;
/// - `Actions`: id, title, implementation type, responsibility, testing source,
///   implementation status, test status, points, points achieved, points possible, status
///   since (RFC 3339), testing logic, reason, assigned to, notes, controls (`;;`);
/// - `Evidence`: one row per evidence link (action id, action title, link; web links are
///   clickable).
///
/// # Errors
///
/// The writer's error.
pub fn report_to_xlsx(report: &AssessmentReport) -> Result<Vec<u8>, ExportError> {
    let mut wb = Workbook::new();
    let controls_of = super::controls_by_action(report);
    {
        let ws = wb.add_worksheet();
        ws.set_name("Summary")?;
        header(ws, &["field", "value"])?;
        let generated = report
            .generated_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let rows: Vec<(&str, Cell<'_>)> = vec![
            ("assessment", Cell::Text(&report.id)),
            ("tenant", Cell::Text(&report.tenant)),
            ("group", Cell::Text(&report.group)),
            ("template", Cell::Text(&report.template_id)),
            ("template title", Cell::Text(&report.template_title)),
            ("certification", Cell::Text(&report.certification)),
            ("generated at", Cell::Owned(generated)),
            ("status", Cell::Owned(super::snake(&report.status))),
            ("progress", Cell::Number(report.progress)),
            (
                "points achieved",
                Cell::Number(report.score.points_achieved),
            ),
            (
                "points possible",
                Cell::Number(report.score.points_possible),
            ),
            ("score ratio", Cell::Number(report.score.ratio)),
            ("controls", Cell::Number(report.controls.len() as f64)),
            ("actions", Cell::Number(report.actions.len() as f64)),
        ];
        for (i, (k, v)) in rows.into_iter().enumerate() {
            write_row(ws, i as u32 + 1, &[Cell::Text(k), v])?;
        }
        ws.autofit();
    }
    {
        let ws = wb.add_worksheet();
        ws.set_name("Controls")?;
        header(
            ws,
            &[
                "control",
                "family",
                "title",
                "description",
                "status",
                "actions",
                "points achieved",
                "points possible",
            ],
        )?;
        for (i, c) in report.controls.iter().enumerate() {
            let (achieved, possible) = super::control_points(report, c);
            write_row(
                ws,
                i as u32 + 1,
                &[
                    Cell::Text(&c.id),
                    Cell::Text(&c.family),
                    Cell::Text(&c.title),
                    Cell::Text(&c.description),
                    Cell::Owned(super::snake(&c.status)),
                    Cell::Owned(c.actions.join(";;")),
                    Cell::Number(achieved),
                    Cell::Number(possible),
                ],
            )?;
        }
        ws.set_column_width(2, 40)?;
        ws.set_column_width(3, 60)?;
    }
    {
        let ws = wb.add_worksheet();
        ws.set_name("Actions")?;
        header(
            ws,
            &[
                "action",
                "title",
                "implementation type",
                "responsibility",
                "testing source",
                "implementation status",
                "test status",
                "points",
                "points achieved",
                "points possible",
                "status since",
                "testing logic",
                "reason",
                "assigned to",
                "notes",
                "controls",
            ],
        )?;
        for (i, a) in report.actions.iter().enumerate() {
            write_row(
                ws,
                i as u32 + 1,
                &[
                    Cell::Text(&a.id),
                    Cell::Text(&a.title),
                    Cell::Text(implementation_type_label(a.implementation_type)),
                    Cell::Text(responsibility_label(a.responsibility)),
                    Cell::Owned(super::snake(&a.testing_source)),
                    Cell::Text(a.implementation_status.as_str()),
                    Cell::Text(a.test_status.as_str()),
                    Cell::Number(f64::from(a.points)),
                    Cell::Number(a.points_achieved),
                    Cell::Number(a.points_possible),
                    Cell::Owned(
                        a.status_since
                            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                            .unwrap_or_default(),
                    ),
                    Cell::Text(&a.testing_logic),
                    Cell::Text(a.reason.as_deref().unwrap_or_default()),
                    Cell::Text(a.assigned_to.as_deref().unwrap_or_default()),
                    Cell::Text(a.notes.as_deref().unwrap_or_default()),
                    Cell::Owned(
                        controls_of
                            .get(a.id.as_str())
                            .map(|c| c.join(";;"))
                            .unwrap_or_default(),
                    ),
                ],
            )?;
        }
        ws.set_column_width(1, 50)?;
        ws.set_column_width(11, 60)?;
    }
    {
        let ws = wb.add_worksheet();
        ws.set_name("Evidence")?;
        header(ws, &["action", "title", "evidence"])?;
        let mut row = 1;
        for a in &report.actions {
            for link in &a.evidence {
                write_row(
                    ws,
                    row,
                    &[Cell::Text(&a.id), Cell::Text(&a.title), Cell::Link(link)],
                )?;
                row += 1;
            }
        }
        ws.set_column_width(1, 50)?;
        ws.set_column_width(2, 60)?;
    }
    Ok(wb.save_to_buffer()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(sheet: &str, rows: &[&[&str]]) -> Table {
        Table {
            sheet: sheet.to_owned(),
            header_row: 1,
            headers: rows[0].iter().map(|s| (*s).to_owned()).collect(),
            rows: rows[1..]
                .iter()
                .enumerate()
                .map(|(i, r)| (i + 2, r.iter().map(|s| (*s).to_owned()).collect()))
                .collect(),
        }
    }

    fn good() -> (Table, Table, Table) {
        (
            table(
                "Template",
                &[
                    &["title", "product", "certification", "inScopeServices"],
                    &[
                        "ACME Baseline",
                        "Microsoft 365",
                        "ACME 1.0",
                        "Exchange;; Teams ",
                    ],
                ],
            ),
            table(
                "ControlFamily",
                &[
                    &[
                        "controlName",
                        "controlFamily",
                        "controlTitle",
                        "controlDescription",
                        "controlActionTitle",
                    ],
                    &[
                        "AC-1",
                        "Access",
                        "MFA",
                        "Use MFA",
                        " Register every user for multifactor authentication ;; Write an access policy",
                    ],
                    &["AC-2", "Access", "Policy", "", "write an access policy"],
                ],
            ),
            table(
                "Actions",
                &[
                    &[
                        "actionTitle",
                        "implementationType",
                        "actionScore",
                        "actionDescriptionTitle",
                        "actionDescription",
                    ],
                    &[
                        "Register every user for multifactor authentication",
                        "Technical",
                        "27",
                        "",
                        "",
                    ],
                    &[
                        "Write an access policy",
                        "documentation",
                        "3",
                        "Policy",
                        "Write it.",
                    ],
                ],
            ),
        )
    }

    #[test]
    fn compliance_manager_tables_become_a_template() {
        let (t, c, a) = good();
        let tpl = template_from_tables(&t, &c, &a, &Catalog::builtin()).expect("valid");
        assert_eq!(tpl.id, "acme-baseline");
        assert_eq!(tpl.in_scope_services, vec!["Exchange", "Teams"]);
        assert_eq!(tpl.actions[0].id, "msgraph.mfa.all_users");
        assert_eq!(tpl.actions[1].id, "custom.write_an_access_policy");
        assert_eq!(
            tpl.actions[1].implementation_type,
            ImplementationType::Documentation
        );
        assert_eq!(
            tpl.controls[0].actions,
            vec!["msgraph.mfa.all_users", "custom.write_an_access_policy"]
        );
        assert_eq!(
            tpl.controls[1].actions,
            vec!["custom.write_an_access_policy"]
        );
    }

    #[test]
    fn column_order_does_not_matter() {
        let (t, c, a) = good();
        let reorder = |tb: &Table| {
            let mut out = tb.clone();
            out.headers.reverse();
            out.headers = out.headers.iter().map(|h| h.to_uppercase()).collect();
            for (_, cells) in &mut out.rows {
                cells.reverse();
            }
            out
        };
        let catalog = Catalog::builtin();
        assert_eq!(
            template_from_tables(&reorder(&t), &reorder(&c), &reorder(&a), &catalog),
            template_from_tables(&t, &c, &a, &catalog)
        );
    }

    #[test]
    fn every_row_error_is_reported_with_sheet_row_and_column() {
        let t = table("Template", &[&["title", "product"], &["", "M365"]]);
        let c = table(
            "ControlFamily",
            &[
                &[
                    "controlName",
                    "controlFamily",
                    "controlTitle",
                    "controlActionTitle",
                ],
                &["C-1", "F", "T", "A1;;Nope"],
                &["C-1", "F", "T", ""],
                &["C-3", "", "T", "A1"],
            ],
        );
        let a = table(
            "Actions",
            &[
                &["actionTitle", "implementationType", "actionScore"],
                &["A1", "Technical", "27"],
                &["A2", "Manual", "3"],
                &["A3", "Operational", "100"],
                &["A4", "Operational", "2.5"],
                &["", "Operational", "x"],
                &["a1", "Operational", "1"],
            ],
        );
        let errors = template_from_tables(&t, &c, &a, &Catalog::builtin()).unwrap_err();
        let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            vec![
                "Template!1:certification: missing required column",
                "Template!2:title: required value is empty",
                "Actions!3:implementationType: unknown implementation type `Manual` (expected Operational, Technical or Documentation)",
                "Actions!4:actionScore: `100` is not an integer in 1..=99",
                "Actions!5:actionScore: `2.5` is not an integer in 1..=99",
                "Actions!6:actionTitle: required value is empty",
                "Actions!6:actionScore: `x` is not an integer in 1..=99",
                "Actions!7:actionTitle: duplicate action title `a1` (first at row 2)",
                "ControlFamily!2:controlActionTitle: no action titled `Nope` in sheet Actions",
                "ControlFamily!3:controlName: duplicate control `C-1` (first at row 2)",
                "ControlFamily!4:controlFamily: required value is empty",
            ]
        );
    }

    #[test]
    fn missing_columns_are_reported_at_the_header_row() {
        let (t, c, _) = good();
        let a = table(
            "Actions",
            &[
                &["actionTitle", "points"],
                &["Register every user for multifactor authentication", "3"],
                &["Write an access policy", "3"],
            ],
        );
        let got: Vec<String> = template_from_tables(&t, &c, &a, &Catalog::builtin())
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            vec![
                "Actions!1:implementationType: missing required column",
                "Actions!1:actionScore: missing required column",
            ]
        );
    }

    #[test]
    fn template_workbook_round_trips() {
        let (t, c, a) = good();
        let catalog = Catalog::builtin();
        let tpl = template_from_tables(&t, &c, &a, &catalog).expect("valid");
        let bytes = template_to_xlsx(&tpl).expect("written");
        assert_eq!(template_from_xlsx(&bytes, &catalog), Ok(tpl));
    }

    #[test]
    fn a_workbook_without_sheets_is_rejected() {
        let mut wb = Workbook::new();
        wb.add_worksheet().set_name("Dimensions").expect("name");
        let bytes = wb.save_to_buffer().expect("saved");
        let got: Vec<String> = template_from_xlsx(&bytes, &Catalog::builtin())
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            vec![
                "Template: missing sheet",
                "ControlFamily: missing sheet",
                "Actions: missing sheet"
            ]
        );
        let e = template_from_xlsx(b"not a zip", &Catalog::builtin()).unwrap_err();
        assert_eq!(e[0].location, "workbook");
    }
}
