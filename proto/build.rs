fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    tonic_prost_build::configure()
        // Shard pieces are large: `Bytes` passes them on without copying.
        .bytes(".stratus.chunk")
        .compile_protos(
            &[
                "proto/kv.proto",
                "proto/cluster.proto",
                "proto/raft.proto",
                "proto/chunk.proto",
                "proto/queue.proto",
                "proto/quorum.proto",
            ],
            &["proto"],
        )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
