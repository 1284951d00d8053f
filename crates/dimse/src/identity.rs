//! User identity negotiation (PS3.7 Annex D.3.3.7): who the calling application
//! says it is, sent in the A-ASSOCIATE-RQ.
//!
//! [`UserIdentity`] is one identity of one of the five kinds the standard defines: a
//! user name, a user name with a passcode, a Kerberos service ticket, a SAML
//! assertion or a JSON web token. Tokens are opaque here: they are sent as given.
//!
//! Passcodes and tokens are secrets: `Debug` and `Display` never show them, and
//! [`UserIdentity::summary`] (what reports and logs carry) holds only the kind and
//! the user name.
//!
//! ```
//! use dimse::{IdentityKind, UserIdentity};
//!
//! let identity = UserIdentity::username_passcode("modality1", "s3cret");
//! assert_eq!(identity.kind(), IdentityKind::UsernamePasscode);
//! assert_eq!(identity.user_name(), Some("modality1"));
//! assert!(!format!("{identity:?} {identity}").contains("s3cret"));
//! ```

use std::fmt;
use std::str::FromStr;

use dicom_ul::pdu::{AssociationRQ, UserIdentityType, UserVariableItem};
use serde::Serialize;

/// The kind of a user identity (PS3.7 Table D.3-14, User-Identity-Type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentityKind {
    /// 1: a user name.
    Username,
    /// 2: a user name and a passcode.
    UsernamePasscode,
    /// 3: a Kerberos service ticket.
    KerberosTicket,
    /// 4: a SAML assertion.
    SamlAssertion,
    /// 5: a JSON web token.
    Jwt,
}

impl IdentityKind {
    /// Every kind, in the standard's order.
    pub const ALL: [IdentityKind; 5] = [
        IdentityKind::Username,
        IdentityKind::UsernamePasscode,
        IdentityKind::KerberosTicket,
        IdentityKind::SamlAssertion,
        IdentityKind::Jwt,
    ];

    /// The User-Identity-Type code of the standard (1 to 5).
    pub fn code(self) -> u8 {
        match self {
            IdentityKind::Username => 1,
            IdentityKind::UsernamePasscode => 2,
            IdentityKind::KerberosTicket => 3,
            IdentityKind::SamlAssertion => 4,
            IdentityKind::Jwt => 5,
        }
    }

    /// The kind of a User-Identity-Type code.
    pub fn from_code(code: u8) -> Option<IdentityKind> {
        IdentityKind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The name used in configuration files: `username`, `username-passcode`,
    /// `kerberos`, `saml`, `jwt`.
    pub fn name(self) -> &'static str {
        match self {
            IdentityKind::Username => "username",
            IdentityKind::UsernamePasscode => "username-passcode",
            IdentityKind::KerberosTicket => "kerberos",
            IdentityKind::SamlAssertion => "saml",
            IdentityKind::Jwt => "jwt",
        }
    }

    /// Whether the identity names a user (the two user name kinds).
    pub fn has_user_name(self) -> bool {
        matches!(
            self,
            IdentityKind::Username | IdentityKind::UsernamePasscode
        )
    }
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdentityKind::Username => "user name",
            IdentityKind::UsernamePasscode => "user name and passcode",
            IdentityKind::KerberosTicket => "Kerberos service ticket",
            IdentityKind::SamlAssertion => "SAML assertion",
            IdentityKind::Jwt => "JSON web token",
        })
    }
}

/// A name that is not an identity kind.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown user identity kind {0:?}: expected username, username-passcode, kerberos, saml or jwt"
)]
pub struct IdentityKindError(pub String);

impl FromStr for IdentityKind {
    type Err = IdentityKindError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace(['_', '+'], "-");
        IdentityKind::ALL
            .into_iter()
            .find(|k| k.name() == wanted)
            .ok_or_else(|| IdentityKindError(s.to_string()))
    }
}

/// One user identity: its kind, the user name or token, and the passcode.
///
/// Made by the constructors to be sent, or read from an A-ASSOCIATE-RQ
/// ([`UserIdentity::of_request`]) on the acceptor side, where secrets are compared
/// with [`UserIdentity::secret_matches`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserIdentity {
    kind: IdentityKind,
    primary: String,
    passcode: Option<String>,
    positive_response_requested: bool,
}

