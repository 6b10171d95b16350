//! What every TURN request goes through before its method handler: retransmission check,
//! authentication (RFC 8489 §9.2.4), an Allocate on a live allocation (RFC 8656 §7.2: 437),
//! credential match with the allocation (RFC 8656 §6: 441), and
//! comprehension-required attributes not implemented here (RFC 8489 §6.3.1: 420).

use std::sync::Arc;
use std::time::Instant;

use super::request::{Request, same_credentials};
use super::response::{self, Trailer};
use super::{Outcome, Received, RelayDriver, Server};
use crate::alloc::{Allocation, Millis, RequestKey};
use crate::auth::MacKey;
use crate::auth::{AuthError, Authenticated, Reason};
use crate::proto::stun::{
    AccessToken, Class, ErrorCode, Message, Method, Nonce, Realm, ThirdPartyAuthorization, codes,
};

pub(super) fn request<D: RelayDriver>(
    server: &Server<D>,
    now: Instant,
    rx: &Received<'_>,
    msg: &Message<'_>,
    trailer: Trailer<'_>,
    lease: super::lease::Lease,
    out: &mut [u8],
) -> Outcome {
    let auth_guard = server.auth.load();
    let Some(authenticator) = auth_guard.as_deref() else {
        return response::error(msg, out, codes::BAD_REQUEST, trailer, |_| Ok(()));
    };
    let allocation = live_allocation(server, rx, now);
    if let Some(answer) = allocation.as_deref().and_then(|a| cached_answer(a, msg, out)) {
        return answer;
    }
    let unix = server.unix(now);
    let millis = server.millis(now);
    let auth = match authenticate(authenticator, allocation.as_deref(), msg, unix, rx.source) {
        Ok(a) => a,
        // The embedder's credential hook is looking the user up: held, run again when it knows
        // (an unauthenticated request so far: under the same rate limit as a 401).
        Err(AuthError::Pending) if lease == super::lease::Lease::Looked => {
            // Looked up, and the hook still has no answer (its lookup failed or timed out).
            let e = AuthError::Unauthenticated(crate::auth::Reason::UnknownUser);
            return auth_error(server, msg, rx, (millis, unix), e, trailer, out);
        }
        Err(AuthError::Pending) => {
            if !server.unauth_allowed(millis, rx.source) {
                return Outcome::Dropped(super::DropReason::RateLimited);
            }
            let username = msg.get::<crate::proto::stun::Username>().map_or("", |u| u.0);
            return server.hold_for_credentials(rx, username, millis, unix);
        }
        Err(e) => return auth_error(server, msg, rx, (millis, unix), e, trailer, out),
    };
    // A revoked user's credentials still verify, but policy refuses them: every request of theirs
    // (Refresh too) gets 403 Forbidden, signed (RFC 8656 §7.2 and §9: administratively prohibited).
    let token_user = auth.oauth.as_ref().map(|s| s.identity());
    if server.is_revoked(auth.username) || token_user.as_deref().is_some_and(|id| server.is_revoked(id)) {
        server.stats.revoked_request();
        refused(server, msg, rx, AuthError::Unauthenticated(Reason::Revoked));
        server.stats.error_sent(codes::FORBIDDEN);
        return response::error(msg, out, codes::FORBIDDEN, signing(trailer, &auth), |_| Ok(()));
    }
    let unsigned = trailer;
    let req =
        Request { server, now: millis, rx, msg, trailer: signing(trailer, &auth), auth: &auth, allocation, lease };
    // RFC 8656 §7.2 step 2: any Allocate on a 5-tuple that has an allocation (a retransmission was
    // answered from the cache above) is 437, whoever's credentials it carries.
    if msg.message_type().method == Method::ALLOCATE && req.allocation.is_some() {
        return req.error(out, codes::ALLOCATION_MISMATCH);
    }
    if req.allocation.as_deref().is_some_and(|a| !same_credentials(a, &auth)) {
        return req.error(out, codes::WRONG_CREDENTIALS);
    }
    // RFC 8489 §6.3.1: what is not implemented here (ACCESS-TOKEN without RFC 7635 too) gets 420.
    let unknown = super::binding::unimplemented(msg, authenticator.oauth().is_some(), false);
    if !unknown.is_empty() {
        server.stats.error_sent(codes::UNKNOWN_ATTRIBUTE);
        return response::error(msg, out, codes::UNKNOWN_ATTRIBUTE, req.trailer, |w| w.add(&unknown));
    }
    // RFC 8489 §10, RFC 8656 §7.2: draining or shedding load, new allocations go elsewhere (300)
    // or are refused (508); the allocations that exist carry on.
    if msg.message_type().method == Method::ALLOCATE
        && req.allocation.is_none()
        && let Some(refusal) = server.admission.refusal(server.table.len(), rx.source)
    {
        return super::admission::refuse(&req, refusal, out);
    }
    let outcome = match msg.message_type().method {
        // Allocation attempts per user: 486 beyond the rate (see `ServerOptions::rate_limit_allocate`).
        // (An Allocate run again with its lease's verdict was counted the first time.)
        Method::ALLOCATE
            if req.allocation.is_none()
                && !matches!(lease, super::lease::Lease::Decided { .. })
                && !server.allocate_allowed(millis, token_user.as_deref().unwrap_or(auth.username)) =>
        {
            server.stats.allocate_rate_limited();
            return req.error(out, codes::ALLOCATION_QUOTA_REACHED);
        }
        Method::ALLOCATE => return allocate(&req, authenticator, (millis, unix), unsigned, out),
        Method::REFRESH => super::refresh::handle(&req, out),
        Method::CREATE_PERMISSION => super::create_permission::handle(&req, out),
        Method::CHANNEL_BIND => super::channel_bind::handle(&req, out),
        Method::CONNECT => super::connect::handle(&req, out),
        Method::CONNECTION_BIND => super::connect::bind(&req, out),
        _ => req.error(out, codes::BAD_REQUEST),
    };
    // A retransmission of this request gets the same bytes, not a second execution.
    if let (Outcome::Reply(n), Some(a)) = (outcome, &req.allocation)
        && let Some(bytes) = out.get(..n)
    {
        a.cache_response(RequestKey::of(msg), bytes);
    }
    outcome
}

