//! Bearer tokens with a scope and an optional label.
//!
//! Three scopes (docs/api.md, "Tokens, scopes and history"): `admin` may do
//! everything, `read` only what changes nothing, `internal` only the
//! `/internal/v1/*` routes edges use. Several tokens of one scope may be
//! valid at once (rotation). A configured entry `label:token` names who
//! holds the token; the label is recorded with every change it makes.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Admin,
    Read,
    Internal,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Read => "read",
            Scope::Internal => "internal",
        }
    }
}

/// What a route needs of its caller (tokens on); with tokens off every
/// route is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No token: operations endpoints, the console's files.
    Open,
    /// Any valid token, whatever its scope (`whoami`).
    AnyToken,
    /// Admin routes that change nothing: admin or read.
    Read,
    /// Admin routes that change ads: admin only.
    Write,
    /// `/internal/v1/*`: admin or internal.
    Internal,
}

impl Access {
    /// Whether a token of `scope` may use a route needing this.
    pub fn allows(self, scope: Scope) -> bool {
        match self {
            Access::Open | Access::AnyToken => true,
            Access::Read => matches!(scope, Scope::Admin | Scope::Read),
            Access::Write => scope == Scope::Admin,
            Access::Internal => matches!(scope, Scope::Admin | Scope::Internal),
        }
    }
}

/// Who made a request, once authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// Tokens are off: everybody may do everything, nobody is named.
    Open,
    /// A valid token, of this scope, with its label if it has one.
    Token {
        scope: Scope,
        label: Option<Arc<str>>,
    },
}

impl Caller {
    /// The label recorded with a change this caller makes.
    pub fn label(&self) -> Option<&str> {
        match self {
            Caller::Open => None,
            Caller::Token { label, .. } => label.as_deref(),
        }
    }

    /// `admin`, `read`, `internal`, or `open` when tokens are off.
    pub fn scope_name(&self) -> &'static str {
        match self {
            Caller::Open => "open",
            Caller::Token { scope, .. } => scope.as_str(),
        }
    }

    /// Whether this caller may use a route needing `access`.
    pub fn may(&self, access: Access) -> bool {
        match self {
            Caller::Open => true,
            Caller::Token { scope, .. } => access.allows(*scope),
        }
    }
}

/// A token label: 1–64 characters of `[A-Za-z0-9._-]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label(String);

impl Label {
    pub const MAX_LEN: usize = 64;

    pub fn parse(text: &str) -> Option<Label> {
        let valid = (1..=Self::MAX_LEN).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        valid.then(|| Label(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One configured token. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenEntry {
    pub label: Option<Label>,
    pub secret: String,
}

impl fmt::Debug for TokenEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEntry")
            .field("label", &self.label)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Why a configured entry is refused. The messages never quote the entry:
/// what precedes a `:` may be part of a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error(
        "the text before the first ':' is not a valid label (1 to 64 characters of \
         A-Z a-z 0-9 . _ -); a token containing ':' must be written label:token"
    )]
    InvalidLabel,
    #[error("the token after the label is empty")]
    EmptySecret,
}

impl TokenEntry {
    /// Reads one configured entry (already trimmed, not empty). The first
    /// `:` always ends a label: `alice:s3cret` is the token `s3cret`
    /// labelled `alice`; `alice:a:b` is the token `a:b`. An entry without a
    /// `:` is an unlabelled token. An entry whose text before its first `:`
    /// is not a valid label is refused rather than taken as a whole token,
    /// so that a mistyped label never silently becomes part of a secret.
    pub fn parse(entry: &str) -> Result<TokenEntry, EntryError> {
        match entry.split_once(':') {
            None => Ok(TokenEntry {
                label: None,
                secret: entry.to_owned(),
            }),
            Some((label, secret)) => {
                let label = Label::parse(label).ok_or(EntryError::InvalidLabel)?;
                if secret.is_empty() {
                    return Err(EntryError::EmptySecret);
                }
                Ok(TokenEntry {
                    label: Some(label),
                    secret: secret.to_owned(),
                })
            }
        }
    }
}

/// Why a set of tokens cannot be used together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokensError {
    #[error(
        "the same token is configured as both {first} and {second} (or twice with \
         different labels); each token must have one scope and one label"
    )]
    Ambiguous {
        first: &'static str,
        second: &'static str,
    },
}

struct Known {
    digest: [u8; 32],
    scope: Scope,
    label: Option<Arc<str>>,
}

