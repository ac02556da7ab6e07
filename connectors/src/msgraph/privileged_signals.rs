//! The privileged-access policies of CISA's SCuBA Entra ID baseline (section 7,
//! `MS.AAD.7.1v1` to `7.9v1`) over a [`PrivilegedAccess`]: the `msgraph.privileged.*` signals.
//!
//! Pure: no IO, no clock. Three namespaces, each with its own gap prefix, so that one missing
//! permission or licence gaps only the checks that depend on it:
//!
//! | namespace (gap prefix) | from | checks |
//! |---|---|---|
//! | `msgraph.privileged.roles.` | role assignments, eligibilities (with Entra ID P2), principals | 7.1, 7.2, 7.3 and the counts |
//! | `msgraph.privileged.pim_assignments.` | active assignment schedule instances | 7.4, 7.5 |
//! | `msgraph.privileged.pim_policies.` | PIM policies of the directory roles | 7.6, 7.7, 7.8, 7.9 |
//!
//! The rules, restated from ScubaGear's `AADConfig.rego` (section 7), with the points where
//! postured is stricter (also in `docs/connectors/msgraph.md`, "SCuBA: privileged access"):
//!
//! - the privileged users are the users holding one of the eight privileged roles
//!   ([`super::scuba::PRIVILEGED_ROLES`]) by an active assignment or an eligible one; a group
//!   holding a role counts each of its users (transitively). The eligibilities are needed
//!   (unreadable: a gap) when the tenant has Entra ID P2; without it they are used when
//!   readable and otherwise ignored;
//! - 7.1: between 2 and 8 distinct users hold Global Administrator; 7.2: 7.1 holds and no more
//!   users hold Global Administrator than hold only other privileged roles;
//! - 7.3: no privileged user has an `onPremisesImmutableId`. A privileged user the `/users`
//!   lookup does not return cannot be shown cloud-only and fails the check (stricter);
//! - 7.4: no active assignment of a privileged role is permanent (no end) unless its
//!   principal is in `permanent_assignments`; 7.5: every active assignment of a privileged role
//!   has a start (was made through PIM). Only the assignments themselves (`memberType`
//!   `Direct`) are judged, not the copies a group's members inherit;
//! - 7.6: Global Administrator's activation needs approval (rule `Approval_EndUser_Assignment`);
//!   7.7: every privileged role alerts on active and eligible assignments
//!   (`Notification_Admin_Admin_Assignment`, `Notification_Admin_Admin_Eligibility`, each with
//!   a recipient); 7.8 / 7.9: activating Global Administrator / another privileged role
//!   alerts (`Notification_Admin_EndUser_Assignment`, type `Email`, with a recipient). A
//!   privileged role with no PIM policy, or a policy without the rule, fails (stricter).
//!
//! Detail texts name principals by object id only.

use std::collections::{BTreeMap, BTreeSet};

use super::MsGraphSnapshot;
use super::privileged::{
    PolicyAssignment, PolicyRule, PrivilegedAccess, PrivilegedUser, Resolved, ScheduleInstance,
    is_privileged, role_name,
};
use super::scuba::{Exclusions, PRIVILEGED_ROLES};
use crate::signal::SnapshotBuilder;

/// Gap prefix and namespace of 7.1–7.3.
pub const ROLES: &str = "msgraph.privileged.roles.";
/// Gap prefix and namespace of 7.4–7.5.
pub const PIM_ASSIGNMENTS: &str = "msgraph.privileged.pim_assignments.";
/// Gap prefix and namespace of 7.6–7.9.
pub const PIM_POLICIES: &str = "msgraph.privileged.pim_policies.";

const GLOBAL_ADMIN: &str = "62e90394-69f5-4237-9190-012177145e10";

/// Most object ids a detail text lists.
const SHOWN: usize = 10;

/// One check's outcome: met, and the detail text (why, or what satisfies it).
struct Verdict {
    met: bool,
    detail: String,
}

impl Verdict {
    fn emit(&self, b: &mut SnapshotBuilder, namespace: &str, check: &str) {
        b.flag(format!("{namespace}scuba.{check}.met"), self.met);
        b.text(
            format!("{namespace}scuba.{check}.detail"),
            self.detail.clone(),
        );
    }
}

