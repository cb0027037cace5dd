//! The clients' SOAP response reader (`shared::soap`): the envelope, faults, the exchange's
//! `AuthenticationResponse` fields as `SoapExchange` reads them, and the write-back of a received element
//! (NetServer's SaveContactEntity sends back what CreateDefaultContactEntity returned).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::soap::{Envelope, parse};

fuzz_target!(|body: &[u8]| {
    if let Ok(envelope) = Envelope::parse(body) {
        if let Some(fault) = envelope.fault() {
            let _ = (fault.code.len(), fault.message.len());
        }
        let _ = envelope.payload().map(|p| p.name.len());
        if let Some(response) = envelope.body.find("AuthenticationResponse") {
            for name in ["IsSuccessful", "Token", "ErrorMessage"] {
                if let Some(value) = response.child_text(name) {
                    assert_eq!(value.trim(), value);
                }
            }
        }
    }
    if let Ok(root) = parse(body) {
        // What the client writes back must read back as the same tree, and write the same again.
        let mut written = String::new();
        root.write_xml(&mut written, None);
        let reread = parse(written.as_bytes())
            .unwrap_or_else(|e| panic!("written element does not parse back: {e}: {written}"));
        let mut rewritten = String::new();
        reread.write_xml(&mut rewritten, None);
        assert_eq!(written, rewritten, "write_xml is not stable");
    }
});
