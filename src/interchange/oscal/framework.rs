//! Which framework an imported OSCAL catalog or profile is, and the id an import derives.
//!
//! The rule ([`recognise`]), documented in `docs/interchange.md`: a document is
//! - **NIST SP 800-53 rev 5** when its metadata title (the profile's when a profile is given,
//!   else the catalog's) names SP 800-53 (`800-53`) and revision 5 (`Revision 5`, `Rev. 5`,
//!   `Rev 5`, `r5`), and every selected control id follows SP 800-53's scheme: two letters, a
//!   dash and a number, optionally `.N` for an enhancement (`ac-2`, `ac-2.1`);
//! - **NIST CSF 2.0** when its title names the Cybersecurity Framework (`Cybersecurity
//!   Framework` or `CSF`) and `2.0`, and every selected control id follows CSF 2.0's scheme: a
//!   function (`GV`), a category (`GV.OC`) or a subcategory (`GV.OC-01`);
//! - else not recognised (its controls get no actions).
//!
//! Both the title and the ids must agree: a catalog titled "800-53" whose ids are something
//! else is not mapped by id, and neither is a catalog with 800-53-like ids but another title.
//! The file name plays no part.
//!
//! Must not: read files or know the built-in templates' contents (`super::mapping` maps).

use super::OscalControl;

/// A framework the built-in templates map actions to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    /// NIST SP 800-53 revision 5.
    Sp80053R5,
    /// NIST Cybersecurity Framework 2.0.
    Csf20,
}

impl Framework {
    /// The id of the built-in template whose mappings an import of this framework takes:
    /// `nist-800-53-r5` (the moderate baseline) or `nist-csf-2.0`.
    pub fn builtin_template(self) -> &'static str {
        match self {
            Framework::Sp80053R5 => "nist-800-53-r5",
            Framework::Csf20 => "nist-csf-2.0",
        }
    }

    /// A human name: `NIST SP 800-53 rev 5`, `NIST CSF 2.0`.
    pub fn name(self) -> &'static str {
        match self {
            Framework::Sp80053R5 => "NIST SP 800-53 rev 5",
            Framework::Csf20 => "NIST CSF 2.0",
        }
    }
}

/// The framework of a document titled `title` whose selected controls are `controls`
/// (see the module's rule), or `None`.
pub fn recognise<'a>(
    title: &str,
    controls: impl IntoIterator<Item = &'a OscalControl>,
) -> Option<Framework> {
    let lower = title.to_ascii_lowercase();
    let words = words(&lower);
    let candidate = if lower.contains("800-53")
        && (lower.contains("revision 5")
            || lower.contains("rev. 5")
            || lower.contains("rev 5")
            || words.iter().any(|w| *w == "r5" || *w == "rev5"))
    {
        Framework::Sp80053R5
    } else if (lower.contains("cybersecurity framework") || words.contains(&"csf"))
        && lower.contains("2.0")
    {
        Framework::Csf20
    } else {
        return None;
    };
    let mut any = false;
    for c in controls {
        any = true;
        let fits = match candidate {
            Framework::Sp80053R5 => is_sp800_53_id(&c.id),
            Framework::Csf20 => is_csf_id(&c.id),
        };
        if !fits {
            return None;
        }
    }
    any.then_some(candidate)
}

/// Lower-case alphanumeric words of `s`.
fn words(s: &str) -> Vec<&str> {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect()
}

