//! Generates the tonic services from `proto/`. `protoc` comes vendored so a fresh machine needs
//! nothing beyond cargo; an explicit `PROTOC` still wins.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        // SAFETY: build scripts are single-threaded; nothing else reads the environment yet.
        unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    println!("cargo:rerun-if-changed=../proto");
    tonic_prost_build::configure()
        .bytes(".")
        .compile_protos(&["../proto/raft.proto", "../proto/replication.proto"], &["../proto"])?;
    Ok(())
}
