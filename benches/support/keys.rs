//! Key distributions, drawn once into a table so that picking a key costs
//! the same tiny index step for every distribution and every contestant.

use bench_report::Keys;

/// Keys drawn per distribution; a power of two so an index wraps with a mask.
pub const DRAWN: usize = 1 << 20;

/// A key distribution of the contention workloads.
#[derive(Clone, Copy, Debug)]
pub enum Distribution {
    /// Uniform over `0..n`.
    Uniform(u64),
    /// Zipf with exponent `s` over ranks `1..=n`; rank `r` is id `r - 1`.
    Zipf { n: u64, s: f64 },
    /// Every operation on id 0.
    Hot,
}

impl Distribution {
    /// The distribution the report knows as `keys`.
    pub fn of(keys: Keys) -> Distribution {
        match keys {
            Keys::Uniform1e3 => Distribution::Uniform(1_000),
            Keys::Uniform1e6 => Distribution::Uniform(1_000_000),
            Keys::Zipf1_1 => Distribution::Zipf {
                n: 1_000_000,
                s: 1.1,
            },
            Keys::HotId => Distribution::Hot,
        }
    }

    /// `DRAWN` keys from this distribution, reproducible from `seed`.
    pub fn draw(&self, seed: u64) -> Vec<u64> {
        let mut rng = fastrand::Rng::with_seed(seed);
        match *self {
            Distribution::Uniform(n) => (0..DRAWN).map(|_| rng.u64(0..n)).collect(),
            Distribution::Hot => vec![0; DRAWN],
            Distribution::Zipf { n, s } => {
                // Inverse transform on the cumulative weights.
                let mut cumulative = Vec::with_capacity(n as usize);
                let mut total = 0.0f64;
                for rank in 1..=n {
                    total += (rank as f64).powf(-s);
                    cumulative.push(total);
                }
                (0..DRAWN)
                    .map(|_| {
                        let u = rng.f64() * total;
                        cumulative.partition_point(|&c| c < u) as u64
                    })
                    .collect()
            }
        }
    }
}