/// `a, b, c`, sorted and each once, at most [`crate::signal::MAX_LISTED`], then ` and N
/// more`; empty for none.
fn listing<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<String> = items
        .into_iter()
        .collect::<BTreeSet<&str>>()
        .into_iter()
        .map(str::to_owned)
        .collect();
    crate::signal::listing(&names)
}

/// `names` joined by `sep`, at most [`SHOWN`], then ` and N more`.
fn capped(names: &[String], sep: &str) -> String {
    let mut out = names
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(sep);
    if names.len() > SHOWN {
        out.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    out
}

/// Emit the `msgraph.privileged.*` signals (or gaps) of a snapshot.
pub fn privileged(b: &mut SnapshotBuilder, s: &MsGraphSnapshot, exclusions: &Exclusions) {
    let p2 = s
        .subscribed_skus
        .as_ref()
        .ok()
        .map(|skus| skus.iter().any(|k| k.provides("AAD_PREMIUM_P2")));
    let p = &s.privileged;
    roles(b, p, p2);
    match &p.active {
        Ok(instances) => pim_assignments(b, instances, exclusions),
        Err(e) => b.gap(PIM_ASSIGNMENTS, e),
    }
    match &p.policies {
        Ok(policies) => pim_policies(b, policies),
        Err(e) => b.gap(PIM_POLICIES, e),
    }
}

/// 7.1–7.3: who holds the privileged roles.
fn roles(b: &mut SnapshotBuilder, p: &PrivilegedAccess, p2: Option<bool>) {
    // Eligibilities are needed unless the tenant is known to have no P2 (then they are
    // neither usable nor, usually, readable: the error is kept, without a gap).
    let eligibility: &[ScheduleInstance] = match (&p.eligibility, p2) {
        (Ok(e), _) => e,
        (Err(e), Some(false)) => {
            b.error(e);
            &[]
        }
        (Err(_), _) => &[],
    };
    let needed = [
        p.assignments.as_ref().err(),
        p.eligibility.as_ref().err().filter(|_| p2 != Some(false)),
        p.principals.as_ref().err(),
    ];
    if needed.iter().any(Option::is_some) {
        for e in needed.into_iter().flatten() {
            b.gap(ROLES, e);
        }
        return;
    }
    let (Ok(assignments), Ok(principals)) = (&p.assignments, &p.principals) else {
        return;
    };
    // role -> the principals holding it (active and eligible).
    let mut holders: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let held = assignments
        .iter()
        .map(|a| (&a.role_definition_id, &a.principal_id))
        .chain(
            eligibility
                .iter()
                .map(|e| (&e.role_definition_id, &e.principal_id)),
        );
    for (role, principal) in held {
        let Some((role, _)) = PRIVILEGED_ROLES
            .iter()
            .find(|(id, _)| id.eq_ignore_ascii_case(role))
        else {
            continue;
        };
        holders
            .entry(role)
            .or_default()
            .insert(principal.to_ascii_lowercase());
    }
    // user id -> the user; users of the lookup that are missing.
    let mut users: BTreeMap<&str, &PrivilegedUser> = BTreeMap::new();
    let mut not_found: BTreeSet<&str> = BTreeSet::new();
    let mut ga: BTreeSet<&str> = BTreeSet::new();
    for (role, principals_of_role) in &holders {
        for id in principals_of_role {
            match principals.get(id) {
                Some(Resolved::User(u)) => {
                    users.insert(&u.id, u);
                    if *role == GLOBAL_ADMIN {
                        ga.insert(&u.id);
                    }
                }
                Some(Resolved::Group(members)) => {
                    for u in members {
                        users.insert(&u.id, u);
                        if *role == GLOBAL_ADMIN {
                            ga.insert(&u.id);
                        }
                    }
                }
                Some(Resolved::UserNotFound) | None => {
                    not_found.insert(id);
                }
                Some(Resolved::Other) => {}
            }
        }
    }
    let synced: Vec<&str> = users
        .values()
        .filter(|u| u.on_premises_immutable_id.is_some())
        .map(|u| u.id.as_str())
        .collect();
    let non_ga = users.keys().filter(|id| !ga.contains(*id)).count();
    b.count(format!("{ROLES}global_admins_total"), ga.len());
    b.count(format!("{ROLES}users_total"), users.len());
    b.count(format!("{ROLES}not_cloud_only_total"), synced.len());
    b.count(
        format!("{ROLES}disabled_total"),
        users.values().filter(|u| u.disabled).count(),
    );
    b.text(
        format!("{ROLES}not_cloud_only"),
        listing(synced.iter().copied()),
    );

    let v71 = Verdict {
        met: (2..=8).contains(&ga.len()),
        detail: format!(
            "{} users hold Global Administrator (2 to 8 wanted){}",
            ga.len(),
            if ga.is_empty() {
                String::new()
            } else {
                format!(": {}", listing(ga.iter().copied()))
            }
        ),
    };
    let v72 = Verdict {
        met: v71.met && ga.len() <= non_ga,
        detail: if !v71.met {
            format!("MS.AAD.7.1v1 is not met: {}", v71.detail)
        } else {
            format!(
                "{} Global Administrators, {non_ga} users holding only other privileged roles (no more Global Administrators than those wanted)",
                ga.len()
            )
        },
    };
    let v73 = if synced.is_empty() && not_found.is_empty() {
        Verdict {
            met: true,
            detail: format!("all {} privileged users are cloud-only", users.len()),
        }
    } else {
        let mut parts = Vec::new();
        if !synced.is_empty() {
            parts.push(format!(
                "{} privileged users are synchronised from on-premises (onPremisesImmutableId set): {}",
                synced.len(),
                listing(synced.iter().copied())
            ));
        }
        if !not_found.is_empty() {
            parts.push(format!(
                "{} privileged principals could not be read as users, so are not shown cloud-only: {}",
                not_found.len(),
                listing(not_found.iter().copied())
            ));
        }
        Verdict {
            met: false,
            detail: parts.join("; "),
        }
    };
    v71.emit(b, ROLES, "aad_7_1");
    v72.emit(b, ROLES, "aad_7_2");
    v73.emit(b, ROLES, "aad_7_3");
}

/// Whether an instance is the assignment itself (`memberType` `Direct`, or absent), not its
/// inherited copy for a member of a group that holds the role: the group's own instance
/// stands for it, so a group is judged (and allowed) once.
fn direct(i: &ScheduleInstance) -> bool {
    i.member_type
        .as_deref()
        .is_none_or(|m| m.eq_ignore_ascii_case("Direct"))
}

/// `<principal> (<role>)` for the instances matching `bad`.
fn offenders<'a>(
    instances: &'a [ScheduleInstance],
    bad: impl Fn(&ScheduleInstance) -> bool + 'a,
) -> Vec<String> {
    let set: BTreeSet<String> = instances
        .iter()
        .filter(|i| is_privileged(&i.role_definition_id) && direct(i) && bad(i))
        .map(|i| {
            format!(
                "{} ({})",
                i.principal_id.to_ascii_lowercase(),
                role_name(&i.role_definition_id)
            )
        })
        .collect();
    set.into_iter().collect()
}

