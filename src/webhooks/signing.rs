//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`,
//! where the key is the decoded bytes of the `whsec_` secret. During a rotation the header
//! carries one signature per secret, space-separated, and a receiver accepts either.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix the specification gives secrets.
const PREFIX: &str = "whsec_";

/// A new secret: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> String {
    format!(
        "{PREFIX}{}",
        STANDARD.encode(crate::secrets::random_bytes(32))
    )
}

/// The key bytes of a secret (with or without its prefix).
fn key(secret: &str) -> Vec<u8> {
    STANDARD
        .decode(secret.strip_prefix(PREFIX).unwrap_or(secret))
        .unwrap_or_else(|_| secret.as_bytes().to_vec())
}

/// The secrets that sign at `now`: the current one, and the previous one until its rotation
/// overlap ends.
pub fn signing_secrets<'a>(
    current: &'a str,
    previous: Option<&'a str>,
    previous_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Vec<&'a str> {
    let previous = previous.filter(|_| previous_until.is_some_and(|until| until > now));
    std::iter::once(current).chain(previous).collect()
}

/// The `webhook-signature` header for a message signed with each of `secrets`.
pub fn signature(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| {
            let mut mac = Hmac::<Sha256>::new_from_slice(&key(secret))
                .expect("HMAC takes a key of any length");
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's published known-answer vector, which its reference libraries
    /// (Python, JavaScript, Go, ...) verify in their own tests.
    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        assert_eq!(
            signature(
                &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#,
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn the_previous_secret_signs_until_its_overlap_ends() {
        let now = Utc::now();
        let later = now + chrono::Duration::hours(1);
        assert_eq!(
            signing_secrets("new", Some("old"), Some(later), now),
            ["new", "old"]
        );
        assert_eq!(signing_secrets("new", Some("old"), Some(now), now), ["new"]);
        assert_eq!(signing_secrets("new", None, None, now), ["new"]);
    }

    #[test]
    fn a_rotation_signs_with_both_secrets() {
        let (old, new) = (new_secret(), new_secret());
        assert!(old.starts_with("whsec_") && old != new);
        assert_eq!(key(&old).len(), 32);
        let both = signature(&[&new, &old], "e", 1, b"{}");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0], signature(&[&new], "e", 1, b"{}"));
        assert_eq!(parts[1], signature(&[&old], "e", 1, b"{}"));
    }
}
