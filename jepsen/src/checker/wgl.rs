//! The Wing–Gong–Lowe linearizability search, generic over a sequential [`Model`].
//!
//! Our implementation of Wing & Gong's algorithm with Lowe's memoization ("Testing for
//! linearizability", 2017; the design porcupine follows). Completed operations become call
//! and return events in one time-ordered list. The search walks the list from the front,
//! tentatively linearizing a call whenever the model accepts it next, lifting its two events
//! out of the list and starting again from the front; when it reaches the return of an
//! operation it has not linearized, that prefix is a dead end and it backtracks. A cache of
//! configurations (set of linearized operations, model state) already explored prunes the
//! search to the configurations actually reachable.
//!
//! Three refinements keep refutations (which must exhaust every configuration) affordable
//! on histories of thousands of operations with ~10 concurrent clients:
//! - Read-only operations ([`Model::is_read_only`]) are linearized as soon as they can be,
//!   with no branch on "later": moving such an operation earlier, to a point where it is
//!   already minimal in real time and accepted, changes no other step.
//! - Operations that never returned (`Info`) are kept apart and tried only when the search
//!   is stuck at a return: they may take effect at any time after their invocation, or
//!   never, so they are placed only when something needs them.
//! - Dominance: a configuration equal to an explored one except for linearizing more
//!   never-returned operations is pruned, since the explored one could have left those out.
//!   Equal never-returned operations are interchangeable once invoked, so only the first
//!   pending one is tried. And a never-returned blind write ([`Model::is_blind_write`]) is not
//!   placed directly after another never-returned operation, which it would make pointless.
//!
//! The tests check every refinement against plain exhaustive search on small random
//! histories.
//!
//! Guarantees: `Linearizable` carries a witness order; `NotLinearizable` means every
//! configuration was exhausted, explained by the deepest prefix reached; after `max_steps`
//! steps the search stops with `Exhausted`, never running unbounded. Memory grows with the
//! steps taken (at most one cache entry per step).

use std::collections::HashMap;
use std::hash::Hash;

use crate::history::Tick;

/// A sequential specification the search checks against.
pub trait Model {
    /// Everything the next step depends on. Part of the memoization key.
    type State: Clone + Eq + Hash;
    /// Equal operations are interchangeable: the search tries only one of several equal
    /// never-returned operations at a time.
    type Op: Eq;

    /// The state after `op` takes effect in `state`, or `None` if `op` (with its recorded
    /// result) cannot happen in `state`.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;

    /// Whether `op` leaves the state unchanged whenever it can take effect. The search
    /// linearizes such operations eagerly instead of branching on them.
    fn is_read_only(&self, op: &Self::Op) -> bool;

    /// Whether the state after `op` is the same whatever the state before (a blind
    /// write). The search never places a never-returned blind write directly after
    /// another never-returned operation, whose effect it would erase.
    fn is_blind_write(&self, op: &Self::Op) -> bool;
}

/// One operation as the search sees it.
#[derive(Debug, Clone)]
pub struct SearchOp<O> {
    pub invoked_at: Tick,
    /// `None`: never returned (an `Info` outcome), so it may take effect at any time after
    /// its invocation, or never.
    pub completed_at: Option<Tick>,
    pub op: O,
}

/// What the search found, in terms of indexes into the slice it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchOutcome<S> {
    /// `order` linearizes every operation that returned, plus the never-returned ones that
    /// took effect.
    Linearizable { order: Vec<usize> },
    NotLinearizable {
        /// The deepest linearizable prefix reached, in linearization order.
        prefix: Vec<usize>,
        /// The model state after `prefix`.
        state: S,
        /// The operation whose return the search reached before it could linearize it.
        stuck: usize,
        /// Every operation that could have been linearized next at that point, had the
        /// model allowed it (includes `stuck`).
        pending: Vec<usize>,
    },
    /// The step budget ran out.
    Exhausted { steps: u64 },
}

/// Checks `ops` against `model` from `initial`, taking at most `max_steps` steps.
pub fn search<M: Model>(
    model: &M,
    initial: M::State,
    ops: &[SearchOp<M::Op>],
    max_steps: u64,
) -> SearchOutcome<M::State> {
    Search::new(model, initial, ops).run(max_steps)
}

