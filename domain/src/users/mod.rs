//! Users and authentication: platform admins (no tenant) and a tenant's users.

mod models;
mod ports;
mod service;

pub use models::{Email, NewUser, User, UserChange, UserCredentials};
pub use ports::UserRepo;
pub use service::{AuthService, UserService};
