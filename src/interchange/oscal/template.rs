//! Catalog → template: turns a flattened [`OscalCatalog`] (from either importer) into a
//! [`Template`] of controls without actions, optionally restricted to a profile's selection.
//!
//! Must not: parse anything (the importers do), invent actions, or touch the store.

use std::collections::HashMap;

use super::{OscalCatalog, OscalControl};
use crate::model::template::{Template, TemplateControl};

/// Longest control description kept by [`template_from_catalog`], in characters; longer
/// statements are cut at a word boundary and end with `…`.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;

/// A template of the catalog's controls, without actions.
///
/// Controls: every control and enhancement that is not withdrawn, in catalog order; with
/// `select`, only those whose OSCAL id, label or template id is listed (case-insensitive; e.g.
/// the ids of [`super::profile_control_ids`]). Each becomes a [`TemplateControl`] with
/// id = [`OscalControl::template_id`] (`AC-2`, `AC-2(1)`, `GV.OC-01`), family = top-level group
/// title, title = control title — or, when the title is just the control's id (CSF
/// subcategories are titled `GV.OC-01`), the parent control's title —, description = the
/// flattened statement cut to [`MAX_DESCRIPTION_CHARS`]. `product` and `in_scope_services`
/// are left empty.
pub fn template_from_catalog(
    catalog: &OscalCatalog,
    id: &str,
    title: &str,
    certification: &str,
    select: Option<&[String]>,
) -> Template {
    let by_id: HashMap<&str, &OscalControl> = catalog
        .controls
        .iter()
        .map(|c| (c.id.as_str(), c))
        .collect();
    let controls = catalog
        .controls
        .iter()
        .filter(|c| !c.withdrawn)
        .filter(|c| select.is_none_or(|ids| ids.iter().any(|s| c.matches(s))))
        .map(|c| {
            let tid = c.template_id();
            let mut ctitle = c.title.clone();
            if (ctitle.eq_ignore_ascii_case(&tid) || ctitle.eq_ignore_ascii_case(&c.id))
                && let Some(p) = c.parent.as_deref().and_then(|p| by_id.get(p))
            {
                ctitle = p.title.clone();
            }
            TemplateControl {
                id: tid,
                family: c.family.clone(),
                title: ctitle,
                description: truncate(&c.statement, MAX_DESCRIPTION_CHARS),
                actions: Vec::new(),
            }
        })
        .collect();
    Template {
        id: id.to_owned(),
        title: title.to_owned(),
        product: String::new(),
        certification: certification.to_owned(),
        in_scope_services: Vec::new(),
        controls,
        actions: Vec::new(),
    }
}

/// `s` cut to at most `max` characters, at a word boundary past the middle when there is
/// one, ending with `…`.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max - 1).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > max / 2 => cut[..i].to_owned(),
        _ => cut,
    };
    format!("{}…", cut.trim_end())
}

/// Controls of an OSCAL catalog file (JSON, or XML when the name ends in `.xml`), as
/// `crate::model::FrameworkReader` asks: every control and enhancement that is not
/// withdrawn, with its id as templates write it (`AC-2(1)`, `GV.OC-01`), family, title and
/// statement.
pub fn framework_controls(name: &str, bytes: &[u8]) -> Result<Vec<TemplateControl>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("{name} is not UTF-8: {e}"))?;
    let catalog = if name.to_ascii_lowercase().ends_with(".xml") {
        super::catalog_from_xml(text)
    } else {
        super::catalog_from_json(text)
    }
    .map_err(|errors| {
        let shown: Vec<String> = errors.iter().take(5).map(ToString::to_string).collect();
        format!("{name}: {}", shown.join("; "))
    })?;
    Ok(template_from_catalog(&catalog, "", "", "", None).controls)
}
