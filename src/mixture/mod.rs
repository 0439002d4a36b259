//! The recipe file and the mixture planner (`datamill plan`).

pub mod config;
pub mod plan;

pub use config::{MixtureSettings, RecipeConfig, SourceEntry};
pub use plan::{plan, recipe_supplies, MixturePlan, SourcePlan, SourceSupply};
