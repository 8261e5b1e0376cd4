#include <vector>

namespace geo {

/// A point in the plane.
class Point {
public:
    /// Distance from the origin.
    double norm() const { return x * x + y * y; }
    double x, y;
};

/** Adds two points. */
Point add(const Point &a, const Point &b) {
    return Point{a.x + b.x, a.y + b.y};
}

}  // namespace geo
