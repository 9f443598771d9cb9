//! Access tokens: HS256 JWTs checked per RFC 8725 — one algorithm, a fixed issuer,
//! audience and type, and a short lifetime.

use std::time::Duration;

use chrono::Utc;
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Role;
use super::cache::TtlCache;
use crate::kit::ids::UserId;

/// The `iss` and `aud` of every access token.
pub const ISSUER: &str = "rapport";
/// The audience: the Rapport API.
pub const AUDIENCE: &str = "rapport-api";
/// The `typ` claim of an access token (a refresh token is never a JWT).
pub const ACCESS_TYPE: &str = "access";
/// The key id in the header; any other `kid` is refused.
const KEY_ID: &str = "rapport-hs256-1";
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
const LEEWAY_SECS: u64 = 30;
/// How long a verified token is remembered (never past its `exp`).
const VERIFIED_TTL: Duration = Duration::from_secs(60);

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub typ: String,
    pub sub: UserId,
    pub role: Role,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: Uuid,
}

/// Signs and verifies access tokens with one HMAC secret.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
    /// Subject and `exp` of tokens already verified, by token text: checking the signature
    /// and decoding header and claims was the largest single cost of a `GET` by id
    /// (~30 % of its instructions). Only byte-identical tokens hit; `exp` is checked on
    /// every use.
    verified: TtlCache<String, (UserId, i64)>,
}

impl TokenKeys {
    /// Keys from a secret of at least 32 bytes.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY_SECS;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
            verified: TtlCache::new(VERIFIED_TTL),
        }
    }

    /// Lifetime of the tokens this issues.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues an access token for a user.
    pub fn issue(
        &self,
        user_id: UserId,
        role: Role,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            typ: ACCESS_TYPE.into(),
            sub: user_id,
            role,
            iat: now,
            nbf: now,
            exp: now + self.ttl.as_secs() as i64,
            jti: Uuid::now_v7(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(KEY_ID.into());
        header.typ = Some("at+jwt".into());
        encode(&header, &claims, &self.encoding)
    }

    /// The user a valid, current access token names, remembering tokens already verified.
    pub fn subject(&self, token: &str) -> Option<UserId> {
        let now = Utc::now().timestamp();
        let current = |exp: i64| exp + LEEWAY_SECS as i64 >= now;
        if let Some((sub, exp)) = self.verified.get(token) {
            return current(exp).then_some(sub);
        }
        let claims = self.verify(token)?;
        self.verified
            .insert(token.to_owned(), (claims.sub, claims.exp));
        Some(claims.sub)
    }

    /// Verifies a token; `None` for anything that is not a valid, current access token.
    fn verify(&self, token: &str) -> Option<Claims> {
        let header = decode_header(token).ok()?;
        if header.kid.as_deref().is_some_and(|kid| kid != KEY_ID) {
            return None;
        }
        let data = decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        let claims = data.claims;
        let issued_in_future = claims.iat > Utc::now().timestamp() + LEEWAY_SECS as i64;
        (claims.typ == ACCESS_TYPE && !issued_in_future).then_some(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(&[7u8; 32], Duration::from_secs(900))
    }

    #[test]
    fn issued_tokens_verify() {
        let id = UserId::new();
        let token = keys().issue(id, Role::Manager).unwrap();
        let claims = keys().verify(&token).unwrap();
        assert_eq!(claims.sub, id);
        assert_eq!(claims.role, Role::Manager);
        assert_eq!(claims.exp - claims.iat, 900);
    }

    #[test]
    fn remembered_tokens_still_expire() {
        let keys = keys();
        let id = UserId::new();
        let token = keys.issue(id, Role::Agent).unwrap();
        assert_eq!(keys.subject(&token), Some(id));
        assert_eq!(keys.subject(&token), Some(id), "served from the cache");
        let expired = Utc::now().timestamp() - LEEWAY_SECS as i64 - 1;
        keys.verified.insert(token.clone(), (id, expired));
        assert_eq!(keys.subject(&token), None);
        assert_eq!(keys.subject("not.a.jwt"), None);
    }

    #[test]
    fn other_secrets_and_garbage_fail() {
        let token = keys().issue(UserId::new(), Role::Admin).unwrap();
        let other = TokenKeys::new(&[8u8; 32], Duration::from_secs(900));
        assert!(other.verify(&token).is_none());
        assert!(keys().verify("not.a.jwt").is_none());
        let mut tampered = token.clone();
        tampered.insert(token.find('.').unwrap() + 5, 'x');
        assert!(keys().verify(&tampered).is_none());
    }
}