const NIL: usize = usize::MAX;
const HEAD: usize = 0;

/// Where the walk is within the current configuration.
#[derive(Debug, Clone, Copy)]
enum Cursor {
    /// Just reached a new configuration.
    Arrive,
    /// At this node of the event list.
    Event(usize),
    /// Trying never-returned operations from this node of their list, because the walk
    /// reached the return at event node `stuck_at`.
    Unreturned { at: usize, stuck_at: usize },
}

/// Where an operation's bit lives in a configuration.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// Index into the returned set.
    Returned(usize),
    /// Node in the `Unreturned` list (its bit is `node - 1`).
    Unreturned(usize),
}

/// One linearized operation on the search path.
struct Frame<S> {
    op: usize,
    /// The state before it.
    before: S,
    /// Linearized eagerly (read-only): its siblings need no exploring.
    eager: bool,
    /// Where to continue when it is undone.
    resume: Cursor,
}

struct Search<'a, M: Model> {
    model: &'a M,
    ops: &'a [SearchOp<M::Op>],
    events: EventList,
    unreturned: Unreturned,
    state: M::State,
    /// Where each operation's linearized bit lives.
    slot: Vec<Slot>,
    /// Linearized operations that returned, by `Slot::Returned` index.
    returned_bits: Vec<u64>,
    /// Linearized operations that never returned, by `Slot::Unreturned` index.
    unreturned_bits: Vec<u64>,
    /// Explored configurations: for each (returned set, state), the unreturned sets
    /// explored with it, none a subset of another.
    seen: HashMap<Seen<M::State>, Vec<Box<[u64]>>>,
    path: Vec<Frame<M::State>>,
    deepest: usize,
    deepest_unexplained: bool,
    /// The `NotLinearizable` answer for the deepest dead end so far.
    explanation: Option<SearchOutcome<M::State>>,
    steps: u64,
}

impl<'a, M: Model> Search<'a, M> {
    fn new(model: &'a M, initial: M::State, ops: &'a [SearchOp<M::Op>]) -> Self {
        let unreturned = Unreturned::new(ops);
        // Returned operations are numbered by invocation, so linearized sets tend to be a
        // run of ones (see `Seen`).
        let mut returned: Vec<usize> = (0..ops.len())
            .filter(|&i| ops[i].completed_at.is_some())
            .collect();
        returned.sort_by_key(|&i| (ops[i].invoked_at, i));
        let mut slot: Vec<Slot> = (0..ops.len())
            .map(|i| Slot::Unreturned(unreturned.position[i]))
            .collect();
        for (bit, &op) in returned.iter().enumerate() {
            slot[op] = Slot::Returned(bit);
        }
        Search {
            model,
            ops,
            events: EventList::new(ops),
            unreturned_bits: vec![0; unreturned.len().div_ceil(64)],
            unreturned,
            state: initial,
            returned_bits: vec![0; returned.len().div_ceil(64)],
            slot,
            seen: HashMap::new(),
            path: Vec::new(),
            deepest: 0,
            deepest_unexplained: true,
            explanation: None,
            steps: 0,
        }
    }

