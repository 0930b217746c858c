//! The agent context's simple values: names, descriptions, prompts, model settings, tool names
//! and URLs, each parsed once at the edge and valid from then on.

use std::fmt;

use ipa_kernel::text::{optional_text, required_text};

/// Why a value was refused; each names its rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AgentValueError {
    /// Not a usable agent name.
    #[error("an agent name must have 1 to 255 characters after trimming and no control characters")]
    Name,
    /// A description that is too long.
    #[error("a description has at most {max} characters", max = Description::MAX_CHARS)]
    Description,
    /// A system prompt that is too long.
    #[error("a system prompt has at most {max} characters", max = SystemPrompt::MAX_CHARS)]
    SystemPrompt,
    /// Not a usable model name.
    #[error(
        "a model name has 1 to 100 characters after trimming and no control characters \
         (for example gpt-4o)"
    )]
    ModelName,
    /// A temperature out of range or too precise.
    #[error("temperature must be between 0 and 2 with at most two decimals (for example 0.7)")]
    Temperature,
    /// A token limit that is not positive.
    #[error("max_tokens must be a whole number from 1 to {max}", max = MaxTokens::MAX)]
    MaxTokens,
    /// Not usable as a function name.
    #[error(
        "a tool name must be 1 to 64 characters of letters, digits, `_` and `-` (it is the \
         function name the model calls)"
    )]
    ToolName,
    /// A name search that is empty or too long.
    #[error("a name search has 1 to 255 characters after trimming")]
    NameFragment,
}

/// An agent's name: 1 to 255 characters after trimming, no control characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentName(String);

