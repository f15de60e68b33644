//! A token bucket in millionths of a frame, refilled from the `now` (ms) of each call: the
//! exception path's meter and the ICMP error limit use it. A clock that goes back refills
//! nothing.

/// Tokens of one frame (or message).
pub const FRAME: u64 = 1_000_000;

#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    tokens: u64,
    last: u64,
    /// Millionths of a frame per millisecond (= frames per second x 1000).
    rate: u64,
    cap: u64,
}

impl TokenBucket {
    /// A full bucket of `cap` millionths at `now`, refilled at `rate` millionths a ms.
    pub fn new(rate: u64, cap: u64, now: u64) -> Self {
        TokenBucket {
            tokens: cap,
            last: now,
            rate,
            cap,
        }
    }

    /// Take one frame's tokens if there are.
    #[inline]
    pub fn take(&mut self, now: u64) -> bool {
        if now > self.last {
            let add = (now - self.last).saturating_mul(self.rate);
            self.tokens = self.tokens.saturating_add(add).min(self.cap);
            self.last = now;
        }
        if self.tokens >= FRAME {
            self.tokens -= FRAME;
            true
        } else {
            false
        }
    }
}
