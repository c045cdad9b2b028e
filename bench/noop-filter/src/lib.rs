//! A proxy-wasm HTTP filter that lets every request and response through
//! untouched: `make bench` loads it in the same place as KalGuard to tell the
//! price of running a Wasm filter at all from the price of KalGuard's work.

#[cfg(target_arch = "wasm32")]
mod filter {
    use proxy_wasm::traits::{Context, HttpContext, RootContext};
    use proxy_wasm::types::ContextType;

    proxy_wasm::main! {{
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
    }}

    struct Root;
    impl Context for Root {}
    impl RootContext for Root {
        fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
            Some(Box::new(PassThrough))
        }
        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::HttpContext)
        }
    }

    struct PassThrough;
    impl Context for PassThrough {}
    impl HttpContext for PassThrough {}
}
