//! Client <-> executive wire format (framing, requests, responses, callbacks). Filled by the daemon and libais issues (#3, #4).