    fn run(mut self, max_steps: u64) -> SearchOutcome<M::State> {
        let mut cursor = Cursor::Arrive;
        loop {
            if self.steps >= max_steps {
                return SearchOutcome::Exhausted { steps: self.steps };
            }
            self.steps += 1;
            let next = match cursor {
                Cursor::Arrive => {
                    // Every returned operation linearized: the rest never took effect.
                    if self.events.first() == NIL {
                        return SearchOutcome::Linearizable {
                            order: self.path.iter().map(|frame| frame.op).collect(),
                        };
                    }
                    match self.eager_candidate() {
                        Some((op, next)) => {
                            if self.linearize(op, next, true, Cursor::Arrive) {
                                Some(Cursor::Arrive)
                            } else {
                                // Its only continuation was explored already.
                                self.dead_end(self.events.first_return())
                            }
                        }
                        None => Some(Cursor::Event(self.events.first())),
                    }
                }
                Cursor::Event(node) if self.events.kind[node] == Event::Call => {
                    let op = self.events.op[node];
                    let resume = Cursor::Event(self.events.next[node]);
                    Some(self.try_linearize(op, resume))
                }
                Cursor::Event(stuck_at) => Some(Cursor::Unreturned {
                    at: self.unreturned.first(),
                    stuck_at,
                }),
                Cursor::Unreturned { at, stuck_at } => {
                    let deadline = self.events.tick[stuck_at];
                    if at != NIL && self.ops[self.unreturned.op[at]].invoked_at <= deadline {
                        let op = self.unreturned.op[at];
                        let resume = Cursor::Unreturned {
                            at: self.unreturned.next[at],
                            stuck_at,
                        };
                        if self.erases_unreturned(op) || self.has_equal_before(at) {
                            Some(resume)
                        } else {
                            Some(self.try_linearize(op, resume))
                        }
                    } else {
                        self.dead_end(stuck_at)
                    }
                }
            };
            match next {
                Some(next) => cursor = next,
                None => {
                    return self
                        .explanation
                        .expect("the first dead end is always explained");
                }
            }
        }
    }

    /// A read-only call among the current candidates that the model accepts now, with the
    /// state after it.
    fn eager_candidate(&mut self) -> Option<(usize, M::State)> {
        let mut node = self.events.first();
        while node != NIL && self.events.kind[node] == Event::Call {
            self.steps += 1;
            let op = &self.ops[self.events.op[node]].op;
            if self.model.is_read_only(op) {
                if let Some(next) = self.model.step(&self.state, op) {
                    return Some((self.events.op[node], next));
                }
            }
            node = self.events.next[node];
        }
        None
    }

    /// Whether placing `op` now would erase the effect of a never-returned operation
    /// placed just before it. The result equals placing `op` in that operation's stead,
    /// which the search explores as a sibling, so it is not worth exploring.
    fn erases_unreturned(&self, op: usize) -> bool {
        self.model.is_blind_write(&self.ops[op].op)
            && self
                .path
                .last()
                .is_some_and(|frame| matches!(self.slot[frame.op], Slot::Unreturned(_)))
    }

    /// Whether a never-returned operation equal to the one at node `at` is still pending
    /// earlier in the list. Both are invoked and may take effect at any later time, so
    /// they are interchangeable: trying the first one covers the other.
    fn has_equal_before(&self, at: usize) -> bool {
        let op = &self.ops[self.unreturned.op[at]].op;
        let mut node = self.unreturned.first();
        while node != at {
            if self.ops[self.unreturned.op[node]].op == *op {
                return true;
            }
            node = self.unreturned.next[node];
        }
        false
    }

    /// Linearizes `op` next if the model accepts it and that configuration is new;
    /// otherwise continues the walk at `resume`.
    fn try_linearize(&mut self, op: usize, resume: Cursor) -> Cursor {
        if let Some(next) = self.model.step(&self.state, &self.ops[op].op) {
            if self.linearize(op, next, false, resume) {
                return Cursor::Arrive;
            }
        }
        resume
    }

    /// Linearizes `op` next, moving to state `next`, unless that configuration (or one
    /// that dominates it) was explored already.
    fn linearize(&mut self, op: usize, next: M::State, eager: bool, resume: Cursor) -> bool {
        self.mark(op, true);
        if !self.visit(next.clone()) {
            self.mark(op, false);
            return false;
        }
        let before = std::mem::replace(&mut self.state, next);
        self.path.push(Frame {
            op,
            before,
            eager,
            resume,
        });
        match self.slot[op] {
            Slot::Returned(_) => self.events.lift(op),
            Slot::Unreturned(node) => self.unreturned.lift(node),
        }
        if self.path.len() > self.deepest {
            self.deepest = self.path.len();
            self.deepest_unexplained = true;
        }
        true
    }

    fn mark(&mut self, op: usize, linearized: bool) {
        match self.slot[op] {
            Slot::Returned(bit) => set_bit(&mut self.returned_bits, bit, linearized),
            Slot::Unreturned(node) => set_bit(&mut self.unreturned_bits, node - 1, linearized),
        }
    }

