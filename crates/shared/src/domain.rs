//! Types that carry meaning: they parse on the way in and redact secrets in `Debug`.

use std::fmt;

use diesel::deserialize::FromSqlRow;
use diesel::expression::AsExpression;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Why a value could not be parsed into one of the domain types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("context identifier {0:?} is not of the form CustNNNNN (Cust followed by digits)")]
    ContextId(String),
    #[error("system user token is empty or longer than 1024 characters")]
    SystemUserToken,
    #[error("system user ticket is empty or longer than 4096 characters")]
    Ticket,
}

/// A SuperOffice Online tenant's context identifier, such as `Cust12345`. Stored as `TEXT`: rows carry it
/// typed (the database holds only identifiers parsed on the way in, so reading one back does not parse
/// it again), and queries bind it as a parameter.
#[derive(
    Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, AsExpression, FromSqlRow,
)]
#[serde(try_from = "String", into = "String")]
#[diesel(sql_type = diesel::sql_types::Text)]
pub struct ContextId(String);

impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for ContextId {
    fn to_sql<'b>(
        &'b self,
        out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
    ) -> diesel::serialize::Result {
        <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(
            &self.0, out,
        )
    }
}

impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for ContextId {
    fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        <String as diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg>>::from_sql(
            value,
        )
        .map(Self)
    }
}

impl std::ops::Deref for ContextId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ContextId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for ContextId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ContextId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl ContextId {
    /// Accepts `Cust` (any letter case) followed by 1 to 12 digits; keeps the canonical `Cust` prefix.
    pub fn parse(value: &str) -> Result<Self, DomainError> {
        let trimmed = value.trim();
        let ok = trimmed.len() > 4
            && trimmed.len() <= 16
            && trimmed.is_char_boundary(4)
            && trimmed[..4].eq_ignore_ascii_case("cust")
            && trimmed[4..].bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(Self(format!("Cust{}", &trimmed[4..])))
        } else {
            Err(DomainError::ContextId(value.chars().take(40).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ContextId {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ContextId> for String {
    fn from(value: ContextId) -> Self {
        value.0
    }
}

impl fmt::Display for ContextId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ContextId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContextId({})", self.0)
    }
}

macro_rules! secret_newtype {
    ($(#[$meta:meta])* $name:ident, $max:expr, $err:expr) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps a secret value; empty or oversized values are refused.
            pub fn parse(value: impl Into<String>) -> Result<Self, DomainError> {
                let value: String = value.into();
                if value.trim().is_empty() || value.chars().count() > $max {
                    return Err($err);
                }
                Ok(Self(SecretString::from(value)))
            }

            /// The secret itself: call only where it is sent, signed or encrypted.
            pub fn expose(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([REDACTED])"))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.expose() == other.expose()
            }
        }
        impl Eq for $name {}
    };
}

secret_newtype!(
    /// The long-lived per-tenant system user token (`AppName-randomchars`) from the `system_token` claim.
    SystemUserToken,
    1024,
    DomainError::SystemUserToken
);

secret_newtype!(
    /// The short-lived system user ticket (`7T:…`) used as `SOTicket` credentials.
    Ticket,
    4096,
    DomainError::Ticket
);

/// A system user token signed for one exchange: `token.yyyyMMddHHmm.base64(signature)`.
#[derive(Clone)]
pub struct SignedSystemToken(SecretString);

impl SignedSystemToken {
    /// Built only by the signer (`crypto::system_user_token`).
    pub(crate) fn new(value: String) -> Self {
        Self(SecretString::from(value))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for SignedSystemToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SignedSystemToken([REDACTED])")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn context_id_accepts_canonical_and_other_case() {
        assert_eq!(
            ContextId::parse("Cust12345").map(|c| c.to_string()),
            Ok("Cust12345".into())
        );
        assert_eq!(
            ContextId::parse(" cust7 ").map(|c| c.to_string()),
            Ok("Cust7".into())
        );
    }

    #[test]
    fn context_id_rejects_other_shapes() {
        for bad in [
            "",
            "Cust",
            "Cust12a",
            "12345",
            "Custé1",
            "Cust1234567890123",
            "Cust-1",
            "../Cust1",
        ] {
            assert!(ContextId::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let token = SystemUserToken::parse("App Name-abc123").unwrap();
        let ticket = Ticket::parse("7T:secretvalue").unwrap();
        assert_eq!(format!("{token:?}"), "SystemUserToken([REDACTED])");
        assert!(!format!("{ticket:?}").contains("secretvalue"));
        assert_eq!(token.expose(), "App Name-abc123");
    }

    #[test]
    fn empty_secrets_are_refused() {
        assert_eq!(
            SystemUserToken::parse("  "),
            Err(DomainError::SystemUserToken)
        );
        assert_eq!(Ticket::parse(""), Err(DomainError::Ticket));
    }
}
