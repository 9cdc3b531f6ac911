//! Emulated time: real time scaled (one emulated hour per real second, say),
//! settable and advanceable from tests. Everything time-dependent in the
//! emulator (state changes, expiries, timestamps) reads this clock.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug)]
pub struct Clock {
    anchor_real: Instant,
    anchor_emu_ns: i64,
    scale: f64,
}

const NANOS: f64 = 1e9;

impl Clock {
    pub fn new(scale: f64) -> Clock {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        Clock { anchor_real: Instant::now(), anchor_emu_ns: now as i64, scale: scale.max(0.0) }
    }

    pub fn now_ns(&self) -> i64 {
        let real = self.anchor_real.elapsed().as_secs_f64();
        self.anchor_emu_ns + (real * self.scale * NANOS) as i64
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Change the scale from now on without jumping.
    pub fn set_scale(&mut self, scale: f64) {
        self.rebase(self.now_ns());
        self.scale = scale.max(0.0);
    }

    pub fn set_now_ns(&mut self, now_ns: i64) {
        self.rebase(now_ns);
    }

    pub fn advance_secs(&mut self, secs: f64) {
        let now = self.now_ns();
        self.rebase(now + (secs * NANOS) as i64);
    }

    /// Real seconds until emulated time reaches `at_ns` (`None` if the clock is stopped).
    pub fn real_secs_until(&self, at_ns: i64) -> Option<f64> {
        let delta = (at_ns - self.now_ns()) as f64 / NANOS;
        (self.scale > 0.0).then(|| (delta / self.scale).max(0.0))
    }

    fn rebase(&mut self, emu_ns: i64) {
        self.anchor_real = Instant::now();
        self.anchor_emu_ns = emu_ns;
    }
}

pub fn secs_to_ns(secs: f64) -> i64 {
    (secs * NANOS) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_clock_moves_only_when_advanced() {
        let mut c = Clock::new(0.0);
        let t0 = c.now_ns();
        assert_eq!(c.now_ns(), t0);
        c.advance_secs(3600.0);
        assert_eq!(c.now_ns(), t0 + 3_600_000_000_000);
        assert_eq!(c.real_secs_until(t0 + 1), None);
    }

    #[test]
    fn scaling_is_continuous() {
        let mut c = Clock::new(1.0);
        let before = c.now_ns();
        c.set_scale(3600.0);
        let after = c.now_ns();
        assert!(after >= before && after - before < 1_000_000_000, "no jump when the scale changes");
        assert!(c.real_secs_until(after + 3_600_000_000_000).unwrap() <= 1.0);
    }
}
