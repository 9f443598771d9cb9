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
use crate::kit::ids::{CustomerId, UserId};

/// The `iss` and `aud` of every access token.
pub const ISSUER: &str = "rapport";
/// The audience: the Rapport API.
pub const AUDIENCE: &str = "rapport-api";
/// The `typ` claim of an access token (a refresh token is never a JWT).
pub const ACCESS_TYPE: &str = "access";
/// The audience of member tokens: `/me` only. A member token is never a staff token: the two
/// audiences are checked apart, so neither passes for the other.
pub const MEMBER_AUDIENCE: &str = "rapport-member";
/// The `typ` claim of a member token.
pub const MEMBER_TYPE: &str = "member";
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

/// The claims of a member token: the customer it acts for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberClaims {
    pub iss: String,
    pub aud: String,
    pub typ: String,
    pub sub: CustomerId,
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
    member_validation: Validation,
    ttl: Duration,
    member_ttl: Duration,
    /// Subject and `exp` of tokens already verified, by token text: checking the signature
    /// and decoding header and claims was the largest single cost of a `GET` by id
    /// (~30 % of its instructions). Only byte-identical tokens hit; `exp` is checked on
    /// every use.
    verified: TtlCache<String, (UserId, i64)>,
}

impl TokenKeys {
    /// Keys from a secret of at least 32 bytes; staff tokens live `ttl`, member tokens
    /// `member_ttl`.
    pub fn new(secret: &[u8], ttl: Duration, member_ttl: Duration) -> Self {
        let validation_for = |audience: &str| {
            let mut validation = Validation::new(Algorithm::HS256);
            validation.set_issuer(&[ISSUER]);
            validation.set_audience(&[audience]);
            validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
            validation.validate_nbf = true;
            validation.leeway = LEEWAY_SECS;
            validation
        };
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation: validation_for(AUDIENCE),
            member_validation: validation_for(MEMBER_AUDIENCE),
            ttl,
            member_ttl,
            verified: TtlCache::new(VERIFIED_TTL),
        }
    }

    /// Lifetime of the tokens this issues.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Lifetime of the member tokens this issues.
    pub fn member_ttl(&self) -> Duration {
        self.member_ttl
    }

    /// Issues a member token for a customer.
    pub fn issue_member(
        &self,
        customer: CustomerId,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = Utc::now().timestamp();
        let claims = MemberClaims {
            iss: ISSUER.into(),
            aud: MEMBER_AUDIENCE.into(),
            typ: MEMBER_TYPE.into(),
            sub: customer,
            iat: now,
            nbf: now,
            exp: now + self.member_ttl.as_secs() as i64,
            jti: Uuid::now_v7(),
        };
        encode(&self.header(), &claims, &self.encoding)
    }

    /// The customer a valid, current member token names.
    pub fn member_subject(&self, token: &str) -> Option<CustomerId> {
        let header = decode_header(token).ok()?;
        if header.kid.as_deref() != Some(KEY_ID) {
            return None;
        }
        let claims = decode::<MemberClaims>(token, &self.decoding, &self.member_validation)
            .ok()?
            .claims;
        let issued_in_future = claims.iat > Utc::now().timestamp() + LEEWAY_SECS as i64;
        (claims.typ == MEMBER_TYPE && !issued_in_future).then_some(claims.sub)
    }

    fn header(&self) -> Header {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(KEY_ID.into());
        header.typ = Some("at+jwt".into());
        header
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
        encode(&self.header(), &claims, &self.encoding)
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
        TokenKeys::new(
            &[7u8; 32],
            Duration::from_secs(900),
            Duration::from_secs(3600),
        )
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
        let other = TokenKeys::new(
            &[8u8; 32],
            Duration::from_secs(900),
            Duration::from_secs(3600),
        );
        assert!(other.verify(&token).is_none());
        assert!(keys().verify("not.a.jwt").is_none());
        let mut tampered = token.clone();
        tampered.insert(token.find('.').unwrap() + 5, 'x');
        assert!(keys().verify(&tampered).is_none());
    }

    #[test]
    fn member_and_staff_tokens_never_pass_for_each_other() {
        let keys = keys();
        let customer = CustomerId::new();
        let member = keys.issue_member(customer).unwrap();
        assert_eq!(keys.member_subject(&member), Some(customer));
        assert!(
            keys.verify(&member).is_none(),
            "a member token is no staff token"
        );
        let staff = keys.issue(UserId::new(), Role::Admin).unwrap();
        assert!(
            keys.member_subject(&staff).is_none(),
            "a staff token is no member token"
        );
        let other = TokenKeys::new(
            &[8u8; 32],
            Duration::from_secs(900),
            Duration::from_secs(3600),
        );
        assert!(other.member_subject(&member).is_none(), "forged");
        assert!(keys.member_subject("not.a.jwt").is_none());
    }
}