impl UserIdentity {
    /// A user name alone.
    pub fn username(user: impl Into<String>) -> Self {
        UserIdentity {
            kind: IdentityKind::Username,
            primary: user.into(),
            passcode: None,
            positive_response_requested: false,
        }
    }

    /// A user name and its passcode.
    pub fn username_passcode(user: impl Into<String>, passcode: impl Into<String>) -> Self {
        UserIdentity {
            kind: IdentityKind::UsernamePasscode,
            primary: user.into(),
            passcode: Some(passcode.into()),
            positive_response_requested: false,
        }
    }

    /// An opaque token of one of the token kinds (Kerberos, SAML, JWT), or a user
    /// name for [`IdentityKind::Username`]. `None` for
    /// [`IdentityKind::UsernamePasscode`], which needs two values.
    pub fn token(kind: IdentityKind, token: impl Into<String>) -> Option<Self> {
        (kind != IdentityKind::UsernamePasscode).then(|| UserIdentity {
            kind,
            primary: token.into(),
            passcode: None,
            positive_response_requested: false,
        })
    }

    /// The identity as it arrived in an A-ASSOCIATE-RQ: kind code, primary and
    /// secondary fields (bytes that are not UTF-8 are kept lossily).
    pub fn from_fields(code: u8, primary: &[u8], secondary: &[u8]) -> Option<Self> {
        let kind = IdentityKind::from_code(code)?;
        Some(UserIdentity {
            kind,
            primary: String::from_utf8_lossy(primary).into_owned(),
            passcode: (kind == IdentityKind::UsernamePasscode)
                .then(|| String::from_utf8_lossy(secondary).into_owned()),
            positive_response_requested: false,
        })
    }

    /// The identity an A-ASSOCIATE-RQ carried, if any (of a known kind).
    pub fn of_request(request: &AssociationRQ) -> Option<UserIdentity> {
        request.user_variables.iter().find_map(|item| match item {
            UserVariableItem::UserIdentityItem(identity) => UserIdentity::from_ul(identity),
            _ => None,
        })
    }

    /// dicom-ul's user identity item (`None` for a kind this crate does not know).
    pub fn from_ul(identity: &dicom_ul::pdu::UserIdentity) -> Option<UserIdentity> {
        let code = match identity.identity_type() {
            UserIdentityType::Username => 1,
            UserIdentityType::UsernamePassword => 2,
            UserIdentityType::KerberosServiceTicket => 3,
            UserIdentityType::SamlAssertion => 4,
            UserIdentityType::Jwt => 5,
            _ => return None,
        };
        let mut received = UserIdentity::from_fields(
            code,
            &identity.primary_field(),
            &identity.secondary_field(),
        )?;
        received.positive_response_requested = identity.positive_response_requested();
        Some(received)
    }

    /// Whether the requestor asked for a positive response (the User Identity server
    /// response item in the A-ASSOCIATE-AC). Always `false` for an identity we send:
    /// dicom-ul 0.10.1 cannot ask.
    pub fn positive_response_requested(&self) -> bool {
        self.positive_response_requested
    }

    /// The secret: the passcode, or the token; empty for a user name alone. Never
    /// log it.
    pub fn secret(&self) -> &[u8] {
        match self.kind {
            IdentityKind::Username => &[],
            IdentityKind::UsernamePasscode => {
                self.passcode.as_deref().unwrap_or_default().as_bytes()
            }
            _ => self.primary.as_bytes(),
        }
    }

    /// Whether the secret is exactly `expected`, compared in a time that does not
    /// depend on where the two first differ.
    pub fn secret_matches(&self, expected: &[u8]) -> bool {
        let secret = self.secret();
        secret.len() == expected.len()
            && secret
                .iter()
                .zip(expected)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// The kind.
    pub fn kind(&self) -> IdentityKind {
        self.kind
    }

    /// The user name, for the two user name kinds.
    pub fn user_name(&self) -> Option<&str> {
        self.kind.has_user_name().then_some(self.primary.as_str())
    }

    /// The primary field as sent: the user name, or the token. A secret for the
    /// token kinds: never log it.
    pub fn primary_field(&self) -> &str {
        &self.primary
    }

    /// The passcode (user name and passcode kind only). A secret: never log it.
    pub fn passcode(&self) -> Option<&str> {
        self.passcode.as_deref()
    }

    /// What may be shown: the kind and the user name, no secret.
    pub fn summary(&self) -> IdentitySummary {
        IdentitySummary {
            kind: self.kind,
            user: self.user_name().map(str::to_string),
        }
    }
}

impl fmt::Debug for UserIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserIdentity")
            .field("kind", &self.kind)
            .field("user", &self.user_name())
            .field("secret", &"<withheld>")
            .field(
                "positive_response_requested",
                &self.positive_response_requested,
            )
            .finish()
    }
}

