//! The token policy: a fixed token, or a token function asked once however
//! many calls want a token at the same time, and asked again only when the
//! server refused the token it gave (a 401): once, however many calls that
//! token failed, and not at all if another call already replaced it.
//!
//! Asks are numbered: a transport holds the pending ask (a promise, a future)
//! under its number, and every report names the ask it is about, so a late
//! report about a replaced token changes nothing.

#[derive(Debug)]
pub struct TokenPolicy {
    fixed: bool,
    ask: u64,
    state: State,
}

#[derive(Debug)]
enum State {
    Unknown,
    Asking,
    Known(String),
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenStep {
    /// Send with this token; report a 401 with [`TokenPolicy::refused`] and `ask`.
    Use { token: String, ask: u64 },
    /// Call the token function, then report with [`TokenPolicy::answered`].
    Ask(u64),
    /// Ask `n` is under way: wait for it, then want again.
    Wait(u64),
}

impl TokenPolicy {
    /// A token that never changes: a 401 is final.
    pub fn fixed(token: String) -> TokenPolicy {
        TokenPolicy { fixed: true, ask: 0, state: State::Known(token) }
    }

    /// A token function's tokens.
    pub fn function() -> TokenPolicy {
        TokenPolicy { fixed: false, ask: 0, state: State::Unknown }
    }

    /// Whether a 401 may be answered by asking for a new token.
    pub fn renews(&self) -> bool {
        !self.fixed
    }

    pub fn want(&mut self) -> TokenStep {
        match &self.state {
            State::Known(token) => TokenStep::Use { token: token.clone(), ask: self.ask },
            State::Asking => TokenStep::Wait(self.ask),
            State::Unknown => {
                self.ask += 1;
                self.state = State::Asking;
                TokenStep::Ask(self.ask)
            }
        }
    }

    /// Ask `ask` gave this token, or failed (`None`: the next want asks again).
    pub fn answered(&mut self, ask: u64, token: Option<String>) {
        if ask == self.ask && matches!(self.state, State::Asking) {
            self.state = token.map_or(State::Unknown, State::Known);
        }
    }

    /// The token of ask `ask` got a 401.
    pub fn refused(&mut self, ask: u64) {
        if !self.fixed && ask == self.ask && matches!(self.state, State::Known(_)) {
            self.state = State::Unknown;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_calls_share_one_ask_and_one_renewal() {
        let mut p = TokenPolicy::function();
        // Two calls at once: one ask.
        assert_eq!(p.want(), TokenStep::Ask(1));
        assert_eq!(p.want(), TokenStep::Wait(1));
        p.answered(1, Some("t1".into()));
        let use_t1 = TokenStep::Use { token: "t1".into(), ask: 1 };
        assert_eq!(p.want(), use_t1);
        // Both get a 401 for t1: the first renews, the second finds it renewing.
        p.refused(1);
        assert_eq!(p.want(), TokenStep::Ask(2));
        p.refused(1);
        assert_eq!(p.want(), TokenStep::Wait(2));
        p.answered(2, Some("t2".into()));
        // A late 401 about t1 leaves t2 alone.
        p.refused(1);
        assert_eq!(p.want(), TokenStep::Use { token: "t2".into(), ask: 2 });
    }

    #[test]
    fn a_failed_ask_is_not_remembered_and_a_fixed_token_is_never_renewed() {
        let mut p = TokenPolicy::function();
        assert_eq!(p.want(), TokenStep::Ask(1));
        p.answered(1, None);
        assert_eq!(p.want(), TokenStep::Ask(2));
        p.answered(1, Some("stale".into()));
        assert_eq!(p.want(), TokenStep::Wait(2), "a late answer to an old ask is ignored");
        let mut f = TokenPolicy::fixed("k".into());
        assert!(!f.renews());
        f.refused(0);
        assert_eq!(f.want(), TokenStep::Use { token: "k".into(), ask: 0 });
    }
}
