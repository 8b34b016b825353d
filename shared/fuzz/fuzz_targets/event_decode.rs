//! `Change::decode` on arbitrary bytes: it must return, never panic (nor
//! abort, hang or exhaust memory), and whatever it accepts must survive
//! `encode` then `decode` unchanged.

#![no_main]

use adcast_shared::event::Change;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(change) = Change::decode(data) {
        let again = Change::decode(&change.encode());
        assert_eq!(
            again.as_ref(),
            Ok(&change),
            "re-encoded change decodes differently"
        );
    }
});
