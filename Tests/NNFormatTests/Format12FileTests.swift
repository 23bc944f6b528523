import Foundation
import NNCompression
import NNCore
@testable import NNFormat
import NNTestSupport
import Testing

// Files and format 1.2: the minor version written, byte-identical rewrites of old and new
// files, and the reference reader (Schemas/nnm.py, with the JSON Schema) accepting new files.

@Suite struct Format12Files {
    /// 1.1 files written before 1.2 existed (by nnconv at aba547c, see Fixtures/README.md: a CNN
    /// with 'same' padding, true convolution, max_pool2d, flatten and dense; an MLP with scale
    /// preprocessing) read, and rewriting them gives the same bytes, version 1.1 included.
    @Test(arguments: ["v1.1-cnn.nnm", "v1.1-mlp.nnm"])
    func anOld11FileRewritesByteIdentically(name: String) throws {
        let path = fixturesDirectory("layers") + "/" + name
        let file = try NNMFormat.open(path: path)
        #expect(file.header.majorVersion == 1 && file.header.minorVersion == 1)
        #expect(file.model.metadata.minorVersion == 1)
        let again = temporaryPath("again.nnm")
        try NNMFormat.write(file.validated, to: again)
        let original = fileBytes(path)
        #expect(!original.isEmpty && fileBytes(again) == original)
    }

    /// Every fixture model is written as 1.2, reads back equal, and rewrites byte for byte.
    @Test(arguments: LayerFixture.all)
    func newModelsAreWrittenAs12(fixture: LayerFixture) throws {
        let model = try fixture.model(.float32)
        let path = temporaryPath("m.nnm")
        try NNMFormat.write(model, to: path)
        let file = try NNMFormat.open(path: path)
        #expect(file.header.minorVersion == 2)
        #expect(file.model.metadata == model.metadata)
        let again = temporaryPath("again.nnm")
        try NNMFormat.write(file.validated, to: again)
        #expect(fileBytes(again) == fileBytes(path))
    }

    /// The reference reader validates every 1.2 fixture model against the JSON Schema.
    @Test(.enabled(if: jsonschemaAvailable, "needs python3 with numpy and jsonschema"))
    func theReferenceReaderAcceptsNewFiles() throws {
        let dir = scratchDirectory("nnm-12")
        var paths: [String] = []
        for (i, fixture) in LayerFixture.all.enumerated() {
            let path = "\(dir)/case\(i).nnm"
            try NNMFormat.write(try fixture.model(.float32), to: path)
            paths.append(path)
        }
        #expect(paths.count == 32)
        let (status, output) = try python([fixturesDirectory("../Schemas") + "/nnm.py", "validate"] + paths)
        #expect(status == 0, "\(output)")
        #expect(output.split(separator: "\n").count == paths.count && !output.contains("Error"), "\(output)")
    }

    /// Readers accept files of major version 1 whatever their minor version (1.0, 1.1, 1.2, and
    /// later ones): the minor version is information, each layer kind and activation is
    /// checked by name.
    @Test func readersAcceptAnyMinorVersion() throws {
        let fixture = try #require(LayerFixture.all.first { $0.name.hasPrefix("batch_norm after dense") })
        let path = temporaryPath("m.nnm")
        try NNMFormat.write(try fixture.model(.float64), to: path)
        var bytes = fileBytes(path)
        for minor: UInt8 in [0, 1, 2, 3] {
            bytes[10] = minor
            withUnsafeBytes(of: CRC32.checksum(Array(bytes[0..<44])).littleEndian) { for (i, b) in $0.enumerated() { bytes[44 + i] = b } }
            let model = try NNMFormat.decode(bytes: bytes, path: "m.nnm")
            #expect(model.metadata.layers.map(\.kind) == [.dense, .batchNorm, .dense], "minor \(minor)")
        }
    }
}

/// Whether python3 can import what Schemas/nnm.py's validate needs.
let jsonschemaAvailable: Bool = (try? python(["-c", "import numpy, jsonschema"]).status) == 0

/// Runs python3 with `arguments`; returns its exit status and stdout and stderr together.
func python(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3"] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
