//! Hop classes and the verdict: the vocabulary shared by the Received parser,
//! the chain analysis, the header and the `check` output.

use serde::Serialize;
use std::fmt;

/// The TLS record of one Received field, as the field itself states it.
#[derive(Clone, Copy, Debug, Default, Eq, PartialEq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Claim {
    /// The field records TLS (a version, a cipher, or a protocol word such as `ESMTPS`).
    Encrypted,
    /// The writer is known to record TLS whenever it is used, and this field records none.
    Plaintext,
    /// Nothing can be concluded: an unknown writer, a malformed field, or a shape that never records TLS.
    #[default]
    Unknown,
}

/// The class a hop counts as in the verdict: its claim, or `internal` for an internal hop.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsClass {
    Encrypted,
    Plaintext,
    Unknown,
    Internal,
}

impl From<Claim> for TlsClass {
    fn from(claim: Claim) -> Self {
        match claim {
            Claim::Encrypted => Self::Encrypted,
            Claim::Plaintext => Self::Plaintext,
            Claim::Unknown => Self::Unknown,
        }
    }
}

/// The verdict over the live hop and every hop below it.
#[derive(Clone, Copy, Debug, Eq, PartialEq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Unknown,
    Internal,
}

macro_rules! display_as_str {
    ($type:ty { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $type {
            /// Returns the lower-case token used in the header and the JSON output.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

display_as_str!(Claim { Encrypted => "encrypted", Plaintext => "plaintext", Unknown => "unknown" });
display_as_str!(TlsClass {
    Encrypted => "encrypted",
    Plaintext => "plaintext",
    Unknown => "unknown",
    Internal => "internal",
});
display_as_str!(Verdict { Pass => "pass", Fail => "fail", Unknown => "unknown", Internal => "internal" });
