//! End-to-end support for KalGuard: the stand-in LLM upstream ([`stub`]) that
//! the demo stack and the tests run on loopback, the same behind TLS with a
//! test PKI ([`tls`]), and the harness ([`stack`]) that runs the real `.wasm`
//! filter in a real Envoy.

pub mod stack;
pub mod stub;
pub mod tls;
