//! A bounded hash table whose entries are also kept in time order.
//!
//! Both of the detector's tables need the same three things: find an entry by flow in O(1),
//! drop the oldest entries as time passes, and never grow past a fixed number of entries. The
//! delay queue orders entries by their first SYN (T is the same for every entry, so insertion
//! order *is* deadline order); the DarkFlow table orders them by their last packet and moves an
//! entry to the back each time it sees one. Both are the same structure: a slab of slots, a
//! doubly linked list through the slab in time order, and a `hashbrown::HashTable` of 32-bit
//! slot indices (5 bytes per bucket: the index and hashbrown's control byte), so a key is
//! stored once.
//!
//! Timestamps must be pushed in non-decreasing order (the detector clamps them); the list is
//! then sorted by construction and expiry only ever looks at its head.

use core::hash::{BuildHasher, Hash};

use hashbrown::HashTable;

const NIL: u32 = u32::MAX;

/// One entry: key, time-ordering timestamp, list links and the caller's value.
#[derive(Clone, Debug)]
struct Slot<K, V> {
    key: K,
    time: u64,
    prev: u32,
    next: u32,
    value: V,
}

/// Why an insert did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    /// The table holds its configured maximum number of entries.
    Capacity,
    /// The allocator refused to grow the table.
    Memory,
}

/// A bounded map from `K` to `V`, iterable from its oldest entry.
#[derive(Debug)]
pub struct TimedTable<K, V, S> {
    slots: Vec<Slot<K, V>>,
    index: HashTable<u32>,
    free: u32,
    head: u32,
    tail: u32,
    len: usize,
    capacity: usize,
    hasher: S,
}

impl<K: Hash + Eq + Copy, V, S: BuildHasher> TimedTable<K, V, S> {
    /// An empty table that will hold at most `capacity` entries (at most `u32::MAX - 1`).
    pub fn new(capacity: usize, hasher: S) -> Self {
        Self {
            slots: Vec::new(),
            index: HashTable::new(),
            free: NIL,
            head: NIL,
            tail: NIL,
            len: 0,
            capacity: capacity.min(NIL as usize - 1),
            hasher,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The configured maximum number of entries.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes one entry costs when the table is full: its slot plus its share of the index
    /// (hashbrown keeps at most 7/8 of its power-of-two buckets full; each bucket is a `u32`
    /// and a control byte).
    pub fn bytes_per_entry() -> f64 {
        core::mem::size_of::<Slot<K, V>>() as f64 + 5.0 * 8.0 / 7.0
    }

    /// Upper bound on the heap bytes of a full table (slab doubling and index rounding
    /// included).
    pub fn max_bytes(&self) -> u64 {
        let slots =
            self.capacity.next_power_of_two() as u64 * core::mem::size_of::<Slot<K, V>>() as u64;
        let buckets = (self.capacity.saturating_mul(8) / 7).next_power_of_two() as u64;
        slots + buckets * 5 + 16
    }

    /// Heap bytes in use now.
    pub fn heap_bytes(&self) -> u64 {
        (self.slots.capacity() * core::mem::size_of::<Slot<K, V>>()) as u64
            + self.index.capacity() as u64 * 5
    }

    fn hash(&self, key: &K) -> u64 {
        self.hasher.hash_one(key)
    }

    fn find(&self, key: &K) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(self.hash(key), |&i| slots[i as usize].key == *key)
            .copied()
    }

    /// The value stored for `key`.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = self.find(key)?;
        Some(&mut self.slots[i as usize].value)
    }

    /// The value stored for `key` and the entry's time.
    pub fn get_mut_with_time(&mut self, key: &K) -> Option<(&mut V, u64)> {
        let i = self.find(key)?;
        let s = &mut self.slots[i as usize];
        Some((&mut s.value, s.time))
    }

    /// The value stored for `key`, moving the entry to the back of the list with
    /// `time` as its new time.
    pub fn touch(&mut self, key: &K, time: u64) -> Option<&mut V> {
        let i = self.find(key)?;
        self.unlink(i);
        self.slots[i as usize].time = time;
        self.link_back(i);
        Some(&mut self.slots[i as usize].value)
    }

    /// Inserts `key` (which must not be present) at the back of the list.
    pub fn insert(&mut self, key: K, time: u64, value: V) -> Result<&mut V, Full> {
        if self.len >= self.capacity {
            return Err(Full::Capacity);
        }
        let i = if self.free != NIL {
            let i = self.free;
            self.free = self.slots[i as usize].next;
            let slot = &mut self.slots[i as usize];
            slot.key = key;
            slot.time = time;
            slot.value = value;
            i
        } else {
            if self.slots.len() == self.slots.capacity() {
                let want = self
                    .slots
                    .len()
                    .max(1024)
                    .min(self.capacity - self.slots.len());
                self.slots
                    .try_reserve_exact(want)
                    .map_err(|_| Full::Memory)?;
            }
            self.slots.push(Slot {
                key,
                time,
                prev: NIL,
                next: NIL,
                value,
            });
            (self.slots.len() - 1) as u32
        };
        if self.index.len() == self.index.capacity() {
            let slots = &self.slots;
            let hasher = &self.hasher;
            let grown = self
                .index
                .try_reserve(1, |&j| hasher.hash_one(slots[j as usize].key));
            if grown.is_err() {
                // Give the slot back; nothing else changed.
                self.slots[i as usize].next = self.free;
                self.free = i;
                return Err(Full::Memory);
            }
        }
        let h = self.hash(&key);
        let slots = &self.slots;
        let hasher = &self.hasher;
        self.index
            .insert_unique(h, i, |&j| hasher.hash_one(slots[j as usize].key));
        self.link_back(i);
        self.len += 1;
        Ok(&mut self.slots[i as usize].value)
    }

