//! Where a check-in happened against where the visit was: great-circle (haversine) distance,
//! and the rule that counts the device's reported accuracy in the visit's favour.

/// The Earth's mean radius (IUGG), in metres: haversine on it is within 0.6 % of the
/// ellipsoid, far below GPS error.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A point in WGS 84 degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub latitude: f64,
    pub longitude: f64,
}

/// The great-circle distance between two points, in metres.
pub fn distance_m(a: Point, b: Point) -> f64 {
    let (phi1, phi2) = (a.latitude.to_radians(), b.latitude.to_radians());
    let d_phi = phi2 - phi1;
    let d_lambda = (b.longitude - a.longitude).to_radians();
    let h = (d_phi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (d_lambda / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// Whether a capture `distance_m` away, accurate to `accuracy_m`, may have been within
/// `radius_m`: distance − accuracy ≤ radius.
pub fn within_radius(distance_m: f64, accuracy_m: f64, radius_m: f64) -> bool {
    distance_m - accuracy_m <= radius_m
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A point `metres` due north of `from`.
    fn north(from: Point, metres: f64) -> Point {
        Point {
            latitude: from.latitude + (metres / EARTH_RADIUS_M).to_degrees(),
            longitude: from.longitude,
        }
    }

    const SHOP: Point = Point {
        latitude: 31.2304,
        longitude: 121.4737,
    };

    #[test]
    fn distances_are_exact_to_the_metre() {
        assert!((distance_m(SHOP, north(SHOP, 150.0)) - 150.0).abs() < 0.5);
        assert!(distance_m(SHOP, SHOP).abs() < 1e-9);
        // Shanghai to Beijing, about 1,068 km.
        let beijing = Point {
            latitude: 39.9042,
            longitude: 116.4074,
        };
        let km = distance_m(SHOP, beijing) / 1000.0;
        assert!((1060.0..1075.0).contains(&km), "{km}");
    }

    #[test]
    fn accuracy_counts_in_the_visits_favour() {
        // The two cases: 150 m away with 100 m accuracy is within 200 m; 450 m with
        // 50 m is not.
        let near = distance_m(SHOP, north(SHOP, 150.0));
        assert!(within_radius(near, 100.0, 200.0));
        let far = distance_m(SHOP, north(SHOP, 450.0));
        assert!(!within_radius(far, 50.0, 200.0));
        assert!(within_radius(250.0, 50.0, 200.0));
        assert!(!within_radius(250.1, 50.0, 200.0));
    }
}
