//! The encoder's word cache: the ids of recently encoded words, direct-mapped (one 64-byte
//! slot per word: its bytes and up to seven ids), so a lookup touches one cache line. A word
//! that collides with another replaces it; a miss only means encoding the word again.

use xxhash_rust::xxh3::xxh3_64;

/// Words longer than this (in bytes, with their prefix) are not cached.
const MAX_WORD: usize = 31;
/// Words of more pieces than this are not cached.
const MAX_IDS: usize = 7;
/// Number of slots (64 bytes each).
const SLOTS: usize = 1 << 17;

/// One word and its ids; an all-zero slot (length byte 0) holds nothing.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Slot {
    word: [u8; MAX_WORD + 1],
    ids: [u32; MAX_IDS],
    n: u32,
}

const EMPTY: Slot = Slot {
    word: [0; MAX_WORD + 1],
    ids: [0; MAX_IDS],
    n: 0,
};

/// A word as the cache knows it: its bytes zero padded with the length last, and its slot.
pub(crate) struct WordKey {
    word: [u8; MAX_WORD + 1],
    slot: usize,
}

impl WordKey {
    /// The key of `prefix` followed by `word`; None when empty or longer than the cache takes.
    #[inline]
    pub(crate) fn new(prefix: &[u8], word: &[u8]) -> Option<Self> {
        let len = prefix.len() + word.len();
        if len == 0 || len > MAX_WORD {
            return None;
        }
        let mut bytes = [0u8; MAX_WORD + 1];
        bytes[..prefix.len()].copy_from_slice(prefix);
        bytes[prefix.len()..len].copy_from_slice(word);
        bytes[MAX_WORD] = len as u8;
        let slot = xxh3_64(&bytes) as usize & (SLOTS - 1);
        Some(WordKey { word: bytes, slot })
    }
}

/// Ids of recently encoded words (no memory until the first word is stored).
#[derive(Default)]
pub(crate) struct WordCache {
    slots: Vec<Slot>,
}

impl WordCache {
    /// The ids stored for `key`, if it is the word in its slot.
    #[inline]
    pub(crate) fn get(&self, key: &WordKey) -> Option<&[u32]> {
        let slot = self.slots.get(key.slot)?;
        (slot.word == key.word).then(|| &slot.ids[..slot.n as usize])
    }

    /// Stores the ids of `key` (nothing when there are too many), replacing its slot's word.
    #[inline]
    pub(crate) fn put(&mut self, key: &WordKey, ids: &[u32]) {
        if ids.len() > MAX_IDS {
            return;
        }
        if self.slots.is_empty() {
            self.slots = vec![EMPTY; SLOTS];
        }
        let slot = &mut self.slots[key.slot];
        slot.word = key.word;
        slot.ids[..ids.len()].copy_from_slice(ids);
        slot.n = ids.len() as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_replaces_and_refuses_what_does_not_fit() {
        let mut cache = WordCache::default();
        let a = WordKey::new(b" ", b"cat").unwrap();
        assert!(cache.get(&a).is_none());
        cache.put(&a, &[1, 2]);
        assert_eq!(cache.get(&a), Some(&[1, 2][..]));
        // Same bytes split differently are the same word; a longer word is another.
        assert_eq!(
            cache.get(&WordKey::new(b"", b" cat").unwrap()),
            Some(&[1, 2][..])
        );
        assert!(cache.get(&WordKey::new(b" ", b"cat\0").unwrap()).is_none());
        cache.put(&a, &[7]);
        assert_eq!(cache.get(&a), Some(&[7][..]));
        let b = WordKey::new(b"", b"dog").unwrap();
        cache.put(&b, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(cache.get(&b).is_none());
        assert!(WordKey::new(b"", b"").is_none());
        assert!(WordKey::new(b" ", &[b'x'; MAX_WORD]).is_none());
        assert!(WordKey::new(b"", &[b'x'; MAX_WORD]).is_some());
    }
}
