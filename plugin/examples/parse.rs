//! Reads CloudTrail files with the plugin's parser built natively and prints the event count:
//! `cargo run --release -p trailwatch-plugin --example parse -- FILE…` (for profiling).

fn main() {
    let mut events = 0usize;
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut file = trailwatch_plugin::reader::LogFile::open(bytes, &path, Default::default())
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        loop {
            let batch = file.next_batch(512).unwrap_or_else(|e| panic!("{path}: {e}"));
            if batch.is_empty() {
                break;
            }
            events += batch.len();
        }
    }
    println!("{events} events");
}
