//! The simulator's SOAP request reader: its XML tree builder (namespaces, entities, DOCTYPE refusal, depth
//! limit) and the PartnerSystemUserService `AuthenticationRequest` envelope on top of it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use superoffice_sim::exchange::soap::parse;

fuzz_target!(|body: &[u8]| {
    match parse(body) {
        Ok(request) => {
            assert_eq!(request.application_token.trim(), request.application_token);
            assert_eq!(
                request.context_identifier.trim(),
                request.context_identifier
            );
            assert_eq!(
                request.signed_system_token.trim(),
                request.signed_system_token
            );
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});
