fn main() -> std::process::ExitCode {
    // End quietly, as other command-line tools do, when whoever reads our
    // output goes away (`enrichbox audit | head`): Rust ignores SIGPIPE, so
    // every later write would fail, print an error, or panic in eprintln!.
    // SAFETY: no other thread exists yet; this restores the default action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    enrichbox::cli::main()
}
