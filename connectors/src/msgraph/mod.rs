//! Microsoft Graph connector (application permissions, client-credentials flow).
//!
//! PLACEHOLDER: filled in by the connectors work item.

use crate::CollectionError;

/// Connector kind and signal namespace.
pub const KIND: &str = "msgraph";

/// One poll of a Microsoft Graph tenant: each endpoint's parsed payload or its error.
#[derive(Debug, Clone, Default)]
pub struct MsGraphSnapshot {}

impl MsGraphSnapshot {
    /// Every endpoint error in this snapshot.
    pub fn errors(&self) -> Vec<&CollectionError> {
        Vec::new()
    }
}
