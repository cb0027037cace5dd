//! Enums named by fixed words: stored in `TEXT` columns, or used as metric labels.

/// A Rust enum named by one of a fixed set of words, mostly stored in a `TEXT` column (for the
/// lifecycle's columns the migration `typed_states` lists the same words in a CHECK constraint):
/// `as_str`, `FromStr`, `Display`, serde as the word, and diesel's `ToSql`/`FromSql` on `Text`, so
/// queries bind it as a parameter. It also compares equal to its word (`state == "active"`).
///
/// The word is the variant's name in snake_case (`NeedsReapproval` is stored as `needs_reapproval`),
/// made at compile time: renaming a variant renames the stored word, which the schema's CHECK
/// constraints then refuse until a migration renames it too.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, diesel::expression::AsExpression, diesel::deserialize::FromSqlRow)]
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$(stringify!($variant)),+].len()] = [$(Self::$variant),+];

            /// The word stored in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => {
                        const BYTES: [u8; $crate::text_enum::snake_case_len(stringify!($variant))] =
                            $crate::text_enum::snake_case(stringify!($variant));
                        const WORD: &str = $crate::text_enum::utf8(&BYTES);
                        WORD
                    } )+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .into_iter()
                    .find(|value| value.as_str() == s)
                    .ok_or_else(|| format!(concat!("unknown ", $what, " {:?}"), s))
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(
                    self.as_str(),
                    out,
                )
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<
                    diesel::sql_types::Text,
                    diesel::pg::Pg,
                >>::from_sql(value)?;
                Ok(text.parse::<Self>()?)
            }
        }
    };
}

/// The length of the ASCII CamelCase `name` in snake_case: one `_` more before each capital but the
/// first.
pub(crate) const fn snake_case_len(name: &str) -> usize {
    let bytes = name.as_bytes();
    let mut len = bytes.len();
    let mut i = 1;
    while i < bytes.len() {
        if bytes[i].is_ascii_uppercase() {
            len += 1;
        }
        i += 1;
    }
    len
}

/// The ASCII CamelCase `name` in snake_case (`N` is [`snake_case_len`]): `TokenCaptured` gives
/// `token_captured`.
pub(crate) const fn snake_case<const N: usize>(name: &str) -> [u8; N] {
    let bytes = name.as_bytes();
    let mut word = [0; N];
    let mut at = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_uppercase() && i > 0 {
            word[at] = b'_';
            at += 1;
        }
        word[at] = bytes[i].to_ascii_lowercase();
        at += 1;
        i += 1;
    }
    word
}

/// `word` as text, at compile time: [`snake_case`] only lowers ASCII capitals and puts `_` before
/// them, so a name's UTF-8 stays valid.
pub(crate) const fn utf8(word: &'static [u8]) -> &'static str {
    match std::str::from_utf8(word) {
        Ok(text) => text,
        Err(_) => panic!("snake_case keeps UTF-8 valid"),
    }
}

#[cfg(test)]
mod tests {
    use crate::db::models::{AuditAction, WorkKind};
    use crate::lifecycle::TenantState;

    #[test]
    fn words_are_the_variant_names_in_snake_case() {
        assert_eq!(TenantState::Pending.as_str(), "pending");
        assert_eq!(TenantState::NeedsReapproval.as_str(), "needs_reapproval");
        assert_eq!(WorkKind::CreateCompany.as_str(), "create_company");
        assert_eq!(
            AuditAction::SuperofficeStateChangeUnknownTenant.as_str(),
            "superoffice_state_change_unknown_tenant"
        );
        assert_eq!(
            "needs_reapproval".parse::<TenantState>(),
            Ok(TenantState::NeedsReapproval)
        );
    }
}