/// The configured tokens of every scope, kept as SHA-256 digests so that
/// comparing is constant-time and independent of the tokens' lengths.
#[derive(Default)]
pub struct Tokens {
    known: Vec<Known>,
}

/// The outcome of checking an `Authorization` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authentication {
    Caller(Caller),
    /// Tokens are on and the header holds none, or an unknown one.
    Refused,
}

impl Tokens {
    /// Builds the set; the same token twice is fine only with the same
    /// scope and label (it is then kept once).
    pub fn new(
        entries: impl IntoIterator<Item = (Scope, TokenEntry)>,
    ) -> Result<Tokens, TokensError> {
        let mut known: Vec<Known> = Vec::new();
        for (scope, entry) in entries {
            let digest = digest(entry.secret.as_bytes());
            let label = entry.label.map(|label| Arc::from(label.as_str()));
            if let Some(seen) = known.iter().find(|seen| seen.digest == digest) {
                if seen.scope == scope && seen.label == label {
                    continue;
                }
                return Err(TokensError::Ambiguous {
                    first: seen.scope.as_str(),
                    second: scope.as_str(),
                });
            }
            known.push(Known {
                digest,
                scope,
                label,
            });
        }
        Ok(Tokens { known })
    }

    /// Only admin tokens, unlabelled.
    #[cfg(test)]
    fn admin(tokens: &[String]) -> Tokens {
        Tokens::new(tokens.iter().map(|secret| {
            (
                Scope::Admin,
                TokenEntry {
                    label: None,
                    secret: secret.clone(),
                },
            )
        }))
        .expect("distinct unlabelled admin tokens")
    }

    /// No token configured in any scope: every route is open.
    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// Checks an `Authorization` header value. Every configured token is
    /// compared, whatever matches, so timing says nothing about which one
    /// (or whether any) matched.
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Authentication {
        if self.is_empty() {
            return Authentication::Caller(Caller::Open);
        }
        // The scheme name is case-insensitive (RFC 9110 §11.1).
        let token = authorization.and_then(|value| {
            let (scheme, rest) = value.split_at_checked(7)?;
            scheme
                .eq_ignore_ascii_case(b"bearer ")
                .then(|| rest.trim_ascii())
        });
        let Some(token) = token.filter(|token| !token.is_empty()) else {
            return Authentication::Refused;
        };
        let presented = digest(token);
        // Index + 1 of the matching token, 0 for none (digests are distinct).
        let mut found = 0u32;
        for (index, known) in self.known.iter().enumerate() {
            let position = index as u32 + 1;
            found.conditional_assign(&position, known.digest.ct_eq(&presented));
        }
        match found
            .checked_sub(1)
            .and_then(|i| self.known.get(i as usize))
        {
            Some(known) => Authentication::Caller(Caller::Token {
                scope: known.scope,
                label: known.label.clone(),
            }),
            None => Authentication::Refused,
        }
    }

    /// How many tokens of `scope` are configured (for the start-up log).
    pub fn count(&self, scope: Scope) -> usize {
        self.known
            .iter()
            .filter(|known| known.scope == scope)
            .count()
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str) -> TokenEntry {
        TokenEntry::parse(text).unwrap()
    }

    fn scope_of(tokens: &Tokens, header: &[u8]) -> Option<(Scope, Option<String>)> {
        match tokens.authenticate(Some(header)) {
            Authentication::Caller(Caller::Token { scope, label }) => {
                Some((scope, label.map(|label| label.to_string())))
            }
            _ => None,
        }
    }

    #[test]
    fn any_configured_token_is_accepted() {
        let tokens = Tokens::admin(&["old".into(), "new".into()]);
        assert_eq!(scope_of(&tokens, b"Bearer old"), Some((Scope::Admin, None)));
        assert_eq!(scope_of(&tokens, b"Bearer new"), Some((Scope::Admin, None)));
    }

    #[test]
    fn wrong_missing_or_malformed_credentials_are_refused() {
        let tokens = Tokens::admin(&["secret".into()]);
        for header in [
            None,
            Some(&b"Bearer nope"[..]),
            Some(b"secret"),
            Some(b"Basic secret"),
            Some(b"Bearer "),
            Some(b"Bearersecret"),
        ] {
            assert_eq!(
                tokens.authenticate(header),
                Authentication::Refused,
                "{header:?}"
            );
        }
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        let tokens = Tokens::admin(&["secret".into()]);
        assert!(scope_of(&tokens, b"bearer secret").is_some());
        assert!(scope_of(&tokens, b"BEARER  secret").is_some());
    }