impl fmt::Display for UserIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.summary().fmt(f)
    }
}

/// What reports and logs say about an identity: its kind and user name, never a
/// passcode or token.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct IdentitySummary {
    /// The kind.
    pub kind: IdentityKind,
    /// The user name, for the user name kinds.
    pub user: Option<String>,
}

impl fmt::Display for IdentitySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.user {
            Some(user) => write!(f, "{} ({user})", self.kind),
            None => write!(f, "{} (token withheld)", self.kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_secret_is_ever_shown() {
        let identities = [
            UserIdentity::username_passcode("modality1", "hunter2"),
            UserIdentity::token(IdentityKind::Jwt, "hunter2").unwrap(),
            UserIdentity::token(IdentityKind::SamlAssertion, "hunter2").unwrap(),
            UserIdentity::token(IdentityKind::KerberosTicket, "hunter2").unwrap(),
        ];
        for identity in identities {
            let shown = format!(
                "{identity:?} {identity} {:?} {}",
                identity.summary(),
                serde_json::to_string(&identity.summary()).unwrap()
            );
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }

    #[test]
    fn the_user_name_is_shown_and_reported() {
        let identity = UserIdentity::username_passcode("modality1", "x");
        assert_eq!(identity.to_string(), "user name and passcode (modality1)");
        assert_eq!(
            serde_json::to_string(&identity.summary()).unwrap(),
            r#"{"kind":"username-passcode","user":"modality1"}"#
        );
    }

    #[test]
    fn secrets_compare_exactly() {
        let token = UserIdentity::token(IdentityKind::Jwt, "abc").unwrap();
        assert!(token.secret_matches(b"abc"));
        assert!(!token.secret_matches(b"abd"));
        assert!(!token.secret_matches(b"ab"));
        assert!(!token.secret_matches(b""));
        let user = UserIdentity::username_passcode("alice", "pw");
        assert!(user.secret_matches(b"pw"));
        assert!(!user.secret_matches(b"alice"));
        assert!(UserIdentity::username("alice").secret_matches(b""));
    }

    #[test]
    fn the_identity_of_a_request_is_read_from_dicom_ul_with_its_response_request() {
        let item = dicom_ul::pdu::UserIdentity::new(
            true,
            UserIdentityType::UsernamePassword,
            b"alice".to_vec(),
            b"pw".to_vec(),
        );
        let identity = UserIdentity::from_ul(&item).unwrap();
        assert_eq!(identity.kind(), IdentityKind::UsernamePasscode);
        assert_eq!(identity.user_name(), Some("alice"));
        assert!(identity.secret_matches(b"pw"));
        assert!(identity.positive_response_requested());
        assert!(!format!("{identity:?} {identity}").contains("pw\""));
    }

    #[test]
    fn kinds_parse_from_their_names_and_codes() {
        for kind in IdentityKind::ALL {
            assert_eq!(kind.name().parse::<IdentityKind>(), Ok(kind));
            assert_eq!(IdentityKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(
            "USERNAME_PASSCODE".parse(),
            Ok(IdentityKind::UsernamePasscode)
        );
        let error = "password".parse::<IdentityKind>().unwrap_err();
        assert!(error.to_string().contains("username-passcode"), "{error}");
        assert_eq!(IdentityKind::from_code(6), None);
    }

    #[test]
    fn a_received_identity_keeps_its_fields() {
        let identity = UserIdentity::from_fields(2, b"tech", b"pw").unwrap();
        assert_eq!(identity.user_name(), Some("tech"));
        assert_eq!(identity.passcode(), Some("pw"));
        let token = UserIdentity::from_fields(5, b"eyJ", b"").unwrap();
        assert_eq!(token.user_name(), None);
        assert_eq!(token.primary_field(), "eyJ");
        assert!(UserIdentity::from_fields(9, b"", b"").is_none());
        assert!(UserIdentity::token(IdentityKind::UsernamePasscode, "x").is_none());
    }
}
