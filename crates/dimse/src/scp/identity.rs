//! The requestor's user identity (PS3.7 D.3.3.7), held so that its secret never
//! reaches a log.

use std::fmt;

use dicom_ul::pdu::{AssociationRQ, UserIdentityType, UserVariableItem};
use serde::Serialize;

/// The kind of a user identity (PS3.7 Table D.3-14, User-Identity-Type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[non_exhaustive]
pub enum IdentityKind {
    /// 1: a user name only.
    Username,
    /// 2: a user name and a passcode.
    UsernamePasscode,
    /// 3: a Kerberos service ticket.
    Kerberos,
    /// 4: a SAML assertion.
    Saml,
    /// 5: a JSON Web Token.
    Jwt,
}

impl IdentityKind {
    /// A short label: `username`, `username+passcode`, `kerberos`, `saml`, `jwt`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Username => "username",
            IdentityKind::UsernamePasscode => "username+passcode",
            IdentityKind::Kerberos => "kerberos",
            IdentityKind::Saml => "saml",
            IdentityKind::Jwt => "jwt",
        }
    }

    /// Whether the identity carries a user name (and, for the passcode kind, a
    /// passcode) rather than an opaque token.
    pub fn has_user_name(self) -> bool {
        matches!(
            self,
            IdentityKind::Username | IdentityKind::UsernamePasscode
        )
    }
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The user identity an A-ASSOCIATE-RQ carried.
///
/// Its `Debug` and `Display` show the kind and the user name, never the passcode or
/// token: compare those with [`UserIdentity::secret_matches`].
#[derive(Clone, PartialEq, Eq)]
pub struct UserIdentity {
    kind: IdentityKind,
    user: Option<String>,
    secret: Vec<u8>,
    positive_response_requested: bool,
}

impl UserIdentity {
    /// An identity of `kind`: `user` for the user-name kinds, `secret` the passcode
    /// (empty for [`IdentityKind::Username`]) or the token.
    pub fn new(kind: IdentityKind, user: Option<String>, secret: Vec<u8>) -> Self {
        UserIdentity {
            kind,
            user,
            secret,
            positive_response_requested: false,
        }
    }

    /// The identity of `request`, if it carried one of a known kind.
    pub fn of_request(request: &AssociationRQ) -> Option<UserIdentity> {
        request.user_variables.iter().find_map(|item| match item {
            UserVariableItem::UserIdentityItem(identity) => Some(UserIdentity::from_ul(identity)),
            _ => None,
        })
    }

    /// Converts dicom-ul's item.
    pub fn from_ul(identity: &dicom_ul::pdu::UserIdentity) -> UserIdentity {
        let primary = identity.primary_field();
        let (kind, user, secret) = match identity.identity_type() {
            UserIdentityType::Username => (IdentityKind::Username, Some(primary), Vec::new()),
            UserIdentityType::UsernamePassword => (
                IdentityKind::UsernamePasscode,
                Some(primary),
                identity.secondary_field(),
            ),
            UserIdentityType::KerberosServiceTicket => (IdentityKind::Kerberos, None, primary),
            UserIdentityType::SamlAssertion => (IdentityKind::Saml, None, primary),
            // `Jwt`, and any kind a later dicom-ul adds, carry a token.
            _ => (IdentityKind::Jwt, None, primary),
        };
        UserIdentity {
            kind,
            // PS3.7 D.3.3.7.1: the user name is UTF-8.
            user: user.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
            secret,
            positive_response_requested: identity.positive_response_requested(),
        }
    }

    /// The kind.
    pub fn kind(&self) -> IdentityKind {
        self.kind
    }

    /// The user name, for the user-name kinds.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Whether the requestor asked for a positive response (the User Identity
    /// server response item in the A-ASSOCIATE-AC).
    pub fn positive_response_requested(&self) -> bool {
        self.positive_response_requested
    }

    /// Whether the passcode (or token) is exactly `expected`, compared in time
    /// independent of where the two first differ.
    pub fn secret_matches(&self, expected: &[u8]) -> bool {
        self.secret.len() == expected.len()
            && self
                .secret
                .iter()
                .zip(expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// The passcode or token itself: for a check that [`secret_matches`](Self::secret_matches)
    /// cannot express. Never log it.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }
}

impl fmt::Debug for UserIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserIdentity")
            .field("kind", &self.kind)
            .field("user", &self.user)
            .field("secret", &"<redacted>")
            .field(
                "positive_response_requested",
                &self.positive_response_requested,
            )
            .finish()
    }
}

impl fmt::Display for UserIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.user {
            Some(user) => write!(f, "{} {user:?}", self.kind),
            None => write!(f, "{} token", self.kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_secret() {
        let identity = UserIdentity::new(
            IdentityKind::UsernamePasscode,
            Some("modality1".into()),
            b"hunter2-secret".to_vec(),
        );
        let shown = format!("{identity:?} {identity} {identity:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("modality1"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
        let token = UserIdentity::new(IdentityKind::Jwt, None, b"eyJhbGciOi.secret".to_vec());
        let shown = format!("{token:?} {token}");
        assert!(!shown.contains("eyJ"), "{shown}");
        assert_eq!(token.to_string(), "jwt token");
    }

    #[test]
    fn secrets_compare_exactly() {
        let identity = UserIdentity::new(IdentityKind::Jwt, None, b"abc".to_vec());
        assert!(identity.secret_matches(b"abc"));
        assert!(!identity.secret_matches(b"abd"));
        assert!(!identity.secret_matches(b"ab"));
        assert!(!identity.secret_matches(b""));
    }

    #[test]
    fn the_identity_of_a_request_is_converted_from_dicom_ul() {
        let item = dicom_ul::pdu::UserIdentity::new(
            true,
            UserIdentityType::UsernamePassword,
            b"alice".to_vec(),
            b"pw".to_vec(),
        );
        let identity = UserIdentity::from_ul(&item);
        assert_eq!(identity.kind(), IdentityKind::UsernamePasscode);
        assert_eq!(identity.user(), Some("alice"));
        assert!(identity.secret_matches(b"pw"));
        assert!(identity.positive_response_requested());
    }
}