    /// Records the current configuration (state `state`) as explored; false if it or one
    /// that dominates it was explored already.
    fn visit(&mut self, state: M::State) -> bool {
        let unreturned = trimmed(&self.unreturned_bits);
        let explored = self
            .seen
            .entry(Seen::new(&self.returned_bits, state))
            .or_default();
        if explored.iter().any(|seen| is_subset(seen, unreturned)) {
            return false;
        }
        explored.retain(|seen| !is_subset(unreturned, seen));
        explored.push(unreturned.into());
        true
    }

    /// The current configuration cannot get past the return at `stuck_at`: explain it if
    /// it is the deepest yet, then backtrack to the next alternative, if any.
    fn dead_end(&mut self, stuck_at: usize) -> Option<Cursor> {
        if self.deepest_unexplained {
            self.deepest_unexplained = false;
            let deadline = self.events.tick[stuck_at];
            let mut pending = self.events.calls_before(stuck_at);
            pending.extend(self.unreturned.invoked_by(self.ops, deadline));
            self.explanation = Some(SearchOutcome::NotLinearizable {
                prefix: self.path.iter().map(|frame| frame.op).collect(),
                state: self.state.clone(),
                stuck: self.events.op[stuck_at],
                pending,
            });
        }
        while let Some(frame) = self.path.pop() {
            self.state = frame.before;
            self.mark(frame.op, false);
            match self.slot[frame.op] {
                Slot::Returned(_) => self.events.unlift(frame.op),
                Slot::Unreturned(node) => self.unreturned.unlift(node),
            }
            // An eager step was the only one worth taking from its configuration, so that
            // configuration is a dead end too.
            if !frame.eager {
                return Some(frame.resume);
            }
        }
        None
    }
}

/// Event kinds, in the order they sort at equal ticks: a call at the tick another
/// operation returns counts as concurrent with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Call,
    Return,
}

/// The call and return events of operations that returned, in time order, as a doubly
/// linked list with a sentinel head at node 0. Linearizing an operation unlinks its two
/// events; backtracking relinks them in reverse order, which restores the list exactly
/// because undo is last-in first-out. The candidates to linearize next are exactly the
/// calls before the first remaining return.
struct EventList {
    next: Vec<usize>,
    prev: Vec<usize>,
    op: Vec<usize>,
    kind: Vec<Event>,
    tick: Vec<Tick>,
    /// Node of each operation's call and return (`NIL` for never-returned operations).
    call: Vec<usize>,
    ret: Vec<usize>,
}

impl EventList {
    fn new<O>(ops: &[SearchOp<O>]) -> Self {
        let mut order: Vec<(Tick, Event, usize)> = Vec::with_capacity(ops.len() * 2);
        for (index, op) in ops.iter().enumerate() {
            if let Some(completed_at) = op.completed_at {
                order.push((op.invoked_at, Event::Call, index));
                order.push((completed_at, Event::Return, index));
            }
        }
        order.sort_unstable();
        let nodes = order.len() + 1;
        let mut list = EventList {
            next: (1..=nodes)
                .map(|n| if n == nodes { NIL } else { n })
                .collect(),
            prev: (0..nodes).map(|n| n.wrapping_sub(1)).collect(),
            op: vec![NIL; nodes],
            kind: vec![Event::Call; nodes],
            tick: vec![0; nodes],
            call: vec![NIL; ops.len()],
            ret: vec![NIL; ops.len()],
        };
        for (position, (tick, kind, op)) in order.into_iter().enumerate() {
            let node = position + 1;
            list.op[node] = op;
            list.kind[node] = kind;
            list.tick[node] = tick;
            match kind {
                Event::Call => list.call[op] = node,
                Event::Return => list.ret[op] = node,
            }
        }
        list
    }

    fn first(&self) -> usize {
        self.next[HEAD]
    }

    fn first_return(&self) -> usize {
        let mut node = self.first();
        while node != NIL && self.kind[node] == Event::Call {
            node = self.next[node];
        }
        node
    }

