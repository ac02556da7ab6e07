//! The one import and export body shared by the CLI (`postured template import`, `postured
//! export`, [`crate::cli::interchange`]) and the API (`POST /api/v1/templates`, the export
//! routes): which importer a file format goes to, the overrides, the model's template
//! validation; which exporter renders a report or a template. Pure: bytes in, bytes out; the
//! callers read files or request bodies (bounded by [`super::MAX_IMPORT_FILE_BYTES`]).

use crate::evaluation::Catalog;
use std::collections::HashSet;

use crate::model::registry::{TemplateRegistry, builtin_library_actions, validate};
use crate::model::report::AssessmentReport;
use crate::model::template::Template;

use super::{ExportError, ImportError, oscal};

/// A template file format the importers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// Compliance Manager workbook (`.xlsx`, `.xlsm`, `.xlsb`; `.xls` and `.ods` are refused
    /// by the workbook importer with a located problem).
    Workbook,
    /// Flat CSV (UTF-8).
    Csv,
    /// OSCAL catalog, JSON.
    OscalJson,
    /// OSCAL catalog, XML.
    OscalXml,
}

impl ImportFormat {
    /// The format of a file extension (any case): `xlsx`, `xlsm`, `xls`, `xlsb`, `ods`,
    /// `csv`, `json`, `xml`.
    pub fn from_extension(ext: &str) -> Option<ImportFormat> {
        match ext.to_ascii_lowercase().as_str() {
            "xlsx" | "xlsm" | "xls" | "xlsb" | "ods" => Some(ImportFormat::Workbook),
            "csv" => Some(ImportFormat::Csv),
            "json" => Some(ImportFormat::OscalJson),
            "xml" => Some(ImportFormat::OscalXml),
            _ => None,
        }
    }

    /// The format of a media type (parameters such as `charset` ignored): the workbook types
    /// (`application/vnd.openxmlformats-officedocument.spreadsheetml.sheet`, the
    /// macro-enabled and binary Excel types), `text/csv`, `application/json` or
    /// `application/oscal.catalog+json`, `application/xml`, `text/xml` or
    /// `application/oscal.catalog+xml`.
    pub fn from_media_type(media_type: &str) -> Option<ImportFormat> {
        let essence = media_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            | "application/vnd.ms-excel.sheet.macroenabled.12"
            | "application/vnd.ms-excel.sheet.binary.macroenabled.12" => {
                Some(ImportFormat::Workbook)
            }
            "text/csv" => Some(ImportFormat::Csv),
            "application/json" | "application/oscal.catalog+json" => Some(ImportFormat::OscalJson),
            "application/xml" | "text/xml" | "application/oscal.catalog+xml" => {
                Some(ImportFormat::OscalXml)
            }
            _ => None,
        }
    }
}

/// Options of [`import_template`].
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// OSCAL profile text selecting the catalog's controls.
    pub profile: Option<String>,
    /// Template id override.
    pub id: Option<String>,
    /// Template title override.
    pub title: Option<String>,
    /// Certification override (OSCAL).
    pub certification: Option<String>,
    /// Template ids already in use (the registry's): an id an OSCAL import derives avoids
    /// them (`-2`, `-3`, ...); an `id` override is not changed.
    pub taken_ids: Vec<String>,
}

/// An imported template and, for an OSCAL catalog or profile of a recognised framework, what
/// the action mapping did.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The template, validated.
    pub template: Template,
    /// The mapping summary (`None`: not OSCAL, or a framework the built-in templates do not
    /// map).
    pub mapping: Option<oscal::mapping::MappingSummary>,
}

impl Imported {
    /// One line for people: `template ID "TITLE" (N controls, M actions)` and, with a mapping,
    /// `; NIST SP 800-53 rev 5: A controls mapped as in nist-800-53-r5, B by their base
    /// control's shared actions, C with no action`.
    pub fn summary(&self) -> String {
        let t = &self.template;
        let mut line = format!(
            "template {} \"{}\" ({} controls, {} actions",
            t.id,
            t.title,
            t.controls.len(),
            t.actions.len()
        );
        if let Some(m) = &self.mapping {
            line.push_str(&format!(
                "; {}: {} controls mapped as in {}, {} by their base control's shared actions, \
                 {} with no action",
                m.framework.name(),
                m.same_control,
                m.builtin_template,
                m.base_control,
                m.no_action.len()
            ));
        }
        line.push(')');
        line
    }
}

