pub mod pictures;
pub mod screen;
