import NNCompression
import NNCore
import NNData
import NNConvert
import NNModelFiles
import NNZip
import NNNumPy
import Testing
@testable import NNFormat

/// Inputs the fuzz harnesses (Fuzz/, `make fuzz`) or the review around them found crashing or
/// hanging a reader, each with the error it now reports.
@Suite struct FuzzRegressions {
    /// fuzz-idx, timeout: a 16-byte header (gzip, mode 3) declaring 50,331,648 images of
    /// 0x28 values made `IDXImageStream` hand out 16 million empty batches.
    @Test func streamOfImagesWithoutValues() {
        let dir = ScratchDirectory()
        let header: [UInt8] = [0x00, 0x00, 0x08, 0x03, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1c]
        for (name, bytes) in [("plain.idx", header), ("packed.idx.gz", gzipped(header))] {
            let path = dir.write(bytes, to: name)
            expectMessage("\(name): the header declares 50331648x0x28 u8: images of 0 values, which cannot be read as images") {
                _ = try IDXImageStream(path: path, batchSize: 3, displayName: name)
            }
            // The whole-file reader still reads the (empty) array.
            #expect((try? IDXFile(path: path, displayName: name))?.elementCount == 0)
        }
        expectMessage("one.idx: the header declares 0 u8: images of 0 values, which cannot be read as images") {
            _ = try IDXImageStream(path: dir.write([0, 0, 8, 1, 0, 0, 0, 0], to: "one.idx"), batchSize: 1, displayName: "one.idx")
        }
    }

    /// fuzz-idx, trap (integer overflow): `[0, 0xdadadada, 0xdadadada]` u8 holds no data, so the
    /// header's byte count (0) passed, but `IDXImageLayout` multiplied the image dimensions and
    /// overflowed, in `IDXImageStream` and in `IDXImages` of a file read whole.
    @Test func emptyIDXWhoseImagesAreTooLargeToCount() {
        let d = Int(UInt32(0xdada_dada))
        let header: [UInt8] = [0, 0, 0x08, 0x03, 0, 0, 0, 0, 0xda, 0xda, 0xda, 0xda, 0xda, 0xda, 0xda, 0xda]
        let message = "fuzz.idx: the dimensions 0x\(d)x\(d) overflow: their size in bytes does not fit in 64 bits"
        expectMessage(message) { _ = try IDXFile(bytes: header, name: "fuzz.idx") }
        let dir = ScratchDirectory()
        let path = dir.write(gzipped(header + [UInt8](repeating: 0xda, count: 10) + [0x1c]), to: "fuzz.idx")
        expectMessage(message) { _ = try IDXImageStream(path: path, batchSize: 3, displayName: "fuzz.idx") }
        // Writing refuses the same dimensions.
        expectMessage("w.idx: the dimensions 0x\(d)x\(d) overflow: their size in bytes does not fit in 64 bits") {
            _ = try IDXHeader(elementType: .u8, dims: [0, d, d], path: "w.idx")
        }
        // Zero dimensions whose other dimensions fit are still an empty, valid file.
        #expect((try? IDXFile(bytes: [0, 0, 0x08, 0x03, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0], name: "ok.idx"))?.elementCount == 0)
    }

    /// Found while fixing the above: `Tensor.count` multiplied left to right, so a shape with a
    /// zero last and huge dimensions first (`[2^40, 2^40, 0]`, which an HDF5 dataset may declare and
    /// libhdf5 reports as holding 0 elements) trapped instead of counting 0.
    @Test func tensorWithAZeroDimensionAfterHugeOnes() {
        let t = Tensor(dtype: .float32, shape: [1 << 40, 1 << 40, 0], copying: UnsafeRawBufferPointer(start: nil, count: 0))
        #expect(t.count == 0)
        #expect(t.byteCount == 0)
        #expect(t.floats().isEmpty)
        #expect(ShapeMath.elementCount([1 << 40, 1 << 40, 0]) == 0)
        #expect(ShapeMath.elementCount([]) == 1)
    }

    /// Review of the tensor table: an offset near Int.max with a length over 63 made the error
    /// message itself overflow (`offset + length`) and trap.
    @Test func tensorOffsetNearIntMaxInTheMessage() {
        let offset = Int.max - 63
        let bytes = Small.editing { h in
            var table = h["tensors"]!.arrayValue!
            var entry = table[4].objectValue!
            entry["offset"] = .integer(Int64(offset))
            entry["shape"] = [4, 16]
            entry["length"] = 256
            table[4] = .object(entry)
            h["tensors"] = .array(table)
        }
        expectMessage("m.nnm: tensors[4] 'optimizer.velocity.layers.0.weight': bytes \(offset)..<\(UInt64(offset) + 256) lie outside the data section of 320 bytes") {
            _ = try NNMFormat.decode(bytes: bytes, path: "m.nnm")
        }
    }

    /// Found by replaying an HDF5 file with a dataset of shape (2^40, 2^40, 0) (h5py writes one
    /// happily) through the tools: `nnconv inspect` trapped (signal 4 in its supervised child)
    /// computing the dataset's element count left to right; a sum of several huge datasets could
    /// overflow the same way.
    @Test func inspectionOfHugeEmptyAndHugeDatasets() {
        let empty = InspectionNode(name: "W1", kind: "dataset", dtype: "f4", shape: [1 << 40, 1 << 40, 0])
        #expect(empty.parameterCount == 0)
        #expect(empty.render() == ["W1  f4 1099511627776x1099511627776x0 (0 values)"])
        var root = InspectionNode(name: "/", kind: "group")
        root.children = [empty] + (0..<3).map { InspectionNode(name: "big\($0)", kind: "dataset", dtype: "f4", shape: [1 << 62]) }
        #expect(root.parameterCount == Int.max)
        #expect(root.render().first == "/  (\(Int.max) values)")
    }
}
