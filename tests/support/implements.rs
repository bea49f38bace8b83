//! `implements!(Type: Trait)`: whether a type implements a trait, decided at
//! compile time without failing the build when it does not. Shared by
//! `tests/debug_snapshots.rs` and `tests/zeroize.rs` (included with
//! `#[path]` and `#[macro_use]`).

/// Whether `$ty` implements the trait, decided at compile time without
/// failing the build when it does not (method resolution prefers the
/// by-value impl on `Probe<T>`, which exists only under the bound, over the
/// fallback on `&Probe<T>`).
macro_rules! implements {
    ($ty:ty: $($bound:tt)+) => {{
        struct Probe<T: ?Sized>(std::marker::PhantomData<T>);
        #[allow(dead_code)]
        trait Yes {
            fn get(&self) -> bool {
                true
            }
        }
        // `Drop` as a bound is what the zeroize probes ask about.
        #[allow(drop_bounds)]
        impl<T: ?Sized + $($bound)+> Yes for Probe<T> {}
        #[allow(dead_code)]
        trait No {
            fn get(&self) -> bool {
                false
            }
        }
        impl<T: ?Sized> No for &Probe<T> {}
        (&Probe::<$ty>(std::marker::PhantomData)).get()
    }};
}
