//! Reads CloudTrail files with the plugin's parser built natively and prints the event count:
//! `cargo run --release -p trailwatch-plugin --example parse -- [--documents] FILE…` (for
//! profiling). With `--documents` the events are rendered as their documents, as the
//! `documents` interface does; without, they are typed events.

fn main() {
    let mut events = 0usize;
    let mut bytes_out = 0usize;
    let mut documents = false;
    let mut batch = trailwatch_plugin::documents::Batch::default();
    for path in std::env::args().skip(1) {
        if path == "--documents" {
            documents = true;
            continue;
        }
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut file = trailwatch_plugin::reader::LogFile::open(bytes, &path, Default::default())
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        loop {
            let n = if documents {
                let n = file
                    .next_documents(512, &mut batch)
                    .unwrap_or_else(|e| panic!("{path}: {e}"));
                bytes_out += batch.text.len();
                n
            } else {
                file.next_batch(512).unwrap_or_else(|e| panic!("{path}: {e}")).len()
            };
            if n == 0 {
                break;
            }
            events += n;
        }
    }
    println!("{events} events, {bytes_out} bytes rendered");
}