    fn unlink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = next;
        if next != NIL {
            self.prev[next] = prev;
        }
    }

    fn relink(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = node;
        if next != NIL {
            self.prev[next] = node;
        }
    }

    fn lift(&mut self, op: usize) {
        self.unlink(self.call[op]);
        self.unlink(self.ret[op]);
    }

    fn unlift(&mut self, op: usize) {
        self.relink(self.ret[op]);
        self.relink(self.call[op]);
    }

    /// Operations whose calls lie between the head and `node`.
    fn calls_before(&self, node: usize) -> Vec<usize> {
        let mut calls = Vec::new();
        let mut at = self.first();
        while at != node && at != NIL {
            if self.kind[at] == Event::Call {
                calls.push(self.op[at]);
            }
            at = self.next[at];
        }
        calls
    }
}

/// Operations that never returned, by invocation, as a doubly linked list with a sentinel
/// head at node 0; linearizing one unlinks it.
struct Unreturned {
    next: Vec<usize>,
    prev: Vec<usize>,
    op: Vec<usize>,
    /// Node of each operation (`NIL` for operations that returned).
    position: Vec<usize>,
}

impl Unreturned {
    fn new<O>(ops: &[SearchOp<O>]) -> Self {
        let mut order: Vec<usize> = (0..ops.len())
            .filter(|&i| ops[i].completed_at.is_none())
            .collect();
        order.sort_by_key(|&i| (ops[i].invoked_at, i));
        let nodes = order.len() + 1;
        let mut position = vec![NIL; ops.len()];
        for (at, &op) in order.iter().enumerate() {
            position[op] = at + 1;
        }
        Unreturned {
            next: (1..=nodes)
                .map(|n| if n == nodes { NIL } else { n })
                .collect(),
            prev: (0..nodes).map(|n| n.wrapping_sub(1)).collect(),
            op: std::iter::once(NIL).chain(order).collect(),
            position,
        }
    }

    fn len(&self) -> usize {
        self.op.len() - 1
    }

    fn first(&self) -> usize {
        self.next[HEAD]
    }

    fn lift(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = next;
        if next != NIL {
            self.prev[next] = prev;
        }
    }

    fn unlift(&mut self, node: usize) {
        let (prev, next) = (self.prev[node], self.next[node]);
        self.next[prev] = node;
        if next != NIL {
            self.prev[next] = node;
        }
    }

    /// Operations not yet linearized that were invoked by `deadline`.
    fn invoked_by<O>(&self, ops: &[SearchOp<O>], deadline: Tick) -> Vec<usize> {
        let mut found = Vec::new();
        let mut at = self.first();
        while at != NIL && ops[self.op[at]].invoked_at <= deadline {
            found.push(self.op[at]);
            at = self.next[at];
        }
        found
    }
}

fn set_bit(bits: &mut [u64], index: usize, on: bool) {
    let mask = 1u64 << (index % 64);
    if on {
        bits[index / 64] |= mask;
    } else {
        bits[index / 64] &= !mask;
    }
}

/// `bits` without its trailing zero words.
fn trimmed(bits: &[u64]) -> &[u64] {
    let end = bits
        .iter()
        .rposition(|w| *w != 0)
        .map_or(0, |last| last + 1);
    &bits[..end]
}

/// Whether every bit set in `small` is set in `large` (missing words are zero).
fn is_subset(small: &[u64], large: &[u64]) -> bool {
    small
        .iter()
        .enumerate()
        .all(|(i, word)| word & !large.get(i).copied().unwrap_or(0) == 0)
}

/// The part of a configuration matched exactly. Operations are indexed in invocation
/// order, so a linearized set is mostly a run of ones followed by a short ragged edge:
/// store the run's length in words and only the words after it, which keeps entries small
/// for long histories.
#[derive(PartialEq, Eq, Hash)]
struct Seen<S> {
    full_words: usize,
    tail: Box<[u64]>,
    state: S,
}