/// 7.4 and 7.5: the active assignments of the privileged roles.
fn pim_assignments(
    b: &mut SnapshotBuilder,
    instances: &[ScheduleInstance],
    exclusions: &Exclusions,
) {
    let allowed = &exclusions.permanent_assignments;
    let permanent = offenders(instances, |i| {
        let id = i.principal_id.to_ascii_lowercase();
        i.end_date_time.is_none() && !allowed.users.contains(&id) && !allowed.groups.contains(&id)
    });
    let outside = offenders(instances, |i| i.start_date_time.is_none());
    b.count(format!("{PIM_ASSIGNMENTS}permanent_total"), permanent.len());
    b.count(format!("{PIM_ASSIGNMENTS}outside_pim_total"), outside.len());
    let verdict = |bad: &[String], what: &str, good: &str| Verdict {
        met: bad.is_empty(),
        detail: if bad.is_empty() {
            good.to_owned()
        } else {
            format!(
                "{} {what}: {}",
                bad.len(),
                listing(bad.iter().map(String::as_str))
            )
        },
    };
    verdict(
        &permanent,
        "permanent active privileged role assignments not allowed by permanent_assignments",
        "no permanent active privileged role assignment outside permanent_assignments",
    )
    .emit(b, PIM_ASSIGNMENTS, "aad_7_4");
    verdict(
        &outside,
        "active privileged role assignments made outside PIM (no start date)",
        "every active privileged role assignment was made through PIM",
    )
    .emit(b, PIM_ASSIGNMENTS, "aad_7_5");
}

