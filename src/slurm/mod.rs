//! A whole recipe on a Slurm cluster: every source pipeline as its chain of array jobs, then
//! tokenizer training, the two packing arrays and the plan-and-report job, chained with
//! `afterok`; a record of what was submitted; status per source, phase and task; resubmission
//! of only what is unfinished. One pipeline alone is submitted by [`crate::run::slurm`].

pub mod chain;
pub mod queue;
pub mod record;
pub mod sbatch;
pub mod settings;
pub mod steps;

pub use chain::{recipe_status, submit_recipe, RecipeSubmission, RecipeSubmitOptions};
pub use settings::{Resources, SlurmSettings};
pub use steps::{run_recipe_step, RecipeStep};
