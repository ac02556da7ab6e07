//! Points of an improvement action (SCORING.md "Points of an action").
//!
//! Default points come from two axes, [`Purpose`] and [`Enforcement`]; a catalog entry may
//! override them with a whole number in [`MIN_POINTS`]`..=`[`MAX_POINTS`]. Pure data: no IO.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Smallest custom point value.
pub const MIN_POINTS: u32 = 1;
/// Largest custom point value.
pub const MAX_POINTS: u32 = 99;

/// What an action does against a threat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Stops an incident from happening (e.g. requiring MFA).
    Preventative,
    /// Notices an incident (e.g. monitoring, scoring).
    Detective,
    /// Limits or repairs the damage (e.g. self-service recovery).
    Corrective,
}

/// Whether the action is required or left to the organisation's judgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforcement {
    /// Required by the control it implements.
    Mandatory,
    /// Recommended; the organisation may choose another way.
    Discretionary,
}

impl Purpose {
    /// Every purpose.
    pub const ALL: [Purpose; 3] = [
        Purpose::Preventative,
        Purpose::Detective,
        Purpose::Corrective,
    ];

    /// Stable snake_case name (`"preventative"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Preventative => "preventative",
            Purpose::Detective => "detective",
            Purpose::Corrective => "corrective",
        }
    }

    /// Parse a name; `None` when unknown.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl Enforcement {
    /// Every enforcement.
    pub const ALL: [Enforcement; 2] = [Enforcement::Mandatory, Enforcement::Discretionary];

    /// Stable snake_case name (`"mandatory"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Mandatory => "mandatory",
            Enforcement::Discretionary => "discretionary",
        }
    }

    /// Parse a name; `None` when unknown.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Enforcement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Default points of an action (SCORING.md table):
///
/// | purpose \ enforcement | mandatory | discretionary |
/// |---|---|---|
/// | preventative | 27 | 9 |
/// | detective | 3 | 1 |
/// | corrective | 3 | 1 |
pub fn default_points(purpose: Purpose, enforcement: Enforcement) -> u32 {
    match (purpose, enforcement) {
        (Purpose::Preventative, Enforcement::Mandatory) => 27,
        (Purpose::Preventative, Enforcement::Discretionary) => 9,
        (Purpose::Detective | Purpose::Corrective, Enforcement::Mandatory) => 3,
        (Purpose::Detective | Purpose::Corrective, Enforcement::Discretionary) => 1,
    }
}

/// Check a custom point value: a whole number in `1..=99`. The error is the message shown after
/// the key path (`120 is not in 1..=99`).
pub fn validate_points(points: i64) -> Result<u32, String> {
    match u32::try_from(points) {
        Ok(p) if (MIN_POINTS..=MAX_POINTS).contains(&p) => Ok(p),
        _ => Err(format!("{points} is not in {MIN_POINTS}..={MAX_POINTS}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_points_table() {
        let table = [
            (Purpose::Preventative, Enforcement::Mandatory, 27),
            (Purpose::Preventative, Enforcement::Discretionary, 9),
            (Purpose::Detective, Enforcement::Mandatory, 3),
            (Purpose::Detective, Enforcement::Discretionary, 1),
            (Purpose::Corrective, Enforcement::Mandatory, 3),
            (Purpose::Corrective, Enforcement::Discretionary, 1),
        ];
        for (purpose, enforcement, points) in table {
            assert_eq!(
                default_points(purpose, enforcement),
                points,
                "{purpose} / {enforcement}"
            );
        }
    }

    #[test]
    fn custom_points_range() {
        let table: [(i64, Option<u32>); 7] = [
            (-1, None),
            (0, None),
            (1, Some(1)),
            (27, Some(27)),
            (99, Some(99)),
            (100, None),
            (120, None),
        ];
        for (input, expected) in table {
            assert_eq!(validate_points(input).ok(), expected, "{input}");
        }
        assert_eq!(
            validate_points(120).unwrap_err(),
            "120 is not in 1..=99".to_string()
        );
    }

    #[test]
    fn names_round_trip() {
        for p in Purpose::ALL {
            assert_eq!(Purpose::parse(p.as_str()), Some(p));
        }
        for e in Enforcement::ALL {
            assert_eq!(Enforcement::parse(e.as_str()), Some(e));
        }
        assert_eq!(Purpose::parse("preventive"), None);
    }
}
