//! Excel: templates in the Microsoft Compliance Manager template layout (import with
//! `calamine`, export with `rust_xlsxwriter`) and assessment reports (export, one sheet per
//! view).
//!
//! Import reads `.xlsx`/`.xlsm` (and `.xlsb`) within bounds: the zip container is checked
//! first ([`MAX_ZIP_ENTRIES`], [`MAX_UNCOMPRESSED_BYTES`]), then each sheet is read cell by
//! cell (never as calamine's dense range, which would be sized by the outermost cells) and may
//! span at most [`super::MAX_TABLE_CELLS`]. `.xls` and `.ods` are refused: calamine reads them
//! only as dense ranges. Export cuts texts to Excel's [`MAX_CELL_CHARS`] ([`cell_value`]).
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
//! | `Actions` | action | `actionTitle`*, `implementationType`* (`Operational`, `Technical`, `Documentation`), `actionScore`* (integer 1..=99) | `actionDescriptionTitle`, `actionDescription`, `actionId`, `responsibility` (`Customer`/`Provider`), `actionGuidance` (how to carry it out), `actionEvidence` (what an auditor expects to see) (postured extensions) |
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

use calamine::{DataRef, Reader, Xlsb, Xlsx};
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};

use super::{
    ExportError, ImportError, MAX_TABLE_CELLS, Table, implementation_type_label, parse_points,
    parse_responsibility, resolve_action_id, responsibility_label, split_list,
    template_id_from_title,
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

/// Most entries (files) a workbook's zip archive may hold: 10,000 (an `.xlsx` has a few
/// dozen). Checked on the archive's central directory before anything is unpacked.
pub const MAX_ZIP_ENTRIES: usize = 10_000;

/// Most bytes a workbook's entries may declare uncompressed, all together: 64 MiB. Checked on
/// the central directory before anything is unpacked; the `zip` reader refuses an entry that
/// grows past its declared size, so the declared sizes bound what is inflated (a zip bomb is
/// refused, not inflated).
pub const MAX_UNCOMPRESSED_BYTES: u64 = 64 * 1024 * 1024;

/// Excel's longest cell text, in UTF-16 code units (what Excel and `rust_xlsxwriter` count).
pub const MAX_CELL_CHARS: usize = 32_767;

/// Appended to a text cut to [`MAX_CELL_CHARS`] by the workbook exporters.
pub const TRUNCATION_MARKER: &str = "… [truncated]";

/// The signature of a Compound File (the `.xls` Excel 97-2003 format).
const CFB_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

fn cell_text(d: &DataRef<'_>) -> String {
    match d {
        DataRef::Empty => String::new(),
        DataRef::String(s) => s.trim().to_owned(),
        DataRef::SharedString(s) => s.trim().to_owned(),
        DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        DataRef::Float(f) => f.to_string(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(dt) => dt.to_string(),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::Error(e) => format!("#{e:?}"),
    }
}

/// `A1`-style name of a 0-based cell position (`R{row}C{col}` past Excel's columns).
fn cell_name(row: u32, col: u32) -> String {
    match u16::try_from(col) {
        Ok(c) => rust_xlsxwriter::utility::row_col_to_cell(row, c),
        Err(_) => format!("R{}C{}", u64::from(row) + 1, u64::from(col) + 1),
    }
}

/// A workbook that can be read cell by cell, never as a dense range (calamine's
/// `worksheet_range` allocates the whole rectangle between the outermost cells).
enum Book<'a> {
    Xlsx(Xlsx<Cursor<&'a [u8]>>),
    Xlsb(Xlsb<Cursor<&'a [u8]>>),
}

/// Check a workbook's container before calamine reads it, then open it: `.xls` and `.ods`
/// are refused (their readers expand every sheet to its full used range in memory); a zip
/// archive with more than [`MAX_ZIP_ENTRIES`] entries or declaring more than
/// [`MAX_UNCOMPRESSED_BYTES`] is refused without inflating anything.
fn open_book(bytes: &[u8]) -> Result<Book<'_>, ImportError> {
    let at = |m: String| ImportError::new("workbook", m);
    if bytes.starts_with(&CFB_MAGIC) {
        return Err(at(
            "an Excel 97-2003 workbook (.xls) is not accepted: its reader expands \
             every sheet in memory; save it as .xlsx"
                .to_owned(),
        ));
    }
    let archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| at(format!("not a workbook (.xlsx, .xlsm or .xlsb): {e}")))?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(at(format!(
            "the workbook holds {} files, more than the {MAX_ZIP_ENTRIES} accepted",
            archive.len()
        )));
    }
    let mut declared: u64 = 0;
    for i in 0..archive.len() {
        let size = archive
            .by_index_data(i)
            .map_err(|e| at(format!("not a workbook: {e}")))?
            .size();
        declared = declared.saturating_add(size);
    }
    if declared > MAX_UNCOMPRESSED_BYTES {
        return Err(at(format!(
            "the workbook unpacks to {declared} bytes, more than the {MAX_UNCOMPRESSED_BYTES} \
             accepted"
        )));
    }
    let is_xlsb = archive.index_for_name("xl/workbook.bin").is_some();
    let is_ods = archive.index_for_name("content.xml").is_some()
        && archive.index_for_name("xl/workbook.xml").is_none();
    drop(archive);
    if is_ods {
        return Err(at(
            "an OpenDocument spreadsheet (.ods) is not accepted: its reader \
             expands every sheet in memory; save it as .xlsx"
                .to_owned(),
        ));
    }
    if is_xlsb {
        Xlsb::new(Cursor::new(bytes))
            .map(Book::Xlsb)
            .map_err(|e| at(format!("not a workbook: {e}")))
    } else {
        Xlsx::new(Cursor::new(bytes))
            .map(Book::Xlsx)
            .map_err(|e| at(format!("not a workbook: {e}")))
    }
}

