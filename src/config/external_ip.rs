//! The `external-ip` option: `PUBLIC[/PRIVATE]`, parsed from a string so that the same text works as
//! a flag and in `turn.toml`.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Deserialize;

use crate::policy::{AddrRuleError, parse_ip};

/// The `external-ip` option: `PUBLIC[/PRIVATE]`, the address clients see for a relay behind 1:1 NAT
/// and, optionally, the private address it maps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ExternalIp {
    /// The public address advertised in XOR-RELAYED-ADDRESS.
    pub public: IpAddr,
    /// The private (local) address it stands for; `None` means every relay address.
    pub private: Option<IpAddr>,
}

impl FromStr for ExternalIp {
    type Err = AddrRuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (public, private) = match s.trim().split_once('/') {
            Some((public, private)) => (parse_ip(public)?, Some(parse_ip(private)?)),
            None => (parse_ip(s)?, None),
        };
        if public.is_unspecified() {
            return Err(AddrRuleError::Unspecified(public.to_string()));
        }
        Ok(ExternalIp { public, private })
    }
}

/// `external-ip` in `turn.toml`: one `"PUBLIC[/PRIVATE]"` string, or a list of them (one per
/// private address, as coturn's repeated `external-ip` lines).
pub(super) fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ExternalIp>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        One(ExternalIp),
        Many(Vec<ExternalIp>),
    }
    match Raw::deserialize(d) {
        Ok(Raw::One(e)) => Ok(vec![e]),
        Ok(Raw::Many(list)) => Ok(list),
        // The untagged error says only "did not match any variant": name the form instead.
        Err(_) => Err(serde::de::Error::custom(
            "expected \"PUBLIC\" or \"PUBLIC/PRIVATE\" (IP addresses, PUBLIC not unspecified), or a list of them",
        )),
    }
}

impl TryFrom<String> for ExternalIp {
    type Error = AddrRuleError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for ExternalIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.private {
            Some(private) => write!(f, "{}/{private}", self.public),
            None => write!(f, "{}", self.public),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_ip() {
        let e: ExternalIp = "203.0.113.4/10.0.0.4".parse().unwrap();
        assert_eq!(e.to_string(), "203.0.113.4/10.0.0.4");
        assert_eq!("203.0.113.4".parse::<ExternalIp>().unwrap().private, None);
        assert!("0.0.0.0".parse::<ExternalIp>().is_err());
        assert!("203.0.113.4/x".parse::<ExternalIp>().is_err());
    }
}
