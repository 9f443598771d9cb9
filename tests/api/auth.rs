use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rapport::auth::Role;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{JWT_SECRET, PASSWORD, TestApp};

#[actix_web::test]
async fn login_refresh_logout_and_reuse_detection() {
    let app = TestApp::spawn().await;
    let (_, email) = app.create_user(Role::Manager).await;
    let first = app.login(&email).await;
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(first["expires_in"], 900);

    let me = app
        .get("/api/v1/auth/me", first["access_token"].as_str())
        .await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["type"], "user");
    assert_eq!(me.body["role"], "manager");
    assert!(me.header("etag").is_some());

    let refresh = |token: &Value| json!({"refresh_token": token});
    let second = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &refresh(&first["refresh_token"]),
        )
        .await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_ne!(second.body["refresh_token"], first["refresh_token"]);
    assert_eq!(
        app.get("/api/v1/auth/me", second.body["access_token"].as_str())
            .await
            .status,
        200
    );

    // The spent token comes back: 401, and the whole family is revoked.
    let reuse = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &refresh(&first["refresh_token"]),
        )
        .await;
    assert_eq!(reuse.status, 401);
    let after_reuse = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &refresh(&second.body["refresh_token"]),
        )
        .await;
    assert_eq!(
        after_reuse.status, 401,
        "the rotated successor must be revoked too"
    );

    // Logout revokes the session's refresh token.
    let session = app.login(&email).await;
    let out = app
        .post(
            "/api/v1/auth/logout",
            None,
            &refresh(&session["refresh_token"]),
        )
        .await;
    assert_eq!(out.status, 204);
    let refused = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &refresh(&session["refresh_token"]),
        )
        .await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
}

#[actix_web::test]
async fn wrong_credentials_and_inactive_users_cannot_log_in() {
    let app = TestApp::spawn().await;
    let (id, email) = app.create_user(Role::Agent).await;
    let wrong = app.sign_in(&email, "not the password").await;
    assert_eq!(wrong.status, 401);
    let unknown = app.sign_in("nobody@example.com", PASSWORD).await;
    assert_eq!(unknown.status, 401);
    assert_eq!(
        wrong.body["detail"], unknown.body["detail"],
        "no hint about which accounts exist"
    );
    let upper = app.sign_in(&email.to_uppercase(), PASSWORD).await;
    assert_eq!(upper.status, 200, "e-mail is case-insensitive");

    let admin = app.admin_token().await;
    let deactivated = app
        .patch(
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            &json!({"active": false}),
        )
        .await;
    assert_eq!(deactivated.status, 200);
    let inactive = app.sign_in(&email, PASSWORD).await;
    assert_eq!(inactive.status, 401);
}

