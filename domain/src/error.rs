//! Business outcomes shared by every use case. Adapters map constraint violations to
//! `Duplicate`; controllers map each variant to their surface's code in exactly one place.

/// What a use case can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The entity does not exist, or exists in another tenant (the two are indistinguishable).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule was broken (slug, email in tenant, integration name ...).
    #[error("{0}")]
    Duplicate(String),
    /// The input broke a validation rule; `field` names the offending input path.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// No valid credentials were presented.
    #[error("authentication required")]
    Unauthenticated,
    /// Login failed; the same answer whether the email or the password was wrong.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// The actor's role does not allow this action.
    #[error("not allowed for this role")]
    Forbidden,
    /// Too many attempts; try again after `retry_after_secs`.
    #[error("too many attempts, retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The entity cannot be changed as asked while something depends on it (a home
    /// with devices cannot be deleted).
    #[error("{0}")]
    Conflict(String),
    /// A state machine refused the move.
    #[error("invalid transition: {0}")]
    InvalidTransition(String),
    /// An outside system the use case needed failed or refused (network, or the vendor's
    /// own error code). `message` is shown to the caller, so it never holds a secret.
    #[error("{vendor}: {message}")]
    Upstream { vendor: &'static str, message: String },
    /// Anything else: logged with its cause chain and answered opaquely.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

impl DomainError {
    /// Shorthand for a validation failure on `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), message: message.into() }
    }

    /// Shorthand for a failure of the outside system `vendor`.
    pub fn upstream(vendor: &'static str, message: impl Into<String>) -> Self {
        Self::Upstream { vendor, message: message.into() }
    }
}

pub type DomainResult<T> = Result<T, DomainError>;
