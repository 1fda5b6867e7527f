//! THE mapping of domain errors to GraphQL `extensions.code` (and HTTP statuses).
//! Internal errors are logged with their cause chain and answered opaquely.

use async_graphql::ErrorExtensions;
use domain::DomainError;

/// The codes of `CONTRACT.md`.
pub mod code {
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    pub const CONFLICT: &str = "CONFLICT";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    pub const UPSTREAM_FAILED: &str = "UPSTREAM_FAILED";
    pub const INTERNAL: &str = "INTERNAL";
}

/// Converts a domain error into a GraphQL error carrying `extensions.code`.
pub fn gql(e: DomainError) -> async_graphql::Error {
    let (code, message) = match &e {
        DomainError::NotFound(_) => (code::NOT_FOUND, e.to_string()),
        DomainError::Duplicate(_) => (code::CONFLICT, e.to_string()),
        DomainError::Invalid { .. } => (code::BAD_USER_INPUT, e.to_string()),
        DomainError::Unauthenticated | DomainError::InvalidCredentials => (code::UNAUTHENTICATED, e.to_string()),
        DomainError::Forbidden => (code::FORBIDDEN, e.to_string()),
        DomainError::RateLimited { .. } => (code::RATE_LIMITED, e.to_string()),
        DomainError::InvalidTransition(_) => (code::CONFLICT, e.to_string()),
        DomainError::Conflict(_) => (code::CONFLICT, e.to_string()),
        DomainError::Upstream { vendor, message } => {
            tracing::warn!(vendor, message = message.as_str(), "upstream failure");
            (code::UPSTREAM_FAILED, e.to_string())
        }
        DomainError::Unknown(cause) => {
            tracing::error!(error = format!("{cause:#}"), "internal error");
            (code::INTERNAL, "internal error".to_owned())
        }
    };
    async_graphql::Error::new(message).extend_with(|_, ext| {
        ext.set("code", code);
        match &e {
            DomainError::Invalid { field, .. } => ext.set("field", field.as_str()),
            DomainError::RateLimited { retry_after_secs } => ext.set("retryAfterSeconds", *retry_after_secs),
            _ => {}
        }
    })
}

/// `?`-friendly conversion for resolvers.
pub trait GqlResultExt<T> {
    /// # Errors
    /// The domain error, mapped by [`gql`].
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> GqlResultExt<T> for Result<T, DomainError> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(gql)
    }
}

/// A `BAD_USER_INPUT` error on `field`.
pub fn bad_input(field: &str, message: &str) -> async_graphql::Error {
    gql(DomainError::invalid(field, message))
}

/// Gives every error that left the executor without a code (parse and validation errors,
/// depth and complexity limits, bad scalars) `BAD_USER_INPUT`.
pub fn ensure_codes(resp: &mut async_graphql::Response) {
    for err in &mut resp.errors {
        let ext = err.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", code::BAD_USER_INPUT);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_failure_answers_upstream_failed_with_its_reason() {
        let e = gql(DomainError::upstream("Acme", "ErrNo 4001: no such device"));
        assert_eq!(e.message, "Acme: ErrNo 4001: no such device");
        let code = e.extensions.as_ref().and_then(|x| x.get("code")).cloned();
        assert_eq!(code, Some(async_graphql::Value::from(code::UPSTREAM_FAILED)));
    }
}