/// `ac-2`, `ac-2.1` (any case).
fn is_sp800_53_id(id: &str) -> bool {
    let Some((family, rest)) = id.split_once('-') else {
        return false;
    };
    let (base, enh) = match rest.split_once('.') {
        Some((b, e)) => (b, Some(e)),
        None => (rest, None),
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    family.len() == 2
        && family.bytes().all(|b| b.is_ascii_alphabetic())
        && digits(base)
        && enh.is_none_or(digits)
}

/// `GV`, `GV.OC`, `GV.OC-01` (any case).
fn is_csf_id(id: &str) -> bool {
    let letters = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_alphabetic());
    let (head, sub) = match id.split_once('-') {
        Some((h, s)) => (h, Some(s)),
        None => (id, None),
    };
    let ok_head = match head.split_once('.') {
        Some((f, c)) => letters(f) && letters(c),
        None => letters(head) && sub.is_none(),
    };
    ok_head
        && sub.is_none_or(|s| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
        && (sub.is_none() || head.contains('.'))
}

/// Longest id [`derived_id`] gives, in characters: 48.
pub const MAX_DERIVED_ID_CHARS: usize = 48;

/// The template id an import of a document titled `title` derives, unique among `taken`:
/// - SP 800-53 rev 5 with a NIST baseline title (`... LOW IMPACT BASELINE`, `MODERATE`,
///   `HIGH`, `PRIVACY BASELINE`): `nist-800-53-r5-low`, `-moderate`, `-high`, `-privacy`;
/// - else the generic slug: lower-case ASCII letters and digits, every other run of
///   characters one `-`, cut to [`MAX_DERIVED_ID_CHARS`] at a `-` where there is one
///   (`template` when nothing is left).
///
/// Either way, an id in `taken` gets `-2`, `-3`, ... (the slug shortened to keep within the
/// limit).
pub fn derived_id(framework: Option<Framework>, title: &str, taken: &[String]) -> String {
    let base = baseline_id(framework, title).unwrap_or_else(|| slug(title));
    if !taken.iter().any(|t| t == &base) {
        return base;
    }
    (2..)
        .map(|n| {
            let suffix = format!("-{n}");
            let keep = MAX_DERIVED_ID_CHARS - suffix.len();
            let stem: String = base.chars().take(keep).collect();
            format!("{}{suffix}", stem.trim_end_matches('-'))
        })
        .find(|id| !taken.iter().any(|t| t == id))
        .unwrap_or(base)
}

/// `nist-800-53-r5-<level>` for an SP 800-53 rev 5 baseline title.
fn baseline_id(framework: Option<Framework>, title: &str) -> Option<String> {
    if framework != Some(Framework::Sp80053R5) {
        return None;
    }
    let lower = title.to_ascii_lowercase();
    let words = words(&lower);
    if !words.contains(&"baseline") {
        return None;
    }
    ["low", "moderate", "high", "privacy"]
        .into_iter()
        .find(|level| words.contains(level))
        .map(|level| format!("nist-800-53-r5-{level}"))
}

/// The generic slug of a title (see [`derived_id`]).
pub fn slug(title: &str) -> String {
    let full = super::super::template_id_from_title(title);
    if full.chars().count() <= MAX_DERIVED_ID_CHARS {
        return full;
    }
    let cut: String = full.chars().take(MAX_DERIVED_ID_CHARS + 1).collect();
    let cut = match cut.rfind('-') {
        Some(i) if i >= MAX_DERIVED_ID_CHARS / 2 => cut[..i].to_owned(),
        _ => cut.chars().take(MAX_DERIVED_ID_CHARS).collect(),
    };
    cut.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(id: &str) -> OscalControl {
        OscalControl {
            id: id.into(),
            ..OscalControl::default()
        }
    }

    #[test]
    fn frameworks_need_title_and_ids() {
        let sp = [control("ac-2"), control("ia-2.1")];
        let csf = [control("GV"), control("GV.OC"), control("GV.OC-01")];
        let t = "NIST Special Publication 800-53 Revision 5.1.1 LOW IMPACT BASELINE";
        assert_eq!(recognise(t, &sp), Some(Framework::Sp80053R5));
        assert_eq!(recognise(t, &csf), None);
        assert_eq!(recognise("My 800-53 profile", &sp), None);
        assert_eq!(
            recognise("NIST Cybersecurity Framework 2.0", &csf),
            Some(Framework::Csf20)
        );
        assert_eq!(recognise("NIST Cybersecurity Framework 2.0", &sp), None);
        assert_eq!(recognise("NIST Cybersecurity Framework 1.1", &csf), None);
        assert_eq!(recognise(t, &[]), None);
        assert!(!is_sp800_53_id("ac-2.x"));
        assert!(!is_csf_id("GV-01"));
    }

    #[test]
    fn ids_are_short_and_unique() {
        let f = Some(Framework::Sp80053R5);
        let t = |level: &str| {
            format!("NIST Special Publication 800-53 Revision 5.1.1 {level} IMPACT BASELINE")
        };
        assert_eq!(derived_id(f, &t("LOW"), &[]), "nist-800-53-r5-low");
        assert_eq!(derived_id(f, &t("HIGH"), &[]), "nist-800-53-r5-high");
        assert_eq!(
            derived_id(f, "NIST SP 800-53 Rev. 5 PRIVACY BASELINE", &[]),
            "nist-800-53-r5-privacy"
        );
        let catalog = "NIST Special Publication 800-53 Revision 5: Security and Privacy \
                       Controls for Federal Information Systems and Organizations";
        let id = derived_id(f, catalog, &[]);
        assert_eq!(id, "nist-special-publication-800-53-revision-5");
        assert!(id.len() <= MAX_DERIVED_ID_CHARS);
        let long = "x".repeat(100);
        assert_eq!(slug(&long).len(), MAX_DERIVED_ID_CHARS);
        let taken = vec!["nist-800-53-r5-low".to_owned()];
        assert_eq!(derived_id(f, &t("LOW"), &taken), "nist-800-53-r5-low-2");
        let taken = vec![slug(&long)];
        let second = derived_id(None, &long, &taken);
        assert_eq!(second.len(), MAX_DERIVED_ID_CHARS);
        assert!(second.ends_with("-2"));
    }
}