/// `bytes` as UTF-8 text (a byte-order mark is kept; the importers skip it), or a problem
/// located at `shown` giving the offset of the first invalid byte and a hint for UTF-16.
pub fn utf8_text(bytes: Vec<u8>, shown: &str) -> Result<String, ImportError> {
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let hint = if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
            " (it is UTF-16: save it as UTF-8)"
        } else {
            " (save it as UTF-8)"
        };
        ImportError::new(
            shown,
            format!(
                "not UTF-8 text: invalid byte at offset {}{hint}",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Import a template from `bytes` in `format` (`name` locates the problems of CSV and OSCAL
/// files), apply the overrides and check it with the model's template validation.
///
/// # Errors
///
/// Every problem, located (model validation errors are located `template.<path>`); text that
/// is not UTF-8 as a single error.
pub fn import_template(
    format: ImportFormat,
    name: &str,
    bytes: Vec<u8>,
    options: &ImportOptions,
    catalog: &Catalog,
) -> Result<Template, Vec<ImportError>> {
    import(format, name, bytes, options, catalog).map(|i| i.template)
}

/// [`import_template`] with the action mapping's summary.
///
/// An OSCAL catalog (with or without a profile) is titled after the profile's metadata title
/// when a profile is given, else the catalog's. Its framework is recognised
/// ([`oscal::framework::recognise`]); for SP 800-53 rev 5 and CSF 2.0 the controls take the
/// actions of the built-in template of that framework ([`oscal::mapping::map_actions`]). The
/// id is derived ([`oscal::framework::derived_id`]: `nist-800-53-r5-low` for NIST's LOW
/// baseline, else a slug of at most 48 characters) avoiding `options.taken_ids`.
///
/// # Errors
///
/// As [`import_template`]; also when the built-in template of a recognised framework does
/// not load against `catalog`.
pub fn import(
    format: ImportFormat,
    name: &str,
    bytes: Vec<u8>,
    options: &ImportOptions,
    catalog: &Catalog,
) -> Result<Imported, Vec<ImportError>> {
    let mut mapping = None;
    let mut template = match format {
        ImportFormat::Workbook => super::excel::template_from_xlsx(&bytes, catalog)?,
        ImportFormat::Csv => {
            let text = utf8_text(bytes, name).map_err(|e| vec![e])?;
            super::csv::template_from_csv(&text, name, catalog)?
        }
        ImportFormat::OscalJson | ImportFormat::OscalXml => {
            let text = utf8_text(bytes, name).map_err(|e| vec![e])?;
            let cat = if format == ImportFormat::OscalJson {
                oscal::catalog_from_json(&text)
            } else {
                oscal::catalog_from_xml(&text)
            }
            .map_err(|errs| prefix(name, errs))?;
            let profile = match &options.profile {
                Some(p) => Some(oscal::profile_selection(p).map_err(|e| prefix("profile", e))?),
                None => None,
            };
            let select = profile.as_ref().map(|p| p.ids.as_slice());
            let source_title = profile
                .as_ref()
                .map(|p| p.title.as_str())
                .filter(|t| !t.trim().is_empty())
                .unwrap_or(&cat.title);
            let framework = oscal::framework::recognise(
                source_title,
                cat.controls.iter().filter(|c| {
                    !c.withdrawn && select.is_none_or(|ids| ids.iter().any(|s| c.matches(s)))
                }),
            );
            let title = options
                .title
                .clone()
                .unwrap_or_else(|| source_title.to_owned());
            let certification = options
                .certification
                .clone()
                .unwrap_or_else(|| cat.title.clone());
            let id = oscal::framework::derived_id(framework, source_title, &options.taken_ids);
            let mut t = oscal::template_from_catalog(&cat, &id, &title, &certification, select);
            if t.controls.is_empty() {
                return Err(vec![ImportError::new(
                    name,
                    "no control selected (check the profile's ids against the catalog)",
                )]);
            }
            if let Some(framework) = framework {
                mapping = Some(map_builtin_actions(&mut t, framework, catalog)?);
            }
            t
        }
    };
    if let Some(id) = &options.id {
        template.id.clone_from(id);
    }
    if let Some(title) = &options.title {
        template.title.clone_from(title);
    }
    if let Some(c) = &options.certification {
        template.certification.clone_from(c);
    }
    let problems = validate(&template.id, &template);
    if problems.is_empty() {
        Ok(Imported { template, mapping })
    } else {
        Err(problems
            .into_iter()
            .map(|p| {
                let at = if p.path.is_empty() {
                    "template".to_owned()
                } else {
                    format!("template.{}", p.path)
                };
                ImportError::new(at, p.message)
            })
            .collect())
    }
}

/// Map the actions of the built-in template of `framework` onto `template`.
fn map_builtin_actions(
    template: &mut Template,
    framework: oscal::framework::Framework,
    catalog: &Catalog,
) -> Result<oscal::mapping::MappingSummary, Vec<ImportError>> {
    let unavailable = |why: String| {
        vec![ImportError::new(
            "template.actions",
            format!(
                "the built-in template {} (whose actions an import of {} takes) does not load: \
                 {why}",
                framework.builtin_template(),
                framework.name()
            ),
        )]
    };
    let registry = TemplateRegistry::builtin(&catalog.actions, oscal::framework_controls)
        .map_err(|e| unavailable(format!("{} problem(s)", e.len())))?;
    let builtin = registry
        .get(framework.builtin_template())
        .ok_or_else(|| unavailable("not found".to_owned()))?;
    let library: HashSet<String> = builtin_library_actions()
        .map_err(|e| unavailable(format!("{} problem(s) in the action library", e.len())))?
        .into_iter()
        .map(|a| a.id)
        .collect();
    Ok(oscal::mapping::map_actions(
        template, framework, builtin, &library,
    ))
}

fn prefix(name: &str, errors: Vec<ImportError>) -> Vec<ImportError> {
    errors
        .into_iter()
        .map(|e| ImportError::new(format!("{name}:{}", e.location), e.message))
        .collect()
}

/// A format an assessment report is exported in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    /// Excel workbook: Summary, Controls, Actions, Evidence sheets.
    Xlsx,
    /// CSV, one row per (control, action).
    Csv,
    /// The JSON assessment report.
    Json,
    /// OSCAL assessment-results (JSON).
    Oscal,
}

impl ReportFormat {
    /// The media type of the export.
    pub fn media_type(self) -> &'static str {
        match self {
            ReportFormat::Xlsx => XLSX_MEDIA_TYPE,
            ReportFormat::Csv => "text/csv; charset=utf-8",
            ReportFormat::Json => "application/json",
            ReportFormat::Oscal => "application/oscal.assessment-results+json",
        }
    }

    /// The file extension of the export.
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Xlsx => "xlsx",
            ReportFormat::Csv => "csv",
            ReportFormat::Json | ReportFormat::Oscal => "json",
        }
    }
}

