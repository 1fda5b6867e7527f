//! `string_enum!`: enums whose values travel as fixed strings (GraphQL, storage, vendors).

/// Exported for the vendor modules' own enums (`domain::string_enum!`).
#[macro_export]
macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident, $field:literal { $($(#[$vm:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $variant),* }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];
            pub const fn as_str(&self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }
            /// # Errors
            #[doc = concat!("`Invalid { field: \"", $field, "\" }` on an unknown value.")]
            pub fn parse(s: &str) -> $crate::DomainResult<Self> {
                match s {
                    $($text => Ok(Self::$variant),)*
                    other => Err($crate::DomainError::invalid($field, format!("unknown value {other:?}"))),
                }
            }
        }
    };
}
pub(crate) use crate::string_enum;
