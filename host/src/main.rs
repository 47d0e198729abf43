//! The `trailwatch` binary.

/// Each batch of events crosses from the plugin as hundreds of small strings that live only
/// until they are written; mimalloc serves that pattern faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    trailwatch::cli::main()
}
