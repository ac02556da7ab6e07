//! The overview's filters: the GET form's query (every field optional, an empty value meaning
//! "all") checked into a [`ScoreFilter`] and limited to what the signed-in principal may see.
//!
//! Limits: each value at most [`MAX_FILTER_VALUE_CHARS`] characters; `testing_source` and
//! `test_status` must be known names. A principal limited to some tenants (groups) always
//! sees one of them: the filter's tenant (group) when in scope, else the first in scope.

use serde::Deserialize;

use crate::evaluation::TestStatus;
use crate::model::ScoreFilter;
use crate::model::report::TestingSource;
use crate::server::auth::Principal;
use crate::server::dashboard::layout::{TESTING_SOURCES, source_name};

/// Longest accepted filter value, in characters.
pub const MAX_FILTER_VALUE_CHARS: usize = 256;

/// The overview's query string.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FilterQuery {
    /// Tenant id.
    pub tenant: Option<String>,
    /// Assessment id.
    pub assessment: Option<String>,
    /// Certification.
    pub regulation: Option<String>,
    /// Solution.
    pub solution: Option<String>,
    /// Group id.
    pub group: Option<String>,
    /// Category.
    pub category: Option<String>,
    /// `automatic`, `manual` or `parent`.
    pub testing_source: Option<String>,
    /// A test status name (`passed`, `failed_high_risk` ...).
    pub test_status: Option<String>,
}

fn value(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl FilterQuery {
    /// The filter the query asks for.
    ///
    /// # Errors
    ///
    /// A message naming the field: a value too long, an unknown testing source or test status.
    pub fn to_filter(&self) -> Result<ScoreFilter, String> {
        for (name, v) in [
            ("tenant", &self.tenant),
            ("assessment", &self.assessment),
            ("regulation", &self.regulation),
            ("solution", &self.solution),
            ("group", &self.group),
            ("category", &self.category),
            ("testing_source", &self.testing_source),
            ("test_status", &self.test_status),
        ] {
            if v.as_deref()
                .is_some_and(|s| s.chars().count() > MAX_FILTER_VALUE_CHARS)
            {
                return Err(format!(
                    "{name}: longer than {MAX_FILTER_VALUE_CHARS} characters"
                ));
            }
        }
        let testing_source = match value(&self.testing_source) {
            None => None,
            Some(s) => Some(parse_source(&s).ok_or("testing_source: unknown testing source")?),
        };
        let test_status = match value(&self.test_status) {
            None => None,
            Some(s) => Some(TestStatus::parse(&s).ok_or("test_status: unknown test status")?),
        };
        Ok(ScoreFilter {
            tenant: value(&self.tenant),
            assessment: value(&self.assessment),
            regulation: value(&self.regulation),
            solution: value(&self.solution),
            group: value(&self.group),
            category: value(&self.category),
            testing_source,
            test_status,
        })
    }
}

/// The testing source named `s`.
pub fn parse_source(s: &str) -> Option<TestingSource> {
    TESTING_SOURCES.into_iter().find(|t| source_name(*t) == s)
}

/// `filter` limited to `principal`'s scope: a principal limited to tenants (groups) gets the
/// filter's tenant (group) when in scope, else the first of its scope.
pub fn scoped(mut filter: ScoreFilter, principal: &Principal) -> ScoreFilter {
    if let Some(allowed) = &principal.scope.tenants
        && !filter.tenant.as_ref().is_some_and(|t| allowed.contains(t))
    {
        filter.tenant = allowed.iter().next().cloned();
    }
    if let Some(allowed) = &principal.scope.groups
        && !filter.group.as_ref().is_some_and(|g| allowed.contains(g))
    {
        filter.group = allowed.iter().next().cloned();
    }
    filter
}

/// Ids of the configured assessments in `principal`'s scope (tenant and group). A group's
/// instance is shared by the assessments of every tenant in the group: pages list only these.
pub fn assessments_in_scope(
    assessments: &[crate::model::Assessment],
    principal: &Principal,
) -> std::collections::BTreeSet<String> {
    assessments
        .iter()
        .filter(|a| {
            principal.scope.allows_tenant(&a.tenant) && principal.scope.allows_group(&a.group)
        })
        .map(|a| a.id.clone())
        .collect()
}

/// The query string of `filter` (for links that keep it), without the leading `?`.
pub fn query_of(filter: &ScoreFilter) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("tenant", filter.tenant.as_deref()),
        ("assessment", filter.assessment.as_deref()),
        ("regulation", filter.regulation.as_deref()),
        ("solution", filter.solution.as_deref()),
        ("group", filter.group.as_deref()),
        ("category", filter.category.as_deref()),
        ("testing_source", filter.testing_source.map(source_name)),
        ("test_status", filter.test_status.map(TestStatus::as_str)),
    ] {
        if let Some(v) = v {
            q.append_pair(k, v);
        }
    }
    q.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::auth::{Role, Scope};

    #[test]
    fn empty_values_mean_all_and_unknown_names_are_refused() {
        let q = FilterQuery {
            tenant: Some(String::new()),
            category: Some("Identity".into()),
            test_status: Some("passed".into()),
            testing_source: Some(" ".into()),
            ..FilterQuery::default()
        };
        let f = q.to_filter().unwrap();
        assert_eq!(f.tenant, None);
        assert_eq!(f.category.as_deref(), Some("Identity"));
        assert_eq!(f.test_status, Some(TestStatus::Passed));
        assert_eq!(f.testing_source, None);
        assert_eq!(query_of(&f), "category=Identity&test_status=passed");
        let bad = FilterQuery {
            test_status: Some("great".into()),
            ..FilterQuery::default()
        };
        assert!(bad.to_filter().unwrap_err().starts_with("test_status"));
        let long = FilterQuery {
            solution: Some("x".repeat(MAX_FILTER_VALUE_CHARS + 1)),
            ..FilterQuery::default()
        };
        assert!(long.to_filter().unwrap_err().starts_with("solution"));
    }

    #[test]
    fn a_scoped_principal_sees_its_tenants_only() {
        let p = Principal {
            subject: "token:1".into(),
            role: Role::Reader,
            scope: Scope {
                tenants: Some(["b".to_string(), "c".to_string()].into()),
                groups: None,
            },
        };
        let f = |t: Option<&str>| ScoreFilter {
            tenant: t.map(str::to_owned),
            ..ScoreFilter::default()
        };
        assert_eq!(scoped(f(None), &p).tenant.as_deref(), Some("b"));
        assert_eq!(scoped(f(Some("c")), &p).tenant.as_deref(), Some("c"));
        assert_eq!(scoped(f(Some("a")), &p).tenant.as_deref(), Some("b"));
        let all = Principal {
            scope: Scope::default(),
            ..p
        };
        assert_eq!(scoped(f(None), &all).tenant, None);
    }
}
