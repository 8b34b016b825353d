//! Admin bearer tokens: several may be valid at once (rotation).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The configured tokens, kept as SHA-256 digests so that comparing is
/// constant-time and independent of the tokens' lengths.
#[derive(Clone, Default)]
pub struct AdminTokens {
    digests: Vec<[u8; 32]>,
}

impl AdminTokens {
    pub fn new(tokens: &[String]) -> AdminTokens {
        AdminTokens {
            digests: tokens
                .iter()
                .map(|token| digest(token.as_bytes()))
                .collect(),
        }
    }

    /// No tokens configured: admin routes are open.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Checks an `Authorization` header value. Every configured token is
    /// compared, whatever matches, so timing says nothing about which one.
    pub fn allows(&self, authorization: Option<&[u8]>) -> bool {
        if self.is_empty() {
            return true;
        }
        // The scheme name is case-insensitive (RFC 9110 §11.1).
        let token = authorization.and_then(|value| {
            let (scheme, rest) = value.split_at_checked(7)?;
            scheme
                .eq_ignore_ascii_case(b"bearer ")
                .then(|| rest.trim_ascii())
        });
        let Some(token) = token.filter(|token| !token.is_empty()) else {
            return false;
        };
        let presented = digest(token);
        self.digests.iter().fold(0u8, |found, known| {
            found | known.ct_eq(&presented).unwrap_u8()
        }) == 1
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_configured_token_is_accepted() {
        let tokens = AdminTokens::new(&["old".into(), "new".into()]);
        assert!(tokens.allows(Some(b"Bearer old")));
        assert!(tokens.allows(Some(b"Bearer new")));
    }

    #[test]
    fn wrong_missing_or_malformed_credentials_are_refused() {
        let tokens = AdminTokens::new(&["secret".into()]);
        for header in [
            None,
            Some(&b"Bearer nope"[..]),
            Some(b"secret"),
            Some(b"Basic secret"),
            Some(b"Bearer "),
            Some(b"Bearersecret"),
        ] {
            assert!(!tokens.allows(header), "{header:?}");
        }
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        let tokens = AdminTokens::new(&["secret".into()]);
        assert!(tokens.allows(Some(b"bearer secret")));
        assert!(tokens.allows(Some(b"BEARER  secret")));
    }

    #[test]
    fn no_tokens_means_open() {
        assert!(AdminTokens::default().allows(None));
    }
}
