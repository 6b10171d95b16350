//! The token service's unit tests: dates, limiters, API keys, the backend and token paths, bodies.

use super::*;

#[test]
fn rfc3339_dates() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    assert_eq!(rfc3339(1_800_000_000 + 86_399), "2027-01-16T07:59:59Z");
    assert_eq!(rfc3339(4_107_542_400), "2100-03-01T00:00:00Z");
}

#[test]
fn source_keys_group_ipv6_by_64() {
    let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
    let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
    let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
    assert_eq!(source_key(a), source_key(b));
    assert_ne!(source_key(a), source_key(c));
    let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
    assert_eq!(source_key(mapped), "192.0.2.1".parse::<IpAddr>().unwrap());
}

#[test]
fn limiter_refuses_past_the_burst_and_off_means_off() {
    let limiter: Limiter<u32> = Limiter::new(RateLimit::new(1, 2));
    assert!(limiter.check(&1).is_ok() && limiter.check(&1).is_ok());
    assert!(limiter.check(&1).unwrap_err() >= 1);
    assert!(limiter.check(&2).is_ok(), "keys are separate");
    let off: Limiter<u32> = Limiter::new(RateLimit::OFF);
    assert!((0..100).all(|_| off.check(&1).is_ok()));
}

#[test]
fn a_full_limiter_table_stays_bounded() {
    let limiter: Limiter<u32> = Limiter::new(RateLimit::new(1, 1));
    let full = u32::try_from(MAX_RATE_KEYS).unwrap();
    let start = std::time::Instant::now();
    for key in 0..full {
        assert!(limiter.check(&key).is_ok());
    }
    let refused = limiter.check(&full);
    // Keys used within the last second are not idle: if the fill took less, a new source is
    // refused rather than the table growing (a slower fill may have let idle keys go).
    if start.elapsed() < std::time::Duration::from_millis(900) {
        assert_eq!(refused, Err(1));
    }
    assert!(limiter.limiter.as_ref().unwrap().len() <= MAX_RATE_KEYS);
}

const KEY: &str = "backend-key-0123456789";
const NOW: u64 = 1_800_000_000;

fn api(revoked: &'static [&'static str], revoke: Option<RevokeFn>) -> Api {
    use crate::auth::token::TokenKey;
    let keys = ApiKeys {
        tokens: TokenKeys::new(vec![TokenKey::hs256(Some("k1"), b"0123456789abcdef0123456789abcdef")]),
        api_keys: vec![KEY.to_owned()],
    };
    let rest = RestCredentials::new(vec![crate::auth::Secret::new("rest-secret")]);
    let options = ApiOptions {
        keys: Arc::new(arc_swap::ArcSwap::from_pointee(keys)),
        rest: Arc::new(move || Some(rest.clone())),
        urls: IceUrls { udp: vec!["192.0.2.1:3478".parse().unwrap()], ..IceUrls::default() },
        fleet: None,
        max_ttl_secs: 86_400,
        cors_origins: Vec::new(),
        rate_per_source: RateLimit::OFF,
        rate_per_user: RateLimit::OFF,
        revoked: Arc::new(move |entry: &str| revoked.contains(&entry)),
        revoke,
        unix_now: || NOW,
    };
    Api { by_source: Limiter::new(RateLimit::OFF), by_user: Limiter::new(RateLimit::OFF), options }
}

fn headers(bearer: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {bearer}")).unwrap());
    headers
}

fn peer() -> SocketAddr {
    "192.0.2.9:50000".parse().unwrap()
}

