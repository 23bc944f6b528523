import Foundation
import NNCore
import NNModelFiles
import NNTestSupport
import Testing
@testable import NNConvert

/// Cheap checks before expensive work: files that declare gigabytes they do not hold are refused
/// from their declarations, before any tensor data is read (the time and memory of these
/// refusals are measured by Benchmarks/bounded_work.sh, not here).
@Suite struct BoundedWork {
    let bounded = fixturesDirectory("bounded")

    @Test("a 4 MB HDF5 file whose 3.1 GB W1 has no b2 names the missing bias")
    func hdf5MissingBias() {
        let path = "\(bounded)/missing_b2_3gb.h5"
        #expect(errorMessage { _ = try ModelFiles.importModel(path: path) } == "\(path): missing 'b2': W2 has no bias")
    }

    @Test("a 4 MB .npz whose W1.npy declares 4 GiB has no b1: named from the .npy header")
    func npzMissingBias() {
        let path = "\(bounded)/missing_b1_4gb.npz"
        #expect(errorMessage { _ = try ModelFiles.importModel(path: path) } == "\(path): missing 'b1': W1 has no bias")
    }

    @Test("inspect reads the declarations only")
    func inspectWithoutData() throws {
        let npz = try ModelFiles.inspect(path: "\(bounded)/missing_b1_4gb.npz")
        #expect(npz.tree.children.map(\.name) == ["W1"] && npz.tree.children[0].shape == [1 << 30])
        let h5 = try ModelFiles.inspect(path: "\(bounded)/missing_b2_3gb.h5")
        #expect(h5.tree.children.first { $0.name == "W1" }?.shape == [28000, 28000])
    }

    @Test("a complete file that declares more than the budget is refused before reading")
    func budget() {
        let path = "\(bounded)/huge_declared.h5"
        let total = 100_000 * 100_000 * 4 + 100_000 * 4 + 100_000 * 10 * 4 + 10 * 4
        #expect(errorMessage { _ = try ModelFiles.importModel(path: path) }
                == "\(path): the tensors would take \(total) bytes, more than the \(defaultMaxTensorBytes)-byte budget for one import; raise it with --max-tensor-bytes if the file is trusted")
    }
}

/// The attack files of the safetensors project (`attacks/*_create.py` in huggingface/safetensors),
/// rebuilt from their descriptions as bytes.
@Suite struct SafetensorsAttacks {
    func write(_ bytes: [UInt8], name: String) -> String {
        let dir = scratchDirectory("attacks")
        let path = "\(dir)/\(name)"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        return path
    }

    func lengthPrefix(_ n: Int) -> [UInt8] { withUnsafeBytes(of: UInt64(n).littleEndian, Array.init) }

    @Test("abuse attempt 1: a header length of 1000 in a small file")
    func headerPastTheEnd() {
        let header = Array(#"{"weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#.utf8)
        let path = write(lengthPrefix(1000) + header + [UInt8](repeating: 0, count: 16), name: "attempt1.safetensors")
        #expect(errorMessage { _ = try ModelFiles.importModel(path: path) }
                == "\(path): header length 1000 bytes is larger than the \(header.count + 16) bytes that follow it (a truncated or non-safetensors file)")
    }

    @Test("abuse attempt 2: ten million entries (a header of about 800 MB) refused from its length")
    func tenMillionEntries() {
        // The real file is 1.6 GB; the length field alone is refused, so the rest is not needed.
        let declared = 837_777_780
        let path = write(lengthPrefix(declared) + Array(#"{"weight_0":"#.utf8), name: "attempt2.safetensors")
        #expect(errorMessage { _ = try ModelFiles.importModel(path: path) }
                == "\(path): header length \(declared) bytes exceeds the safetensors limit of 100000000 bytes")
    }

    @Test("abuse attempt 3: 100,000 entries that all claim the same bytes")
    func overlappingEntries() {
        let n = 200 * 200 * 4
        var text = "{"
        for i in 0..<100_000 {
            text += "\(i == 0 ? "" : ",")\"weight_\(i)\":{\"dtype\":\"F32\",\"shape\":[200,200],\"data_offsets\":[0,\(n)]}"
        }
        text += "}"
        let header = Array(text.utf8)
        let path = write(lengthPrefix(header.count) + header + [UInt8](repeating: 0, count: header.count), name: "attempt3.safetensors")
        let message = errorMessage { _ = try ModelFiles.importModel(path: path) }
        #expect(message?.hasPrefix("\(path): tensor 'weight_") == true && message?.contains("overlap tensor 'weight_") == true, "\(message ?? "")")
    }
}