impl Book<'_> {
    fn sheet_names(&self) -> Vec<String> {
        match self {
            Book::Xlsx(wb) => wb.sheet_names(),
            Book::Xlsb(wb) => wb.sheet_names(),
        }
    }

    /// The non-empty cells of sheet `name` as `(row, column, text)`, 0-based, stopping with an
    /// error past [`MAX_TABLE_CELLS`] of them.
    fn cells(&mut self, name: &str, sheet: &str) -> Result<Vec<(u32, u32, String)>, ImportError> {
        let unreadable = |e: String| ImportError::new(sheet, format!("cannot read the sheet: {e}"));
        let mut out = Vec::new();
        let mut push = |pos: (u32, u32), text: String| {
            if text.is_empty() {
                return Ok(());
            }
            if out.len() >= MAX_TABLE_CELLS {
                return Err(ImportError::new(
                    sheet,
                    format!(
                        "the sheet has more than {MAX_TABLE_CELLS} non-empty cells (at {})",
                        cell_name(pos.0, pos.1)
                    ),
                ));
            }
            out.push((pos.0, pos.1, text));
            Ok(())
        };
        match self {
            Book::Xlsx(wb) => {
                let mut reader = wb
                    .worksheet_cells_reader(name)
                    .map_err(|e| unreadable(e.to_string()))?;
                while let Some(c) = reader.next_cell().map_err(|e| unreadable(e.to_string()))? {
                    push(c.get_position(), cell_text(c.get_value()))?;
                }
            }
            Book::Xlsb(wb) => {
                let mut reader = wb
                    .worksheet_cells_reader(name)
                    .map_err(|e| unreadable(e.to_string()))?;
                while let Some(c) = reader.next_cell().map_err(|e| unreadable(e.to_string()))? {
                    push(c.get_position(), cell_text(c.get_value()))?;
                }
            }
        }
        Ok(out)
    }
}

/// Read one worksheet into a [`Table`] (header = first non-empty row; cells indexed from the
/// sheet's first non-empty column). `Ok(None)` when the workbook has no such sheet.
fn read_table(book: &mut Book<'_>, sheet: &str) -> Result<Option<Table>, ImportError> {
    let Some(name) = book
        .sheet_names()
        .into_iter()
        .find(|n| n.trim().eq_ignore_ascii_case(sheet))
    else {
        return Ok(None);
    };
    let cells = book.cells(&name, sheet)?;
    table_from_cells(sheet, cells).map(Some)
}

