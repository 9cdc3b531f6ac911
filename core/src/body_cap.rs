//! The rule every request body is read by: a byte cap checked before
//! buffering. A declared `Content-Length` over the cap is refused before a byte
//! is read; a body without one is counted as it arrives and refused the moment
//! it passes the cap. (The worker's `body.rs` does the reading.)

/// A body's running count against its cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap {
    limit: u64,
    read: u64,
}

/// The body passes its cap: refuse it (413), reading no further.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooLarge {
    pub limit: u64,
}

impl Cap {
    /// Start reading a body of at most `limit` bytes that declared `declared`.
    pub fn new(limit: u64, declared: Option<u64>) -> Result<Cap, TooLarge> {
        match declared {
            Some(n) if n > limit => Err(TooLarge { limit }),
            _ => Ok(Cap { limit, read: 0 }),
        }
    }

    /// Count a chunk before keeping it.
    pub fn take(&mut self, chunk: usize) -> Result<(), TooLarge> {
        let read = self.read.saturating_add(chunk as u64);
        if read > self.limit {
            return Err(TooLarge { limit: self.limit });
        }
        self.read = read;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declared_length_over_the_cap_is_refused_before_reading() {
        assert_eq!(Cap::new(64, Some(65)), Err(TooLarge { limit: 64 }));
        assert_eq!(Cap::new(64, Some(u64::MAX)), Err(TooLarge { limit: 64 }));
        assert!(Cap::new(64, Some(64)).is_ok());
        assert!(Cap::new(64, None).is_ok());
    }

    #[test]
    fn an_undeclared_body_stops_at_the_cap() {
        let mut cap = Cap::new(100, None).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(cap.take(60), Ok(()));
        assert_eq!(cap.take(40), Ok(()), "exactly the cap is fine");
        assert_eq!(cap.take(1), Err(TooLarge { limit: 100 }));
        // A body that lied about its length is still stopped.
        let mut lied = Cap::new(100, Some(10)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(lied.take(usize::MAX), Err(TooLarge { limit: 100 }));
    }
}
