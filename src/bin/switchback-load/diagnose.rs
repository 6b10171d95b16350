//! Why a load run stopped, in the operator's terms: the setup client's errors ([`NoAnswer`],
//! [`ErrorAnswer`], [`CredentialsRefused`]) mapped to the server's limit or setting behind them.

use std::fmt;
use std::net::SocketAddr;

/// No answer to a request after every retransmission.
#[derive(Debug)]
pub struct NoAnswer;

impl fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no answer from the server")
    }
}

impl std::error::Error for NoAnswer {}

/// An error response (RFC 8489 §14.8) other than the 401/438 the client recovers from.
#[derive(Debug)]
pub struct ErrorAnswer {
    /// The request's method, as the message names it (`Method(3)` for Allocate).
    pub method: String,
    pub code: u16,
    pub reason: String,
}

impl fmt::Display for ErrorAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {} {}", self.method, self.code, self.reason)
    }
}

impl std::error::Error for ErrorAnswer {}

/// Still 401 after sending credentials: the server does not take them.
#[derive(Debug)]
pub struct CredentialsRefused;

impl fmt::Display for CredentialsRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("authentication failed")
    }
}

impl std::error::Error for CredentialsRefused {}

/// Why a run stopped: a short key for the `result` line and a sentence for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stop {
    /// `quota`, `capacity`, `unauth-limit`, `no-answer`, `credentials`, `forbidden`, `error`, `time`,
    /// `local-fds` (this tool out of descriptors).
    pub key: &'static str,
    pub message: String,
}

/// Classifies `err`. `answered` says whether the server had answered this run before: silence
/// after answers is a rate limit dropping requests, silence from the start an unreachable server.
pub fn explain(err: &anyhow::Error, answered: bool, server: SocketAddr) -> Stop {
    if let Some(e) = err.downcast_ref::<ErrorAnswer>() {
        return explain_code(e.code, &e.reason);
    }
    if err.downcast_ref::<CredentialsRefused>().is_some() {
        return Stop {
            key: "credentials",
            message: "the server refused the credentials (401 after sending them): check --secret against the \
                      server's static-auth-secret, or the --user name and password, and the server's realm"
                .into(),
        };
    }
    if err.downcast_ref::<NoAnswer>().is_some() {
        return if answered {
            Stop {
                key: "unauth-limit",
                message: "no answer: the server may be dropping unauthenticated requests over rate-limit-unauth \
                          (default 20/s, burst 300, per source address); pace the run (--rate) or raise \
                          rate-limit-unauth on a test server"
                    .into(),
            }
        } else {
            Stop {
                key: "no-answer",
                message: format!(
                    "no answer from the server at {server}: check the address and port, that UDP reaches it \
                     (firewall, listening-ip), and that it is running"
                ),
            }
        };
    }
    Stop { key: "error", message: format!("{err:#}") }
}

/// The error codes a load run meets (RFC 8656 §7.2, RFC 8489 §14.8).
fn explain_code(code: u16, reason: &str) -> Stop {
    let (key, message) = match code {
        486 => (
            "quota",
            format!(
                "the server's per-user allocation rate limit or user-quota ({code} {reason}): use more users \
                 (--user repeated or --users-file, or --secret) or raise rate-limit-allocate/user-quota"
            ),
        ),
        508 => ("capacity", format!("insufficient capacity ({code} {reason}): total-quota or relay ports")),
        403 => ("forbidden", format!("forbidden ({code} {reason}): the user may be revoked")),
        _ => ("error", format!("the server answered {code} {reason}")),
    };
    Stop { key, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 3478))
    }

    fn answer(code: u16, reason: &str) -> anyhow::Error {
        anyhow::Error::new(ErrorAnswer { method: "Method(3)".into(), code, reason: reason.into() })
    }

    #[test]
    fn quota_486_names_the_limits_to_raise() {
        let s = explain(&answer(486, "Allocation Quota Reached").context("allocation 3"), true, server());
        assert_eq!(s.key, "quota");
        assert!(s.message.contains("486 Allocation Quota Reached"), "{}", s.message);
        assert!(s.message.contains("rate-limit-allocate/user-quota") && s.message.contains("more users"));
    }

    #[test]
    fn capacity_508_names_total_quota_and_ports() {
        let s = explain(&answer(508, "Insufficient Capacity"), true, server());
        assert_eq!(s.key, "capacity");
        assert!(s.message.contains("total-quota or relay ports"), "{}", s.message);
    }

    #[test]
    fn silence_after_answers_is_the_unauthenticated_rate_limit() {
        let s = explain(&anyhow::Error::new(NoAnswer).context("allocation 94"), true, server());
        assert_eq!(s.key, "unauth-limit");
        assert!(s.message.contains("rate-limit-unauth") && s.message.contains("--rate"), "{}", s.message);
    }

    #[test]
    fn silence_from_the_start_is_an_unreachable_server() {
        let s = explain(&anyhow::Error::new(NoAnswer), false, server());
        assert_eq!(s.key, "no-answer");
        assert!(s.message.contains("127.0.0.1:3478") && !s.message.contains("rate-limit"), "{}", s.message);
    }

    #[test]
    fn refused_credentials_and_other_errors() {
        assert_eq!(explain(&anyhow::Error::new(CredentialsRefused), true, server()).key, "credentials");
        assert_eq!(explain(&answer(403, "Forbidden"), true, server()).key, "forbidden");
        let s = explain(&answer(420, "Unknown Attribute"), true, server());
        assert_eq!((s.key, s.message.contains("420 Unknown Attribute")), ("error", true));
        let s = explain(&anyhow::anyhow!("socket trouble"), true, server());
        assert_eq!((s.key, s.message.as_str()), ("error", "socket trouble"));
    }
}