/// Lay sparse non-empty cells `(row, column, text)` (0-based, any order) out as a [`Table`]:
/// the first row is the header, rows and columns before the first non-empty ones are dropped,
/// and the used range may span at most [`MAX_TABLE_CELLS`] cells.
pub(crate) fn table_from_cells(
    sheet: &str,
    mut cells: Vec<(u32, u32, String)>,
) -> Result<Table, ImportError> {
    let mut table = Table {
        sheet: sheet.to_owned(),
        header_row: 1,
        ..Table::default()
    };
    let (Some(first_row), Some(last_row), Some(first_col), Some(last_col)) = (
        cells.iter().map(|c| c.0).min(),
        cells.iter().map(|c| c.0).max(),
        cells.iter().map(|c| c.1).min(),
        cells.iter().map(|c| c.1).max(),
    ) else {
        return Ok(table);
    };
    let width = u64::from(last_col - first_col) + 1;
    let spanned = (u64::from(last_row - first_row) + 1).saturating_mul(width);
    if spanned > MAX_TABLE_CELLS as u64 {
        return Err(ImportError::new(
            sheet,
            format!(
                "the sheet's used range {}:{} spans {spanned} cells, more than the \
                 {MAX_TABLE_CELLS} accepted (delete stray cells far from the table)",
                cell_name(first_row, first_col),
                cell_name(last_row, last_col)
            ),
        ));
    }
    // `spanned` fits in usize: it is at most MAX_TABLE_CELLS.
    let width = width as usize;
    cells.sort_by_key(|c| (c.0, c.1));
    let mut rows: Vec<(usize, Vec<String>)> = Vec::new();
    for (row, col, text) in cells {
        let excel_row = row as usize + 1;
        if rows.last().is_none_or(|(r, _)| *r != excel_row) {
            rows.push((excel_row, vec![String::new(); width]));
        }
        if let Some((_, line)) = rows.last_mut() {
            line[(col - first_col) as usize] = text;
        }
    }
    let mut rows = rows.into_iter();
    if let Some((header_row, headers)) = rows.next() {
        table.header_row = header_row;
        table.headers = headers;
    }
    table.rows = rows.collect();
    Ok(table)
}