/// The media type of an Excel workbook.
pub const XLSX_MEDIA_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Render an assessment report in `format`.
///
/// # Errors
///
/// The exporter's error.
pub fn export_report(
    report: &AssessmentReport,
    format: ReportFormat,
) -> Result<Vec<u8>, ExportError> {
    Ok(match format {
        ReportFormat::Xlsx => super::excel::report_to_xlsx(report)?,
        ReportFormat::Csv => super::csv::report_to_csv(report)?.into_bytes(),
        ReportFormat::Json => super::json::report_to_json(report)?.into_bytes(),
        ReportFormat::Oscal => oscal::assessment_results_json(report)?.into_bytes(),
    })
}

/// A format a template is exported in: `xlsx` and `csv` are read back by the importers;
/// `json` is the template as the API serialises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateFormat {
    /// Compliance Manager workbook.
    Xlsx,
    /// Flat CSV.
    Csv,
    /// The template as JSON (the API's template shape).
    Json,
}

impl TemplateFormat {
    /// The media type of the export.
    pub fn media_type(self) -> &'static str {
        match self {
            TemplateFormat::Xlsx => XLSX_MEDIA_TYPE,
            TemplateFormat::Csv => "text/csv; charset=utf-8",
            TemplateFormat::Json => "application/json",
        }
    }

    /// The file extension of the export.
    pub fn extension(self) -> &'static str {
        match self {
            TemplateFormat::Xlsx => "xlsx",
            TemplateFormat::Csv => "csv",
            TemplateFormat::Json => "json",
        }
    }
}

/// Render a template in `format`.
///
/// # Errors
///
/// The exporter's error.
pub fn export_template(
    template: &Template,
    format: TemplateFormat,
) -> Result<Vec<u8>, ExportError> {
    Ok(match format {
        TemplateFormat::Xlsx => super::excel::template_to_xlsx(template)?,
        TemplateFormat::Csv => super::csv::template_to_csv(template)?.into_bytes(),
        TemplateFormat::Json => serde_json::to_vec_pretty(template)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_extension_and_media_type() {
        assert_eq!(
            ImportFormat::from_extension("XLSX"),
            Some(ImportFormat::Workbook)
        );
        assert_eq!(ImportFormat::from_extension("csv"), Some(ImportFormat::Csv));
        assert_eq!(ImportFormat::from_extension("txt"), None);
        assert_eq!(
            ImportFormat::from_media_type("text/csv; charset=utf-8"),
            Some(ImportFormat::Csv)
        );
        assert_eq!(
            ImportFormat::from_media_type("application/oscal.catalog+xml"),
            Some(ImportFormat::OscalXml)
        );
        assert_eq!(ImportFormat::from_media_type("text/plain"), None);
    }

    /// A template exported as CSV or a workbook imports back to itself.
    #[test]
    fn template_exports_import_back() {
        let catalog = Catalog::builtin();
        let t = crate::model::template::one_control_template("acme", "ACME", "ACME 1");
        for (format, import) in [
            (TemplateFormat::Csv, ImportFormat::Csv),
            (TemplateFormat::Xlsx, ImportFormat::Workbook),
        ] {
            let bytes = export_template(&t, format).expect("export");
            let back = import_template(
                import,
                "acme.csv",
                bytes,
                &ImportOptions::default(),
                &catalog,
            )
            .unwrap_or_else(|e| panic!("{format:?}: {e:?}"));
            assert_eq!(back.controls, t.controls, "{format:?}");
            assert_eq!(back.actions.len(), t.actions.len(), "{format:?}");
        }
    }
}