/// The allocation of the request's 5-tuple. One whose lifetime ran out is gone (RFC 8656 §7: 437
/// from then on), even if the sweep has not removed it yet: it must not come back to life through
/// a Refresh.
fn live_allocation<D: RelayDriver>(
    server: &Server<D>,
    rx: &Received<'_>,
    now: Instant,
) -> Option<Arc<Allocation<D::Socket>>> {
    match server.table.get(&rx.five_tuple()) {
        Some(a) if !a.is_live(server.millis(now)) => {
            server.close_allocation(now, &a.info().five_tuple, super::EndReason::Expired);
            None
        }
        a => a,
    }
}

/// RFC 8656 §7.2: a retransmitted request gets the answer the first one got (another request
/// reusing the transaction ID does not).
fn cached_answer<S>(allocation: &Allocation<S>, msg: &Message<'_>, out: &mut [u8]) -> Option<Outcome> {
    let bytes = allocation.cached_response(&RequestKey::of(msg))?;
    Some(match out.get_mut(..bytes.len()) {
        Some(dst) => {
            dst.copy_from_slice(&bytes);
            Outcome::Reply(bytes.len())
        }
        None => Outcome::Dropped(super::DropReason::OutputTooSmall),
    })
}

/// The response is signed with the request's key: an RFC 7635 session key when a token
/// authenticated it (RFC 7635 §6.2), else the long-term key, in MESSAGE-INTEGRITY-SHA256 if the
/// request carried it (RFC 8489 §9.2.4), else in MESSAGE-INTEGRITY.
fn signing<'s>(trailer: Trailer<'s>, auth: &'s Authenticated<'_>) -> Trailer<'s> {
    match auth.oauth.as_deref().map(|s| &s.key) {
        Some(MacKey::Sha1(k)) => Trailer { key: Some(k), ..trailer },
        Some(MacKey::Sha256(k)) => Trailer { key_sha256: Some(k), ..trailer },
        // RFC 8489 §9.2.4: the response is signed the way the request was.
        None => match &auth.key_sha256 {
            Some(k) => Trailer { key_sha256: Some(k), ..trailer },
            None => Trailer { key: Some(&auth.key), ..trailer },
        },
    }
}

/// An Allocate past the checks: a replay of one that already succeeded (its allocation gone since)
/// gets 438; a success is remembered until its nonce expires.
fn allocate<D: RelayDriver>(
    req: &Request<'_, '_, D>,
    authenticator: &crate::auth::Authenticator,
    (millis, unix): (Millis, u64),
    unsigned: Trailer<'_>,
    out: &mut [u8],
) -> Outcome {
    let (server, msg, rx) = (req.server, req.msg, req.rx);
    if req.allocation.is_none() && server.replays.is_replay(msg, rx.source, unix) {
        return auth_error(server, msg, rx, (millis, unix), AuthError::StaleNonce, unsigned, out);
    }
    let outcome = super::allocate::handle(req, out);
    if req.allocation.is_none() && server.table.get(&rx.five_tuple()).is_some() {
        let nonce_valid = authenticator.config().nonce_ttl_secs + crate::auth::MAX_FUTURE_SKEW_SECS;
        server.replays.record(msg, rx.source, unix.saturating_add(nonce_valid));
    }
    outcome
}