    /// Removes `key`, returning its time and value.
    pub fn remove(&mut self, key: &K) -> Option<(u64, V)>
    where
        V: Clone,
    {
        let h = self.hash(key);
        let slots = &self.slots;
        let entry = self
            .index
            .find_entry(h, |&i| slots[i as usize].key == *key)
            .ok()?;
        let (i, _) = entry.remove();
        Some(self.release(i))
    }

    /// The oldest entry's key and time.
    pub fn oldest(&self) -> Option<(&K, u64)> {
        (self.head != NIL).then(|| {
            let s = &self.slots[self.head as usize];
            (&s.key, s.time)
        })
    }

    /// The oldest entry's time.
    pub fn oldest_time(&self) -> Option<u64> {
        self.oldest().map(|(_, t)| t)
    }

    /// Removes and returns the oldest entry if its time plus `age` is before `now`.
    pub fn pop_older(&mut self, age: u64, now: u64) -> Option<(K, u64, V)>
    where
        V: Clone,
    {
        if self.oldest_time()?.saturating_add(age) >= now {
            return None;
        }
        self.pop_oldest()
    }

    /// Removes and returns the oldest entry.
    pub fn pop_oldest(&mut self) -> Option<(K, u64, V)>
    where
        V: Clone,
    {
        if self.head == NIL {
            return None;
        }
        let i = self.head;
        let key = self.slots[i as usize].key;
        let h = self.hash(&key);
        if let Ok(entry) = self.index.find_entry(h, |&j| j == i) {
            entry.remove();
        }
        let (time, value) = self.release(i);
        Some((key, time, value))
    }

    fn release(&mut self, i: u32) -> (u64, V)
    where
        V: Clone,
    {
        self.unlink(i);
        self.len -= 1;
        let slot = &mut self.slots[i as usize];
        slot.next = self.free;
        self.free = i;
        (slot.time, slot.value.clone())
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let s = &self.slots[i as usize];
            (s.prev, s.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
    }

    fn link_back(&mut self, i: u32) {
        let tail = self.tail;
        {
            let s = &mut self.slots[i as usize];
            s.prev = tail;
            s.next = NIL;
        }
        if tail == NIL {
            self.head = i;
        } else {
            self.slots[tail as usize].next = i;
        }
        self.tail = i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foldhash::fast::FixedState;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    type T = TimedTable<u32, u32, FixedState>;

    #[test]
    fn insert_find_remove_and_order() {
        let mut t = T::new(3, FixedState::with_seed(1));
        t.insert(1, 10, 100).unwrap();
        t.insert(2, 20, 200).unwrap();
        t.insert(3, 30, 300).unwrap();
        assert_eq!(t.insert(4, 40, 400), Err(Full::Capacity));
        assert_eq!(t.oldest(), Some((&1, 10)));
        t.touch(&1, 35).unwrap();
        assert_eq!(t.oldest(), Some((&2, 20)));
        assert_eq!(t.remove(&2), Some((20, 200)));
        assert_eq!(t.pop_oldest(), Some((3, 30, 300)));
        assert_eq!(t.pop_oldest(), Some((1, 35, 100)));
        assert!(t.is_empty());
        t.insert(4, 50, 400).unwrap();
        assert_eq!(*t.get_mut(&4).unwrap(), 400);
        assert_eq!(t.get_mut(&1), None);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8),
        Touch(u8),
        Remove(u8),
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            any::<u8>().prop_map(Op::Insert),
            any::<u8>().prop_map(Op::Touch),
            any::<u8>().prop_map(Op::Remove),
            Just(Op::Pop),
        ]
    }

    proptest! {
        /// The table behaves as a map plus an ordered list, checked against a model.
        #[test]
        fn matches_a_model(ops in proptest::collection::vec(op(), 0..400)) {
            let mut t = T::new(64, FixedState::with_seed(7));
            // model: key -> (time, seq), ordered by (time, seq)
            let mut model: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
            let mut now = 0u64;
            for op in ops {
                now += 1;
                match op {
                    Op::Insert(k) => {
                        let k = u32::from(k);
                        if model.contains_key(&k) { continue; }
                        let r = t.insert(k, now, k * 3);
                        if model.len() >= 64 {
                            prop_assert_eq!(r, Err(Full::Capacity));
                        } else {
                            prop_assert!(r.is_ok());
                            model.insert(k, (now, now));
                        }
                    }
                    Op::Touch(k) => {
                        let k = u32::from(k);
                        let got = t.touch(&k, now).map(|v| *v);
                        prop_assert_eq!(got, model.get(&k).map(|_| k * 3));
                        if let Some(e) = model.get_mut(&k) { *e = (now, now); }
                    }
                    Op::Remove(k) => {
                        let k = u32::from(k);
                        let got = t.remove(&k);
                        prop_assert_eq!(got, model.remove(&k).map(|(time, _)| (time, k * 3)));
                    }
                    Op::Pop => {
                        let want = model.iter().min_by_key(|(_, v)| **v).map(|(k, v)| (*k, v.0));
                        let got = t.pop_oldest().map(|(k, time, v)| { assert_eq!(v, k * 3); (k, time) });
                        prop_assert_eq!(got, want);
                        if let Some((k, _)) = want { model.remove(&k); }
                    }
                }
                prop_assert_eq!(t.len(), model.len());
            }
        }
    }
}