impl AgentName {
    /// Parses a name.
    pub fn parse(raw: &str) -> Result<Self, AgentValueError> {
        required_text(raw, ipa_kernel::text::NAME_MAX_CHARS)
            .map(Self)
            .ok_or(AgentValueError::Name)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an agent or tool is for (a tool's description is what the model reads to decide when to
/// call it): at most 10,000 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// The longest description.
    pub const MAX_CHARS: usize = 10_000;

    /// Parses a description; an empty one is `None`.
    pub fn parse(raw: &str) -> Result<Option<Self>, AgentValueError> {
        optional_text(raw, Self::MAX_CHARS)
            .map(|text| text.map(Self))
            .ok_or(AgentValueError::Description)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The instructions an agent's model receives first: at most 100,000 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemPrompt(String);

impl SystemPrompt {
    /// The longest system prompt.
    pub const MAX_CHARS: usize = 100_000;

    /// Parses a system prompt; an empty one is `None`.
    pub fn parse(raw: &str) -> Result<Option<Self>, AgentValueError> {
        optional_text(raw, Self::MAX_CHARS)
            .map(|text| text.map(Self))
            .ok_or(AgentValueError::SystemPrompt)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The model an agent asks for (`gpt-4o`, `llama3.1:8b`...): 1 to 100 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelName(String);

impl ModelName {
    /// The longest model name (the schema's `VARCHAR(100)`).
    pub const MAX_CHARS: usize = 100;

    /// Parses a model name.
    pub fn parse(raw: &str) -> Result<Self, AgentValueError> {
        required_text(raw, Self::MAX_CHARS)
            .map(Self)
            .ok_or(AgentValueError::ModelName)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Sampling temperature from 0 to 2 in hundredths (the column is `DECIMAL(3, 2)`), so 0.7 is kept
/// exactly rather than as the nearest binary fraction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Temperature(u16);

impl Temperature {
    /// The schema's default.
    pub const DEFAULT: Self = Self(70);

    /// Parses a number with at most two decimals between 0 and 2.
    pub fn parse(value: f64) -> Result<Self, AgentValueError> {
        let hundredths = value * 100.0;
        let rounded = hundredths.round();
        if !(0.0..=200.0).contains(&rounded) || (hundredths - rounded).abs() > 1e-6 {
            return Err(AgentValueError::Temperature);
        }
        // In range and integral: the conversion is exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(Self(rounded as u16))
    }

    /// From hundredths as stored; `None` out of range.
    pub fn from_hundredths(hundredths: i64) -> Option<Self> {
        u16::try_from(hundredths)
            .ok()
            .filter(|value| *value <= 200)
            .map(Self)
    }

    /// In hundredths.
    pub fn hundredths(self) -> u16 {
        self.0
    }

    /// As a number (for JSON and providers).
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

impl fmt::Display for Temperature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// The most tokens an agent's answer may have: 1 to 1,000,000.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxTokens(u32);

impl MaxTokens {
    /// The largest limit accepted.
    pub const MAX: u32 = 1_000_000;
    /// The schema's default.
    pub const DEFAULT: Self = Self(1000);

    /// Parses a limit.
    pub fn parse(value: i64) -> Result<Self, AgentValueError> {
        u32::try_from(value)
            .ok()
            .filter(|value| (1..=Self::MAX).contains(value))
            .map(Self)
            .ok_or(AgentValueError::MaxTokens)
    }

    /// The limit.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// A name a model can call: 1 to 64 of `[A-Za-z0-9_-]` (the function-name rule of the
/// chat-completions APIs). Tool names and plugin operation ids are such names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ToolName(String);

impl ToolName {
    /// The longest function name the chat-completions APIs accept.
    pub const MAX_CHARS: usize = 64;

    /// Parses a name.
    pub fn parse(raw: &str) -> Result<Self, AgentValueError> {
        let valid = (1..=Self::MAX_CHARS).contains(&raw.len())
            && raw
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-');
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(AgentValueError::ToolName)
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Part of an agent name to search for (case-insensitive substring).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameFragment(String);

impl NameFragment {
    /// Parses a search term.
    pub fn parse(raw: &str) -> Result<Self, AgentValueError> {
        required_text(raw, ipa_kernel::text::NAME_MAX_CHARS)
            .map(Self)
            .ok_or(AgentValueError::NameFragment)
    }

    /// The term.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An absolute `http` or `https` URL with a host, at most 2,048 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl(String);

impl HttpUrl {
    /// The longest URL, in bytes.
    pub const MAX_BYTES: usize = 2048;

    /// Parses a URL; the message says what is wrong.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let rest = raw
            .strip_prefix("https://")
            .or_else(|| raw.strip_prefix("http://"))
            .ok_or_else(|| format!("`{}` must be an http:// or https:// URL", shorten(raw)))?;
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if host.is_empty() || host.starts_with(':') || host.contains('@') {
            return Err(format!(
                "`{}` has no host (and credentials do not belong in a URL; use a secret header)",
                shorten(raw)
            ));
        }
        if raw.len() > Self::MAX_BYTES || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("a URL has at most 2,048 characters and no spaces".to_owned());
        }
        Ok(Self(raw.to_owned()))
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The start of a client's text, for an error message.
pub(crate) fn shorten(text: &str) -> String {
    const KEEP: usize = 80;
    if text.chars().count() <= KEEP {
        text.to_owned()
    } else {
        format!("{}...", text.chars().take(KEEP).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_takes_two_decimals_between_zero_and_two() {
        assert_eq!(Temperature::parse(0.7).map(Temperature::hundredths), Ok(70));
        assert_eq!(Temperature::parse(0.0).map(Temperature::hundredths), Ok(0));
        assert_eq!(
            Temperature::parse(2.0).map(Temperature::hundredths),
            Ok(200)
        );
        assert_eq!(
            Temperature::parse(1.25).map(Temperature::hundredths),
            Ok(125)
        );
        assert_eq!(
            Temperature::parse(0.29).map(Temperature::hundredths),
            Ok(29)
        );
        for bad in [-0.01, 2.01, 0.123, f64::NAN, f64::INFINITY] {
            assert_eq!(
                Temperature::parse(bad),
                Err(AgentValueError::Temperature),
                "{bad}"
            );
        }
        assert_eq!(Temperature::DEFAULT.to_string(), "0.70");
        assert_eq!(Temperature::from_hundredths(201), None);
    }

    #[test]
    fn max_tokens_is_positive_and_bounded() {
        assert!(MaxTokens::parse(1).is_ok());
        assert!(MaxTokens::parse(1_000_000).is_ok());
        for bad in [0, -5, 1_000_001] {
            assert_eq!(MaxTokens::parse(bad), Err(AgentValueError::MaxTokens));
        }
    }

    #[test]
    fn tool_names_are_function_names() {
        for good in ["a", "get_weather", "search-docs", &"x".repeat(64)] {
            assert!(ToolName::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "has space", "dot.ted", "ünï", &"x".repeat(65)] {
            assert_eq!(
                ToolName::parse(bad),
                Err(AgentValueError::ToolName),
                "{bad}"
            );
        }
    }

    #[test]
    fn names_and_prompts_are_bounded() {
        assert_eq!(
            AgentName::parse("  Helper ").map(|n| n.0),
            Ok("Helper".into())
        );
        assert_eq!(AgentName::parse(" "), Err(AgentValueError::Name));
        assert_eq!(SystemPrompt::parse(""), Ok(None));
        assert!(SystemPrompt::parse(&"x".repeat(100_001)).is_err());
        assert!(ModelName::parse(&"m".repeat(101)).is_err());
    }

    #[test]
    fn urls_are_absolute_http_with_a_host() {
        assert!(HttpUrl::parse("https://api.openai.com/v1").is_ok());
        assert!(HttpUrl::parse("http://127.0.0.1:8080").is_ok());
        for bad in [
            "ftp://x",
            "https://",
            "https:///path",
            "https://user:pw@host/",
            "https://a b",
            "api.openai.com",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
