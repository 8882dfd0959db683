fn main() {
    eprintln!("system-update: not implemented yet");
    std::process::exit(1);
}
