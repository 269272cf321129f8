//! natrix-sim.
