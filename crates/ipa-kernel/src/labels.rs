//! Closed sets of labels (statuses, types, actions). Each is a Rust enum whose labels are exactly
//! the values of the PostgreSQL enum of the same name; a schema test holds the two together.

/// A label that is not one of its set's values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("'{label}' is not a valid {set}; expected one of: {expected}")]
pub struct UnknownLabel {
    /// The name of the label set (for example `workflow status`).
    pub set: &'static str,
    /// What was given.
    pub label: String,
    /// The accepted labels, comma-separated.
    pub expected: String,
}

impl UnknownLabel {
    /// The error for `label`, listing `all` as the accepted values.
    pub fn new(set: &'static str, label: &str, all: &[&str]) -> Self {
        Self {
            set,
            label: label.to_owned(),
            expected: all.join(", "),
        }
    }
}

/// Defines a label enum: variants with their stored labels, `ALL`, `as_str`, `Display`,
/// `FromStr` (with [`UnknownLabel`]) and serde as the label.
#[macro_export]
macro_rules! label_enum {
    ($(#[$meta:meta])* $name:ident, $set:literal { $($(#[$vmeta:meta])* $variant:ident => $label:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $label)] $variant),+
        }

        impl $name {
            /// Every value, in the order PostgreSQL declares them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored label.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }

            /// Every stored label, in declaration order.
            pub fn labels() -> Vec<&'static str> {
                Self::ALL.iter().map(|value| value.as_str()).collect()
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::labels::UnknownLabel;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($label => Ok($name::$variant),)+
                    other => Err($crate::labels::UnknownLabel::new($set, other, &Self::labels())),
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    crate::label_enum!(
        /// A test set.
        Colour, "colour" { Red => "red", DarkBlue => "dark_blue" }
    );

    #[test]
    fn labels_round_trip_and_unknown_ones_are_explained() {
        for colour in Colour::ALL {
            assert_eq!(colour.as_str().parse::<Colour>().unwrap(), *colour);
        }
        let err = "green".parse::<Colour>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "'green' is not a valid colour; expected one of: red, dark_blue"
        );
        assert_eq!(
            serde_json::to_string(&Colour::DarkBlue).unwrap(),
            "\"dark_blue\""
        );
    }
}
