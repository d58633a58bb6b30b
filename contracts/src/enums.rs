//! Open and closed wire enums, made explicit in the type system and in the generated JSON Schema.
//!
//! An iOS `Codable` enum without an unknown case fails the *whole* response when it meets a value it does not
//! know. So every wire enum declares what the app may assume:
//!
//! - **closed** ([`closed_enum!`]): the set of values is fixed for the version; adding one is a breaking change
//!   that the compatibility checker rejects. Schema marker `"x-enum-kind": "closed"`.
//! - **open** ([`open_enum!`]): the set may grow within a version; the app maps any value it does not know to
//!   `unknown`, and so does our own Rust deserializer (the generated `Unknown` variant). Schema marker
//!   `"x-enum-kind": "open"`.
//!
//! The macros keep the Rust type, its wire spellings and the schema marker in one place so they cannot drift.

/// Whether a wire enum may gain values within a contract version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnumKind {
    Open,
    Closed,
}

impl EnumKind {
    /// The value of the `x-enum-kind` schema keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            EnumKind::Open => "open",
            EnumKind::Closed => "closed",
        }
    }
}

/// The schema keyword that carries an enum's [`EnumKind`].
pub const ENUM_KIND_KEYWORD: &str = "x-enum-kind";

/// Implemented by every enum declared with [`open_enum!`] or [`closed_enum!`].
pub trait WireEnum: Copy + Sized + 'static {
    const KIND: EnumKind;
    /// Every declared value in declaration order (an open enum's `Unknown` fallback excluded).
    const VALUES: &'static [Self];

    /// The wire spelling of this value.
    fn as_str(self) -> &'static str;

    /// The declared value spelled `value` on the wire; `None` for anything else.
    fn from_wire(value: &str) -> Option<Self> {
        Self::VALUES.iter().copied().find(|candidate| candidate.as_str() == value)
    }
}

/// A wire enum that may grow within a version; unknown values decode to [`OpenEnum::UNKNOWN`].
pub trait OpenEnum: WireEnum {
    const UNKNOWN: Self;
}

/// A wire enum whose values are fixed for the version.
pub trait ClosedEnum: WireEnum {}

/// Declares a closed wire enum: `Variant => "wire_name"` per value.
macro_rules! closed_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident => $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, schemars::JsonSchema,
        )]
        #[schemars(extend("x-enum-kind" = "closed"))]
        pub enum $name {
            $( $(#[$variant_meta])* #[serde(rename = $wire)] $variant, )+
        }

        impl $crate::enums::WireEnum for $name {
            const KIND: $crate::enums::EnumKind = $crate::enums::EnumKind::Closed;
            const VALUES: &'static [Self] = &[$( Self::$variant, )+];

            fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $wire, )+
                }
            }
        }

        impl $crate::enums::ClosedEnum for $name {}

        impl $name {
            /// The wire spelling of this value.
            pub fn as_str(self) -> &'static str {
                <Self as $crate::enums::WireEnum>::as_str(self)
            }
        }
    };
}

/// Declares an open wire enum: `Variant => "wire_name"` per value, plus a generated `Unknown` fallback
/// (wire `"unknown"`) that any unrecognised value decodes to.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident => $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, schemars::JsonSchema,
        )]
        #[schemars(extend("x-enum-kind" = "open"))]
        pub enum $name {
            $( $(#[$variant_meta])* #[serde(rename = $wire)] $variant, )+
            /// A value this build does not know; clients map unrecognised values here.
            #[serde(rename = "unknown", other)]
            Unknown,
        }

        impl $crate::enums::WireEnum for $name {
            const KIND: $crate::enums::EnumKind = $crate::enums::EnumKind::Open;
            const VALUES: &'static [Self] = &[$( Self::$variant, )+];

            fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $wire, )+
                    Self::Unknown => "unknown",
                }
            }
        }

        impl $crate::enums::OpenEnum for $name {
            const UNKNOWN: Self = Self::Unknown;
        }

        impl $name {
            /// The wire spelling of this value.
            pub fn as_str(self) -> &'static str {
                <Self as $crate::enums::WireEnum>::as_str(self)
            }
        }
    };
}

pub(crate) use {closed_enum, open_enum};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::freshness::{SourceId, SourceStatus};

    #[test]
    fn open_enums_decode_unknown_values_to_the_fallback() {
        let decoded: SourceId = serde_json::from_str(r#""a_source_added_next_year""#).unwrap();
        assert_eq!(decoded, SourceId::UNKNOWN);
    }

    #[test]
    fn closed_enums_reject_unknown_values() {
        let error = serde_json::from_str::<SourceStatus>(r#""maybe""#).unwrap_err();
        assert!(error.to_string().contains("unknown variant"), "{error}");
    }

    #[test]
    fn wire_spellings_round_trip() {
        for value in SourceStatus::VALUES {
            let wire = serde_json::to_value(value).unwrap();
            assert_eq!(wire, value.as_str());
        }
    }
}
