//! The uniffi binding generator, built from this repository (no global
//! install): `cargo run --features bindgen --bin uniffi-bindgen -- generate
//! <library> --language <lang> --out-dir <dir>`. See scripts/bindings.sh.

fn main() {
    uniffi::uniffi_bindgen_main()
}