/// Import a template from a Compliance Manager template workbook (`.xlsx`, `.xlsm`, also
/// `.xlsb`), mapping technical actions to `catalog` where their titles match.
///
/// The workbook is read within bounds, whatever it declares: at most [`MAX_ZIP_ENTRIES`]
/// files and [`MAX_UNCOMPRESSED_BYTES`] unpacked (checked before unpacking), sheets read cell
/// by cell, each spanning at most [`MAX_TABLE_CELLS`]. `.xls` and `.ods` workbooks are
/// refused (calamine reads them only as dense ranges).
///
/// # Errors
///
/// Every problem found, as `Sheet!Row:Column: message` (see the module documentation): a
/// missing sheet or required column, an empty required value, an unknown
/// `implementationType`, an `actionScore` that is not an integer in 1..=99, a duplicate
/// `controlName`, `actionTitle` or action id, a `controlActionTitle` naming no action, more
/// or fewer than one template row; a file that is no workbook or exceeds a limit as one error
/// located `workbook` or at the sheet.
pub fn template_from_xlsx(bytes: &[u8], catalog: &Catalog) -> Result<Template, Vec<ImportError>> {
    let mut book = open_book(bytes).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut tables = Vec::new();
    for sheet in [SHEET_TEMPLATE, SHEET_CONTROLS, SHEET_ACTIONS] {
        match read_table(&mut book, sheet) {
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
                guidance: at.get(cells, "actionGuidance").to_owned(),
                evidence: at.get(cells, "actionEvidence").to_owned(),
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

/// `text` as a workbook cell holds it: unchanged when it fits Excel's [`MAX_CELL_CHARS`]
/// UTF-16 code units, else cut (at a character boundary) so that with [`TRUNCATION_MARKER`]
/// appended it does.
pub fn cell_value(text: &str) -> std::borrow::Cow<'_, str> {
    let units = |s: &str| s.encode_utf16().count();
    if units(text) <= MAX_CELL_CHARS {
        return std::borrow::Cow::Borrowed(text);
    }
    let budget = MAX_CELL_CHARS - units(TRUNCATION_MARKER);
    let mut used = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        if used + c.len_utf16() > budget {
            break;
        }
        used += c.len_utf16();
        end = i + c.len_utf8();
    }
    std::borrow::Cow::Owned(format!("{}{TRUNCATION_MARKER}", &text[..end]))
}

fn write_row(ws: &mut Worksheet, row: u32, cells: &[Cell<'_>]) -> Result<(), XlsxError> {
    for (i, c) in cells.iter().enumerate() {
        let col = i as u16;
        match c {
            Cell::Text(s) => {
                ws.write_string(row, col, cell_value(s))?;
            }
            Cell::Owned(s) => {
                ws.write_string(row, col, cell_value(s))?;
            }
            Cell::Number(n) => {
                ws.write_number(row, col, *n)?;
            }
            Cell::Link(url) => {
                let is_web = url.starts_with("https://") || url.starts_with("http://");
                if !is_web || ws.write_url(row, col, *url).is_err() {
                    ws.write_string(row, col, cell_value(url))?;
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
/// Texts longer than Excel's [`MAX_CELL_CHARS`] are cut and end with [`TRUNCATION_MARKER`]
/// (such a workbook re-imports with the cut texts).
///
/// # Errors
///
/// The writer's error.
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
                "actionGuidance",
                "actionEvidence",
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
                    Cell::Text(&a.guidance),
                    Cell::Text(&a.evidence),
                ],
            )?;
        }
        ws.set_column_width(0, 50)?;
        ws.set_column_width(4, 60)?;
    }
    Ok(wb.save_to_buffer()?)
}

/// An instant as RFC 3339 to the second (UTC, `Z`); empty for none.
fn instant(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Write an assessment report as a workbook with one sheet per view:
///
/// - `Summary`: assessment, tenant, group, template, certification, generated at, status,
///   progress, points achieved / possible, score ratio;
/// - `Controls`: id, family, title, description, status, action ids (`;;`), points achieved
///   and possible over the control's actions;
/// - `Actions`: id, title, implementation type, responsibility, testing source,
///   implementation status, test status, points, points achieved, points possible, status
///   since (RFC 3339), testing logic, reason, assigned to, notes, implementation date and
///   test date (RFC 3339), test notes, controls (`;;`);
/// - `Evidence`: one row per evidence link (action id, action title, link; web links are
///   clickable); past Excel's last row, one row counting the links not shown.
///
/// Texts longer than Excel's [`MAX_CELL_CHARS`] are cut and end with [`TRUNCATION_MARKER`]
/// ([`cell_value`]), so a long note never fails the export.
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
                "implementation date",
                "test date",
                "test notes",
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
                    Cell::Owned(instant(a.status_since)),
                    Cell::Text(&a.testing_logic),
                    Cell::Text(a.reason.as_deref().unwrap_or_default()),
                    Cell::Text(a.assigned_to.as_deref().unwrap_or_default()),
                    Cell::Text(a.notes.as_deref().unwrap_or_default()),
                    Cell::Owned(instant(a.implementation_date)),
                    Cell::Owned(instant(a.test_date)),
                    Cell::Text(a.test_notes.as_deref().unwrap_or_default()),
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
        // Excel's last row is 1,048,576: links past it are counted on that row instead.
        const LAST_ROW: u32 = 1_048_575;
        let links = report
            .actions
            .iter()
            .flat_map(|a| a.evidence.iter().map(move |l| (a, l)));
        let total = links.clone().count();
        for (row, (a, link)) in (1..).zip(links) {
            if row == LAST_ROW && total > LAST_ROW as usize {
                let more = total - (LAST_ROW as usize - 1);
                write_row(
                    ws,
                    row,
                    &[Cell::Owned(format!(
                        "… {more} more evidence links not shown"
                    ))],
                )?;
                break;
            }
            write_row(
                ws,
                row,
                &[Cell::Text(&a.id), Cell::Text(&a.title), Cell::Link(link)],
            )?;
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

    /// The workbook of `good()`.
    fn good_workbook() -> Vec<u8> {
        let (t, c, a) = good();
        let tpl = template_from_tables(&t, &c, &a, &Catalog::builtin()).expect("valid");
        template_to_xlsx(&tpl).expect("written")
    }

    /// `bytes` (a zip archive) with the entries of `replace` written instead of (or besides)
    /// the archive's own, deflated.
    fn rezip(bytes: &[u8], replace: &[(&str, &[u8])]) -> Vec<u8> {
        use std::io::Write;
        let mut source = zip::ZipArchive::new(Cursor::new(bytes)).expect("a zip");
        let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(1))
            .large_file(true);
        for i in 0..source.len() {
            let entry = source.by_index_raw(i).expect("entry");
            let name = entry.name().expect("a name").into_owned();
            if replace.iter().any(|(n, _)| *n == name) {
                continue;
            }
            out.raw_copy_file(entry).expect("copied");
        }
        for (name, data) in replace {
            out.start_file(*name, options).expect("entry");
            out.write_all(data).expect("written");
        }
        out.finish().expect("zip").into_inner()
    }

    fn located(bytes: &[u8]) -> Vec<String> {
        template_from_xlsx(bytes, &Catalog::builtin())
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Issue 8 row 4: a 2 KB workbook with cells `A1` and `XFD1048576` made the importer
    /// allocate the dense 16,384 × 1,048,576 range between them (512 GiB, abort). Sheets are
    /// now read cell by cell and a used range past `MAX_TABLE_CELLS` is a located error.
    #[test]
    fn two_far_apart_cells_are_a_located_error_not_a_dense_allocation() {
        let mut wb = Workbook::new();
        for name in [SHEET_TEMPLATE, SHEET_CONTROLS, SHEET_ACTIONS] {
            let ws = wb.add_worksheet();
            ws.set_name(name).expect("name");
            ws.write_string(0, 0, "title").expect("A1");
            ws.write_string(1_048_575, 16_383, "x").expect("XFD1048576");
        }
        let bytes = wb.save_to_buffer().expect("saved");
        assert!(bytes.len() < 20_000, "{}", bytes.len());
        let got = located(&bytes);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(
            got[0],
            format!(
                "Template: the sheet's used range A1:XFD1048576 spans 17179869184 cells, more \
                 than the {MAX_TABLE_CELLS} accepted (delete stray cells far from the table)"
            )
        );
        // Far-apart cells inside the bound are fine: rows and columns before the first
        // non-empty ones are dropped, the header is the first non-empty row.
        let table = table_from_cells(
            "S",
            vec![
                (9, 3, "b".into()),
                (4, 2, "h1".into()),
                (4, 3, "h2".into()),
                (7, 2, "a".into()),
            ],
        )
        .expect("small");
        assert_eq!(
            (table.header_row, table.headers.clone()),
            (5, vec!["h1".into(), "h2".into()])
        );
        assert_eq!(
            table.rows,
            vec![
                (8, vec!["a".to_owned(), String::new()]),
                (10, vec![String::new(), "b".to_owned()])
            ]
        );
    }

    /// Issue 8 row 5: a 2.7 MB workbook inflating to gigabytes took the importer to 3.6 GB RSS
    /// and an abort. The zip's central directory is now checked before anything is inflated:
    /// more than `MAX_UNCOMPRESSED_BYTES` declared (or `MAX_ZIP_ENTRIES` entries) is refused.
    #[test]
    fn a_zip_bomb_is_refused_before_it_is_inflated() {
        let good = good_workbook();
        assert!(template_from_xlsx(&good, &Catalog::builtin()).is_ok());
        // Shared strings that inflate past the bound (valid XML, so calamine would read it).
        let mut strings =
            b"<sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><si><t>"
                .to_vec();
        strings.resize(strings.len() + MAX_UNCOMPRESSED_BYTES as usize, b'A');
        strings.extend_from_slice(b"</t></si></sst>");
        let bomb = rezip(&good, &[("xl/sharedStrings.xml", &strings)]);
        assert!(bomb.len() < 1_000_000, "{}", bomb.len());
        let got = located(&bomb);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with("workbook: the workbook unpacks to ")
                && got[0].ends_with(&format!("more than the {MAX_UNCOMPRESSED_BYTES} accepted")),
            "{got:?}"
        );
        // Many tiny entries: refused on their count.
        let names: Vec<String> = (0..=MAX_ZIP_ENTRIES).map(|i| format!("x/{i}")).collect();
        let many: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
        let got = located(&rezip(&good, &many));
        assert!(
            got[0].contains(&format!("more than the {MAX_ZIP_ENTRIES} accepted")),
            "{got:?}"
        );
    }

    /// `.xls` and `.ods` are refused with a hint (calamine reads them only as dense ranges);
    /// truncated and empty files are located errors.
    #[test]
    fn dense_only_formats_and_broken_files_are_refused() {
        let mut xls = CFB_MAGIC.to_vec();
        xls.extend_from_slice(&[0; 504]);
        assert!(located(&xls)[0].contains("(.xls) is not accepted"));
        let ods = rezip(&good_workbook(), &[("content.xml", b"<x/>")]);
        let ods = {
            // An ODS has content.xml and no xl/workbook.xml.
            let mut source = zip::ZipArchive::new(Cursor::new(ods.as_slice())).expect("zip");
            let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
            for i in 0..source.len() {
                let entry = source.by_index_raw(i).expect("entry");
                if entry.name().expect("a name") != "xl/workbook.xml" {
                    out.raw_copy_file(entry).expect("copied");
                }
            }
            out.finish().expect("zip").into_inner()
        };
        assert!(located(&ods)[0].contains("(.ods) is not accepted"));
        let good = good_workbook();
        for cut in [0, 1, 100, good.len() / 2, good.len() - 1] {
            let got = located(&good[..cut]);
            assert!(
                got[0].starts_with("workbook: not a workbook"),
                "{cut}: {got:?}"
            );
        }
    }

    /// Issue 8 row 12: notes of 40k characters were stored and then every xlsx export failed
    /// (Excel's cell limit is 32,767). Long texts are now cut to the limit with a marker.
    #[test]
    fn texts_past_excels_cell_limit_are_cut_with_a_marker() {
        let long = "é".repeat(40_000);
        let cut = cell_value(&long);
        assert_eq!(cut.encode_utf16().count(), MAX_CELL_CHARS);
        assert!(cut.ends_with(TRUNCATION_MARKER));
        assert!(matches!(
            cell_value("short"),
            std::borrow::Cow::Borrowed("short")
        ));
        // Astral characters count two UTF-16 units and are never split.
        let astral = cell_value(&"𝄞".repeat(20_000)).into_owned();
        assert!(astral.encode_utf16().count() <= MAX_CELL_CHARS);
        assert!(astral.ends_with(TRUNCATION_MARKER));

        let (t, c, a) = good();
        let mut tpl = template_from_tables(&t, &c, &a, &Catalog::builtin()).expect("valid");
        tpl.actions[1].description = long.clone();
        let bytes = template_to_xlsx(&tpl).expect("a long description is no export error");
        let back = template_from_xlsx(&bytes, &Catalog::builtin()).expect("re-imports");
        assert_eq!(back.actions[1].description, cut);
    }

    /// Issue 8 row 12, the report export: 40k-character notes no longer fail it.
    #[test]
    fn a_report_with_long_notes_exports_cut_to_the_cell_limit() {
        let notes = "n".repeat(40_000);
        let report = crate::interchange::testutil::report("C", "A", &notes, "r");
        let bytes = report_to_xlsx(&report).expect("long notes are no export error");
        let mut wb: calamine::Xlsx<_> =
            calamine::open_workbook_from_rs(Cursor::new(bytes)).expect("a workbook");
        let range = wb.worksheet_range("Actions").expect("Actions");
        let notes_col = range
            .rows()
            .next()
            .and_then(|h| h.iter().position(|c| *c == "notes"))
            .expect("a notes column");
        let cell = range.get((1, notes_col)).expect("notes cell").to_string();
        assert_eq!(cell.encode_utf16().count(), MAX_CELL_CHARS);
        assert!(cell.ends_with(TRUNCATION_MARKER));
    }
}
