//! The handle database: C handles to library objects.
//!
//! A handle is 64 bits: the high 32 bits a random non-zero check value
//! chosen when the handle is issued, the low 32 bits the slot it lives in
//! (as openais's `saHandle` did). A handle whose slot is free, holds
//! another object, or lies beyond the table — a stale, finalized or
//! garbage handle — is not found, and the C layer answers
//! `SA_AIS_ERR_BAD_HANDLE`. Since the check value is never 0, no handle is
//! `SA_HANDLE_INVALID` (0).
//!
//! Objects are kept as `Arc`s: a lookup clones the `Arc` and releases the
//! table's lock at once, so a call on one handle never waits for a call on
//! another, and an object removed (finalized) while another thread still
//! uses it lives until that thread is done with it.
//!
//! The table holds at most [`MAX_HANDLES`] objects; more is
//! `SA_AIS_ERR_NO_RESOURCES`.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

/// Most live handles in one table.
pub const MAX_HANDLES: usize = 65_536;

/// A thread-safe table of objects of type `T` addressed by 64-bit handles.
#[derive(Debug)]
pub struct HandleTable<T> {
    inner: Mutex<Slots<T>>,
}

#[derive(Debug)]
struct Slots<T> {
    entries: Vec<Entry<T>>,
    /// Indexes of free entries, reused last-freed first.
    free: Vec<u32>,
    /// Handles issued so far (feeds the check values).
    issued: u64,
}

#[derive(Debug)]
struct Entry<T> {
    check: u32,
    value: Option<Arc<T>>,
}

/// The table is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableFull;

impl<T> HandleTable<T> {
    /// An empty table (usable in a `static`).
    pub const fn new() -> HandleTable<T> {
        HandleTable {
            inner: Mutex::new(Slots {
                entries: Vec::new(),
                free: Vec::new(),
                issued: 0,
            }),
        }
    }

    /// Stores `value` and returns its new handle.
    ///
    /// # Errors
    /// [`TableFull`] when [`MAX_HANDLES`] objects are live.
    pub fn insert(&self, value: Arc<T>) -> Result<u64, TableFull> {
        let mut slots = self.lock();
        slots.issued = slots.issued.wrapping_add(1);
        let check = check_value(slots.issued);
        let index = match slots.free.pop() {
            Some(index) => index,
            None if slots.entries.len() < MAX_HANDLES => {
                slots.entries.push(Entry {
                    check: 0,
                    value: None,
                });
                // Cannot truncate: entries.len() <= MAX_HANDLES < 2^32.
                (slots.entries.len() - 1) as u32
            }
            None => return Err(TableFull),
        };
        let entry = &mut slots.entries[index as usize];
        entry.check = check;
        entry.value = Some(value);
        Ok((u64::from(check) << 32) | u64::from(index))
    }

    /// The object behind `handle`, if it is live.
    pub fn get(&self, handle: u64) -> Option<Arc<T>> {
        let slots = self.lock();
        let (check, index) = split(handle)?;
        let entry = slots.entries.get(index)?;
        if entry.check != check {
            return None;
        }
        entry.value.clone()
    }

    /// Removes `handle`'s object and returns it; the handle is stale from
    /// now on.
    pub fn remove(&self, handle: u64) -> Option<Arc<T>> {
        let mut slots = self.lock();
        let (check, index) = split(handle)?;
        let entry = slots.entries.get_mut(index)?;
        if entry.check != check {
            return None;
        }
        let value = entry.value.take()?;
        entry.check = 0;
        // Cannot truncate: index < entries.len() <= MAX_HANDLES.
        slots.free.push(index as u32);
        Some(value)
    }

    /// Live handles.
    pub fn len(&self) -> usize {
        let slots = self.lock();
        slots.entries.len() - slots.free.len()
    }

    /// Whether no handle is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Slots<T>> {
        // No code panics while holding this lock (it only moves `Arc`s and
        // integers), so a poisoned lock still holds a consistent table.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T> Default for HandleTable<T> {
    fn default() -> HandleTable<T> {
        HandleTable::new()
    }
}

/// The check value and slot index of `handle`; `None` for a check value of
/// 0, which no live handle has.
fn split(handle: u64) -> Option<(u32, usize)> {
    let check = (handle >> 32) as u32;
    let index = (handle & 0xFFFF_FFFF) as usize;
    (check != 0).then_some((check, index))
}

/// A random non-zero 32-bit value. `RandomState` keys come from the OS's
/// randomness (once per thread, then varied per instance), so check values
/// are not guessable from one another.
fn check_value(salt: u64) -> u32 {
    let h = RandomState::new().hash_one(salt);
    let v = (h ^ (h >> 32)) as u32;
    if v == 0 {
        1
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_find_their_object_until_removed() {
        let t = HandleTable::new();
        let a = t.insert(Arc::new("a")).unwrap();
        let b = t.insert(Arc::new("b")).unwrap();
        assert_ne!(a, b);
        assert_ne!(a >> 32, 0, "the check value is never 0");
        assert_eq!(t.get(a).as_deref(), Some(&"a"));
        assert_eq!(t.get(b).as_deref(), Some(&"b"));
        assert_eq!(t.len(), 2);
        assert_eq!(t.remove(a).as_deref(), Some(&"a"));
        assert!(t.get(a).is_none(), "stale after remove");
        assert!(t.remove(a).is_none(), "removing twice fails");
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_reused_slot_does_not_revive_a_stale_handle() {
        let t = HandleTable::new();
        let old = t.insert(Arc::new(1)).unwrap();
        t.remove(old).unwrap();
        let new = t.insert(Arc::new(2)).unwrap();
        assert_eq!(old & 0xFFFF_FFFF, new & 0xFFFF_FFFF, "same slot");
        assert_ne!(old, new);
        assert!(t.get(old).is_none());
        assert_eq!(t.get(new).as_deref(), Some(&2));
    }

    #[test]
    fn garbage_handles_are_not_found() {
        let t = HandleTable::new();
        let h = t.insert(Arc::new(())).unwrap();
        for garbage in [0, 1, u64::MAX, h & 0xFFFF_FFFF, h ^ (1 << 40), h + 1] {
            assert!(t.get(garbage).is_none(), "{garbage:#x}");
            assert!(t.remove(garbage).is_none(), "{garbage:#x}");
        }
        assert!(t.get(h).is_some());
    }

    #[test]
    fn the_table_is_bounded() {
        let t = HandleTable::new();
        let handles: Vec<u64> = (0..MAX_HANDLES)
            .map(|_| t.insert(Arc::new(())).unwrap())
            .collect();
        assert_eq!(t.insert(Arc::new(())), Err(TableFull));
        t.remove(handles[7]).unwrap();
        assert!(t.insert(Arc::new(())).is_ok(), "a freed slot is reused");
    }

    #[test]
    fn check_values_differ() {
        let t = HandleTable::new();
        let checks: std::collections::BTreeSet<u64> = (0..64)
            .map(|_| t.insert(Arc::new(())).unwrap() >> 32)
            .collect();
        assert!(checks.len() > 60, "{} distinct of 64", checks.len());
    }
}
