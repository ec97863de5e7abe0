fn main() -> std::process::ExitCode {
    enrichbox::cli::main()
}
