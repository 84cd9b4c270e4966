//! Rebuild this crate when the page changes: `rust-embed` reads `ui/` inside its
//! macro, which Cargo does not see, so without this an edited file kept being
//! served from the last build (a test run after a UI change tested the old page).

fn main() {
    for path in [
        "../ui/index.html",
        "../ui/app.js",
        "../ui/app.css",
        "../ui/icon.svg",
        "../ui/lib",
        "../ui/views",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
}