impl<S> Seen<S> {
    fn new(bits: &[u64], state: S) -> Self {
        let full_words = bits.iter().take_while(|w| **w == u64::MAX).count();
        Seen {
            full_words,
            tail: trimmed(&bits[full_words..]).into(),
            state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::register::{Register, RegisterOp};
    use crate::history::Value;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn bit_helpers() {
        let mut bits = vec![0u64; 3];
        set_bit(&mut bits, 70, true);
        assert_eq!(trimmed(&bits), &[0, 1 << 6]);
        assert!(is_subset(&[], &bits));
        assert!(is_subset(&[0, 1 << 6], &bits));
        assert!(!is_subset(&[1], &bits));
        set_bit(&mut bits, 70, false);
        assert!(trimmed(&bits).is_empty());
        let all_ones = [u64::MAX, u64::MAX, 5];
        let seen = Seen::new(&all_ones, ());
        assert_eq!((seen.full_words, &*seen.tail), (2, &[5u64][..]));
    }

    /// Is there any order of `ops` (each never-returned one placed or left out) that
    /// respects real time and that the register accepts? Plain exhaustive search.
    fn brute_force(
        ops: &[SearchOp<RegisterOp>],
        placed: &mut Vec<bool>,
        state: Option<Value>,
    ) -> bool {
        let done = (0..ops.len()).all(|i| placed[i] || ops[i].completed_at.is_none());
        if done {
            return true;
        }
        for i in 0..ops.len() {
            if placed[i] {
                continue;
            }
            let blocked = (0..ops.len()).any(|j| {
                !placed[j]
                    && ops[j]
                        .completed_at
                        .is_some_and(|done| done < ops[i].invoked_at)
            });
            if blocked {
                continue;
            }
            if let Some(next) = Register.step(&state, &ops[i].op) {
                placed[i] = true;
                let found = brute_force(ops, placed, next);
                placed[i] = false;
                if found {
                    return true;
                }
            }
        }
        false
    }

    fn random_op(rng: &mut StdRng) -> RegisterOp {
        let v = rng.gen_range(0..3);
        match rng.gen_range(0..5) {
            0 | 1 => RegisterOp::Read((rng.gen_range(0..4) != 0).then_some(v)),
            2 => RegisterOp::Write(v),
            3 => RegisterOp::Cas {
                expected: (rng.gen_range(0..4) != 0).then(|| rng.gen_range(0..3)),
                new: v,
            },
            _ => RegisterOp::CasRejected {
                expected: Some(rng.gen_range(0..3)),
            },
        }
    }

    /// Small random histories, linearizable or not, judged the same as exhaustive search:
    /// the eager, unreturned-last and dominance refinements change speed, not answers.
    #[test]
    fn agrees_with_brute_force_on_small_random_histories() {
        let mut rng = StdRng::seed_from_u64(1);
        let (mut yes, mut no) = (0, 0);
        for _ in 0..3_000 {
            let len = rng.gen_range(1..=7);
            let ops: Vec<SearchOp<RegisterOp>> = (0..len)
                .map(|_| {
                    let invoked_at = rng.gen_range(0..12);
                    let completed_at =
                        (rng.gen_range(0..5) != 0).then(|| invoked_at + rng.gen_range(0..6));
                    let mut op = random_op(&mut rng);
                    if completed_at.is_none() {
                        // Never-returned reads and rejected cas are dropped before search.
                        if let RegisterOp::Read(_) | RegisterOp::CasRejected { .. } = op {
                            op = RegisterOp::Write(rng.gen_range(0..3));
                        }
                    }
                    SearchOp {
                        invoked_at,
                        completed_at,
                        op,
                    }
                })
                .collect();
            let expected = brute_force(&ops, &mut vec![false; len], None);
            let found = search(&Register, None, &ops, 1_000_000);
            match (&found, expected) {
                (SearchOutcome::Linearizable { order }, true) => {
                    yes += 1;
                    let mut state = None;
                    for (k, &i) in order.iter().enumerate() {
                        state = Register.step(&state, &ops[i].op).expect("witness replays");
                        for &later in &order[k + 1..] {
                            let forced_first = ops[later]
                                .completed_at
                                .is_some_and(|done| done < ops[i].invoked_at);
                            assert!(!forced_first, "witness breaks real time: {ops:?}");
                        }
                    }
                    for (i, op) in ops.iter().enumerate() {
                        assert!(op.completed_at.is_none() || order.contains(&i));
                    }
                }
                (SearchOutcome::NotLinearizable { .. }, false) => no += 1,
                _ => panic!("search says {found:?}, brute force says {expected} for {ops:?}"),
            }
        }
        assert!(
            yes > 500 && no > 500,
            "both kinds covered: {yes} yes, {no} no"
        );
    }
}
