//! A map from symbol pairs to what a merge thread knows of them, built so that the memory a
//! lookup will touch can be asked for ahead of the lookup (`std`'s map cannot say where a key
//! lives): a merge updates thousands of scattered pairs, and waiting for each one in turn
//! was most of the merge loop's time.

use super::prefetch;

/// Pair key -> `V`: open addressing with linear probing over `u64` slots (the key hash's high
/// 32 bits, then the entry index + 1; 0 is empty), entries stored densely beside it. The
/// home slot of a key depends only on the stored bits, so the table grows and deletes
/// without hashing again.
pub(super) struct PairMap<V> {
    slots: Vec<u64>,
    entries: Vec<(u64, V)>,
}

impl<V> Default for PairMap<V> {
    fn default() -> Self {
        PairMap {
            slots: Vec::new(),
            entries: Vec::new(),
        }
    }
}

/// The slot tag of a key (splitmix64's finaliser, high half: the low bits of the key are
/// symbol ids, far from random).
fn tag(key: u64) -> u64 {
    let mut h = key;
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (h ^ (h >> 31)) >> 32
}

impl<V: Default> PairMap<V> {
    /// Number of keys.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The slot holding `key`, or the empty slot where it would go.
    fn find(&self, key: u64) -> Result<usize, usize> {
        let t = tag(key);
        let mask = self.mask();
        let mut i = t as usize & mask;
        loop {
            let s = self.slots[i];
            if s == 0 {
                return Err(i);
            }
            if s >> 32 == t && self.entries[(s & 0xFFFF_FFFF) as usize - 1].0 == key {
                return Ok(i);
            }
            i = (i + 1) & mask;
        }
    }

    fn entry_of(&self, slot: usize) -> usize {
        (self.slots[slot] & 0xFFFF_FFFF) as usize - 1
    }

    /// The value of `key`.
    pub(super) fn get(&self, key: u64) -> Option<&V> {
        if self.slots.is_empty() {
            return None;
        }
        let slot = self.find(key).ok()?;
        Some(&self.entries[self.entry_of(slot)].1)
    }

    /// The value of `key`, to change.
    pub(super) fn get_mut(&mut self, key: u64) -> Option<&mut V> {
        if self.slots.is_empty() {
            return None;
        }
        let slot = self.find(key).ok()?;
        let e = self.entry_of(slot);
        Some(&mut self.entries[e].1)
    }

    /// The value of `key`, added as `V::default()` when missing.
    pub(super) fn entry(&mut self, key: u64) -> &mut V {
        // At most 3/4 full: a slot is 8 bytes and a lookup reads a few on one cache line.
        if (self.entries.len() + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let e = match self.find(key) {
            Ok(slot) => self.entry_of(slot),
            Err(slot) => {
                let e = self.entries.len();
                assert!(
                    e + 1 < u32::MAX as usize,
                    "more than 4 G pairs in one thread"
                );
                self.entries.push((key, V::default()));
                self.slots[slot] = (tag(key) << 32) | (e as u64 + 1);
                e
            }
        };
        &mut self.entries[e].1
    }

    /// Removes `key`, returning its value.
    pub(super) fn remove(&mut self, key: u64) -> Option<V> {
        if self.slots.is_empty() {
            return None;
        }
        let slot = self.find(key).ok()?;
        let e = self.entry_of(slot);
        self.clear_slot(slot);
        let last = self.entries.len() - 1;
        if e != last {
            // The last entry moves into `e`: repoint its slot.
            let moved = self.entries[last].0;
            let at = self.find(moved).expect("every entry has a slot");
            self.slots[at] = (self.slots[at] & !0xFFFF_FFFF) | (e as u64 + 1);
        }
        Some(self.entries.swap_remove(e).1)
    }

    /// Empties `slot`, shifting back the slots after it that probed past it.
    fn clear_slot(&mut self, mut hole: usize) {
        let mask = self.mask();
        let mut j = (hole + 1) & mask;
        loop {
            let s = self.slots[j];
            if s == 0 {
                break;
            }
            let home = (s >> 32) as usize & mask;
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.slots[hole] = s;
                hole = j;
            }
            j = (j + 1) & mask;
        }
        self.slots[hole] = 0;
    }