#[actix_web::test]
async fn deactivated_users_tokens_stop_working() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (id, email) = app.create_user(Role::Agent).await;
    let pair = app.login(&email).await;
    let token = pair["access_token"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/auth/me", Some(token)).await.status, 200);
    let res = app
        .patch(
            &format!("/api/v1/users/{id}"),
            Some(&admin),
            &json!({"active": false}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(app.get("/api/v1/auth/me", Some(token)).await.status, 401);
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": pair["refresh_token"]}),
        )
        .await;
    assert_eq!(refresh.status, 401);
}

fn claims(sub: Uuid) -> Value {
    let now = Utc::now().timestamp();
    json!({
        "iss": "rapport", "aud": "rapport-api", "typ": "access", "sub": sub, "role": "admin",
        "iat": now, "nbf": now, "exp": now + 600, "jti": Uuid::now_v7(),
    })
}

fn sign(header: Header, claims: &Value, secret: &[u8]) -> String {
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

#[actix_web::test]
async fn every_forged_or_stale_jwt_is_refused() {
    let app = TestApp::spawn().await;
    let (id, _) = app.user_token(Role::Admin).await;
    let secret = JWT_SECRET.as_bytes();
    let good = sign(Header::new(Algorithm::HS256), &claims(id), secret);
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&good)).await.status,
        200,
        "the control token must pass"
    );

    let with = |key: &str, value: Value| {
        let mut c = claims(id);
        c[key] = value;
        sign(Header::new(Algorithm::HS256), &c, secret)
    };
    let now = Utc::now().timestamp();
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims(id).to_string())
    );
    let mut unknown_kid = Header::new(Algorithm::HS256);
    unknown_kid.kid = Some("someone-elses-key".into());
    let mut tampered_claims = claims(id);
    tampered_claims["sub"] = json!(Uuid::now_v7());
    let parts: Vec<&str> = good.split('.').collect();
    let cases = [
        ("alg none", unsigned),
        (
            "HS512 with the same secret",
            sign(Header::new(Algorithm::HS512), &claims(id), secret),
        ),
        (
            "wrong secret",
            sign(
                Header::new(Algorithm::HS256),
                &claims(id),
                b"another-secret-another-secret-1234",
            ),
        ),
        ("wrong iss", with("iss", json!("someone-else"))),
        ("wrong aud", with("aud", json!("another-api"))),
        ("wrong typ", with("typ", json!("refresh"))),
        ("expired beyond leeway", with("exp", json!(now - 120))),
        ("not yet valid beyond leeway", with("nbf", json!(now + 120))),
        ("unknown kid", sign(unknown_kid, &claims(id), secret)),
        (
            "tampered payload",
            format!(
                "{}.{}.{}",
                parts[0],
                URL_SAFE_NO_PAD.encode(tampered_claims.to_string()),
                parts[2]
            ),
        ),
        ("garbage", "not-a-token".into()),
    ];
    for (name, token) in cases {
        let res = app.get("/api/v1/auth/me", Some(&token)).await;
        assert_eq!(res.status, 401, "{name} must be refused");
        assert_eq!(res.body["status"], 401, "{name}: problem document");
        assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    }
    let malformed = app
        .request(
            "GET",
            "/api/v1/auth/me",
            None,
            None,
            &[("Authorization", "Basic abc")],
        )
        .await;
    assert_eq!(malformed.status, 401);
}

#[actix_web::test]
async fn login_is_throttled_per_email() {
    let app = TestApp::spawn_with(&["--login-attempts-per-minute", "3"]).await;
    let (_, email) = app.create_user(Role::Agent).await;
    let attempt = json!({"email": email, "password": "guess guess guess"});
    for _ in 0..3 {
        assert_eq!(
            app.post("/api/v1/auth/login", None, &attempt).await.status,
            401
        );
    }
    let throttled = app.post("/api/v1/auth/login", None, &attempt).await;
    assert_eq!(throttled.status, 429);
    assert!(
        throttled
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let other = app.sign_in("x@example.com", "p").await;
    assert_eq!(other.status, 401, "another address is not throttled");
}

#[actix_web::test]
async fn roles_and_scopes_are_enforced() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let (_, manager) = app.user_token(Role::Manager).await;
    let (_, agent) = app.user_token(Role::Agent).await;
    let key = app
        .post(
            "/api/v1/api-keys",
            Some(&admin),
            &json!({"name": "shop", "scopes": ["customers:read", "orders:write"]}),
        )
        .await;
    let key = key.body["key"].as_str().unwrap().to_owned();

    for path in ["/api/v1/users", "/api/v1/api-keys"] {
        assert_eq!(
            app.get(path, None).await.status,
            401,
            "{path} without credentials"
        );
        for (who, token) in [("manager", &manager), ("agent", &agent), ("api key", &key)] {
            let res = app.get(path, Some(token)).await;
            assert_eq!(res.status, 403, "{who} on {path}");
            assert_eq!(res.body["title"], "Forbidden");
        }
        assert_eq!(app.get(path, Some(&admin)).await.status, 200);
    }
    let create = app
        .post(
            "/api/v1/users",
            Some(&manager),
            &json!({"email": "x@example.com", "password": PASSWORD, "role": "admin"}),
        )
        .await;
    assert_eq!(create.status, 403, "a manager cannot create an admin");
}
