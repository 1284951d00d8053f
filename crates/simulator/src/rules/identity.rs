//! Who may associate on a route: the user identities (PS3.7 D.3.3.7) a route
//! accepts.

use dimse::{IdentityKind, UserIdentity};

/// A route's user identity check.
///
/// Passcodes and tokens are compared exactly as given (bytes of the UTF-8 text),
/// in time independent of where they differ; `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct IdentityPolicy {
    /// Refuse an association without an acceptable identity (A-ASSOCIATE-RJ
    /// permanent, service provider (ACSE), no reason given). When false, everyone is let in
    /// and an acceptable identity only earns its positive response.
    pub required: bool,
    /// The kinds accepted; empty: every kind the entries below can satisfy.
    pub kinds: Vec<IdentityKind>,
    /// The users accepted (user name, user name and passcode).
    pub users: Vec<IdentityUser>,
    /// The tokens accepted (Kerberos service ticket, SAML assertion, JWT).
    pub tokens: Vec<String>,
}

/// A user a route accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct IdentityUser {
    /// The user name.
    pub name: String,
    /// The passcode. With one, the user must send it (user name and passcode);
    /// without, a user name alone (or with any passcode) is accepted.
    pub passcode: Option<String>,
}

impl IdentityPolicy {
    /// Whether `identity` is one this route accepts.
    pub fn accepts(&self, identity: &UserIdentity) -> bool {
        if !self.kinds.is_empty() && !self.kinds.contains(&identity.kind()) {
            return false;
        }
        match identity.kind() {
            IdentityKind::Username | IdentityKind::UsernamePasscode => {
                let Some(name) = identity.user_name() else {
                    return false;
                };
                self.users.iter().any(|user| {
                    user.name == name
                        && match &user.passcode {
                            None => true,
                            Some(passcode) => {
                                identity.kind() == IdentityKind::UsernamePasscode
                                    && identity.secret_matches(passcode.as_bytes())
                            }
                        }
                })
            }
            _ => self
                .tokens
                .iter()
                .any(|token| identity.secret_matches(token.as_bytes())),
        }
    }
}

impl std::fmt::Debug for IdentityPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityPolicy")
            .field("required", &self.required)
            .field("kinds", &self.kinds)
            .field("users", &self.users)
            .field("tokens", &format_args!("<{} redacted>", self.tokens.len()))
            .finish()
    }
}

impl std::fmt::Debug for IdentityUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityUser")
            .field("name", &self.name)
            .field(
                "passcode",
                &self.passcode.as_ref().map(|_| format_args!("<redacted>")),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> IdentityPolicy {
        IdentityPolicy {
            required: true,
            kinds: Vec::new(),
            users: vec![
                IdentityUser {
                    name: "modality1".into(),
                    passcode: Some("pw1".into()),
                },
                IdentityUser {
                    name: "viewer".into(),
                    passcode: None,
                },
            ],
            tokens: vec!["tok-1".into()],
        }
    }

    fn id(kind: IdentityKind, user: Option<&str>, secret: &str) -> UserIdentity {
        match (kind, user) {
            (IdentityKind::UsernamePasscode, Some(user)) => {
                UserIdentity::username_passcode(user, secret)
            }
            (IdentityKind::Username, Some(user)) => UserIdentity::username(user),
            (kind, _) => UserIdentity::token(kind, secret).unwrap(),
        }
    }

    #[test]
    fn users_passcodes_and_tokens_are_checked() {
        use IdentityKind::*;
        let p = policy();
        assert!(p.accepts(&id(UsernamePasscode, Some("modality1"), "pw1")));
        assert!(!p.accepts(&id(UsernamePasscode, Some("modality1"), "pw2")));
        assert!(!p.accepts(&id(Username, Some("modality1"), "")));
        assert!(p.accepts(&id(Username, Some("viewer"), "")));
        assert!(!p.accepts(&id(Username, Some("stranger"), "")));
        assert!(p.accepts(&id(Jwt, None, "tok-1")));
        assert!(p.accepts(&id(SamlAssertion, None, "tok-1")));
        assert!(!p.accepts(&id(Jwt, None, "tok-2")));
        let jwt_only = IdentityPolicy {
            kinds: vec![Jwt],
            ..policy()
        };
        assert!(!jwt_only.accepts(&id(SamlAssertion, None, "tok-1")));
        assert!(!jwt_only.accepts(&id(Username, Some("viewer"), "")));
    }

    #[test]
    fn debug_never_shows_passcodes_or_tokens() {
        let shown = format!("{:?}", policy());
        assert!(
            !shown.contains("pw1") && !shown.contains("tok-1"),
            "{shown}"
        );
        assert!(shown.contains("modality1"), "{shown}");
    }
}
