//! Who is asking: tokens verified ([`verify`]), the identity of the request being served
//! ([`identity`]), and the rule a field or type sets (`@auth`, [`AuthRule`]).
//!
//! Below the plan in the pipeline: the plan holds [`AuthRule`]s and checks JWKS files with
//! [`verify`] at load time; the executors check rules against the request's [`identity`]. It
//! knows nothing of GraphQL execution or backends.

pub mod identity;
pub mod verify;

/// `@auth(scopes: [...])`: the field needs an authenticated request with these scopes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthRule {
    pub scopes: Vec<String>,
}