/// What a PIM policy rule must hold.
#[derive(Clone, Copy)]
enum Want {
    /// An approval rule requiring approval.
    Approval,
    /// A notification rule with at least one recipient (of type Email when `email`).
    Recipients { email: bool },
}

/// The roles in `roles` whose policy's rule `rule` does not hold `want`, with why.
fn failing(
    policies: &BTreeMap<String, &[PolicyRule]>,
    roles: &[&str],
    rule: &str,
    want: Want,
) -> Vec<String> {
    let mut out = Vec::new();
    for role in roles {
        let name = role_name(role);
        let Some(rules) = policies.get(*role) else {
            out.push(format!("{name}: no PIM policy"));
            continue;
        };
        let Some(r) = rules.iter().find(|r| r.id == rule) else {
            out.push(format!("{name}: no rule {rule}"));
            continue;
        };
        let why = match want {
            Want::Approval => (r.setting.as_ref().and_then(|s| s.is_approval_required)
                != Some(true))
            .then(|| "approval not required".to_owned()),
            Want::Recipients { email } => {
                if email
                    && !r
                        .notification_type
                        .as_deref()
                        .is_some_and(|t| t.eq_ignore_ascii_case("Email"))
                {
                    Some("not an email notification".to_owned())
                } else if r
                    .notification_recipients
                    .iter()
                    .all(|x| x.trim().is_empty())
                {
                    Some("no additional recipient".to_owned())
                } else {
                    None
                }
            }
        };
        if let Some(why) = why {
            out.push(format!("{name}: {rule} {why}"));
        }
    }
    out
}

/// 7.6–7.9: the PIM policies of the privileged roles.
fn pim_policies(b: &mut SnapshotBuilder, assignments: &[PolicyAssignment]) {
    let mut policies: BTreeMap<String, &[PolicyRule]> = BTreeMap::new();
    // The request asks for scope `/` and type `DirectoryRole` only; the scope is checked again.
    for a in assignments
        .iter()
        .filter(|a| a.scope_id.as_deref() == Some("/") && is_privileged(&a.role_definition_id))
    {
        if let Some(p) = &a.policy {
            policies.insert(a.role_definition_id.to_ascii_lowercase(), &p.rules);
        }
    }
    let all: Vec<&str> = PRIVILEGED_ROLES.iter().map(|(id, _)| *id).collect();
    let others: Vec<&str> = all.iter().copied().filter(|r| *r != GLOBAL_ADMIN).collect();
    let verdict = |bad: Vec<String>, good: &str| {
        // one line per role and rule, in order, each once, at most SHOWN
        let mut seen = BTreeSet::new();
        let bad: Vec<String> = bad.into_iter().filter(|b| seen.insert(b.clone())).collect();
        Verdict {
            met: bad.is_empty(),
            detail: if bad.is_empty() {
                good.to_owned()
            } else {
                capped(&bad, "; ")
            },
        }
    };
    verdict(
        failing(
            &policies,
            &[GLOBAL_ADMIN],
            "Approval_EndUser_Assignment",
            Want::Approval,
        ),
        "activating Global Administrator requires approval",
    )
    .emit(b, PIM_POLICIES, "aad_7_6");
    let mut alerts = failing(
        &policies,
        &all,
        "Notification_Admin_Admin_Assignment",
        Want::Recipients { email: false },
    );
    alerts.extend(failing(
        &policies,
        &all,
        "Notification_Admin_Admin_Eligibility",
        Want::Recipients { email: false },
    ));
    verdict(
        alerts,
        "every privileged role alerts a recipient on active and eligible assignments",
    )
    .emit(b, PIM_POLICIES, "aad_7_7");
    let activation = |roles: &[&str]| {
        failing(
            &policies,
            roles,
            "Notification_Admin_EndUser_Assignment",
            Want::Recipients { email: true },
        )
    };
    verdict(
        activation(&[GLOBAL_ADMIN]),
        "activating Global Administrator alerts a recipient by email",
    )
    .emit(b, PIM_POLICIES, "aad_7_8");
    verdict(
        activation(&others),
        "activating any other privileged role alerts a recipient by email",
    )
    .emit(b, PIM_POLICIES, "aad_7_9");
}
