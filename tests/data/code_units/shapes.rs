use std::fmt;

/// Anything with an area.
pub trait Shape {
    /// The shape's area.
    fn area(&self) -> f64;
}

/// A circle by its radius.
#[derive(Debug, Clone)]
pub struct Circle {
    pub radius: f64,
}

impl Shape for Circle {
    /// Pi times the radius squared.
    fn area(&self) -> f64 {
        std::f64::consts::PI * self.radius * self.radius
    }
}

/// Sums the areas of many shapes.
pub fn total_area(shapes: &[Box<dyn Shape>]) -> f64 {
    shapes.iter().map(|s| s.area()).sum()
}
