//! The `hashing` interface's steps, with the decompressed bytes hashed where the plugin left
//! them instead of copied out of the sandbox.
//!
//! Lifted as the generated bindings lift it, a step's `inflated: list<u8>` becomes a fresh
//! `Vec<u8>` for every step: about as many bytes allocated and copied as the SHA-256 reads, plus
//! the page faults of new memory (measured, about a fifth of what hashing added to `run`). Here
//! the same functions are called with `inflated` typed as [`InPlace`], whose lift feeds the
//! guest's bytes to the SHA-256 of the call's thread while they are still in the guest's memory
//! (before the plugin frees them) and keeps nothing. The contract is unchanged: other hosts,
//! and these tests, read the same steps as lists.

use std::cell::RefCell;

use sha2::{Digest as _, Sha256};
use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{
    ComponentExportIndex, ComponentType, Instance, InstancePre, Lift, ResourceAny, TypedFunc, WasmList,
};
use wasmtime::{AsContextMut, Store};

use super::bindings::types::{Event, FileError};
use super::bindings::{documents, hashing};
use super::store::StoreState;
use super::CONTRACT_VERSION;

thread_local! {
    /// The SHA-256 a step's bytes go to, set only around a call (`with_hasher`).
    static HASHER: RefCell<Option<Sha256>> = const { RefCell::new(None) };
}

/// A `list<u8>` lifted by hashing it in place into the thread's current SHA-256.
pub struct InPlace;

type List = WasmList<u8>;

// SAFETY: the same canonical ABI as `WasmList<u8>` (a pointer and a length), which it delegates
// every part of the type's description and checking to.
unsafe impl ComponentType for InPlace {
    type Lower = <List as ComponentType>::Lower;
    const ABI: CanonicalAbiInfo = <List as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <List as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: lifting validates the list as `WasmList<u8>` does (its lift checks that the pointer
// and length lie in the guest's memory) before reading the bytes, which it only reads.
unsafe impl Lift for InPlace {
    fn linear_lift_from_flat(cx: &mut LiftContext<'_>, ty: InterfaceType, src: &Self::Lower) -> wasmtime::Result<Self> {
        let list = List::linear_lift_from_flat(cx, ty, src)?;
        let [ptr, _] = src;
        hash(cx, ptr.get_u32() as usize, list.len())
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8]) -> wasmtime::Result<Self> {
        let list = List::linear_lift_from_memory(cx, ty, bytes)?;
        let ptr = u32::from_le_bytes(bytes[..4].try_into()?) as usize;
        hash(cx, ptr, list.len())
    }
}

fn hash(cx: &LiftContext<'_>, ptr: usize, len: usize) -> wasmtime::Result<InPlace> {
    let bytes = cx
        .memory()
        .get(ptr..)
        .and_then(|m| m.get(..len))
        .ok_or_else(|| wasmtime::format_err!("list pointer/length out of bounds of memory"))?;
    HASHER.with(|h| match h.borrow_mut().as_mut() {
        Some(hasher) => {
            hasher.update(bytes);
            Ok(InPlace)
        }
        None => Err(wasmtime::format_err!("decompressed bytes lifted with no hash to feed")),
    })
}

/// Runs `call` with `hasher` as the thread's current SHA-256: the steps `call` lifts are hashed
/// into it.
fn with_hasher<R>(hasher: &mut Sha256, call: impl FnOnce() -> R) -> R {
    HASHER.with(|h| *h.borrow_mut() = Some(std::mem::take(hasher)));
    let result = call();
    if let Some(fed) = HASHER.with(|h| h.borrow_mut().take()) {
        *hasher = fed;
    }
    result
}

/// `hashing.rendered-step`, its bytes hashed in place.
#[derive(ComponentType, Lift)]
#[component(record)]
pub struct RenderedStep {
    pub documents: documents::Batch,
    /// Fed to the hash as it was lifted.
    #[component(name = "inflated")]
    _inflated: InPlace,
    pub ended: bool,
}

/// `hashing.typed-step`, its bytes hashed in place.
#[derive(ComponentType, Lift)]
#[component(record)]
pub struct TypedStep {
    pub events: Vec<Event>,
    /// Fed to the hash as it was lifted.
    #[component(name = "inflated")]
    _inflated: InPlace,
    pub ended: bool,
}

type Step<T> = TypedFunc<(ResourceAny, u32), (Result<T, FileError>,)>;

/// Where a plugin's `hashing` functions are, found once per plugin.
#[derive(Clone)]
pub struct Indices {
    typed: ComponentExportIndex,
    rendered: ComponentExportIndex,
}

impl Indices {
    /// The `hashing` interface's functions in `pre`'s component; `None` when the plugin does
    /// not export the interface (the generated bindings judge that, and its types).
    pub fn new(pre: &InstancePre<StoreState>) -> wasmtime::Result<Option<Indices>> {
        if hashing::GuestIndices::new(pre).is_err() {
            return Ok(None);
        }
        let component = pre.component();
        let find = |instance: Option<&ComponentExportIndex>, name: &str| {
            component
                .get_export(instance, name)
                .map(|(_, index)| index)
                .ok_or_else(|| wasmtime::format_err!("the plugin's `hashing` interface has no `{name}`"))
        };
        // The interface's name, as the generated bindings look it up.
        let interface = find(None, &format!("trailwatch:plugin/hashing@{CONTRACT_VERSION}"))?;
        Ok(Some(Indices {
            typed: find(Some(&interface), "next-typed-step")?,
            rendered: find(Some(&interface), "next-rendered-step")?,
        }))
    }

    /// The functions in `instance`, typed to hash in place.
    pub fn load(&self, store: &mut Store<StoreState>, instance: &Instance) -> wasmtime::Result<Hashing> {
        Ok(Hashing {
            typed: instance.get_typed_func(&mut *store, self.typed)?,
            rendered: instance.get_typed_func(&mut *store, self.rendered)?,
        })
    }
}

/// A plugin instance's `hashing` functions, each step's bytes hashed in place.
pub struct Hashing {
    typed: Step<TypedStep>,
    rendered: Step<RenderedStep>,
}

impl Hashing {
    /// `next-typed-step`, its bytes fed to `hasher`.
    pub fn next_typed_step(
        &self,
        store: impl AsContextMut<Data = StoreState>,
        file: ResourceAny,
        max: u32,
        hasher: &mut Sha256,
    ) -> wasmtime::Result<Result<TypedStep, FileError>> {
        with_hasher(hasher, || self.typed.call(store, (file, max))).map(|(r,)| r)
    }

    /// `next-rendered-step`, its bytes fed to `hasher`.
    pub fn next_rendered_step(
        &self,
        store: impl AsContextMut<Data = StoreState>,
        file: ResourceAny,
        max: u32,
        hasher: &mut Sha256,
    ) -> wasmtime::Result<Result<RenderedStep, FileError>> {
        with_hasher(hasher, || self.rendered.call(store, (file, max))).map(|(r,)| r)
    }
}
