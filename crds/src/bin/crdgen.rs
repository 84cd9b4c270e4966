//! `cargo run -p rendezvous-crds --bin crdgen [DIR]`: write the CRD YAML into `DIR`
//! (default `crds`, run from the workspace root). The same as `rendezvous crdgen`,
//! without building every other component first.

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os().nth(1).unwrap_or_else(|| "crds".into());
    let path = rendezvous_crds::write_crd(std::path::Path::new(&dir))?;
    println!("{}", path.display());
    Ok(())
}
