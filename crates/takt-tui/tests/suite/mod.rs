mod fixtures;
mod render;