    #[test]
    fn no_tokens_means_open() {
        assert_eq!(
            Tokens::default().authenticate(None),
            Authentication::Caller(Caller::Open)
        );
    }

    #[test]
    fn each_token_authenticates_as_its_own_scope_and_label() {
        let tokens = Tokens::new([
            (Scope::Admin, entry("alice:a-secret")),
            (Scope::Read, entry("viewer.1:r-secret")),
            (Scope::Read, entry("r-unlabelled")),
            (Scope::Internal, entry("edge-eu:i:secret")),
        ])
        .unwrap();
        assert_eq!(
            scope_of(&tokens, b"Bearer a-secret"),
            Some((Scope::Admin, Some("alice".into())))
        );
        assert_eq!(
            scope_of(&tokens, b"Bearer r-secret"),
            Some((Scope::Read, Some("viewer.1".into())))
        );
        assert_eq!(
            scope_of(&tokens, b"Bearer r-unlabelled"),
            Some((Scope::Read, None))
        );
        assert_eq!(
            scope_of(&tokens, b"Bearer i:secret"),
            Some((Scope::Internal, Some("edge-eu".into())))
        );
        // The label is not part of the token.
        assert_eq!(scope_of(&tokens, b"Bearer alice:a-secret"), None);
        assert_eq!(tokens.count(Scope::Read), 2);
    }

    #[test]
    fn labels_are_one_to_sixty_four_safe_characters() {
        for valid in ["a", "alice", "ci.deploy-bot_2", &"x".repeat(64)] {
            assert!(Label::parse(valid).is_some(), "{valid}");
        }
        for invalid in ["", &"x".repeat(65), "al ice", "al/ice", "élise", "a@b"] {
            assert!(Label::parse(invalid).is_none(), "{invalid}");
        }
    }

    #[test]
    fn an_entry_splits_at_its_first_colon() {
        assert_eq!(
            entry("plain"),
            TokenEntry {
                label: None,
                secret: "plain".into()
            }
        );
        let labelled = entry("bob:x:y");
        assert_eq!(labelled.label.unwrap().as_str(), "bob");
        assert_eq!(labelled.secret, "x:y");
    }

    #[test]
    fn an_entry_with_a_bad_label_or_no_secret_is_refused() {
        assert_eq!(TokenEntry::parse(":secret"), Err(EntryError::InvalidLabel));
        assert_eq!(
            TokenEntry::parse("bad label:secret"),
            Err(EntryError::InvalidLabel)
        );
        let long = format!("{}:secret", "x".repeat(65));
        assert_eq!(TokenEntry::parse(&long), Err(EntryError::InvalidLabel));
        assert_eq!(TokenEntry::parse("alice:"), Err(EntryError::EmptySecret));
    }

    #[test]
    fn the_messages_never_quote_the_entry() {
        let error = TokenEntry::parse("sec ret:more").unwrap_err().to_string();
        assert!(!error.contains("sec ret"), "{error}");
    }

    #[test]
    fn the_debug_form_hides_the_secret() {
        let shown = format!("{:?}", entry("alice:hunter2"));
        assert!(
            shown.contains("alice") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn one_token_in_two_scopes_or_with_two_labels_is_refused() {
        assert!(
            Tokens::new([(Scope::Admin, entry("same")), (Scope::Read, entry("same")),]).is_err()
        );
        assert!(Tokens::new([
            (Scope::Read, entry("a:same")),
            (Scope::Read, entry("b:same")),
        ])
        .is_err());
        let repeated = Tokens::new([
            (Scope::Read, entry("a:same")),
            (Scope::Read, entry("a:same")),
        ])
        .unwrap();
        assert_eq!(repeated.count(Scope::Read), 1);
    }

    #[test]
    fn scopes_allow_what_the_documentation_says() {
        use Access::*;
        let table = [
            (Scope::Admin, [true, true, true, true, true]),
            (Scope::Read, [true, true, true, false, false]),
            (Scope::Internal, [true, true, false, false, true]),
        ];
        for (scope, expected) in table {
            let got = [Open, AnyToken, Read, Write, Internal].map(|access| access.allows(scope));
            assert_eq!(got, expected, "{scope:?}");
        }
        assert!(Caller::Open.may(Write));
    }
}