/// RFC 8489 §9.2.4. A request on an existing allocation under the same username is checked with the
/// allocation's cached key (one HMAC, no key derivation), nonce, realm, password algorithm and REST
/// expiry included; anything else (a USERHASH request too) takes the full path.
fn authenticate<'m, S>(
    authenticator: &'m crate::auth::Authenticator,
    allocation: Option<&Allocation<S>>,
    msg: &Message<'m>,
    unix: u64,
    client: std::net::SocketAddr,
) -> Result<Authenticated<'m>, AuthError> {
    // RFC 7635 §6.2: without a new ACCESS-TOKEN, requests on a token's allocation use the session
    // key of its latest token, under its kid.
    if let Some(a) = allocation
        && let Some(session) = a.oauth()
        && msg.get::<AccessToken>().is_err()
        && msg.get::<crate::proto::stun::Username>().is_ok_and(|u| u.0 == &*session.kid)
    {
        return authenticator.verify_with_session(msg, &session, unix, client);
    }
    if let Some(a) = allocation
        && !a.is_oauth()
        && msg.get::<crate::proto::stun::Username>().is_ok_and(|u| u.0 == &*a.info().username)
    {
        let mut auth = authenticator.verify_with_key(msg, a.key(), a.key_bytes(), unix, client)?;
        auth.rest_expiry = a.info().rest_expiry;
        return Ok(auth);
    }
    authenticator.authenticate(msg, unix, client)
}

/// Counts a refusal for credentials (a challenge or a failure by its reason) and reports a failure
/// to the event sink.
fn refused<D: RelayDriver>(server: &Server<D>, msg: &Message<'_>, rx: &Received<'_>, e: AuthError) {
    server.stats.auth_refused(e);
    if server.has_events() && !super::stats::is_challenge(e) {
        let username = msg.get::<crate::proto::stun::Username>().ok().map(|u| u.0);
        server.emit_plain(&super::Event::AuthFailed { five_tuple: rx.five_tuple(), username, reason: e.reason() });
    }
}

/// 400, or 401/438 with REALM, a fresh NONCE (with the nonce cookie, RFC 8489 §9.2.1) and
/// PASSWORD-ALGORITHMS (§9.2.4). Unsigned, and no larger than the request needs: a spoofed source
/// learns nothing and gets little amplification (an empty reason phrase, a 29-character nonce), and
/// beyond `rate_limit_unauth` answers per source, nothing.
fn auth_error<D: RelayDriver>(
    server: &Server<D>,
    msg: &Message<'_>,
    rx: &Received<'_>,
    (now, unix): (Millis, u64),
    e: AuthError,
    trailer: Trailer<'_>,
    out: &mut [u8],
) -> Outcome {
    refused(server, msg, rx, e);
    if !server.unauth_allowed(now, rx.source) {
        return Outcome::Dropped(super::DropReason::RateLimited);
    }
    let code = e.error_code();
    server.stats.error_sent(code);
    let auth_guard = server.auth.load();
    let Some(authenticator) = auth_guard.as_deref() else {
        return response::error(msg, out, codes::BAD_REQUEST, trailer, |_| Ok(()));
    };
    if code == codes::BAD_REQUEST {
        return response::error(msg, out, code, trailer, |_| Ok(()));
    }
    let nonce = authenticator.nonce(unix, rx.source);
    // RFC 8489 §14.8: the reason phrase is for diagnostics and may be anything of fewer than 128
    // characters; none at all keeps the answer to a spoofed source small (the code says it all).
    // RFC 7635 §6.1: with third-party authorization on, 401 (and 438, which coturn's client reads
    // the same way) names the server for the token.
    let server_name = authenticator.oauth().map(|o| o.server_name.as_str());
    response::respond(msg, out, Class::ErrorResponse, trailer, |w| {
        w.add(&ErrorCode { code, reason: "" })?;
        w.add(&Realm(authenticator.realm()))?;
        w.add(&Nonce(nonce.as_str()))?;
        w.add(&authenticator.password_algorithms())?;
        match server_name {
            Some(name) => w.add(&ThirdPartyAuthorization(name)),
            None => Ok(()),
        }
    })
}
