// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "nnm",
    products: [
        .library(name: "NNCore", targets: ["NNCore"]),
        .library(name: "NNFormat", targets: ["NNFormat"]),
        .library(name: "NNData", targets: ["NNData"]),
        .library(name: "NNEngine", targets: ["NNEngine"]),
        .library(name: "NNHDF5", targets: ["NNHDF5"]),
        .library(name: "NNTrain", targets: ["NNTrain"]),
        .library(name: "NNZip", targets: ["NNZip"]),
        .library(name: "NNNumPy", targets: ["NNNumPy"]),
        .library(name: "NNSafetensors", targets: ["NNSafetensors"]),
        .library(name: "NNConvert", targets: ["NNConvert"]),
        .library(name: "NNModelFiles", targets: ["NNModelFiles"]),
        .library(name: "NNPickle", targets: ["NNPickle"]),
        .library(name: "NNTorch", targets: ["NNTorch"]),
        .library(name: "NNPlot", targets: ["NNPlot"]),
        .library(name: "NNImage", targets: ["NNImage"]),
        .executable(name: "nnconv", targets: ["nnconv"]),
        .executable(name: "nn-infer", targets: ["nn-infer"]),
        .executable(name: "nn-train", targets: ["nn-train"]),
        .executable(name: "nn-serve", targets: ["nn-serve"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        // nn-serve: HTTP on SwiftNIO, logs, metrics in Prometheus text, signals.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
    ],
    targets: [
        // The C libraries, each found through pkg-config and wrapped by exactly one Swift module.
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5",
                       providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // OpenBLAS (Debian's libopenblas0) is not linked: NNEngine's BLAS.swift loads it with
        // dlopen on first use (f64 products, training), so f32-only processes never pay for it.
        // libpng (its shim catches libpng's longjmp in C) and libjpeg-turbo's TurboJPEG API.
        .systemLibrary(name: "CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg",
                       providers: [.apt(["libturbojpeg0-dev"])]),

        // The one file layer: read-only files (first bytes, positioned reads, guarded mappings),
        // atomic writes, temporary files, system errors as typed values.
        .target(name: "NNSystem", dependencies: ["CNNSystem"]),
        // The SIGBUS guard for mapped files (a signal handler is C's job).
        .target(name: "CNNSystem"),
        // Tensors, model description, metadata, JSON: no C dependencies.
        .target(name: "NNCore", dependencies: ["NNSystem"]),
        // zlib: CRC32, gzip streams, raw deflate for zip members.
        .target(name: "NNCompression", dependencies: ["CZlib", "NNKernels", "NNSystem"]),
        // The `.nnm` container format.
        .target(name: "NNFormat", dependencies: ["NNCore", "NNCompression", "NNSystem"]),
        // IDX (MNIST) files, plain or gzip.
        .target(name: "NNData", dependencies: ["NNCore", "NNCompression", "NNKernels", "NNSystem"]),
        // Our own C, each routine chosen at run time from CPUID and XGETBV: the f32, int8 and
        // bf16 products and convolutions (AVX-512, AVX2/FMA, VNNI, AMX, portable), pooling, the
        // preprocessing prologue, byte widening and CRC-32 folding (PCLMULQDQ).
        .target(name: "NNKernels"),
        // Inference: our GEMM kernels, CBLAS (OpenBLAS) for f64 and as the fallback.
        .target(name: "NNEngine", dependencies: ["NNCore", "NNKernels"]),
        // libhdf5 behind a small Swift API.
        .target(name: "NNHDF5", dependencies: ["CHDF5", "NNSystem"]),
        // Tensor containers that know no framework: zip archives (reader and writer), NumPy
        // .npy/.npz, safetensors.
        .target(name: "NNZip", dependencies: ["NNCore", "NNCompression", "NNSystem"]),
        .target(name: "NNNumPy", dependencies: ["NNCore", "NNZip", "NNCompression", "NNSystem"]),
        .target(name: "NNSafetensors", dependencies: ["NNCore", "NNSystem"]),
        // Pictures and the other inputs people have: PNG (libpng), JPEG (libjpeg-turbo), Netpbm,
        // folders of images, Kaggle CSV, .npy; MNIST's preprocessing; PNG output.
        .target(name: "NNImage", dependencies: ["CPNG", "CTurboJPEG", "NNCore", "NNNumPy", "NNSystem"]),
        // What the command-line tools share: exit statuses, error printing, parsing, inference reports.
        // It stays free of HDF5 so that nn-infer starts without loading libhdf5 and its dependencies.
        .target(name: "NNCommandLine", dependencies: [
            "NNCore", "NNFormat", "NNData", "NNEngine", "NNImage", "NNNumPy", "NNCompression", "NNSystem",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .executableTarget(name: "nnconv", dependencies: [
            "NNCommandLine", "NNConvert", "NNModelFiles", "NNPlot", "NNSystem", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "nn-infer", dependencies: [
            "NNCommandLine", "NNImage", "NNPlot", "NNSystem", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "nn-train", dependencies: [
            "NNCommandLine", "NNTrain", "NNData", "NNConvert", "NNModelFiles", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "nn-serve", dependencies: [
            "NNServe", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // The model server: model registry, the Open Inference Protocol's JSON, the batching queue,
        // limits, routes, the web page; on Hummingbird.
        .target(name: "NNServe", dependencies: [
            "NNCommandLine", "NNCore", "NNEngine", "NNFormat", "NNImage", "NNData", "NNSystem",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),

        // In-process benchmarks for `make bench` (Benchmarks/BENCHMARKS.md); no tests run it.
        .executableTarget(name: "nn-bench", dependencies: ["NNCore", "NNData", "NNEngine", "NNFormat", "NNTrain", "NNRandom"],
                          path: "Benchmarks/Sources/nn-bench"),

        // NumPy-compatible random streams (legacy RandomState).
        .target(name: "NNRandom"),
        // The converter: import options, results and errors, the model-building rules (blog
        // layouts, Keras, our own exports), the tensor-container and file-format protocols, the
        // built-in formats (.nnm, HDF5, NumPy, Keras, safetensors) and the format registry.
        .target(name: "NNConvert", dependencies: [
            "NNCore", "NNFormat", "NNHDF5", "NNZip", "NNNumPy", "NNSafetensors", "NNCompression", "NNSystem",
        ]),
        // ONNX as a format of the registry; onnx.pb.swift is generated once by `make onnx-proto`.
        .target(name: "NNONNX", dependencies: [
            "NNCore", "NNConvert", "NNSystem", "NNPyTorch", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        // Python pickles read as data, never run: a stack machine whose globals must be on the caller's
        // allow-list and whose calls are records. No dependencies.
        .target(name: "NNPickle"),
        // PyTorch checkpoints on top of it: state dicts and whole nn.Module trees from a data.pkl and
        // its storages, and the legacy (pre-zip) torch.save format from one byte buffer.
        .target(name: "NNTorch", dependencies: ["NNCore", "NNPickle"]),
        // PyTorch .pth/.pt as a format of the registry: the zip and legacy containers, state dicts
        // through PyTorchStateDict, pickled nn.Sequential models.
        .target(name: "NNPyTorch", dependencies: ["NNCore", "NNConvert", "NNTorch", "NNZip", "NNSafetensors", "NNSystem"]),
        // Every format the tools read and write, in one registry (the front door).
        .target(name: "NNModelFiles", dependencies: ["NNCore", "NNConvert", "NNONNX", "NNPyTorch"]),
        // SVG pictures: training history, first-layer convolution filters, confusion matrices.
        .target(name: "NNPlot", dependencies: ["NNCore"]),
        // The blog training recipes: batched backprop on CBLAS, SGD, momentum, L2, dropout.
        .target(name: "NNTrain", dependencies: ["NNCore", "NNEngine", "NNData", "NNImage", "NNRandom", "NNFormat", "NNPlot", "NNSystem"]),

        // What several test targets share: hand-built .nnm bytes, fixture paths, model outputs.
        .target(name: "NNTestSupport", dependencies: ["NNCore", "NNEngine", "NNFormat", "NNCompression"], path: "Tests/NNTestSupport"),
        .testTarget(name: "NNCoreTests", dependencies: ["NNCore", "NNCompression"]),
        .testTarget(name: "NNFormatTests", dependencies: ["NNTestSupport", "NNCore", "NNFormat", "NNCompression", "NNSystem"]),
        .testTarget(name: "NNDataTests", dependencies: ["NNCore", "NNData", "NNCompression", "NNSystem"]),
        .testTarget(name: "NNEngineTests", dependencies: ["NNTestSupport", "NNCore", "NNEngine", "NNFormat"]),
        .testTarget(name: "NNHDF5Tests", dependencies: ["NNHDF5"], exclude: ["Resources", "make_fixtures.py"]),
        .testTarget(name: "NNRandomTests", dependencies: ["NNRandom"]),
        .testTarget(name: "NNConvertTests", dependencies: [
            "NNTestSupport", "NNCore", "NNConvert", "NNPyTorch", "NNModelFiles", "NNZip", "NNNumPy", "NNSafetensors", "NNFormat", "NNHDF5",
            "NNEngine", "NNCompression", "NNSystem",
        ]),
        .testTarget(name: "NNONNXTests", dependencies: ["NNTestSupport", "NNCore", "NNONNX", "NNConvert", "NNPyTorch", "NNModelFiles", "NNFormat", "NNEngine"],
                    exclude: ["check_exports.py"]),
        .testTarget(name: "ParityTests", dependencies: ["NNCore", "NNEngine", "NNTrain", "NNRandom", "NNHDF5", "NNConvert", "NNModelFiles", "NNFormat"]),
        .testTarget(name: "NNTrainTests", dependencies: ["NNCore", "NNEngine", "NNTrain", "NNRandom", "NNFormat"]),
        .testTarget(name: "NNPickleTests", dependencies: ["NNPickle", "NNTorch", "NNCore"],
                    exclude: ["Resources"]),
        .testTarget(name: "NNImageTests", dependencies: ["NNImage", "NNCore", "NNSystem"]),
        .testTarget(name: "NNPlotTests", dependencies: ["NNPlot", "NNCore"]),
        .testTarget(name: "ServeTests", dependencies: [
            "NNServe", "NNTestSupport", "NNCore", "NNData", "NNFormat", "NNImage", "NNCommandLine", "NNEngine",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ], exclude: ["triton_client.py", "shutdown_test.py", "browser_test.py"]),
        .testTarget(name: "CLITests", dependencies: ["NNCore", "NNFormat", "NNData", "NNCompression", "NNTestSupport"],
                    exclude: ["reference_infer.py", "keras_predict.py", "Resources"]),
        // Hostile input: every reader against truncated, bit-flipped, oversized and inconsistent
        // files, each asserting its specific error (files built from bytes in the tests).
        .testTarget(name: "MalformedTests", dependencies: [
            "NNTestSupport", "NNCore", "NNFormat", "NNData", "NNCompression", "NNZip", "NNNumPy", "NNConvert", "NNModelFiles", "NNSystem",
        ]),

        // libFuzzer harnesses (`make fuzz`, Fuzz/README.md). Built with `-sanitize=fuzzer,address
        // -DFUZZING` they are libFuzzer binaries; in the normal build each has a `main` that replays
        // the files it is given through the harness.
        .target(name: "FuzzSupport", path: "Fuzz/Sources/FuzzSupport"),
        .executableTarget(name: "fuzz-nnm", dependencies: ["FuzzSupport", "NNCore", "NNFormat", "NNCompression"],
                          path: "Fuzz/Sources/fuzz-nnm"),
        .executableTarget(name: "fuzz-idx", dependencies: ["FuzzSupport", "NNData", "NNCompression"],
                          path: "Fuzz/Sources/fuzz-idx"),
        .executableTarget(name: "fuzz-npy", dependencies: ["FuzzSupport", "NNCore", "NNNumPy", "NNZip", "NNCompression"],
                          path: "Fuzz/Sources/fuzz-npy"),
        .executableTarget(name: "fuzz-keras-config", dependencies: ["FuzzSupport", "NNCore", "NNConvert"],
                          path: "Fuzz/Sources/fuzz-keras-config"),
        .executableTarget(name: "fuzz-pickle", dependencies: ["FuzzSupport", "NNCore", "NNPickle", "NNTorch"],
                          path: "Fuzz/Sources/fuzz-pickle"),
        .executableTarget(name: "fuzz-image", dependencies: ["FuzzSupport", "NNImage"],
                          path: "Fuzz/Sources/fuzz-image"),
        .executableTarget(name: "fuzz-import", dependencies: ["FuzzSupport", "NNCore", "NNConvert", "NNModelFiles"],
                          path: "Fuzz/Sources/fuzz-import"),
    ]
)
