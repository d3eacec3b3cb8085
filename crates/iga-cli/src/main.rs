//! The `iga` binary: see `iga --help` and the crate README.

fn main() -> std::process::ExitCode {
    iga_cli::main()
}
