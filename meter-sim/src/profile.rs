//! Synthetic household load: half-hourly (or any interval) energy from a daily shape (night
//! trough, morning and evening peaks), a seasonal factor (more in winter, northern hemisphere),
//! a per-household scale and base load, and multiplicative noise. Deterministic for a seed.

use crate::civil::day_of_year;

/// SplitMix64: tiny, fast, good enough for load shapes, and identical on every platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        // 53 random bits exactly fill an f64 mantissa.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // (0, 1]: ln is finite
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// One simulated household's consumption habits.
#[derive(Clone, Debug, PartialEq)]
pub struct Household {
    /// Multiplies the whole shape (household size, appliances): about 0.5–2.
    pub scale: f64,
    /// Always-on load, kW.
    pub base_kw: f64,
    /// Morning peak height, kW, and its hour.
    pub morning_kw: f64,
    /// Hour of the morning peak.
    pub morning_hour: f64,
    /// Evening peak height, kW.
    pub evening_kw: f64,
    /// Hour of the evening peak.
    pub evening_hour: f64,
    /// Standard deviation of the multiplicative noise.
    pub noise: f64,
    /// Seeds the noise of each interval (so any interval can be generated on its own).
    noise_seed: u64,
}

impl Household {
    /// Household number `index` of a simulation with `seed`: the same pair always gives the same
    /// household and the same readings.
    pub fn new(seed: u64, index: u64) -> Household {
        let mut rng = SplitMix64::new(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03));
        // Burn one value so neighbouring indices decorrelate.
        rng.next_u64();
        let scale = (0.35 * rng.normal()).exp().clamp(0.4, 2.5);
        Household {
            scale,
            base_kw: 0.12 + 0.10 * rng.unit(),
            morning_kw: 0.3 + 0.5 * rng.unit(),
            morning_hour: 6.5 + 2.0 * rng.unit(),
            evening_kw: 0.8 + 1.0 * rng.unit(),
            evening_hour: 17.5 + 2.5 * rng.unit(),
            noise: 0.15 + 0.15 * rng.unit(),
            noise_seed: rng.next_u64(),
        }
    }

    /// Mean power (kW) of the household at a time of day (hours, fractional) and day of year,
    /// without noise.
    pub fn mean_kw(&self, hour: f64, day_of_year: u32) -> f64 {
        let bump = |centre: f64, width: f64| {
            // Distance on the 24 h circle, so a late peak wraps past midnight.
            let d = (hour - centre).rem_euclid(24.0);
            let d = d.min(24.0 - d);
            (-(d * d) / (2.0 * width * width)).exp()
        };
        let daily = self.base_kw
            + self.morning_kw * bump(self.morning_hour, 1.0)
            + self.evening_kw * bump(self.evening_hour, 1.8)
            + 0.15 * bump(13.0, 2.5);
        // Winter (early January) +35%, summer (early July) −35%.
        let season =
            1.0 + 0.35 * (std::f64::consts::TAU * (f64::from(day_of_year) - 10.0) / 365.25).cos();
        self.scale * daily * season
    }

    /// Energy (Wh) used in the interval starting at `start_ms` lasting `interval_s`, noisy;
    /// never negative. A function of the household and the interval only, so a resumed run
    /// produces the same values as an uninterrupted one.
    pub fn energy_wh(&self, start_ms: u64, interval_s: u32) -> u64 {
        let mut rng =
            SplitMix64::new(self.noise_seed ^ start_ms.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mid_ms = start_ms + u64::from(interval_s) * 500;
        let hour = (mid_ms % 86_400_000) as f64 / 3_600_000.0;
        let kw = self.mean_kw(hour, day_of_year(mid_ms));
        let noisy = kw * (1.0 + self.noise * rng.normal()).max(0.05);
        let wh = noisy * f64::from(interval_s) / 3.6;
        // Finite and non-negative by construction; `as` saturates anyway.
        wh.round().max(0.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: u64 = 86_400_000;
    // 2013-01-07 00:00 UTC and 2013-07-08 00:00 UTC
    const WINTER: u64 = 1_357_516_800_000;
    const SUMMER: u64 = 1_373_241_600_000;

    fn day(h: &Household, start: u64) -> Vec<u64> {
        (0..48)
            .map(|i| h.energy_wh(start + i * 1_800_000, 1800))
            .collect()
    }

    #[test]
    fn deterministic_for_a_seed_and_index() {
        let a = day(&Household::new(42, 3), WINTER);
        let b = day(&Household::new(42, 3), WINTER);
        assert_eq!(a, b);
        assert_ne!(a, day(&Household::new(42, 4), WINTER));
        assert_ne!(a, day(&Household::new(43, 3), WINTER));
    }

    #[test]
    fn evenings_beat_nights_and_winter_beats_summer() {
        let mut evening = 0u64;
        let mut night = 0u64;
        let mut winter = 0u64;
        let mut summer = 0u64;
        for index in 0..50 {
            let h = Household::new(7, index);
            let w = day(&h, WINTER);
            night += w[4..8].iter().sum::<u64>(); // 02:00–04:00
            evening += w[37..41].iter().sum::<u64>(); // 18:30–20:30
            winter += w.iter().sum::<u64>();
            summer += day(&h, SUMMER).iter().sum::<u64>();
        }
        assert!(evening > 2 * night, "evening {evening} night {night}");
        assert!(winter > summer, "winter {winter} summer {summer}");
    }

    #[test]
    fn plausible_household_daily_totals() {
        // UK households use roughly 5–15 kWh a day; allow a wide band per household.
        for index in 0..100 {
            let kwh = day(&Household::new(1, index), WINTER + 30 * DAY_MS)
                .iter()
                .sum::<u64>() as f64
                / 1000.0;
            assert!((1.0..60.0).contains(&kwh), "household {index}: {kwh} kWh");
        }
    }

    #[test]
    fn unit_and_normal_are_in_range() {
        let mut rng = SplitMix64::new(0);
        let mut sum = 0.0;
        for _ in 0..10_000 {
            let u = rng.unit();
            assert!((0.0..1.0).contains(&u));
            let n = rng.normal();
            assert!(n.is_finite());
            sum += n;
        }
        assert!((sum / 10_000.0).abs() < 0.1);
    }
}
