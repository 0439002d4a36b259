//! A deterministic reservoir sample: keeps a uniform random sample of at most `cap` items of a
//! stream of unknown length in `cap` slots (Vitter's algorithm R), drawing from a hash of a fixed
//! seed and the item's position, so the same stream and seed always give the same sample.

/// At most `cap` items of a stream, each kept with the same probability.
#[derive(Debug, Clone)]
pub struct Reservoir<T> {
    cap: usize,
    seed: u64,
    seen: u64,
    /// `(position in the stream, item)`.
    items: Vec<(u64, T)>,
}

impl<T> Reservoir<T> {
    /// An empty reservoir of `cap` slots drawing with `seed`.
    pub fn new(cap: usize, seed: u64) -> Self {
        Reservoir {
            cap,
            seed,
            seen: 0,
            items: Vec::new(),
        }
    }

    /// Offers the next item of the stream; `make` is called only if the item is kept.
    /// Returns whether it was kept.
    pub fn offer_with(&mut self, make: impl FnOnce() -> T) -> bool {
        let pos = self.seen;
        self.seen += 1;
        if self.items.len() < self.cap {
            self.items.push((pos, make()));
            return true;
        }
        // Uniform in 0..=pos: the item replaces a slot with probability cap / (pos + 1).
        let draw = xxhash_rust::xxh3::xxh3_64_with_seed(&pos.to_le_bytes(), self.seed) % (pos + 1);
        match self.items.get_mut(draw as usize) {
            Some(slot) => {
                *slot = (pos, make());
                true
            }
            None => false,
        }
    }

    /// Items offered so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Items held (at most `cap`).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no item is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The sample in stream order.
    pub fn into_stream_order(mut self) -> Vec<T> {
        self.items.sort_unstable_by_key(|(pos, _)| *pos);
        self.items.into_iter().map(|(_, item)| item).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: u64, cap: usize, seed: u64) -> Vec<u64> {
        let mut r = Reservoir::new(cap, seed);
        for i in 0..n {
            r.offer_with(|| i);
        }
        assert_eq!(r.seen(), n);
        r.into_stream_order()
    }

    #[test]
    fn short_streams_are_kept_whole() {
        assert_eq!(sample(5, 10, 1), [0, 1, 2, 3, 4]);
    }

    #[test]
    fn the_cap_holds_and_the_sample_is_deterministic_and_spread() {
        let a = sample(100_000, 1000, 7);
        assert_eq!(a.len(), 1000);
        assert_eq!(a, sample(100_000, 1000, 7));
        assert_ne!(a, sample(100_000, 1000, 8));
        assert!(
            a.windows(2).all(|w| w[0] < w[1]),
            "stream order, no repeats"
        );
        // Uniform: about a tenth of the sample from each tenth of the stream.
        for tenth in 0..10 {
            let n = a.iter().filter(|&&i| i / 10_000 == tenth).count();
            assert!((60..=140).contains(&n), "tenth {tenth}: {n}");
        }
    }

    #[test]
    fn rejected_items_are_never_built() {
        let mut r = Reservoir::new(2, 0);
        let mut built = 0;
        for _ in 0..1000 {
            r.offer_with(|| {
                built += 1;
            });
        }
        assert!(built < 100, "{built}");
        assert_eq!(r.len(), 2);
    }
}
