//! Generic JSON webhook: one POST per event, body [`payload`], signed with HMAC-SHA256 when the
//! notifier has a `secret`: header `X-Postured-Signature: sha256=<lower-case hex of
//! HMAC-SHA256(secret, raw body)>`. `X-Postured-Delivery` carries the event's dedup key (the
//! same on every retry), so receivers can drop duplicates.

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::super::regression::AlertEvent;
use super::status_word;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Postured-Signature";

/// Payload format version.
pub const VERSION: &str = "1";

/// `sha256=<hex>` of the body under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Verify a signature header value `sha256=<hex>` against the body under `secret`, in constant
/// time ([`Mac::verify_slice`]). A missing prefix or a value that is not hex is `false`.
pub fn verify(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(tag) = header
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
    else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

/// The JSON body: `version`, `status` (firing / resolved), `dedup_key`, `alert_key`,
/// `summary`, and the full `event`.
pub fn payload(e: &AlertEvent) -> Value {
    json!({
        "version": VERSION,
        "status": status_word(e),
        "dedup_key": e.dedup_key(),
        "alert_key": e.alert_key(),
        "summary": e.summary(),
        "event": e,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::event;
    use super::*;
    use crate::alerts::EventKind;

    #[test]
    fn hex_encodes_bytes() {
        // The signature header's encoding is lower-case hex.
        assert_eq!(hex::encode([0x00, 0x0f, 0xab, 0xff]), "000fabff");
    }

    #[test]
    fn signature_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(verify(
            b"Jefe",
            b"what do ya want for nothing?",
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        ));
        assert!(!verify(b"Jefe", b"tampered", "sha256=5bdcc146"));
        assert!(!verify(
            b"other",
            b"what do ya want for nothing?",
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        ));
    }

    #[test]
    fn payload_carries_status_keys_and_event() {
        let p = payload(&event(EventKind::Recovery));
        assert_eq!(p["status"], "resolved");
        assert_eq!(p["alert_key"], "t1/msgraph.a/regression");
        assert_eq!(p["event"]["kind"], "recovery");
        assert_eq!(p["event"]["points_lost"], 27.0);
        let p = payload(&event(EventKind::Regression));
        assert_eq!(p["status"], "firing");
        assert!(
            p["dedup_key"]
                .as_str()
                .unwrap()
                .starts_with("t1/msgraph.a/regression/")
        );
    }
}
