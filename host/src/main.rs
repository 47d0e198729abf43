//! The `trailwatch` binary.

fn main() -> std::process::ExitCode {
    trailwatch::cli::main()
}