/// The status and JSON body of an answer.
async fn answer(r: Result<Response, Rejection>) -> (StatusCode, serde_json::Value) {
    let r = r.unwrap_or_else(IntoResponse::into_response);
    let status = r.status();
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

async fn relay(api: &Api, bearer: &str, body: &str) -> (StatusCode, serde_json::Value) {
    let body = Ok(Bytes::from(body.to_owned()));
    answer(relay_configuration_inner(api, peer(), &headers(bearer), body)).await
}

fn turn_username(v: &serde_json::Value) -> &str {
    v["iceServers"].as_array().unwrap().iter().find_map(|s| s["username"].as_str()).unwrap()
}

#[tokio::test]
async fn an_api_key_gets_ice_servers_for_the_named_user() {
    let api = api(&[], None);
    let (status, v) = relay(&api, KEY, r#"{"user": "alice", "ttl": 300}"#).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(turn_username(&v), format!("{}:alice", NOW + 300));
    assert_eq!((v["ttl"].as_u64(), v["expiresOn"].as_str()), (Some(300), Some(rfc3339(NOW + 300).as_str())));
    // No ttl: api-max-ttl, capped by the REST secret's max-credential-lifetime (48 h).
    let (status, v) = relay(&api, KEY, r#"{"user": "alice"}"#).await;
    assert_eq!((status, v["ttl"].as_u64()), (StatusCode::OK, Some(86_400)));
}

#[tokio::test]
async fn an_api_key_without_a_user_or_for_a_revoked_one_is_refused() {
    let api = api(&["mallory"], None);
    for body in ["", "{}", r#"{"ttl": 60}"#] {
        let (status, v) = relay(&api, KEY, body).await;
        assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("user_required")), "{body}");
    }
    let (status, v) = relay(&api, KEY, r#"{"user": "a\u0000b"}"#).await;
    assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")));
    let (status, v) = relay(&api, KEY, r#"{"user": "mallory"}"#).await;
    assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("user_revoked")));
    let (status, v) = relay(&api, KEY, r#"{"user": "alice", "ttl": 0}"#).await;
    assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")));
}

#[tokio::test]
async fn a_wrong_key_is_taken_for_an_access_token_and_refused() {
    let api = api(&[], None);
    let (status, v) = relay(&api, "backend-key-012345678", r#"{"user": "alice"}"#).await;
    assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("token_malformed")));
    // And an access token goes on working, its `sub` ruling over a `user` in the body.
    let token = api.options.keys.load().tokens.mint("bob", 600, NOW, "jti-1").unwrap();
    let (status, v) = relay(&api, &token, r#"{"user": "alice", "ttl": 60}"#).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(turn_username(&v), format!("{}:bob", NOW + 60));
}

#[tokio::test]
async fn unknown_fields_are_ignored_in_every_body() {
    let api = api(&[], None);
    let (status, v) = relay(&api, KEY, r#"{"user": "alice", "ttl": 60, "region": "eu", "x": {"y": [1]}}"#).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let token = api.options.keys.load().tokens.mint("bob", 600, NOW, "jti-2").unwrap();
    assert_eq!(relay(&api, &token, r#"{"lifetime": 5}"#).await.0, StatusCode::OK);
    let body = Ok(Bytes::from_static(br#"{"user": "carol", "ttl": 60, "audience": "later"}"#));
    let (status, v) = answer(mint_token_inner(&api, peer(), &headers(KEY), body)).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let request: RevokeRequest = serde_json::from_str(r#"{"user": "eve", "reason": "abuse"}"#).unwrap();
    assert!(request.target().is_ok());
}

#[tokio::test]
async fn revocations_need_the_api_key_and_one_entry() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let revoke: RevokeFn = Arc::new(move |t| {
        log.lock().unwrap().push(t.clone());
        Ok(crate::policy::revocation::RevokeOutcome { persisted: false, ended: 2 })
    });
    let api = Arc::new(api(&[], Some(revoke)));
    let call = |bearer: &str, body: &'static str| {
        let (api, headers) = (api.clone(), headers(bearer));
        async move {
            answer(revocations(State(api), ConnectInfo(peer()), headers, Ok(Bytes::from_static(body.as_bytes()))).await)
                .await
        }
    };
    let (status, v) = call("not-the-key-0123456789", r#"{"user": "eve"}"#).await;
    assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_api_key")));
    for body in ["{}", r#"{"user": "eve", "jti": "j"}"#, r##"{"user": "#eve"}"##, ""] {
        assert_eq!(call(KEY, body).await.0, StatusCode::BAD_REQUEST, "{body}");
    }
    assert!(seen.lock().unwrap().is_empty());
    let (status, v) = call(KEY, r#"{"user": "eve", "note": "ignored"}"#).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["revoked"].as_str(), v["kind"].as_str(), v["storage"].as_str()),
        (Some("eve"), Some("user"), Some("memory"))
    );
    assert_eq!((v["persisted"].as_bool(), v["ended"].as_u64()), (Some(false), Some(2)));
    assert!(v["warning"].as_str().is_some_and(|w| w.contains("memory")), "{v}");
    assert_eq!(call(KEY, r#"{"jti": "jti-9"}"#).await.1["kind"], "jti");
    use crate::policy::revocation::RevokeTarget;
    let expected = [RevokeTarget::User("eve".to_owned()), RevokeTarget::TokenId("jti-9".to_owned())];
    assert_eq!(seen.lock().unwrap().as_slice(), &expected);
}

#[test]
fn api_keys_compare() {
    let keys = vec!["backend-key-0123456".to_owned(), "second-backend-key".to_owned()];
    assert!(api_key_matches(&keys, "second-backend-key"));
    assert!(!api_key_matches(&keys, "second-backend-ke"));
    assert!(!api_key_matches(&[], "x"));
}
