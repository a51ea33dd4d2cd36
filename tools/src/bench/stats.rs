//! Order statistics and the delivery-order hash.

/// FNV-1a, 64 bits: the delivery-order hash (as the corosync harness's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderHash(u64);

impl Default for OrderHash {
    fn default() -> OrderHash {
        OrderHash(0xcbf2_9ce4_8422_2325)
    }
}

impl OrderHash {
    /// Mixes `bytes` in.
    pub fn add(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash so far.
    pub fn value(self) -> u64 {
        self.0
    }
}

/// The `p`-quantile (0..=1) of sorted `v` as the corosync harness takes it:
/// the element at rank ceil(p * n), ranks from 1. `None` when empty.
pub fn quantile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    // Truncation is intended: a rank between 1 and n.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
    Some(sorted[rank - 1])
}

/// The median of `v` (the mean of the two middle values for an even
/// count), ignoring NaN; `None` when nothing is left.
pub fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_take_the_ceiling_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), Some(50));
        assert_eq!(quantile(&v, 0.99), Some(99));
        assert_eq!(quantile(&v, 1.0), Some(100));
        assert_eq!(quantile(&v, 0.0), Some(1));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn medians_skip_nan() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, f64::NAN, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN]), None);
    }

    #[test]
    fn order_hash_depends_on_order() {
        let mut a = OrderHash::default();
        let mut b = OrderHash::default();
        a.add(b"xy");
        b.add(b"yx");
        assert_ne!(a.value(), b.value());
        let mut c = OrderHash::default();
        c.add(b"x");
        c.add(b"y");
        assert_eq!(a, c);
    }
}