    /// Doubles the slots.
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(64);
        self.reslot(size);
    }

    /// Rebuilds the slots, `size` of them, from the entries.
    fn reslot(&mut self, size: usize) {
        let mut slots = super::written_zeros(size);
        let mask = size - 1;
        for (e, &(key, _)) in self.entries.iter().enumerate() {
            let t = tag(key);
            let mut i = t as usize & mask;
            while slots[i] != 0 {
                i = (i + 1) & mask;
            }
            slots[i] = (t << 32) | (e as u64 + 1);
        }
        self.slots = slots;
    }

    /// Asks for the home slot of `key`; call [`Self::prefetch_entry`] a little later, then
    /// look it up.
    #[inline]
    pub(super) fn prefetch_slot(&self, key: u64) {
        if !self.slots.is_empty() {
            prefetch(&self.slots[tag(key) as usize & self.mask()]);
        }
    }

    /// Asks for the entry the home slot of `key` names, when that slot carries its tag.
    #[inline]
    pub(super) fn prefetch_entry(&self, key: u64) {
        if self.slots.is_empty() {
            return;
        }
        let t = tag(key);
        let s = self.slots[t as usize & self.mask()];
        if s != 0 && s >> 32 == t {
            if let Some(entry) = self.entries.get((s & 0xFFFF_FFFF) as usize - 1) {
                prefetch(entry);
            }
        }
    }

    /// Every key with its value.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &V)> + '_ {
        self.entries.iter().map(|(k, v)| (*k, v))
    }

    /// Every key with its value, to change.
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (u64, &mut V)> + '_ {
        self.entries.iter_mut().map(|(k, v)| (*k, v))
    }

    /// Keeps the entries for which `keep` is true.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(u64, &V) -> bool) {
        self.entries.retain(|(k, v)| keep(*k, v));
        let size = (self.entries.len() * 2).next_power_of_two().max(64);
        // (Half full at most after a rebuild, so it does not grow again right away.)
        self.reslot(size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn matches_a_hash_map_through_growth_removals_and_retain() {
        // Keys shaped like pair keys (two small ids), inserted, bumped and removed in a
        // pseudo-random order, so probes wrap and deletions shift runs of slots back.
        let mut map: PairMap<i64> = PairMap::default();
        let mut truth: HashMap<u64, i64> = HashMap::new();
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        for step in 0..200_000u64 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let key = ((1 + rng % 300) << 32) | (1 + (rng >> 20) % 300);
            if rng.is_multiple_of(3) {
                assert_eq!(map.remove(key), truth.remove(&key), "step {step}");
            } else {
                *map.entry(key) += 1;
                *truth.entry(key).or_default() += 1;
            }
            if step % 50_000 == 49_999 {
                map.retain(|_, v| v % 2 == 0);
                truth.retain(|_, v| *v % 2 == 0);
            }
            map.prefetch_slot(key);
            map.prefetch_entry(key);
        }
        assert_eq!(map.len(), truth.len());
        for (k, v) in &truth {
            assert_eq!(map.get(*k), Some(v));
        }
        let listed: HashMap<u64, i64> = map.iter().map(|(k, v)| (k, *v)).collect();
        assert_eq!(listed, truth);
        assert_eq!(map.get(7), None);
        assert_eq!(map.remove(7), None);
    }

    #[test]
    fn removing_from_a_run_of_keys_with_one_home_keeps_the_rest_reachable() {
        // Six keys with the same home slot in the smallest table fill slots home..home+5;
        // removing each in turn makes the keys after it shift back into the hole.
        let keys: Vec<u64> = (1u64..)
            .map(|k| (k << 32) | 1)
            .filter(|&k| tag(k) & 63 == 5)
            .take(6)
            .collect();
        for removed in 0..keys.len() {
            let mut map: PairMap<u64> = PairMap::default();
            for &k in &keys {
                *map.entry(k) = k;
            }
            assert_eq!(map.slots.len(), 64);
            assert_eq!(map.remove(keys[removed]), Some(keys[removed]));
            for (i, &k) in keys.iter().enumerate() {
                let expected = (i != removed).then_some(k);
                assert_eq!(
                    map.get(k).copied(),
                    expected,
                    "key {i} after removing {removed}"
                );
            }
        }
    }
}
