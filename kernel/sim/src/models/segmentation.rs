//! stub
use crate::Model; use crate::args::{ArgError, Args}; use crate::exercise::Exercise;
/// x
pub const MODEL: Model = Model { name: "segmentation", summary: "", options: "", build_fn: exercise };
fn exercise(_a: &Args) -> Result<Exercise, ArgError> { Ok(Exercise::default()) }
