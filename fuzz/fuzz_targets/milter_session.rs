//! A whole milter session, driven over a unix socket against the real milter running
//! in-process (`tls_milter::run`, started once per process).
//!
//! Input: one option byte, then records of `command, length (2 octets, little-endian),
//! payload` that the harness frames as milter packets. Option bits: 0 chooses the policy
//! milter over the tag milter; 1 writes the rest of the input to the socket as it is, with
//! no framing and no negotiation; 2-5 withhold NOREPLY options from the negotiation, 6
//! withholds NO_HELO and NO_RCPT, and 7 withholds macro requests.
//!
//! Every reply must parse and touch only our header. On the tag milter with framed
//! records, the end-of-message results must also match the model in
//! `tls_milter_fuzz::session`: each message in a negotiated connection gets one header,
//! after every incoming copy is deleted.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tls_milter_fuzz::session::{self, Packet};

fuzz_target!(|data: &[u8]| {
    let Some((&options, rest)) = data.split_first() else { return };
    let milters = session::milters();
    let tag_milter = options & 1 == 0;
    let socket = &milters.sockets[usize::from(!tag_milter)];

    if options & 2 != 0 {
        let output = milters.run_session(socket, rest);
        session::check_replies(&output);
        return;
    }

    let mut packets: Vec<Packet> = vec![session::negotiate(options)];
    packets.extend(session::decode_records(rest));
    let output = milters.run_session(socket, &session::frame(&packets));
    let groups = session::check_replies(&output);
    for group in &groups {
        session::check_group(group);
    }

    if tag_milter {
        let expectation = session::expect(&packets);
        let deleted: Vec<usize> = groups.iter().map(|group| group.deleted.len()).collect();
        assert_eq!(
            deleted, expectation.tagged,
            "tagged messages and their deleted copies differ from the model (left: milter, right: model)"
        );
    }
});
